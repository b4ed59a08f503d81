"""Conformance tests for blob stores (:class:`~coffeechat.interfaces.IBlobStore`), for any backend.

Subclass :class:`BlobStoreConformanceTests` as ``Test<Something>`` and implement
``make_blobs(tmp_path)``, returning a new store (or a Deferred of one) that holds no blob yet.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
import pytest_twisted
from twisted.internet import defer
from zope.interface.verify import verifyObject

from coffeechat.interfaces import BlobNotFound, IBlobStore

__all__ = ["BlobStoreConformanceTests"]


class BlobStoreConformanceTests:
    """What every IBlobStore must do."""

    def make_blobs(self, tmp_path: Any) -> Any:
        """Return a new, empty IBlobStore (or a Deferred of one)."""
        raise NotImplementedError("subclasses of BlobStoreConformanceTests implement make_blobs")

    @pytest.fixture
    def blobs(self, tmp_path: Any) -> Any:
        store = pytest_twisted.blockon(defer.maybeDeferred(self.make_blobs, tmp_path))
        yield store
        pytest_twisted.blockon(defer.maybeDeferred(store.close))

    @staticmethod
    def _file(tmp_path: Any, name: str, data: bytes) -> str:
        path = os.path.join(str(tmp_path), name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def test_provides_the_interface(self, blobs):
        assert verifyObject(IBlobStore, blobs)

    @pytest_twisted.ensureDeferred
    async def test_put_read_ranges_and_size(self, blobs, tmp_path):
        data = os.urandom(300_000)
        source = self._file(tmp_path, "upload", data)
        await blobs.put_file("ab/cdef/original", source, "application/octet-stream")
        assert os.path.exists(source), "the caller's file is left in place"
        assert await blobs.size("ab/cdef/original") == len(data)
        assert await blobs.read("ab/cdef/original", 0, len(data)) == data
        assert await blobs.read("ab/cdef/original", 1000, 5000) == data[1000:6000]
        # fewer bytes at the end, none past it, none for an empty range
        assert await blobs.read("ab/cdef/original", len(data) - 10, 100) == data[-10:]
        assert await blobs.read("ab/cdef/original", len(data) + 5, 100) == b""
        assert await blobs.read("ab/cdef/original", 10, 0) == b""

    @pytest_twisted.ensureDeferred
    async def test_missing_blobs(self, blobs):
        assert await blobs.size("no/such/blob") is None
        with pytest.raises(BlobNotFound):
            await blobs.read("no/such/blob", 0, 10)
        await blobs.delete("no/such/blob")  # deleting nothing is not an error

    @pytest_twisted.ensureDeferred
    async def test_replace_and_delete(self, blobs, tmp_path):
        await blobs.put_file("k/one", self._file(tmp_path, "a", b"first version"), "text/plain")
        await blobs.put_file("k/two", self._file(tmp_path, "b", b"other"), "text/plain")
        await blobs.put_file("k/one", self._file(tmp_path, "c", b"second"), "text/plain")
        assert await blobs.read("k/one", 0, 100) == b"second"
        await blobs.delete("k/one")
        assert await blobs.size("k/one") is None
        with pytest.raises(BlobNotFound):
            await blobs.read("k/one", 0, 1)
        assert await blobs.read("k/two", 0, 100) == b"other", "deleting one blob leaves the others"

    @pytest_twisted.ensureDeferred
    async def test_empty_blob(self, blobs, tmp_path):
        await blobs.put_file("empty", self._file(tmp_path, "e", b""), "text/plain")
        assert await blobs.size("empty") == 0
        assert await blobs.read("empty", 0, 10) == b""

    @pytest_twisted.ensureDeferred
    async def test_keys_that_escape_are_refused(self, blobs, tmp_path):
        source = self._file(tmp_path, "x", b"x")
        for key in ("../outside", "a/../../b", "/absolute", "a//b", "", "sp ace", "ü"):
            with pytest.raises(ValueError):
                await defer.maybeDeferred(blobs.put_file, key, source, "text/plain")

    @pytest_twisted.ensureDeferred
    async def test_concurrent_puts_and_reads(self, blobs, tmp_path):
        payloads = {f"many/{i}": os.urandom(1000 + i) for i in range(20)}
        await defer.gatherResults(
            [
                blobs.put_file(k, self._file(tmp_path, f"p{i}", v), "image/png")
                for i, (k, v) in enumerate(payloads.items())
            ],
            consumeErrors=True,
        )
        read = await defer.gatherResults([blobs.read(k, 0, 10_000) for k in payloads], consumeErrors=True)
        assert read == list(payloads.values())
