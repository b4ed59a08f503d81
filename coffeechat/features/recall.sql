-- The recall feature's tables (coffeechat/features/recall.py; format: coffeechat/sql.py).

-- migration 1: what was recalled, by whom and when: for devices catching up, and the admin API
CREATE TABLE message_recalls (
    conv TEXT NOT NULL,
    seq BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    sender_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    recalled_by BIGINT NOT NULL,
    recalled_at BIGINT NOT NULL,
    PRIMARY KEY (conv, seq)
) WITHOUT ROWID;
CREATE INDEX message_recalls_time ON message_recalls (conv, recalled_at);

-- migration 1 postgres
CREATE TABLE message_recalls (
    conv TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    sender_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    client_msg_id TEXT NOT NULL,
    recalled_by BIGINT NOT NULL,
    recalled_at BIGINT NOT NULL,
    PRIMARY KEY (conv, seq)
);
CREATE INDEX message_recalls_time ON message_recalls (conv, recalled_at);
