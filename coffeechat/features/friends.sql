-- The friends feature's tables (coffeechat/features/friends.py; format: coffeechat/sql.py).

-- migration 1: friendships (two rows each: one per side, with that side's remark) and pending
-- requests (one per sender and recipient; an expired one is ignored and replaced)
CREATE TABLE friendships (
    user_id BIGINT NOT NULL,
    friend_id BIGINT NOT NULL,
    remark TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;
CREATE TABLE friend_requests (
    from_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id)
) WITHOUT ROWID;
CREATE INDEX friend_requests_to ON friend_requests (to_id, created_at);
CREATE INDEX friend_requests_time ON friend_requests (created_at);

-- migration 1 postgres
CREATE TABLE friendships (
    user_id BIGINT NOT NULL,
    friend_id BIGINT NOT NULL,
    remark TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);
CREATE TABLE friend_requests (
    from_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    message TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
CREATE INDEX friend_requests_to ON friend_requests (to_id, created_at);
CREATE INDEX friend_requests_time ON friend_requests (created_at);
