-- The directory feature's tables (coffeechat/features/directory.py; format: coffeechat/sql.py).

-- migration 1: search keys (user names and nick names, NFKC casefolded), profiles, indexing progress
-- directory_keys holds one row per (key, user): a user's name key, and their nick key when it
-- differs. A prefix search is a range scan of its primary key (key >= prefix AND key < the
-- prefix's successor), in code point order: SQLite compares TEXT bytewise (BINARY), PostgreSQL
-- with COLLATE "C" below.
CREATE TABLE directory_keys (
    search_key TEXT NOT NULL,
    user_id BIGINT NOT NULL,
    kind SMALLINT NOT NULL,
    PRIMARY KEY (search_key, user_id)
) WITHOUT ROWID;
CREATE INDEX directory_keys_user ON directory_keys (user_id);
CREATE TABLE user_profiles (
    user_id BIGINT PRIMARY KEY,
    signature TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE directory_progress (
    id SMALLINT PRIMARY KEY,
    indexed_upto BIGINT NOT NULL
);
INSERT INTO directory_progress (id, indexed_upto) VALUES (1, 0);

-- migration 1 postgres
CREATE TABLE directory_keys (
    search_key TEXT COLLATE "C" NOT NULL,
    user_id BIGINT NOT NULL,
    kind SMALLINT NOT NULL,
    PRIMARY KEY (search_key, user_id)
);
CREATE INDEX directory_keys_user ON directory_keys (user_id);
CREATE TABLE user_profiles (
    user_id BIGINT PRIMARY KEY,
    signature TEXT NOT NULL DEFAULT '',
    ex TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE directory_progress (
    id SMALLINT PRIMARY KEY,
    indexed_upto BIGINT NOT NULL
);
INSERT INTO directory_progress (id, indexed_upto) VALUES (1, 0);
