-- The search feature's tables (coffeechat/features/search.py; format: coffeechat/sql.py).
--
-- search_docs: one row per indexed message, with what searches filter on and its terms (made in
-- Python, the same for both engines: words casefolded, CJK runs as bigrams, separated by spaces).
-- SQLite indexes them in an FTS5 table whose content is search_docs (external content: the terms
-- are stored once), kept in step by triggers; its "ascii" tokenizer splits on spaces only (the
-- terms hold no ASCII punctuation) and leaves every other character alone.  PostgreSQL keeps them
-- as a tsvector ('simple' configuration) under a GIN index.
-- search_progress: per conversation, the last seq the indexer has read (its catch-up mark).
-- search_hidden / search_cleared: what a user deleted or cleared for themselves (module
-- "deletes"' events), left out of their results.

-- migration 1: the index, the indexer's marks and per-user exclusions
CREATE TABLE search_docs (
    doc_id INTEGER PRIMARY KEY,
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    session_type INTEGER NOT NULL,
    sender_id INTEGER NOT NULL,
    to_id INTEGER NOT NULL,
    msg_type INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    terms TEXT NOT NULL
);
CREATE UNIQUE INDEX search_docs_message ON search_docs (conv, seq);
CREATE VIRTUAL TABLE search_fts USING fts5(terms, content='search_docs', content_rowid='doc_id', tokenize='ascii');
CREATE TRIGGER search_docs_insert AFTER INSERT ON search_docs BEGIN
    INSERT INTO search_fts (rowid, terms) VALUES (new.doc_id, new.terms);
END;
CREATE TRIGGER search_docs_delete AFTER DELETE ON search_docs BEGIN
    INSERT INTO search_fts (search_fts, rowid, terms) VALUES ('delete', old.doc_id, old.terms);
END;
CREATE TABLE search_progress (
    conv TEXT PRIMARY KEY,
    indexed_seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE search_hidden (
    user_id INTEGER NOT NULL,
    conv TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, conv, seq)
) WITHOUT ROWID;
CREATE TABLE search_cleared (
    user_id INTEGER NOT NULL,
    conv TEXT NOT NULL,
    up_to_seq INTEGER NOT NULL,
    PRIMARY KEY (user_id, conv)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE search_docs (
    conv TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    session_type SMALLINT NOT NULL,
    sender_id BIGINT NOT NULL,
    to_id BIGINT NOT NULL,
    msg_type INTEGER NOT NULL,
    created_at BIGINT NOT NULL,
    terms tsvector NOT NULL,
    PRIMARY KEY (conv, seq)
);
CREATE INDEX search_docs_terms ON search_docs USING GIN (terms);
CREATE TABLE search_progress (
    conv TEXT COLLATE "C" PRIMARY KEY,
    indexed_seq BIGINT NOT NULL
);
CREATE TABLE search_hidden (
    user_id BIGINT NOT NULL,
    conv TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, conv, seq)
);
CREATE TABLE search_cleared (
    user_id BIGINT NOT NULL,
    conv TEXT COLLATE "C" NOT NULL,
    up_to_seq BIGINT NOT NULL,
    PRIMARY KEY (user_id, conv)
);
