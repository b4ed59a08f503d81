-- The dnd feature's tables (coffeechat/features/dnd.py; format: coffeechat/sql.py).

-- migration 1: each user's global do-not-disturb, and the conversations they muted
CREATE TABLE dnd_settings (
    user_id BIGINT PRIMARY KEY,
    enabled BOOLEAN NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    time_zone TEXT NOT NULL,
    mentions_silenced BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE dnd_mutes (
    user_id BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    session_id BIGINT NOT NULL,
    muted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, session_type, session_id)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE dnd_settings (
    user_id BIGINT PRIMARY KEY,
    enabled BOOLEAN NOT NULL,
    window_start INTEGER NOT NULL,
    window_end INTEGER NOT NULL,
    time_zone TEXT NOT NULL,
    mentions_silenced BOOLEAN NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE dnd_mutes (
    user_id BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    session_id BIGINT NOT NULL,
    muted_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, session_type, session_id)
);
