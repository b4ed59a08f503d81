-- The blocks feature's table (coffeechat/features/blocks.py; format: coffeechat/sql.py).

-- migration 1: who blocked whom, and when
CREATE TABLE user_blocks (
    owner_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, blocked_id)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE user_blocks (
    owner_id BIGINT NOT NULL,
    blocked_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (owner_id, blocked_id)
);
