"""A throwaway S3-compatible server for the tests: moto's standalone server, which speaks the S3
HTTP API (SigV4, ranged GETs, multipart uploads), started as its own process on a free loopback
port, one per test session (``s3_server`` fixture).

Without moto the tests that need it are skipped, with the reason; when ``CI`` is set they fail.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.pgserver import free_port, unavailable

__all__ = ["S3Server", "s3_server"]


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str = "testing"
    secret_key: str = "testing"
    region: str = "us-east-1"

    def storage(self, bucket: str | None = None) -> dict:
        """A ``[files.storage]`` table for a bucket of its own (made on first use by the caller)."""
        return {
            "backend": "s3",
            "bucket": bucket or f"t-{uuid.uuid4().hex[:16]}",
            "endpoint_url": self.endpoint_url,
            "region": self.region,
            "access_key": self.access_key,
            "secret_key": self.secret_key,
        }


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        unavailable("moto[server] is not installed (pip install 'moto[server]')")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/moto-api/", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    unavailable(f"moto's server did not start on port {port}")
                time.sleep(0.1)
        yield S3Server(url)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
