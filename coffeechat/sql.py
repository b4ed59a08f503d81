"""SQL files: how the core and feature modules write their tables once for every SQL engine.

A migrations file holds numbered sections; a section may be followed by a version of it for one
engine, which that engine runs instead (only where the dialects really differ: identity
columns, PL/pgSQL, collations)::

    -- migration 1: recalled messages, for catch-up and the admin API
    CREATE TABLE message_recalls (...);
    CREATE INDEX message_recalls_time ON message_recalls (conv, recalled_at);

    -- migration 1 postgres
    CREATE TABLE message_recalls (... BIGINT ...);

Versions run from 1 without gaps; a database records, per component, the last one applied
(:meth:`coffeechat.interfaces.ISQLDatabase.migrate`).  Append new sections, never edit applied ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

ENGINES = ("sqlite", "postgres")
_MARKER = re.compile(r"^--\s*migration\s+(\d+)(?:\s+(sqlite|postgres))?\s*(?::\s*(.*?))?\s*$")


class MigrationFileError(ValueError):
    """A migrations file that does not follow the format above."""


@dataclass(frozen=True)
class SQLMigration:
    """One schema step: its version, what it does, and its SQL (``""``: every engine)."""

    version: int
    description: str
    sql: dict[str, str] = field(default_factory=dict)

    def sql_for(self, engine: str) -> str:
        """The statements ``engine`` runs for this step."""
        text = self.sql.get(engine, self.sql.get(""))
        if text is None:
            raise MigrationFileError(f"migration {self.version} has no SQL for {engine}")
        return text


def parse_migrations(text: str, source: str = "<sql>") -> list[SQLMigration]:
    """The migrations of a file's text, in version order (see the module docstring)."""
    sections: dict[int, dict[str, list[str]]] = {}
    descriptions: dict[int, str] = {}
    current: list[str] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        match = _MARKER.match(line.strip())
        if match is None:
            if current is None:
                if line.strip() and not line.strip().startswith("--"):
                    raise MigrationFileError(f"{source}:{number}: SQL before the first '-- migration N' line")
                continue
            current.append(line)
            continue
        version, engine = int(match.group(1)), match.group(2) or ""
        bodies = sections.setdefault(version, {})
        if engine in bodies:
            raise MigrationFileError(f"{source}:{number}: migration {version} {engine or '(all engines)'} twice")
        if not engine and match.group(3):
            descriptions[version] = match.group(3)
        current = bodies[engine] = []
    migrations = []
    for expected, version in enumerate(sorted(sections), 1):
        if version != expected:
            raise MigrationFileError(f"{source}: migration {expected} is missing (versions run from 1)")
        bodies = {engine: "\n".join(lines).strip() + "\n" for engine, lines in sections[version].items()}
        if "" not in bodies and set(bodies) != set(ENGINES):
            raise MigrationFileError(f"{source}: migration {version} needs SQL for every engine")
        migrations.append(SQLMigration(version, descriptions.get(version, ""), bodies))
    return migrations


def load_migrations(path: str | Path) -> list[SQLMigration]:
    """The migrations of a file (a feature module's ``<name>.sql``, the core's schema)."""
    path = Path(path)
    return parse_migrations(path.read_text(encoding="utf-8"), str(path))
