"""``coffeechat backup`` and ``coffeechat restore``: online, verified backups of a node's data
(docs/backups.md).

A backup is a directory ``coffeechat-backup-<UTC stamp>/`` holding the database (an SQLite copy
made with the backup API from one snapshot, or a ``pg_dump`` custom-format archive), the local
blob store's files under ``files/``, and ``manifest.json``: the node's version and name, the
schema versions, and the size and SHA-256 of every file.  A directory rather than an archive, so
that unchanged uploads are hard links to the previous backup's copies (daily backups of many
gigabytes of photos cost only the new ones) and one file can be taken out by hand.  It is written
as a hidden ``.partial`` directory, verified (checksums, and the database opened and checked),
and only then renamed into place: a backup that is there is a verified one.

Nothing here imports a database driver: the engines' parts are ``coffeechat.backends.sqlite_backup``
and ``coffeechat.backends.postgres_backup``, loaded by name.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from coffeechat import __version__
from coffeechat.config import Config

FORMAT = 1
MANIFEST = "manifest.json"
PREFIX = "coffeechat-backup-"
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
FILES = "files"
_CHUNK = 1024 * 1024
_PARTIAL_MAX_AGE = 86400  # an unfinished backup older than this is a crashed one: removed

#: ``progress(stage, done, total)``: "database" in pages, "files" and "verify" in bytes.  It may
#: raise (a cancelled backup), which abandons the backup.
Progress = Callable[[str, int, int], None]


class BackupError(Exception):
    """A backup or restore that cannot be done, or a backup that is not sound: one line."""


def _engine(name: str) -> ModuleType:
    return importlib.import_module(f"coffeechat.backends.{name}_backup")


def _no_progress(stage: str, done: int, total: int) -> None:
    pass


@dataclass
class Target:
    """What a backup takes and a restore puts back, resolved from a node's config."""

    engine: str  # "sqlite" or "postgres"
    database: str  # the SQLite file, or the PostgreSQL DSN
    files_root: str | None  # the local blob store's directory; None when files are not ours to copy
    files_storage: str  # "local", "s3 (bucket ...)", or "none (files feature off)"
    node_name: str = ""
    pg_dump: str = "pg_dump"
    pg_restore: str = "pg_restore"


def target_of(config: Config) -> Target:
    """The database and files of the node ``config`` describes."""
    from coffeechat.features.backups import Config as BackupsConfig

    backups = config.section("backups") or BackupsConfig()
    engine = config.storage.backend
    if engine == "sqlite":
        database = str(config.sqlite_path)
    elif engine == "postgres":
        database = config.storage.dsn
    else:
        raise BackupError(f"storage.backend {engine!r} keeps nothing to back up (sqlite and postgres do)")
    files = config.section("files")
    root: str | None = None
    if files is None:
        storage = "none (files feature off)"
    elif files.storage.get("backend", "local") == "local":
        root = os.path.abspath(files.storage.get("path") or config.data_path / "files")
        storage = "local"
    else:
        storage = f"s3 (bucket {files.storage.get('bucket')!r}: not included, see docs/backups.md)"
    return Target(engine, database, root, storage, config.server.node_name, backups.pg_dump, backups.pg_restore)


def stamp(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha256(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
            if progress is not None:
                progress(len(chunk))
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: Path, target: Path) -> str:
    """Copy a file, fsynced; return its SHA-256 (of the bytes written)."""
    digest = hashlib.sha256()
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as out:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


# -- reading backups


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest of the backup at ``path``, or BackupError saying why there is none."""
    path = Path(path)
    if not path.is_dir():
        raise BackupError(f"{path}: no such backup directory")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{path}: no {MANIFEST}: not a CoffeeChat backup, or an unfinished one") from None
    except (OSError, ValueError) as e:
        raise BackupError(f"{path}: {MANIFEST} is damaged ({e})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or "entries" not in manifest:
        raise BackupError(f"{path}: {MANIFEST} is not a backup manifest of format {FORMAT}")
    return manifest


def verify_backup(path: str | Path, progress: Progress = _no_progress, pg_restore: str = "pg_restore") -> dict:
    """Check every file against the manifest (present, size, SHA-256) and the database by
    opening it; the manifest, or BackupError naming what is wrong."""
    path = Path(path)
    manifest = read_manifest(path)
    entries: dict[str, dict] = manifest["entries"]
    total = sum(int(e.get("size", 0)) for e in entries.values())
    done = 0
    problems: list[str] = []

    def advance(n: int) -> None:
        nonlocal done
        done += n
        progress("verify", done, total)

    progress("verify", 0, total)
    for name in sorted(entries):
        entry = entries[name]
        file = path / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            problems.append(f"{name}: not a path inside the backup")
            continue
        try:
            size = file.stat().st_size
        except FileNotFoundError:
            problems.append(f"{name}: missing")
            continue
        if size != entry.get("size"):
            problems.append(f"{name}: {size} bytes, the manifest says {entry.get('size')}")
            advance(int(entry.get("size", 0)))
            continue
        got = _sha256(file, advance)
        if got != entry.get("sha256"):
            problems.append(f"{name}: checksum mismatch (SHA-256 {got[:16]}…, the manifest says {entry.get('sha256')})")
    if not problems:
        database = path / manifest.get("database", "")
        if manifest.get("engine") == "sqlite":
            found, _ = _engine("sqlite").check_copy(str(database))
            problems += [f"{database.name}: {p}" for p in found]
        elif manifest.get("engine") == "postgres":
            problems += [f"{database.name}: {p}" for p in _engine("postgres").check_dump(str(database), pg_restore)]
        else:
            problems.append(f"unknown engine {manifest.get('engine')!r}")
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise BackupError(f"{path} failed verification: {shown}")
    return manifest


def list_backups(folder: str | Path) -> list[dict[str, Any]]:
    """The finished backups in ``folder``, oldest first: name, created_at, engine, bytes, files;
    a backup whose manifest cannot be read is listed with its error."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = []
    for child in sorted(folder.iterdir()):
        if not child.name.startswith(PREFIX) or not child.is_dir():
            continue
        try:
            m = read_manifest(child)
        except BackupError as e:
            found.append({"name": child.name, "path": str(child), "error": str(e)})
            continue
        found.append(
            {
                "name": child.name,
                "path": str(child),
                "created_at": m.get("created_at"),
                "created_unix": m.get("created_unix"),
                "engine": m.get("engine"),
                "bytes": sum(int(e.get("size", 0)) for e in m["entries"].values()),
                "files": m.get("files", {}).get("count", 0),
                "version": m.get("version"),
            }
        )
    found.sort(key=lambda b: (b.get("created_unix") or 0, b["name"]))
    return found


# -- rotation


def kept(backups: list[tuple[str, float]], keep_daily: int, keep_weekly: int) -> set[str]:
    """Which of ``(name, unix time)`` rotation keeps: the newest backup of each of the last
    ``keep_daily`` days that have one, of each of the last ``keep_weekly`` ISO weeks that have
    one, and the newest of all.  Days with no backup do not count, so a backup job that failed
    for a week never has its older backups rotated away."""
    ordered = sorted(backups, key=lambda b: (b[1], b[0]), reverse=True)
    keep = {ordered[0][0]} if ordered else set()
    for count, period in (
        (keep_daily, lambda t: datetime.fromtimestamp(t, UTC).date()),
        (keep_weekly, lambda t: datetime.fromtimestamp(t, UTC).isocalendar()[:2]),
    ):
        seen: set[Any] = set()
        for name, when in ordered:
            key = period(when)
            if key not in seen:
                seen.add(key)
                if len(seen) > count:
                    break
                keep.add(name)
    return keep


def prune(folder: str | Path, keep_daily: int, keep_weekly: int) -> list[str]:
    """Remove the backups of ``folder`` that rotation does not keep, and unfinished ones left
    by a crash; the names removed.  Unreadable backups are left alone (someone should look)."""
    folder = Path(folder)
    backups = [(b["name"], float(b["created_unix"])) for b in list_backups(folder) if "error" not in b]
    keep = kept(backups, keep_daily, keep_weekly)
    removed = []
    for name, _ in backups:
        if name not in keep:
            shutil.rmtree(folder / name)
            removed.append(name)
    if folder.is_dir():
        for child in folder.iterdir():
            if child.name.startswith("." + PREFIX) and ".partial-" in child.name:
                if time.time() - child.stat().st_mtime > _PARTIAL_MAX_AGE:
                    shutil.rmtree(child, ignore_errors=True)
                    removed.append(child.name)
    return removed


# -- taking a backup


def _unique_name(folder: Path, when: float) -> str:
    base = PREFIX + stamp(when)
    name, n = base, 1
    while (folder / name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


def _copy_files(
    root: Path, target: Path, previous: tuple[Path, dict] | None, progress: Progress
) -> tuple[dict[str, dict], int, int]:
    """The blob store's files into ``target``: a file the previous backup has unchanged (same
    size and mtime: blobs are written once, by rename) is a hard link to that copy."""
    listing = []
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in sorted(names):
            if name.startswith(".put-"):  # a blob being written right now
                continue
            file = Path(folder) / name
            try:
                st = file.stat()
            except FileNotFoundError:  # removed meanwhile (a recalled message's file)
                continue
            listing.append((file, file.relative_to(root).as_posix(), st.st_size, st.st_mtime_ns))
    total = sum(size for _, _, size, _ in listing)
    done = 0
    progress("files", 0, total)
    entries: dict[str, dict] = {}
    for file, rel, size, mtime_ns in listing:
        key = f"{FILES}/{rel}"
        out = target / rel
        old = previous[1].get(key) if previous else None
        linked = False
        if old and old.get("size") == size and old.get("mtime_ns") == mtime_ns:
            out.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(previous[0] / key, out)
                entries[key] = {"size": size, "sha256": old["sha256"], "mtime_ns": mtime_ns}
                linked = True
            except OSError:  # another file system, or the old copy is gone: copy it
                pass
        if not linked:
            try:
                digest = _copy(file, out)
            except FileNotFoundError:
                continue
            entries[key] = {"size": out.stat().st_size, "sha256": digest, "mtime_ns": mtime_ns}
        done += size
        progress("files", done, total)
    return entries, len(entries), sum(e["size"] for e in entries.values())


def _previous(folder: Path) -> tuple[Path, dict] | None:
    for backup in reversed(list_backups(folder)):
        if "error" not in backup:
            try:
                return Path(backup["path"]), read_manifest(backup["path"])["entries"]
            except BackupError:
                continue
    return None


def create_backup(
    target: Target, folder: str | Path, now: float | None = None, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Take a backup of ``target`` into ``folder`` (online: the node may be serving), verify it,
    and return its manifest (with ``path``).  ``now`` names it (the node's clock)."""
    folder = Path(folder)
    now = time.time() if now is None else now
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BackupError(f"cannot create the backup directory {folder}: {e.strerror}") from None
    name = _unique_name(folder, now)
    partial = folder / f".{name}.partial-{os.getpid()}"
    previous = _previous(folder)
    try:
        partial.mkdir()
        started = time.monotonic()
        if target.engine == "sqlite":
            database = SQLITE_FILE
            try:
                info = _engine("sqlite").copy_online(
                    target.database, str(partial / database), lambda d, t: progress("database", d, t)
                )
            except FileNotFoundError:
                raise BackupError(f"no database at {target.database} (is server.data_dir right?)") from None
        else:
            database = PG_FILE
            pg = _engine("postgres")
            try:
                info = pg.dump(target.database, str(partial / database), target.pg_dump)
            except pg.ToolMissing:
                raise BackupError(
                    f"{target.pg_dump} not found (backups.pg_dump): install the PostgreSQL client tools of the "
                    f"server's version, or back up by hand: pg_dump --format=custom --file=coffeechat.pgdump "
                    f'--dbname="$DSN" with storage.dsn as DSN (docs/backups.md)'
                ) from None
            except RuntimeError as e:
                raise BackupError(str(e)) from None
        entries = {database: {"size": (partial / database).stat().st_size, "sha256": _sha256(partial / database)}}
        files = {"storage": target.files_storage, "included": False, "count": 0, "bytes": 0}
        if target.files_root is not None:
            files["included"] = True
            root = Path(target.files_root)
            if root.is_dir():
                copied, files["count"], files["bytes"] = _copy_files(root, partial / FILES, previous, progress)
                entries.update(copied)
        manifest = {
            "format": FORMAT,
            "name": name,
            "created_at": _iso(now),
            "created_unix": now,
            "node": target.node_name,
            "version": __version__,
            "engine": target.engine,
            "database": database,
            "schema": info["schema"],
            "counts": info["counts"],
            "files": files,
            "entries": entries,
        }
        with open(partial / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(partial)
        verify_backup(partial, progress, target.pg_restore)
        manifest["seconds"] = round(time.monotonic() - started, 3)
        os.rename(partial, folder / name)
        _fsync_dir(folder)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return {**manifest, "path": str(folder / name)}


# -- restoring one


def _non_empty(root: str | None) -> bool:
    return root is not None and os.path.isdir(root) and any(os.scandir(root))


def restore_backup(
    target: Target, path: str | Path, force: bool = False, progress: Progress = _no_progress
) -> tuple[dict[str, Any], list[str]]:
    """Verify the backup at ``path``, then put its database and files where ``target`` keeps
    them.  Refused (BackupError) over a database in use or over existing data, unless ``force``.
    Returns the manifest and notes for the operator."""
    path = Path(path)
    manifest = verify_backup(path, progress, target.pg_restore)
    notes: list[str] = []
    if manifest["engine"] != target.engine:
        raise BackupError(
            f"{path} holds a {manifest['engine']} database and the config uses {target.engine}: "
            "restore it with a config of its engine (docs/backups.md)"
        )
    known = len(importlib.import_module("coffeechat.backends.sql.migrations").core_migrations())
    if int(manifest.get("schema", {}).get("core", 0)) > known:
        raise BackupError(
            f"{path} was taken by CoffeeChat {manifest.get('version')} (schema {manifest['schema']['core']}), newer "
            f"than this one ({__version__}, schema {known}): restore it with that version or a later one"
        )
    has_files = bool(manifest.get("files", {}).get("count"))
    database = str(path / manifest["database"])
    if target.engine == "sqlite":
        sqlite = _engine("sqlite")
        live = sqlite.is_live(target.database)
        if live and not force:
            raise BackupError(
                f"{target.database} is in use (a running server, or a coffeechat command, has it open): stop the "
                "server first, or pass --force to restore into it while it runs"
            )
        occupied = os.path.exists(target.database) and os.path.getsize(target.database) > 0
    else:
        pg = _engine("postgres")
        try:
            tables, sessions = pg.database_state(target.database)
        except Exception as e:
            raise BackupError(f"cannot reach the database of storage.dsn: {e}") from None
        live = sessions > 0
        if live and not force:
            raise BackupError(
                f"{sessions} other session(s) are connected to the database (a running server?): stop the "
                "servers first, or pass --force"
            )
        occupied = tables > 0
    if occupied and not force:
        raise BackupError(
            f"the database ({target.database if target.engine == 'sqlite' else 'storage.dsn'}) holds data already: "
            "restoring replaces it; pass --force to replace it (or restore into an empty data dir with --data-dir)"
        )
    if has_files and _non_empty(target.files_root) and not force:
        raise BackupError(f"{target.files_root} holds files already: pass --force to restore over them")
    if target.engine == "sqlite":
        sqlite.restore_copy(database, target.database, live=live, progress=lambda d, t: progress("database", d, t))
    else:
        try:
            pg.restore_dump(database, target.database, target.pg_restore, clean=occupied)
        except pg.ToolMissing:
            raise BackupError(
                f"{target.pg_restore} not found (backups.pg_restore): install the PostgreSQL client tools, or "
                f'run: pg_restore --no-owner --single-transaction --dbname="$DSN" {database}'
            ) from None
        except RuntimeError as e:
            raise BackupError(str(e)) from None
    if has_files:
        if target.files_root is None:
            notes.append(
                f"the backup holds {manifest['files']['count']} files but this config keeps none locally "
                f"({target.files_storage}): copy {path / FILES} into the store yourself"
            )
        else:
            _restore_files(path, manifest, Path(target.files_root), progress)
    if live:
        notes.append("restored into a database in use: restart the server so that nothing it remembers is stale")
    return manifest, notes


def _restore_files(path: Path, manifest: dict, root: Path, progress: Progress) -> None:
    entries = {k: v for k, v in manifest["entries"].items() if k.startswith(FILES + "/")}
    total = sum(e["size"] for e in entries.values())
    done = 0
    progress("files", 0, total)
    for key in sorted(entries):
        out = root / key[len(FILES) + 1 :]
        temporary = out.with_name(f".put-restore-{out.name}")
        _copy(path / key, temporary)
        os.replace(temporary, out)
        done += entries[key]["size"]
        progress("files", done, total)
    if root.is_dir():
        _fsync_dir(root)


# -- the command line


class TerminalProgress:
    """A tqdm bar per stage on a terminal (stderr), left drawn at 100% when the stage is done;
    nothing otherwise (cron, logs, tests)."""

    LABELS = {"database": ("database", "pages"), "files": ("files", "B"), "verify": ("verify", "B")}

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.stage = ""
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if stage != self.stage:
            self.close()
            from tqdm import tqdm

            label, unit = self.LABELS.get(stage, (stage, "B"))
            self.stage = stage
            self.bar = tqdm(total=total, desc=label, unit=unit, unit_scale=unit == "B", leave=True, file=sys.stderr)
        self.bar.total = total
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        self.stage = ""


def add_commands(commands: Any) -> None:
    """``backup [--dir DIR] [--prune]``, ``backup verify BACKUP``, ``backup list`` and ``restore``."""
    backup = commands.add_parser("backup", help="take a verified online backup (docs/backups.md)")
    backup.add_argument("--dir", metavar="DIR", help="where to write it (default: backups.dir)")
    backup.add_argument("--prune", action="store_true", help="then rotate DIR (backups.keep_daily, keep_weekly)")
    actions = backup.add_subparsers(dest="action", metavar="ACTION")
    actions.add_parser("verify", help="check a backup's checksums and database").add_argument("backup")
    actions.add_parser("list", help="the backups in DIR").add_argument("--dir", metavar="DIR", dest="list_dir")
    restore = commands.add_parser("restore", help="put a backup back (the server stopped)")
    restore.add_argument("backup", metavar="BACKUP")
    restore.add_argument("--force", action="store_true", help="replace existing data, even a database in use")


def _folder(config: Config, given: str | None) -> str:
    from coffeechat.features.backups import Config as BackupsConfig

    folder = given or (config.section("backups") or BackupsConfig()).dir
    if not folder:
        raise BackupError("no backup directory: pass --dir DIR or set backups.dir")
    return folder


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def command(config: Config, args: argparse.Namespace, out: Callable[[str], None] = print) -> int:
    """Run ``backup``/``restore`` (blocking: the admin command runs it in a thread); 0 or
    BackupError."""
    from coffeechat.features.backups import Config as BackupsConfig

    section = config.section("backups") or BackupsConfig()
    progress = TerminalProgress()
    try:
        if args.command == "restore":
            manifest, notes = restore_backup(target_of(config), args.backup, args.force, progress)
            progress.close()
            out(
                f"restored {manifest['name']} (taken {manifest['created_at']}, CoffeeChat {manifest['version']}): "
                f"database, {manifest['files']['count']} files"
            )
            for note in notes:
                out(f"note: {note}")
        elif args.action == "verify":
            manifest = verify_backup(args.backup, progress, section.pg_restore)
            progress.close()
            size = sum(e["size"] for e in manifest["entries"].values())
            out(
                f"{args.backup}: OK ({manifest['engine']}, taken {manifest['created_at']}, "
                f"{len(manifest['entries'])} files, {_size(size)} checked)"
            )
        elif args.action == "list":
            for b in list_backups(_folder(config, args.list_dir or args.dir)):
                if "error" in b:
                    out(f"{b['name']}\tunreadable: {b['error']}")
                else:
                    out(f"{b['name']}\t{b['created_at']}\t{b['engine']}\t{_size(b['bytes'])}\t{b['files']} files")
        else:
            folder = _folder(config, args.dir)
            manifest = create_backup(target_of(config), folder, progress=progress)
            progress.close()
            size = sum(e["size"] for e in manifest["entries"].values())
            out(
                f"backup written and verified: {manifest['path']} ({_size(size)}, {manifest['files']['count']} "
                f"files; files: {manifest['files']['storage']})"
            )
            if args.prune:
                for name in prune(folder, section.keep_daily, section.keep_weekly):
                    out(f"removed {name}")
    finally:
        progress.close()
    return 0
