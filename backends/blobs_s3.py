"""IBlobStore on an S3-compatible object store (AWS S3, MinIO, Ceph RGW, Garage, moto's server...).

boto3 is a blocking client: every call runs in a thread pool of this store's own (started on first
use), so that a slow object store never holds the reactor nor the database's threads.  Uploads go
through boto3's managed transfer (multipart above 8 MiB); reads are ranged GETs, so a range request
for a video reads only what it serves.  A cluster's nodes share the bucket: a file uploaded through
one node is served by every other."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, threads
from zope.interface import implementer

from coffeechat.backends.blobs_local import check_key
from coffeechat.interfaces import BlobNotFound, IBlobStore
from coffeechat.threadpools import DaemonThreadPool


@implementer(IBlobStore)
class S3BlobStore:
    """Blobs as objects ``<prefix><key>`` in ``bucket``.  Credentials and region fall back to
    boto3's own chain (the AWS_* environment variables, ~/.aws, an instance role) when not given."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        reactor: Any = None,
        max_threads: int = 8,
    ) -> None:
        import boto3
        from botocore.config import Config

        if reactor is None:
            from twisted.internet import reactor
        self.bucket = bucket
        self.prefix = prefix
        self.reactor = reactor
        self.pool = DaemonThreadPool(1, max_threads, name="coffeechat-s3")
        # boto3 clients are thread-safe; one per store, its connection pool sized to the threads.
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or None,
            region_name=region,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=Config(
                max_pool_connections=max_threads,
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                s3={"addressing_style": "path"} if endpoint_url else {},
            ),
        )

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _run(self, fn: Any, *args: Any) -> defer.Deferred:
        if not self.pool.started:
            self.pool.start()
        return threads.deferToThreadPool(self.reactor, self.pool, fn, *args)

    @staticmethod
    def _code(error: Exception) -> str:
        return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))

    def ensure_bucket(self) -> defer.Deferred:
        """Create the bucket unless it exists (for tests and first runs; production buckets are
        usually made by their operator, with their own policy)."""

        def ensure() -> None:
            from botocore.exceptions import ClientError

            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as e:
                if self._code(e) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                self.client.create_bucket(Bucket=self.bucket)

        return self._run(ensure)

    def put_file(self, key: str, path: str, content_type: str) -> defer.Deferred:
        name = self._name(key)
        return self._run(
            lambda: self.client.upload_file(path, self.bucket, name, ExtraArgs={"ContentType": content_type})
        )

    def read(self, key: str, offset: int, length: int) -> defer.Deferred:
        name = self._name(key)
        offset, length = max(0, offset), max(0, length)

        def read() -> bytes:
            from botocore.exceptions import ClientError

            if length == 0:
                if self._head(name) is None:
                    raise BlobNotFound(key)
                return b""
            try:
                reply = self.client.get_object(
                    Bucket=self.bucket, Key=name, Range=f"bytes={offset}-{offset + length - 1}"
                )
            except ClientError as e:
                code = self._code(e)
                if code in ("NoSuchKey", "404"):
                    raise BlobNotFound(key) from None
                if code in ("InvalidRange", "416"):  # past the end of an existing object
                    return b""
                raise
            with reply["Body"] as body:
                return body.read()

        return self._run(read)

    def _head(self, name: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=name)["ContentLength"])
        except ClientError as e:
            if self._code(e) in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def size(self, key: str) -> defer.Deferred:
        name = self._name(key)
        return self._run(self._head, name)

    def delete(self, key: str) -> defer.Deferred:
        name = self._name(key)
        return self._run(lambda: self.client.delete_object(Bucket=self.bucket, Key=name) and None)

    def close(self) -> defer.Deferred:
        if self.pool.started:
            self.pool.stop()
        self.client.close()
        return defer.succeed(None)
