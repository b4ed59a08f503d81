-- The bots feature's table (coffeechat/features/bots.py; format: coffeechat/sql.py).
--
-- bots: the accounts flagged as bots, their webhook (URL and Standard Webhooks secret) and the
-- hash of their API key (the key itself is shown once, when the admin API flags the bot).

-- migration 1: the bots
CREATE TABLE bots (
    user_id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

-- migration 1 postgres
CREATE TABLE bots (
    user_id BIGINT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
