-- The pins feature's table (coffeechat/features/pins.py; format: coffeechat/sql.py).

-- migration 1: the conversations each user pinned; position orders them (the latest highest)
CREATE TABLE pinned_conversations (
    user_id BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    session_id BIGINT NOT NULL,
    pinned_at BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, session_type, session_id)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE pinned_conversations (
    user_id BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    session_id BIGINT NOT NULL,
    pinned_at BIGINT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (user_id, session_type, session_id)
);
