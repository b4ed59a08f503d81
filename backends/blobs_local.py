"""IBlobStore on a local directory: the embedded default, nothing to run.

Each key is a file under the root (a key's "/" are sub-directories).  A blob is written to a
temporary file in its directory, fsynced and renamed into place, so a crash leaves the old blob or
the new one, never half of one.  The work runs in a small pool of its own (started on first use),
so that slow disks never hold the reactor nor the database's threads."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any

from twisted.internet import defer, threads
from zope.interface import implementer

from coffeechat.interfaces import BlobNotFound, IBlobStore
from coffeechat.threadpools import DaemonThreadPool

_KEY = re.compile(r"^[A-Za-z0-9._/-]{1,200}$")


def check_key(key: str) -> str:
    """``key`` if it is one a store takes (``[A-Za-z0-9._/-]``, at most 200, no empty, "." or ".."
    segment), else ValueError."""
    if not isinstance(key, str) or not _KEY.match(key) or any(p in ("", ".", "..") for p in key.split("/")):
        raise ValueError(f"not a blob key: {key!r}")
    return key


@implementer(IBlobStore)
class LocalBlobStore:
    """Blobs as files under ``root`` (created on the first write, never at construction)."""

    def __init__(self, root: str, reactor: Any = None, max_threads: int = 4) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.root = os.path.abspath(root)
        self.reactor = reactor
        self.pool = DaemonThreadPool(1, max_threads, name="coffeechat-blobs")

    def _path(self, key: str) -> str:
        path = os.path.join(self.root, *check_key(key).split("/"))
        if os.path.commonpath([self.root, path]) != self.root:  # belt and braces: check_key refuses ".."
            raise ValueError(f"not a blob key: {key!r}")
        return path

    def _run(self, fn: Any, *args: Any) -> defer.Deferred:
        if not self.pool.started:
            self.pool.start()
        return threads.deferToThreadPool(self.reactor, self.pool, fn, *args)

    def put_file(self, key: str, path: str, content_type: str) -> defer.Deferred:
        target = self._path(key)

        def put() -> None:
            folder = os.path.dirname(target)
            os.makedirs(folder, exist_ok=True)
            fd, temporary = tempfile.mkstemp(prefix=".put-", dir=folder)
            try:
                with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
                    shutil.copyfileobj(source, out, 1024 * 1024)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, target)
            except BaseException:
                os.unlink(temporary)
                raise
            directory = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(directory)  # the rename itself survives a crash
            finally:
                os.close(directory)

        return self._run(put)

    def read(self, key: str, offset: int, length: int) -> defer.Deferred:
        target = self._path(key)

        def read() -> bytes:
            try:
                with open(target, "rb") as f:
                    f.seek(max(0, offset))
                    return f.read(max(0, length))
            except FileNotFoundError:
                raise BlobNotFound(key) from None

        return self._run(read)

    def size(self, key: str) -> defer.Deferred:
        target = self._path(key)

        def size() -> int | None:
            try:
                return os.path.getsize(target)
            except FileNotFoundError:
                return None

        return self._run(size)

    def delete(self, key: str) -> defer.Deferred:
        target = self._path(key)

        def delete() -> None:
            try:
                os.unlink(target)
            except FileNotFoundError:
                return
            folder = os.path.dirname(target)
            while folder != self.root:  # empty key directories go too
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folder = os.path.dirname(folder)

        return self._run(delete)

    def close(self) -> defer.Deferred:
        if self.pool.started:
            self.pool.stop()
        return defer.succeed(None)
