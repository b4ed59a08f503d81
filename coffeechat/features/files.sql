-- The files feature's tables (coffeechat/features/files.py; format: coffeechat/sql.py).

-- migration 1: files, who may read them, each user's usage, resumable uploads, the URL secret
-- A file is what an upload became: its bytes are in the blob store (keys in ``variants``, the
-- original under "original"); total_bytes counts the copies too (the quota counts them).
-- file_grants: the conversation (and the message's seq) a file was sent in; its members read it.
CREATE TABLE files (
    file_id TEXT PRIMARY KEY,
    owner_id BIGINT NOT NULL,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    kind TEXT NOT NULL,
    size BIGINT NOT NULL,
    total_bytes BIGINT NOT NULL,
    md5 TEXT NOT NULL,
    width INTEGER NOT NULL DEFAULT 0,
    height INTEGER NOT NULL DEFAULT 0,
    duration_ms BIGINT,
    blurhash TEXT NOT NULL DEFAULT '',
    variants TEXT NOT NULL DEFAULT '{}',
    notes TEXT NOT NULL DEFAULT '[]',
    created_at BIGINT NOT NULL
);
CREATE INDEX files_owner ON files (owner_id, created_at);
CREATE TABLE file_grants (
    file_id TEXT NOT NULL,
    conv TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (file_id, conv, seq)
);
CREATE INDEX file_grants_message ON file_grants (conv, seq);
CREATE TABLE file_usage (
    user_id BIGINT PRIMARY KEY,
    used BIGINT NOT NULL,
    files BIGINT NOT NULL
);
CREATE TABLE file_uploads (
    upload_id TEXT PRIMARY KEY,
    owner_id BIGINT NOT NULL,
    length BIGINT NOT NULL,
    name TEXT NOT NULL,
    mime TEXT NOT NULL,
    duration_ms BIGINT,
    node TEXT NOT NULL,
    file_id TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);
CREATE INDEX file_uploads_owner ON file_uploads (owner_id);
CREATE INDEX file_uploads_created ON file_uploads (created_at);
CREATE TABLE file_secret (
    id INTEGER PRIMARY KEY,
    secret TEXT NOT NULL
);
