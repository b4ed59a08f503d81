"""Scheduled backups: the node backs itself up (coffeechat/ops/backup.py) at a time of day or
every so often, rotates the directory, logs a line per backup, and shows it all to the admin API
(``GET /admin/backups``; ``POST /admin/backups`` takes one now).  Off until ``backups.dir`` is
set (docs/backups.md).

A backup runs in this feature's own threads (never on the reactor, never in the database's
threads; one backup at a time); it reads the database through a connection of its own, so the node keeps serving.  When
the node stops, a backup under way is abandoned between two steps (its unfinished directory is
removed).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from twisted.internet import defer, threads

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.modules import HttpCall, ModuleAPI
from coffeechat.openapi import accepted, array, boolean, integer, obj, string
from coffeechat.ops import backup as ops
from coffeechat.threadpools import DaemonThreadPool

SECTION = "backups"
_AT = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass
class Config:
    """[backups]: where and when the node backs itself up, and how many backups it keeps."""

    dir: str = ""  # scheduled backups are off while empty; best on another disk
    at: str = "03:30"  # daily, at this UTC time (HH:MM) ...
    interval: float = 0.0  # ... or, when > 0, every this many seconds (at least 60)
    keep_daily: int = 7  # the newest backup of each of the last N days that have one
    keep_weekly: int = 4  # and of each of the last M ISO weeks that have one
    pg_dump: str = "pg_dump"  # PostgreSQL: the tools (of the server's version), names or paths
    pg_restore: str = "pg_restore"

    def validate(self) -> None:
        if not _AT.match(self.at):
            raise ConfigError(f"backups.at must be a UTC time like '03:30', got {self.at!r}")
        if self.interval != 0 and self.interval < 60:
            raise ConfigError("backups.interval must be 0 (daily at backups.at) or at least 60 seconds")
        if self.keep_daily < 0 or self.keep_weekly < 0:
            raise ConfigError("backups.keep_daily and backups.keep_weekly must be >= 0")
        if not self.pg_dump or not self.pg_restore:
            raise ConfigError("backups.pg_dump and backups.pg_restore must not be empty")


class Cancelled(Exception):
    """The node is stopping: the backup under way gives up."""


class Backups:
    """The schedule, the backup under way and what the last ones did."""

    def __init__(self, api: ModuleAPI, config: Config) -> None:
        self.api = api
        self.config = config
        self.clock = api.clock
        self.log = api.log
        self.pool: DaemonThreadPool | None = None
        self.next_at: float | None = None
        self.running: defer.Deferred | None = None
        self.last_success: dict[str, Any] | None = None
        self.last_failure: dict[str, Any] | None = None
        self._call: Any = None
        self._cancel = threading.Event()

    def run_in_thread(self, fn: Any, *args: Any) -> defer.Deferred:
        """``fn(*args)`` in the backups thread (tests on a memory reactor replace this)."""
        if self.pool is None:
            # one backup at a time (self.running); the second thread answers GET /admin/backups meanwhile
            self.pool = DaemonThreadPool(1, 2, name="coffeechat-backups")
            self.pool.start()
        return threads.deferToThreadPool(self.clock, self.pool, fn, *args)

    # -- the schedule

    def next_time(self, now: float) -> float:
        """When the next scheduled backup is due, after ``now``."""
        if self.config.interval > 0:
            return now + self.config.interval
        hour, minute = (int(p) for p in self.config.at.split(":"))
        today = datetime.fromtimestamp(now, UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
        due = today if today.timestamp() > now else today + timedelta(days=1)
        return due.timestamp()

    def start(self) -> None:
        if self.config.dir:
            self.log.info("backups: into {dir}, {when}", dir=self.config.dir, when=self.describe())
            self._schedule()

    def describe(self) -> str:
        if self.config.interval > 0:
            return f"every {self.config.interval:g} s"
        return f"daily at {self.config.at} UTC"

    def _schedule(self) -> None:
        now = self.clock.seconds()
        self.next_at = self.next_time(now)
        self._call = self.clock.callLater(self.next_at - now, self._due)

    def _due(self) -> None:
        self._call = None
        d = self.backup_now()
        d.addBoth(lambda _: self._schedule() if not self._cancel.is_set() else None)

    def stop(self) -> defer.Deferred | None:
        self._cancel.set()
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        running = self.running
        if self.pool is not None:
            pool, self.pool = self.pool, None
            if running is None:
                pool.stop()
            else:
                running.addBoth(lambda r: (pool.stop(), r)[1])
        return running

    # -- a backup

    def backup_now(self) -> defer.Deferred:
        """Take a backup now (or join the one under way); fires with its manifest, or None when
        it failed (the failure is logged and kept for the admin API)."""
        if self.running is not None:
            return self._join(self.running)
        if not self.config.dir:
            return defer.fail(ops.BackupError("backups.dir is not set"))
        now = self.clock.seconds()
        target = ops.target_of(self.api.node_config)
        self.running = d = self.run_in_thread(self._work, target, now)
        d.addCallbacks(self._done, self._failed, callbackArgs=(now,), errbackArgs=(now,))
        return self._join(d)

    @staticmethod
    def _join(d: defer.Deferred) -> defer.Deferred:
        joined: defer.Deferred = defer.Deferred()

        def tell(result: Any) -> Any:
            joined.callback(result)
            return result

        d.addBoth(tell)
        return joined

    def _work(self, target: ops.Target, now: float) -> tuple[dict, list[str]]:
        def progress(stage: str, done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled("the node is stopping")

        manifest = ops.create_backup(target, self.config.dir, now, progress)
        removed = ops.prune(self.config.dir, self.config.keep_daily, self.config.keep_weekly)
        return manifest, removed

    def _done(self, result: tuple[dict, list[str]], started: float) -> dict:
        self.running = None
        manifest, removed = result
        size = sum(e["size"] for e in manifest["entries"].values())
        self.last_success = {
            "at": started,
            "name": manifest["name"],
            "path": manifest["path"],
            "bytes": size,
            "files": manifest["files"]["count"],
            "seconds": manifest.get("seconds"),
            "removed": removed,
        }
        self.log.info(
            "backup {name} written and verified: {size} bytes, {files} files, {seconds} s{removed}",
            name=manifest["name"],
            size=size,
            files=manifest["files"]["count"],
            seconds=manifest.get("seconds"),
            removed=f"; rotated away {', '.join(removed)}" if removed else "",
        )
        return manifest

    def _failed(self, failure: Any, started: float) -> None:
        self.running = None
        error = failure.value
        known = isinstance(error, ops.BackupError | Cancelled | OSError)
        message = str(error) if known else f"{type(error).__name__}: {error}"
        self.last_failure = {"at": started, "error": message}
        if known:
            self.log.error("backup failed: {error}", error=message)
        else:
            self.log.failure("backup failed", failure)
        return None

    def status(self) -> dict[str, Any]:
        return {
            "dir": self.config.dir,
            "enabled": bool(self.config.dir),
            "schedule": self.describe(),
            "keep_daily": self.config.keep_daily,
            "keep_weekly": self.config.keep_weekly,
            "next_at": self.next_at,
            "running": self.running is not None,
            "last_success": self.last_success,
            "last_failure": self.last_failure,
        }


def setup(api: ModuleAPI) -> Backups:
    """The schedule (when ``backups.dir`` is set) and the admin routes."""
    config: Config = api.config
    backups = Backups(api, config)
    api.on_start(backups.start)
    api.on_stop(backups.stop)

    async def status(call: HttpCall) -> dict[str, Any]:
        """``GET /admin/backups``: the schedule, the last success and failure, the backups kept."""
        answer = backups.status()
        if config.dir:
            answer["backups"] = await backups.run_in_thread(ops.list_backups, config.dir)
        else:
            answer["backups"] = []
        return answer

    async def take(call: HttpCall) -> tuple[int, dict[str, Any]]:
        """``POST /admin/backups``: take a backup now (202; GET shows when it is done)."""
        if not config.dir:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, "backups.dir is not set")
        joined = backups.running is not None
        backups.backup_now()
        return 202, {"started": not joined, "running": True}

    number = {"type": ["number", "null"]}
    outcome = {"type": ["object", "null"]}
    listed = obj(
        ["name", "path"],
        name=string(),
        path=string(),
        created_at=string(),
        engine=string(),
        bytes=integer(0),
        files=integer(0),
        error=string(),
    )
    api.route(
        "GET",
        "/admin/backups",
        status,
        auth="admin",
        response=obj(
            ["enabled", "running", "backups"],
            dir=string(),
            enabled=boolean(),
            schedule=string(),
            keep_daily=integer(0),
            keep_weekly=integer(0),
            next_at=number,
            running=boolean(),
            last_success=outcome,
            last_failure=outcome,
            backups=array(listed),
        ),
    )
    api.route(
        "POST",
        "/admin/backups",
        take,
        auth="admin",
        response=accepted(obj(["started", "running"], started=boolean(), running=boolean())),  # 202
    )
    return backups
