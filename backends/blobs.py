"""The blob store a ``[files.storage]`` table names (the files feature calls this: the core
imports no backend)."""

from __future__ import annotations

import os
from typing import Any

from coffeechat.config import ConfigError


def make_blob_store(config: dict[str, Any], data_dir: str, reactor: Any = None) -> Any:
    """``{"backend": "local", "path": ...}`` (default ``<data_dir>/files``) or ``{"backend": "s3",
    "bucket": ..., "prefix", "endpoint_url", "region", "access_key", "secret_key"}``."""
    backend = config.get("backend", "local")
    if backend == "local":
        from coffeechat.backends.blobs_local import LocalBlobStore

        return LocalBlobStore(config.get("path") or os.path.join(data_dir, "files"), reactor)
    if backend == "s3":
        from coffeechat.backends.blobs_s3 import S3BlobStore

        if not config.get("bucket"):
            raise ConfigError('files.storage.bucket is required with backend = "s3"')
        known = {"bucket", "prefix", "endpoint_url", "region", "access_key", "secret_key", "max_threads"}
        unknown = set(config) - known - {"backend"}
        if unknown:
            raise ConfigError(f"files.storage: unknown keys {sorted(unknown)}")
        return S3BlobStore(reactor=reactor, **{k: v for k, v in config.items() if k in known})
    raise ConfigError(f'files.storage.backend must be "local" or "s3", not {backend!r}')
