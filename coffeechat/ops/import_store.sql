-- The importers' tables (coffeechat/ops/import_store.py; format: coffeechat/sql.py), component "import".

-- migration 1: where each phase of an import from a source got to, and what it could not map
-- (one row per problem and source row, so that a resumed or repeated run records nothing twice)
CREATE TABLE import_progress (
    source TEXT NOT NULL,
    phase TEXT NOT NULL,
    position BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (source, phase)
);
CREATE TABLE import_problems (
    source TEXT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (source, kind, ref)
);
