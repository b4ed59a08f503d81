-- The forward feature's table (coffeechat/features/forward.py; format: coffeechat/sql.py).

-- migration 1: the origin of each forwarded copy, keyed by the copy (the core stores no origin)
CREATE TABLE forward_origins (
    conv TEXT NOT NULL,
    seq BIGINT NOT NULL,
    origin TEXT NOT NULL,
    PRIMARY KEY (conv, seq)
) WITHOUT ROWID;

-- migration 1 postgres
CREATE TABLE forward_origins (
    conv TEXT COLLATE "C" NOT NULL,
    seq BIGINT NOT NULL,
    origin TEXT NOT NULL,
    PRIMARY KEY (conv, seq)
);
