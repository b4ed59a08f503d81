-- The online status feature's table (coffeechat/features/online_status.py; format: coffeechat/sql.py).

-- migration 1: when each user was last seen (written in batches) and whether they hide their status
CREATE TABLE user_last_seen (
    user_id BIGINT NOT NULL PRIMARY KEY,
    last_seen BIGINT NOT NULL DEFAULT 0,
    hidden BOOLEAN NOT NULL DEFAULT FALSE
) WITHOUT ROWID;
CREATE INDEX user_last_seen_hidden ON user_last_seen (user_id) WHERE hidden;

-- migration 1 postgres
CREATE TABLE user_last_seen (
    user_id BIGINT NOT NULL PRIMARY KEY,
    last_seen BIGINT NOT NULL DEFAULT 0,
    hidden BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX user_last_seen_hidden ON user_last_seen (user_id) WHERE hidden;
