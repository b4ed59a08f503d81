"""The blob stores (IBlobStore) on a local directory and on a real S3-compatible server."""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer, reactor

from backends.blobs import make_blob_store
from backends.blobs_local import LocalBlobStore
from coffeechat.config import ConfigError
from coffeechat.testing.conformance_blobs import BlobStoreConformanceTests
from tests.s3server import s3_server  # noqa: F401  (the session fixture)


class TestLocalBlobs(BlobStoreConformanceTests):
    def make_blobs(self, tmp_path):
        return LocalBlobStore(str(tmp_path / "blobs"), reactor)

    @pytest_twisted.ensureDeferred
    async def test_empty_key_directories_go_with_their_last_blob(self, tmp_path):
        store = self.make_blobs(tmp_path)
        try:
            source = tmp_path / "f"
            source.write_bytes(b"data")
            await store.put_file("aa/bb/original", str(source), "text/plain")
            assert (tmp_path / "blobs" / "aa" / "bb" / "original").read_bytes() == b"data"
            assert not [p for p in (tmp_path / "blobs" / "aa" / "bb").iterdir() if p.name.startswith(".put-")]
            await store.delete("aa/bb/original")
            assert list((tmp_path / "blobs").iterdir()) == []
        finally:
            await store.close()


class TestS3Blobs(BlobStoreConformanceTests):
    @pytest.fixture(autouse=True)
    def _server(self, s3_server):  # noqa: F811
        self._s3 = s3_server

    async def _make(self, prefix=""):
        store = make_blob_store({**self._s3.storage(), "prefix": prefix}, "/nonexistent", reactor)
        await store.ensure_bucket()
        return store

    def make_blobs(self, tmp_path):
        return defer.ensureDeferred(self._make())

    @pytest_twisted.ensureDeferred
    async def test_prefixes_share_a_bucket(self, tmp_path):
        first = await self._make("node-a/")
        second = make_blob_store({**self._s3.storage(first.bucket), "prefix": "node-b/"}, "/x", reactor)
        try:
            source = tmp_path / "f"
            source.write_bytes(b"in a")
            await first.put_file("same/key", str(source), "text/plain")
            assert await second.size("same/key") is None
            listed = first.client.list_objects_v2(Bucket=first.bucket)["Contents"]
            assert [o["Key"] for o in listed] == ["node-a/same/key"]
            head = first.client.head_object(Bucket=first.bucket, Key="node-a/same/key")
            assert head["ContentType"] == "text/plain"
        finally:
            await first.close()
            await second.close()

    @pytest_twisted.ensureDeferred
    async def test_large_upload_is_multipart_and_reads_back(self, tmp_path):
        store = await self._make()
        try:
            data = bytes(range(256)) * (40 * 1024)  # 10 MiB: above boto3's 8 MiB multipart threshold
            source = tmp_path / "big"
            source.write_bytes(data)
            await store.put_file("big/one", str(source), "video/mp4")
            assert await store.size("big/one") == len(data)
            middle = len(data) // 2
            assert await store.read("big/one", middle, 65536) == data[middle : middle + 65536]
        finally:
            await store.close()


def test_config_is_checked():
    with pytest.raises(ConfigError, match="bucket"):
        make_blob_store({"backend": "s3"}, "/tmp", reactor)
    with pytest.raises(ConfigError, match="unknown keys"):
        make_blob_store({"backend": "s3", "bucket": "b", "colour": "red"}, "/tmp", reactor)
    with pytest.raises(ConfigError, match="local"):
        make_blob_store({"backend": "ftp"}, "/tmp", reactor)
