"""SQL written once: the engine layer, the domain stores and the shared writer/reader machinery
behind the SQLite, PostgreSQL and memory backends (docs/backends.md, "SQL written once")."""
