-- The deletes feature's tables (coffeechat/features/deletes.py; format: coffeechat/sql.py).

-- migration 1: per user and conversation, what they hid for themselves: every seq up to
-- cleared_seq, the conversation from their list while its last seq is at most removed_seq (-1:
-- never removed), and the seqs deleted one by one above cleared_seq (at most [deletes]
-- max_per_conversation of them; a run right above cleared_seq is folded into it)
CREATE TABLE conversation_deletes (
    user_id BIGINT NOT NULL,
    conv TEXT NOT NULL,
    cleared_seq BIGINT NOT NULL DEFAULT 0,
    removed_seq BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (user_id, conv)
) WITHOUT ROWID;
CREATE TABLE message_deletes (
    user_id BIGINT NOT NULL,
    conv TEXT NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, conv, seq)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE conversation_deletes (
    user_id BIGINT NOT NULL,
    conv TEXT COLLATE "C" NOT NULL,
    cleared_seq BIGINT NOT NULL DEFAULT 0,
    removed_seq BIGINT NOT NULL DEFAULT -1,
    PRIMARY KEY (user_id, conv)
);
CREATE TABLE message_deletes (
    user_id BIGINT NOT NULL,
    conv TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, conv, seq)
);
