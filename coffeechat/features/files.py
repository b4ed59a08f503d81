"""Feature files: uploads (one request, or resumable with tus 1.0.0), downloads through expiring
signed URLs, media processing, quotas, and removal with the message that carried the file
(docs/media.md).

A file is readable by its uploader, by the members of every conversation it was sent in (a
stored message whose content names ``/files/<id>``: the ``message/stored`` hook records the
grant, as the sender may read the file), and by the admin API.  Downloads are plain HTTP GETs of
URLs signed with an HMAC over the file id and an expiry rounded up to ``url_granularity``, so
that one file's URL is the same for everyone for a while and a CDN or reverse proxy can cache it;
a client may also present its login token instead.

The bytes live behind :class:`~coffeechat.interfaces.IBlobStore` (a local directory, or S3); what
they are lives in this feature's SQL facet.  Media processing (:mod:`coffeechat.media`: real type,
EXIF stripped, thumbnails, blurhash, durations) runs in this feature's own bounded thread pool,
never on the reactor, and never in the pool that hashes passwords.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib
import json
import os
import re
import secrets
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from twisted.internet import defer, threads
from zope.interface import Interface, implementer

from coffeechat.config import ConfigError
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.interfaces import IBlobStore, ISQLDatabase, ISQLTransaction
from coffeechat.media import MediaConfig, MediaRejected, analyse
from coffeechat.model import Message, User
from coffeechat.modules import HttpCall, HttpReply, ModuleAPI
from coffeechat.openapi import PATH_INT_MAX, Query, array, integer, obj, string
from coffeechat.ratelimit import KeyedBuckets, RateLimited
from coffeechat.schema import Cmd, pb
from coffeechat.session import Session
from coffeechat.threadpools import DaemonThreadPool

SECTION = "files"
TUS_VERSION = "1.0.0"
VARIANTS = ("thumb", "reduced", "poster")
FILE_ID = re.compile(rb"/files/([A-Za-z0-9_-]{22})(?![A-Za-z0-9_-])")
_ID_TEXT = re.compile(r"^[A-Za-z0-9_-]{22}$")
MAX_FILES_PER_MESSAGE = 20
MAX_SIGN = 100
INLINE_KINDS = ("image", "audio", "video")
_COPY_CHUNK = 1024 * 1024


@dataclass
class Config:
    """[files]: limits, storage and media processing of uploaded files."""

    max_upload_bytes: int = 100 * 1024 * 1024
    #: accepted types as sniffed from the bytes, "type/*" patterns; "*/*" takes anything (files
    #: that are not images, audio or video are then served as attachments, never inline)
    allowed_types: list[str] = field(default_factory=lambda: ["*/*"])
    quota_bytes: int = 1024 * 1024 * 1024  # per user, copies included; 0: no quota
    url_ttl: int = 3600  # seconds a signed URL is valid at least
    url_granularity: int = 600  # expiries are rounded up to this, so that URLs repeat and caches hit
    uploads_per_minute: float = 30.0  # per user (one request or one resumable upload each)
    upload_burst: int = 10
    max_pending_uploads: int = 10  # unfinished resumable uploads per user
    upload_expiry: int = 86400  # seconds an unfinished resumable upload is kept
    processing_threads: int = 2  # concurrent media processing (decoding, ffmpeg)
    max_waiting_processing: int = 64  # uploads waiting for a thread; more are answered 503
    upload_dir: str = ""  # where uploads are staged on this node; default <data_dir>/uploads
    #: the blob store: {"backend": "local", "path": ...} (default <data_dir>/files) or
    #: {"backend": "s3", "bucket": ..., "endpoint_url": ..., ...} (docs/media.md)
    storage: dict[str, Any] = field(default_factory=lambda: {"backend": "local"})
    media: dict[str, Any] = field(default_factory=lambda: asdict(MediaConfig()))  # MediaConfig's keys

    def validate(self) -> None:
        if self.max_upload_bytes < 1:
            raise ConfigError("files.max_upload_bytes must be at least 1")
        if self.quota_bytes < 0:
            raise ConfigError("files.quota_bytes must be >= 0")
        if not 60 <= self.url_ttl <= 7 * 86400:
            raise ConfigError("files.url_ttl must be within 60..604800 seconds")
        if not 1 <= self.url_granularity <= self.url_ttl:
            raise ConfigError("files.url_granularity must be within 1..url_ttl")
        for name in ("uploads_per_minute", "upload_burst", "max_pending_uploads", "processing_threads"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"files.{name} must be positive")
        if self.upload_expiry < 60 or self.max_waiting_processing < 0:
            raise ConfigError("files.upload_expiry must be >= 60 and max_waiting_processing >= 0")
        for pattern in self.allowed_types:
            if not isinstance(pattern, str) or pattern.count("/") != 1:
                raise ConfigError(f"files.allowed_types: {pattern!r} is not a type/subtype pattern")
        if not isinstance(self.storage, dict) or self.storage.get("backend", "local") not in ("local", "s3"):
            raise ConfigError('files.storage.backend must be "local" or "s3"')
        self.media_config().validate()

    def media_config(self) -> MediaConfig:
        try:
            return MediaConfig(**self.media)
        except TypeError as e:
            raise ConfigError(f"files.media: {e}") from None

    def allows(self, mime: str) -> bool:
        major = mime.split("/", 1)[0]
        return any(p in ("*/*", mime, f"{major}/*") for p in self.allowed_types)


# -- what is stored


@dataclass(slots=True)
class StoredFile:
    file_id: str
    owner_id: int
    name: str
    mime: str
    kind: str
    size: int
    total_bytes: int
    md5: str
    width: int = 0
    height: int = 0
    duration_ms: int | None = None
    blurhash: str = ""
    #: variant name ("original", "thumb" ...) -> {"key", "mime", "size", "width", "height"}
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    created_at: int = 0


@dataclass(slots=True)
class Upload:
    upload_id: str
    owner_id: int
    length: int
    name: str
    mime: str
    duration_ms: int | None
    node: str
    file_id: str
    created_at: int


class IFileStore(Interface):
    """The files feature's storage (an SQL backend gets :class:`SQLFileStore`; tested by
    ``coffeechat.testing.conformance_files``)."""

    def secret(candidate: str):
        """The URL-signing secret shared by every node: the stored one, or ``candidate`` stored now."""

    def reserve(user_id: int, nbytes: int, quota: int):
        """Count ``nbytes`` more against the user's usage if that stays within ``quota`` (0: no
        quota), atomically; fires True, or False when it would not fit."""

    def release(user_id: int, nbytes: int):
        """Count ``nbytes`` less (never below 0)."""

    def add_file(stored: StoredFile, extra_bytes: int):
        """Store the file's row; its usage was reserved but for ``extra_bytes`` (the copies), added now."""

    def files_by_ids(file_ids: list[str]):
        """Fire {file_id: StoredFile} for those that exist."""

    def remove_file(file_id: str):
        """Delete the file's rows and release its bytes from its owner's usage; fires the
        StoredFile removed, or None."""

    def grants_of(file_ids: list[str]):
        """Fire {file_id: [(conv, seq), ...]}."""

    def add_grants(grants: list[tuple[str, str, int]]):
        """Record (file_id, conv, seq) grants (again: nothing)."""

    def remove_grants(conv: str, seq: int):
        """Forget the grants of message ``seq`` of ``conv``; fires the file ids they named."""

    def usage(user_id: int):
        """Fire (used bytes, number of files)."""

    def top_usage(limit: int):
        """Fire [(user_id, used, files)] by descending usage, and the totals (used, files)."""

    def files_of(owner_id: int, before: int, limit: int):
        """Fire the owner's files newest first, created before ``before`` (0: any)."""

    def add_upload(upload: Upload, max_pending: int):
        """Record a resumable upload; fires False when the owner has ``max_pending`` unfinished."""

    def upload(upload_id: str):
        """Fire the Upload or None."""

    def finish_upload(upload_id: str, file_id: str):
        """Mark the upload finished as ``file_id``."""

    def remove_upload(upload_id: str):
        """Delete the upload's row; fires True when there was one."""

    def expired_uploads(before: int, limit: int):
        """Fire unfinished uploads created before ``before``, and finished ones (kept as long)."""


_FILE_COLS = (
    "file_id, owner_id, name, mime, kind, size, total_bytes, md5, width, height, duration_ms, blurhash, "
    "variants, notes, created_at"
)
_UPLOAD_COLS = "upload_id, owner_id, length, name, mime, duration_ms, node, file_id, created_at"


def _file(row: Any) -> StoredFile:
    (fid, owner, name, mime, kind, size, total, md5, width, height, duration, blurhash, variants, notes, created) = row
    return StoredFile(
        fid,
        int(owner),
        name,
        mime,
        kind,
        int(size),
        int(total),
        md5,
        int(width),
        int(height),
        None if duration is None else int(duration),
        blurhash,
        json.loads(variants),
        json.loads(notes),
        int(created),
    )


def _upload(row: Any) -> Upload:
    uid, owner, length, name, mime, duration, node, fid, created = row
    return Upload(
        uid, int(owner), int(length), name, mime, None if duration is None else int(duration), node, fid, int(created)
    )


def _secret_txn(txn: ISQLTransaction, candidate: str) -> str:
    txn.execute("INSERT INTO file_secret (id, secret) VALUES (1, ?) ON CONFLICT (id) DO NOTHING", (candidate,))
    return txn.execute("SELECT secret FROM file_secret WHERE id = 1").fetchone()[0]


def _reserve_txn(txn: ISQLTransaction, user_id: int, nbytes: int, quota: int) -> bool:
    txn.execute(
        "INSERT INTO file_usage (user_id, used, files) VALUES (?, 0, 0) ON CONFLICT (user_id) DO NOTHING", (user_id,)
    )
    if quota <= 0:
        txn.execute("UPDATE file_usage SET used = used + ? WHERE user_id = ?", (nbytes, user_id))
        return True
    # one conditional statement: two uploads racing (on two nodes) cannot both pass
    row = txn.execute(
        "UPDATE file_usage SET used = used + ? WHERE user_id = ? AND used + ? <= ? RETURNING used",
        (nbytes, user_id, nbytes, quota),
    ).fetchone()
    return row is not None


def _release_txn(txn: ISQLTransaction, user_id: int, nbytes: int, files: int = 0) -> None:
    txn.execute(
        "UPDATE file_usage SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END, "
        "files = CASE WHEN files > ? THEN files - ? ELSE 0 END WHERE user_id = ?",
        (nbytes, nbytes, files, files, user_id),
    )


def _add_file_txn(txn: ISQLTransaction, f: StoredFile, extra_bytes: int) -> None:
    txn.execute(
        f"INSERT INTO files ({_FILE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            f.file_id,
            f.owner_id,
            f.name,
            f.mime,
            f.kind,
            f.size,
            f.total_bytes,
            f.md5,
            f.width,
            f.height,
            f.duration_ms,
            f.blurhash,
            json.dumps(f.variants, sort_keys=True),
            json.dumps(f.notes),
            f.created_at,
        ),
    )
    txn.execute("UPDATE file_usage SET used = used + ?, files = files + 1 WHERE user_id = ?", (extra_bytes, f.owner_id))


def _files_txn(txn: ISQLTransaction, file_ids: list[str]) -> dict[str, StoredFile]:
    clause, params = txn.in_list("file_id", file_ids)
    return {row[0]: _file(row) for row in txn.execute(f"SELECT {_FILE_COLS} FROM files WHERE {clause}", params)}


def _remove_file_txn(txn: ISQLTransaction, file_id: str) -> StoredFile | None:
    row = txn.execute(f"DELETE FROM files WHERE file_id = ? RETURNING {_FILE_COLS}", (file_id,)).fetchone()
    if row is None:
        return None
    found = _file(row)
    txn.execute("DELETE FROM file_grants WHERE file_id = ?", (file_id,))
    _release_txn(txn, found.owner_id, found.total_bytes, 1)
    return found


def _grants_txn(txn: ISQLTransaction, file_ids: list[str]) -> dict[str, list[tuple[str, int]]]:
    clause, params = txn.in_list("file_id", file_ids)
    out: dict[str, list[tuple[str, int]]] = {}
    for fid, conv, seq in txn.execute(f"SELECT file_id, conv, seq FROM file_grants WHERE {clause}", params):
        out.setdefault(fid, []).append((conv, int(seq)))
    return out


def _add_grants_txn(txn: ISQLTransaction, grants: list[tuple[str, str, int]]) -> None:
    for fid, conv, seq in grants:
        txn.execute(
            "INSERT INTO file_grants (file_id, conv, seq) VALUES (?, ?, ?) ON CONFLICT (file_id, conv, seq) DO NOTHING",
            (fid, conv, seq),
        )


def _remove_grants_txn(txn: ISQLTransaction, conv: str, seq: int) -> list[str]:
    rows = txn.execute("DELETE FROM file_grants WHERE conv = ? AND seq = ? RETURNING file_id", (conv, seq))
    return [r[0] for r in rows.fetchall()]


def _usage_txn(txn: ISQLTransaction, user_id: int) -> tuple[int, int]:
    row = txn.execute("SELECT used, files FROM file_usage WHERE user_id = ?", (user_id,)).fetchone()
    return (0, 0) if row is None else (int(row[0]), int(row[1]))


def _top_usage_txn(txn: ISQLTransaction, limit: int) -> tuple[list[tuple[int, int, int]], tuple[int, int]]:
    rows = txn.execute(
        "SELECT user_id, used, files FROM file_usage WHERE used > 0 OR files > 0 ORDER BY used DESC, user_id LIMIT ?",
        (limit,),
    ).fetchall()
    total = txn.execute("SELECT COALESCE(SUM(used), 0), COALESCE(SUM(files), 0) FROM file_usage").fetchone()
    return [(int(u), int(b), int(n)) for u, b, n in rows], (int(total[0]), int(total[1]))


def _files_of_txn(txn: ISQLTransaction, owner_id: int, before: int, limit: int) -> list[StoredFile]:
    rows = txn.execute(
        f"SELECT {_FILE_COLS} FROM files WHERE owner_id = ? AND (? = 0 OR created_at < ?) "
        "ORDER BY created_at DESC, file_id LIMIT ?",
        (owner_id, before, before, limit),
    )
    return [_file(r) for r in rows.fetchall()]


def _add_upload_txn(txn: ISQLTransaction, u: Upload, max_pending: int) -> bool:
    (count,) = txn.execute(
        "SELECT count(*) FROM file_uploads WHERE owner_id = ? AND file_id = ''", (u.owner_id,)
    ).fetchone()
    if count >= max_pending:
        return False
    txn.execute(
        f"INSERT INTO file_uploads ({_UPLOAD_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (u.upload_id, u.owner_id, u.length, u.name, u.mime, u.duration_ms, u.node, u.file_id, u.created_at),
    )
    return True


def _upload_txn(txn: ISQLTransaction, upload_id: str) -> Upload | None:
    row = txn.execute(f"SELECT {_UPLOAD_COLS} FROM file_uploads WHERE upload_id = ?", (upload_id,)).fetchone()
    return None if row is None else _upload(row)


def _finish_upload_txn(txn: ISQLTransaction, upload_id: str, file_id: str) -> None:
    txn.execute("UPDATE file_uploads SET file_id = ? WHERE upload_id = ?", (file_id, upload_id))


def _remove_upload_txn(txn: ISQLTransaction, upload_id: str) -> bool:
    return (
        txn.execute("DELETE FROM file_uploads WHERE upload_id = ? RETURNING upload_id", (upload_id,)).fetchone()
        is not None
    )


def _expired_uploads_txn(txn: ISQLTransaction, before: int, limit: int) -> list[Upload]:
    rows = txn.execute(
        f"SELECT {_UPLOAD_COLS} FROM file_uploads WHERE created_at < ? ORDER BY created_at LIMIT ?", (before, limit)
    )
    return [_upload(r) for r in rows.fetchall()]


@implementer(IFileStore)
class SQLFileStore:
    """IFileStore written once for every SQL backend (its tables: files.sql)."""

    migrations = __file__.removesuffix(".py") + ".sql"

    def __init__(self, db: ISQLDatabase) -> None:
        self.db = db

    def secret(self, candidate: str) -> defer.Deferred:
        return self.db.run_write("files_secret", _secret_txn, candidate)

    def reserve(self, user_id: int, nbytes: int, quota: int) -> defer.Deferred:
        return self.db.run_write("files_reserve", _reserve_txn, int(user_id), int(nbytes), int(quota))

    def release(self, user_id: int, nbytes: int) -> defer.Deferred:
        return self.db.run_write("files_release", _release_txn, int(user_id), int(nbytes))

    def add_file(self, stored: StoredFile, extra_bytes: int) -> defer.Deferred:
        return self.db.run_write("files_add", _add_file_txn, stored, int(extra_bytes))

    def files_by_ids(self, file_ids: list[str]) -> defer.Deferred:
        if not file_ids:
            return defer.succeed({})
        return self.db.run_read("files_by_ids", _files_txn, list(file_ids))

    def remove_file(self, file_id: str) -> defer.Deferred:
        return self.db.run_write("files_remove", _remove_file_txn, file_id)

    def grants_of(self, file_ids: list[str]) -> defer.Deferred:
        if not file_ids:
            return defer.succeed({})
        return self.db.run_read("files_grants", _grants_txn, list(file_ids))

    def add_grants(self, grants: list[tuple[str, str, int]]) -> defer.Deferred:
        if not grants:
            return defer.succeed(None)
        return self.db.run_write("files_add_grants", _add_grants_txn, list(grants))

    def remove_grants(self, conv: str, seq: int) -> defer.Deferred:
        return self.db.run_write("files_remove_grants", _remove_grants_txn, conv, int(seq))

    def usage(self, user_id: int) -> defer.Deferred:
        return self.db.run_read("files_usage", _usage_txn, int(user_id))

    def top_usage(self, limit: int) -> defer.Deferred:
        return self.db.run_read("files_top_usage", _top_usage_txn, int(limit))

    def files_of(self, owner_id: int, before: int, limit: int) -> defer.Deferred:
        return self.db.run_read("files_of", _files_of_txn, int(owner_id), int(before), int(limit))

    def add_upload(self, upload: Upload, max_pending: int) -> defer.Deferred:
        return self.db.run_write("files_add_upload", _add_upload_txn, upload, int(max_pending))

    def upload(self, upload_id: str) -> defer.Deferred:
        return self.db.run_read("files_upload", _upload_txn, upload_id)

    def finish_upload(self, upload_id: str, file_id: str) -> defer.Deferred:
        return self.db.run_write("files_finish_upload", _finish_upload_txn, upload_id, file_id)

    def remove_upload(self, upload_id: str) -> defer.Deferred:
        return self.db.run_write("files_remove_upload", _remove_upload_txn, upload_id)

    def expired_uploads(self, before: int, limit: int) -> defer.Deferred:
        return self.db.run_read("files_expired_uploads", _expired_uploads_txn, int(before), int(limit))


# -- HTTP answers


class FileError(ChatError):
    """A refusal answered with a real HTTP status (the files API uses them, as tus requires)."""

    def __init__(self, status: int, code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(code, message)
        self.status = status
        self.headers = headers or {}


_STATUS_OF = {
    ErrorCode.LOGIN_INVALID_USER_TOKEN: 401,
    ErrorCode.USER_DISABLED: 403,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.RATE_LIMITED: 429,
    ErrorCode.STORAGE_UNAVAILABLE: 503,
}


def json_reply(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> HttpReply:
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    all_headers = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
    all_headers.update(headers or {})
    return HttpReply(status, all_headers, data)


def http_route(handler: Any, tus: bool = False) -> Any:
    """Answer a handler's refusals with HTTP statuses (and tus' header on tus routes)."""
    extra = {"Tus-Resumable": TUS_VERSION} if tus else {}

    async def route(call: HttpCall) -> HttpReply:
        try:
            answer = await handler(call)
        except FileError as e:
            return json_reply(e.status, {"error_code": int(e.code), "error_msg": e.message}, {**extra, **e.headers})
        except ChatError as e:
            headers = dict(extra)
            if e.code == ErrorCode.RATE_LIMITED:
                headers["Retry-After"] = str(max(1, int(getattr(e, "retry_after", 1.0) + 0.999)))
            status = _STATUS_OF.get(e.code, 400)
            return json_reply(status, {"error_code": int(e.code), "error_msg": e.message}, headers)
        if isinstance(answer, HttpReply):
            answer.headers.update({k: v for k, v in extra.items() if k not in answer.headers})
            return answer
        return json_reply(200, {"error_code": 0, "error_msg": "ok", **answer}, extra)

    route.__doc__ = handler.__doc__
    return route


def parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """``Range: bytes=a-b`` as (offset, length); None for no (or an ignored multi-) range; False
    for one that cannot be satisfied (answered 416)."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == "") or (not first and not last):
        return None
    if not first:  # the last N bytes
        n = int(last)
        if n == 0:
            return False
        n = min(n, size)
        return size - n, n
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or end < start:
        return False
    return start, end - start + 1


def _disposition(kind: str, name: str) -> str:
    how = "inline" if kind in INLINE_KINDS else "attachment"
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", name)[:100] or "file"
    return f"{how}; filename=\"{ascii_name}\"; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"


def clean_name(raw: str) -> str:
    """A file name as shown to others: no path, no control characters, at most 200 characters."""
    name = urllib.parse.unquote(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:200] or "file"


def _duration_ms(raw: str) -> int | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    if not 0 < value < 86400 * 7:
        return None
    return int(value * 1000)


def _tus_metadata(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in header.split(","):
        key, _, value = pair.strip().partition(" ")
        if not key:
            continue
        try:
            out[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (ValueError, UnicodeDecodeError):
            raise FileError(400, ErrorCode.INVALID_ARGUMENT, f"Upload-Metadata {key!r} is not base64 UTF-8") from None
    return out


# -- the work done in threads


def _write_staged(content: Any, path: str, limit: int, append: bool = False) -> int:
    """Copy a request body into the staging file; the number of bytes copied (more than
    ``limit`` raises)."""
    copied = 0
    if content is None:
        return 0
    content.seek(0)
    with open(path, "ab" if append else "wb") as out:
        while chunk := content.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise FileError(413, ErrorCode.FILE_TOO_LARGE, f"more than {limit} bytes")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return copied


def _md5(path: str) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        while chunk := f.read(_COPY_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _process(path: str, declared: str, name: str, config: MediaConfig, workdir: str) -> tuple[Any, str, dict]:
    result = analyse(path, declared, name, config, workdir)
    original = result.cleaned_path or path
    sizes = {"original": os.path.getsize(original)}
    for variant_name, variant in result.variants.items():
        sizes[variant_name] = os.path.getsize(variant.path)
    return result, _md5(original), sizes


# -- the service


class Files:
    """Uploads, access, signed URLs and removal of files."""

    def __init__(self, api: ModuleAPI, store: IFileStore, blobs: IBlobStore, config: Config) -> None:
        self.api = api
        self.store = store
        self.blobs = blobs
        self.config = config
        self.media = config.media_config()
        self.clock = api.clock
        node_config = api.node_config
        self.upload_dir = config.upload_dir or str(node_config.data_path / "uploads")
        self.uploads = KeyedBuckets(api.clock, config.uploads_per_minute / 60.0, config.upload_burst)
        self.secret = b""
        self.pool = DaemonThreadPool(1, config.processing_threads, name="coffeechat-media")
        self.processing = 0  # uploads in the pool or waiting for it
        #: grants being written: a recipient may ask for the file before the write commits
        self.pending_grants: dict[str, set[tuple[str, int]]] = {}
        # files named by a stored message whose grant is still being checked and written: a
        # recipient who got the message at once (the push goes out as soon as it is stored) and
        # asks for the file waits for the grant instead of being refused
        self.granting: dict[str, list[defer.Deferred]] = {}
        self.patching: set[str] = set()  # resumable uploads with a PATCH under way
        self.accounts = api.depends("accounts")
        try:
            self.groups = api.depends("groups")
        except ConfigError:
            self.groups = None
        self.stats = {"uploaded": 0, "removed": 0, "refused": 0}

    def now(self) -> int:
        return int(time.time())

    async def start(self) -> None:
        self.secret = (await self.store.secret(secrets.token_hex(32))).encode()

    def stop(self) -> defer.Deferred:
        if self.pool.started:
            self.pool.stop()
        return defer.maybeDeferred(self.blobs.close)

    def _in_thread(self, fn: Any, *args: Any) -> defer.Deferred:
        if not self.pool.started:  # on first use: a node that never processes a file has no threads
            self.pool.start()
        return threads.deferToThreadPool(self.clock, self.pool, fn, *args)

    # -- who is asking, and may they

    async def user_of(self, call: HttpCall) -> User:
        if not call.bearer:
            raise FileError(
                401,
                ErrorCode.LOGIN_INVALID_USER_TOKEN,
                "a login token is required",
                {"WWW-Authenticate": 'Bearer realm="coffeechat"'},
            )
        return await self.accounts.login_token(0, call.bearer)

    def is_admin(self, call: HttpCall) -> bool:
        expected = self.api.node_config.http.admin_token
        return bool(expected and call.bearer) and hmac.compare_digest(call.bearer.encode(), expected.encode())

    async def readable(self, user_id: int, files: Iterable[StoredFile]) -> set[str]:
        """The ids of ``files`` that ``user_id`` may read."""
        files = list(files)
        out = {f.file_id for f in files if f.owner_id == user_id}
        others = [f.file_id for f in files if f.file_id not in out]
        if not others:
            return out
        await self._granted(others)
        grants = await self.store.grants_of(others)
        for fid in others:
            places = set(grants.get(fid, ())) | self.pending_grants.get(fid, set())
            for conv, seq in places:
                if await self._in_conversation(user_id, conv, seq):
                    out.add(fid)
                    break
        return out

    async def _in_conversation(self, user_id: int, conv: str, seq: int) -> bool:
        kind, _, rest = conv.partition(":")
        if kind == "p":
            return str(user_id) in rest.split(":")
        if kind == "g" and self.groups is not None and rest.isdigit():
            try:
                _, member = await self.groups.member(user_id, int(rest))
            except ChatError:
                return False
            return seq >= member.joined_seq
        return False

    # -- signed URLs

    def expiry(self) -> int:
        step = self.config.url_granularity
        return -(-(self.now() + self.config.url_ttl) // step) * step

    def signature(self, file_id: str, exp: int) -> str:
        return hmac.new(self.secret, f"{file_id}:{exp}".encode(), hashlib.sha256).hexdigest()[:32]

    def signed(self, f: StoredFile) -> dict[str, Any]:
        exp = self.expiry()
        query = f"?exp={exp}&sig={self.signature(f.file_id, exp)}"
        urls = {"url": f"/files/{f.file_id}{query}", "expires": exp}
        for variant in VARIANTS:
            urls[f"{variant}_url"] = f"/files/{f.file_id}/{variant}{query}" if variant in f.variants else ""
        return urls

    def check_signature(self, file_id: str, query: dict[str, list[str]]) -> bool:
        exp_raw, sig = (query.get("exp") or [""])[-1], (query.get("sig") or [""])[-1]
        if not (exp_raw.isascii() and exp_raw.isdigit()) or len(exp_raw) > 12 or not sig:
            return False
        exp = int(exp_raw)
        return exp >= self.now() and hmac.compare_digest(sig, self.signature(file_id, exp))

    def info(self, f: StoredFile) -> dict[str, Any]:
        """FileInfo (docs/media.md): what an upload answers and a client puts in its message."""
        return {
            "id": f.file_id,
            "url": f"/files/{f.file_id}",
            "name": f.name,
            "size": f.size,
            "mime": f.mime,
            "kind": f.kind,
            "width": f.width,
            "height": f.height,
            "duration": None if f.duration_ms is None else f.duration_ms / 1000,
            "blurhash": f.blurhash,
            "md5": f.md5,
            **{f"{v}_url": f"/files/{f.file_id}/{v}" if v in f.variants else "" for v in VARIANTS},
            "notes": f.notes,
            "created_at": f.created_at,
            "signed": self.signed(f),
        }

    async def sign(self, user: User, file_ids: list[str]) -> tuple[list[tuple[StoredFile, dict]], list[str]]:
        if len(file_ids) > MAX_SIGN:
            raise ChatError(ErrorCode.INVALID_ARGUMENT, f"at most {MAX_SIGN} files at a time")
        wanted = list(dict.fromkeys(i for i in file_ids if isinstance(i, str) and _ID_TEXT.match(i)))
        found = await self.store.files_by_ids(wanted)
        ok = await self.readable(user.user_id, found.values())
        answers = [(found[i], self.signed(found[i])) for i in wanted if i in ok]
        refused = [i for i in file_ids if not (isinstance(i, str) and i in ok)]
        return answers, refused

    # -- uploads

    def _take_upload(self, user: User) -> None:
        wait = self.uploads.take(str(user.user_id))
        if wait:
            raise RateLimited("too many uploads; try again later", wait)

    async def _reserve(self, user: User, nbytes: int) -> None:
        if nbytes > self.config.max_upload_bytes:
            raise FileError(413, ErrorCode.FILE_TOO_LARGE, f"files are at most {self.config.max_upload_bytes} bytes")
        if not await self.store.reserve(user.user_id, nbytes, self.config.quota_bytes):
            used, _ = await self.store.usage(user.user_id)
            raise FileError(
                507,
                ErrorCode.FILE_QUOTA_EXCEEDED,
                f"storage quota exceeded: {used} of {self.config.quota_bytes} bytes used",
            )

    async def ingest(
        self, user: User, staged: str, size: int, declared: str, name: str, duration_ms: int | None
    ) -> StoredFile:
        """Turn the staged upload (``size`` bytes reserved against the user's quota) into a file:
        analyse it, store its bytes and copies, record it.  The reservation is released on failure;
        the staging directory is removed either way."""
        workdir = os.path.dirname(staged)
        stored_keys: list[str] = []
        recorded = False
        try:
            if self.processing >= self.config.processing_threads + self.config.max_waiting_processing:
                raise FileError(
                    503,
                    ErrorCode.STORAGE_UNAVAILABLE,
                    "too many uploads being processed; try again",
                    {"Retry-After": "5"},
                )
            self.processing += 1
            try:
                result, md5, sizes = await self._in_thread(_process, staged, declared, name, self.media, workdir)
            except MediaRejected as e:
                self.stats["refused"] += 1
                raise FileError(422, ErrorCode.FILE_REFUSED, str(e)) from None
            finally:
                self.processing -= 1
            if not self.config.allows(result.mime):
                raise FileError(415, ErrorCode.FILE_TYPE_REFUSED, f"files of type {result.mime} are not accepted")
            file_id = secrets.token_urlsafe(16)
            variants: dict[str, dict[str, Any]] = {}
            original = result.cleaned_path or staged
            key = f"{file_id}/original"
            await self.blobs.put_file(key, original, result.mime)
            stored_keys.append(key)
            variants["original"] = {"key": key, "mime": result.mime, "size": sizes["original"]}
            for variant_name, variant in result.variants.items():
                if variant_name not in VARIANTS:
                    continue
                key = f"{file_id}/{variant_name}"
                await self.blobs.put_file(key, variant.path, variant.mime)
                stored_keys.append(key)
                variants[variant_name] = {
                    "key": key,
                    "mime": variant.mime,
                    "size": sizes[variant_name],
                    "width": variant.width,
                    "height": variant.height,
                }
            duration = None if result.duration is None else int(result.duration * 1000)
            notes = list(result.notes)
            if duration is None and result.kind in ("audio", "video") and duration_ms is not None:
                duration = duration_ms
                notes.append("duration as the client measured it")
            total = sum(v["size"] for v in variants.values())
            stored = StoredFile(
                file_id,
                user.user_id,
                name,
                result.mime,
                result.kind,
                sizes["original"],
                total,
                md5,
                result.width,
                result.height,
                duration,
                result.blurhash,
                variants,
                notes,
                self.now(),
            )
            await self.store.add_file(stored, total - size)
            recorded = True
            self.stats["uploaded"] += 1
            return stored
        finally:
            if not recorded:
                await self.store.release(user.user_id, size)
                for key in stored_keys:
                    self.blobs.delete(key).addErrback(lambda f: self.api.log.failure("files: cleanup failed", f))
            await self._in_thread(shutil.rmtree, workdir, True)

    async def _staging(self) -> str:
        def make() -> str:
            os.makedirs(self.upload_dir, exist_ok=True)
            return tempfile.mkdtemp(prefix="up-", dir=self.upload_dir)

        return await self._in_thread(make)

    async def upload(self, call: HttpCall) -> dict[str, Any]:
        """``POST /files``: the body is the file (docs/media.md)."""
        user = await self.user_of(call)
        self._take_upload(user)
        raw = call.header("content-length")
        if not (raw.isascii() and raw.isdigit()) or call.content is None:
            raise FileError(411, ErrorCode.INVALID_ARGUMENT, "Content-Length is required (or upload with tus)")
        size = int(raw)
        if size <= 0:
            raise FileError(400, ErrorCode.INVALID_ARGUMENT, "the body (the file) is empty")
        await self._reserve(user, size)
        try:
            workdir = await self._staging()
            staged = os.path.join(workdir, "upload")
            size_written = await self._in_thread(_write_staged, call.content, staged, size)
        except BaseException:
            await self.store.release(user.user_id, size)
            raise
        if size_written != size:
            await self.store.release(user.user_id, size)
            await self._in_thread(shutil.rmtree, workdir, True)
            raise FileError(400, ErrorCode.INVALID_ARGUMENT, "the body is shorter than its Content-Length")
        declared = call.header("content-type", "application/octet-stream").split(";")[0].strip()
        name = clean_name(call.header("x-file-name") or (call.query.get("name") or [""])[-1])
        stored = await self.ingest(user, staged, size, declared, name, _duration_ms(call.header("x-duration")))
        return {"file": self.info(stored)}

    # -- downloads

    async def download(self, call: HttpCall) -> HttpReply:
        """``GET /files/{id}[/{variant}]``: signed, or with a token that may read it."""
        file_id, variant = call.params["file_id"], call.params.get("variant", "original")
        if not _ID_TEXT.match(file_id) or variant not in ("original", *VARIANTS):
            raise FileError(404, ErrorCode.NOT_FOUND, "no such file")
        public = False
        if call.query.get("sig") or call.query.get("exp"):
            if not self.check_signature(file_id, call.query):
                raise FileError(403, ErrorCode.FORBIDDEN, "the URL's signature is wrong or has expired")
            public = True
            found = (await self.store.files_by_ids([file_id])).get(file_id)
        elif self.is_admin(call):
            found = (await self.store.files_by_ids([file_id])).get(file_id)
        else:
            user = await self.user_of(call)
            found = (await self.store.files_by_ids([file_id])).get(file_id)
            if found is not None and file_id not in await self.readable(user.user_id, [found]):
                found = None
        if found is None or variant not in found.variants:
            raise FileError(404, ErrorCode.NOT_FOUND, "no such file")
        blob = found.variants[variant]
        size = int(blob["size"])
        etag = f'"{file_id}-{variant}"'
        headers = {
            "Content-Type": blob["mime"],
            "ETag": etag,
            "Accept-Ranges": "bytes",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Content-Disposition": _disposition(found.kind if variant == "original" else "image", found.name),
            "Cache-Control": f"{'public' if public else 'private'}, max-age={self.config.url_ttl}, immutable",
        }
        if call.header("if-none-match") in (etag, "*", f"W/{etag}"):
            return HttpReply(304, headers)
        wanted = parse_range(call.header("range"), size)
        if_range = call.header("if-range")
        if wanted is not None and if_range and if_range != etag:
            wanted = None
        if wanted is False:
            headers["Content-Range"] = f"bytes */{size}"
            return json_reply(
                416,
                {"error_code": int(ErrorCode.INVALID_ARGUMENT), "error_msg": "range not satisfiable"},
                {"Content-Range": f"bytes */{size}"},
            )
        key = blob["key"]

        def read(offset: int, length: int) -> defer.Deferred:
            return self.blobs.read(key, offset, length)

        if wanted is None:
            return HttpReply(200, headers, read=read, offset=0, length=size)
        start, length = wanted
        headers["Content-Range"] = f"bytes {start}-{start + length - 1}/{size}"
        return HttpReply(206, headers, read=read, offset=start, length=length)

    # -- removal

    async def account_deleted(self, user: Any) -> None:
        """``account/deleted``: every file the account uploaded goes, with its bytes."""
        while True:
            found = await self.store.files_of(user.user_id, 0, 100)
            removed = [await self.remove(stored.file_id) for stored in found]
            if len(found) < 100 or not any(removed):
                return

    async def remove(self, file_id: str) -> StoredFile | None:
        """Remove a file: its rows first (nobody reads it any more), then its bytes."""
        found = await self.store.remove_file(file_id)
        if found is None:
            return None
        for blob in found.variants.values():
            try:
                await self.blobs.delete(blob["key"])
            except Exception as e:  # the row is gone: the blob is unreachable, only its space is lost
                self.api.log.warn("files: removing blob {key} failed: {error!r}", key=blob["key"], error=e)
        self.stats["removed"] += 1
        return found

    # -- hooks

    def message_stored(self, message: Message, sender: Any, device: Any) -> defer.Deferred | None:
        """``message/stored``: a message naming ``/files/<id>`` lets the conversation read them."""
        data = message.data
        if b"/files/" not in data:
            return None
        ids = list(dict.fromkeys(m.decode() for m in FILE_ID.findall(data)))[:MAX_FILES_PER_MESSAGE]
        if not ids:
            return None
        d = defer.ensureDeferred(self._grant(message, ids))
        for fid in ids:
            self.granting.setdefault(fid, []).append(d)

        def done(result: Any) -> Any:
            for fid in ids:
                waiting = self.granting.get(fid)
                if waiting is not None and d in waiting:
                    waiting.remove(d)
                    if not waiting:
                        del self.granting[fid]
            return result

        return d.addBoth(done)

    def _granted(self, file_ids: list[str]) -> defer.Deferred:
        """Fires once the grants being written for ``file_ids`` are written (or failed)."""
        waits = []
        for fid in file_ids:
            for d in self.granting.get(fid, ()):
                signal: defer.Deferred = defer.Deferred()
                d.addBoth(lambda result, signal=signal: (signal.callback(None), result)[1])
                waits.append(signal)
        return defer.DeferredList(waits) if waits else defer.succeed(None)

    async def _grant(self, message: Message, ids: list[str]) -> None:
        place = (message.conv, message.seq)
        found = await self.store.files_by_ids(ids)
        allowed = await self.readable(message.sender_id, found.values())
        grants = [(fid, message.conv, message.seq) for fid in ids if fid in allowed]
        for fid, _, _ in grants:
            self.pending_grants.setdefault(fid, set()).add(place)
        try:
            await self.store.add_grants(grants)
        finally:
            for fid, _, _ in grants:
                places = self.pending_grants.get(fid)
                if places is not None:
                    places.discard(place)
                    if not places:
                        del self.pending_grants[fid]

    def recalled(self, recall: Any) -> defer.Deferred:
        """``message/recalled``: the files its sender sent in it are removed; others' files (a
        forward) only lose this conversation's access."""
        return defer.ensureDeferred(self._recalled(recall))

    async def _recalled(self, recall: Any) -> None:
        ids = await self.store.remove_grants(recall.conv, recall.seq)
        found = await self.store.files_by_ids(ids)
        for f in found.values():
            if f.owner_id == recall.sender_id:
                await self.remove(f.file_id)

    async def expire_uploads(self) -> None:
        """Forget resumable uploads older than ``upload_expiry`` (unfinished ones release their
        reservation and their staged bytes on this node)."""
        before = self.now() - self.config.upload_expiry
        for upload in await self.store.expired_uploads(before, 500):
            if upload.node != self.api.node_name and upload.created_at >= before - self.config.upload_expiry:
                continue  # its node forgets it (and its bytes); a node gone for long, any node
            if await self.store.remove_upload(upload.upload_id) and not upload.file_id:
                await self.store.release(upload.owner_id, upload.length)
            if upload.node == self.api.node_name:
                await self._in_thread(shutil.rmtree, self._upload_path(upload.upload_id), True)

    # -- tus 1.0.0 (https://tus.io/protocols/resumable-upload): core, creation, termination

    def _upload_path(self, upload_id: str) -> str:
        return os.path.join(self.upload_dir, "tus-" + upload_id)

    def tus_headers(self) -> dict[str, str]:
        return {
            "Tus-Resumable": TUS_VERSION,
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "creation,termination,expiration",
            "Tus-Max-Size": str(self.config.max_upload_bytes),
        }

    async def tus_options(self, call: HttpCall) -> HttpReply:
        """``OPTIONS /files/uploads``: what this tus server speaks."""
        return HttpReply(204, self.tus_headers())

    def _check_tus(self, call: HttpCall) -> None:
        if call.header("tus-resumable") != TUS_VERSION:
            raise FileError(
                412, ErrorCode.NOT_SUPPORTED, f"Tus-Resumable {TUS_VERSION} is required", {"Tus-Version": TUS_VERSION}
            )

    async def tus_create(self, call: HttpCall) -> HttpReply:
        """``POST /files/uploads``: start a resumable upload of ``Upload-Length`` bytes."""
        self._check_tus(call)
        user = await self.user_of(call)
        raw = call.header("upload-length")
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 15 or int(raw) <= 0:
            raise FileError(
                400, ErrorCode.INVALID_ARGUMENT, "Upload-Length is required (Upload-Defer-Length is not supported)"
            )
        length = int(raw)
        metadata = _tus_metadata(call.header("upload-metadata"))
        self._take_upload(user)
        await self._reserve(user, length)
        upload = Upload(
            secrets.token_urlsafe(16),
            user.user_id,
            length,
            clean_name(metadata.get("filename") or metadata.get("name", "")),
            (metadata.get("filetype") or metadata.get("type") or "application/octet-stream")[:100],
            _duration_ms(metadata.get("duration", "")),
            self.api.node_name,
            "",
            self.now(),
        )
        try:
            if not await self.store.add_upload(upload, self.config.max_pending_uploads):
                raise FileError(
                    429, ErrorCode.RATE_LIMITED, f"at most {self.config.max_pending_uploads} unfinished uploads"
                )

            def create() -> None:
                os.makedirs(self._upload_path(upload.upload_id), exist_ok=True)
                open(os.path.join(self._upload_path(upload.upload_id), "upload"), "wb").close()

            await self._in_thread(create)
        except BaseException:
            await self.store.release(user.user_id, length)
            raise
        return HttpReply(
            201,
            {
                "Location": f"/files/uploads/{upload.upload_id}",
                "Upload-Expires": _http_date(upload.created_at + self.config.upload_expiry),
                "Tus-Resumable": TUS_VERSION,
            },
        )

    async def _own_upload(self, call: HttpCall) -> tuple[User, Upload]:
        user = await self.user_of(call)
        upload_id = call.params["upload_id"]
        upload = await self.store.upload(upload_id) if _ID_TEXT.match(upload_id) else None
        if upload is None or upload.owner_id != user.user_id:
            raise FileError(404, ErrorCode.NOT_FOUND, "no such upload")
        if upload.node != self.api.node_name:
            raise FileError(409, ErrorCode.FILE_UPLOAD_CONFLICT, f"this upload continues on node {upload.node}")
        return user, upload

    def _offset(self, upload: Upload) -> defer.Deferred:
        path = os.path.join(self._upload_path(upload.upload_id), "upload")
        return self._in_thread(lambda: os.path.getsize(path) if os.path.exists(path) else -1)

    async def tus_head(self, call: HttpCall) -> HttpReply:
        """``HEAD /files/uploads/{upload_id}``: how much has arrived."""
        self._check_tus(call)
        _, upload = await self._own_upload(call)
        offset = upload.length if upload.file_id else await self._offset(upload)
        if offset < 0:
            raise FileError(410, ErrorCode.NOT_FOUND, "the upload's bytes are gone")
        return HttpReply(
            200,
            {
                "Upload-Offset": str(offset),
                "Upload-Length": str(upload.length),
                "Cache-Control": "no-store",
                "Tus-Resumable": TUS_VERSION,
            },
        )

    async def tus_patch(self, call: HttpCall) -> HttpReply:
        """``PATCH /files/uploads/{upload_id}``: the next bytes, at ``Upload-Offset``."""
        self._check_tus(call)
        if call.header("content-type").split(";")[0].strip() != "application/offset+octet-stream":
            raise FileError(415, ErrorCode.INVALID_ARGUMENT, "Content-Type must be application/offset+octet-stream")
        user, upload = await self._own_upload(call)
        if upload.file_id:
            raise FileError(409, ErrorCode.FILE_UPLOAD_CONFLICT, "this upload is complete")
        if upload.upload_id in self.patching:
            raise FileError(409, ErrorCode.FILE_UPLOAD_CONFLICT, "another PATCH of this upload is under way")
        self.patching.add(upload.upload_id)
        try:
            offset = await self._offset(upload)
            if offset < 0:
                raise FileError(410, ErrorCode.NOT_FOUND, "the upload's bytes are gone")
            if call.header("upload-offset") != str(offset):
                raise FileError(
                    409,
                    ErrorCode.FILE_UPLOAD_CONFLICT,
                    f"Upload-Offset must be {offset}",
                    {"Upload-Offset": str(offset)},
                )
            staged = os.path.join(self._upload_path(upload.upload_id), "upload")
            written = await self._in_thread(_write_staged, call.content, staged, upload.length - offset, True)
            offset += written
            headers = {"Upload-Offset": str(offset), "Tus-Resumable": TUS_VERSION}
            if offset < upload.length:
                return HttpReply(204, headers)
            stored = await self.ingest(user, staged, upload.length, upload.mime, upload.name, upload.duration_ms)
            await self.store.finish_upload(upload.upload_id, stored.file_id)
            headers["Coffeechat-File-Id"] = stored.file_id
            return HttpReply(204, headers)
        finally:
            self.patching.discard(upload.upload_id)

    async def tus_delete(self, call: HttpCall) -> HttpReply:
        """``DELETE /files/uploads/{upload_id}``: give up an upload (tus termination)."""
        self._check_tus(call)
        user, upload = await self._own_upload(call)
        if upload.upload_id in self.patching:
            raise FileError(409, ErrorCode.FILE_UPLOAD_CONFLICT, "a PATCH of this upload is under way")
        if await self.store.remove_upload(upload.upload_id) and not upload.file_id:
            await self.store.release(user.user_id, upload.length)
        await self._in_thread(shutil.rmtree, self._upload_path(upload.upload_id), True)
        return HttpReply(204, {"Tus-Resumable": TUS_VERSION})

    async def tus_result(self, call: HttpCall) -> dict[str, Any]:
        """``GET /files/uploads/{upload_id}``: the file a finished upload became, or its progress."""
        _, upload = await self._own_upload(call)
        if upload.file_id:
            found = (await self.store.files_by_ids([upload.file_id])).get(upload.file_id)
            if found is not None:
                return {"done": True, "file": self.info(found)}
        offset = await self._offset(upload)
        return {"done": False, "offset": max(0, offset), "length": upload.length}


def _http_date(when: int) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(when))


def make_blob_store(config: Config, data_dir: str, reactor: Any) -> IBlobStore:
    """The configured blob store (backends/blobs.py builds it: the core imports no backend)."""
    factory = importlib.import_module("coffeechat.backends.blobs").make_blob_store
    store = factory(dict(config.storage), data_dir, reactor)
    if not IBlobStore.providedBy(store):
        raise ConfigError(f"files.storage: {store!r} does not provide IBlobStore")
    return store


def urls_pb(f: StoredFile, urls: dict[str, Any]) -> pb.CIMFileUrls:
    return pb.CIMFileUrls(
        file_id=f.file_id,
        url=urls["url"],
        thumb_url=urls["thumb_url"],
        reduced_url=urls["reduced_url"],
        poster_url=urls["poster_url"],
        expires=urls["expires"],
        mime=f.mime,
        size=f.size,
        name=f.name,
        kind=f.kind,
    )


def setup(api: ModuleAPI) -> Files:
    """FILE_SIGN, the /files routes (upload, tus, download, sign, usage), the admin views, and the
    hooks that grant access and remove the files of recalled messages."""
    config: Config = api.config
    files = Files(
        api,
        api.open_store(IFileStore, SQLFileStore),
        make_blob_store(config, str(api.node_config.data_path), api.clock),
        config,
    )
    api.on_start(lambda: defer.ensureDeferred(files.start()))
    api.on_stop(files.stop)
    api.hook("message/stored", files.message_stored)
    api.hook("message/recalled", files.recalled)
    api.periodic(600, files.expire_uploads)

    @api.request(Cmd.FILE_SIGN_REQ)
    async def sign_cmd(session: Session, req: pb.CIMFileSignReq) -> pb.CIMFileSignRsp:
        answers, refused = await files.sign(session.user, list(req.file_ids))
        return pb.CIMFileSignRsp(
            user_id=session.user_id,
            result_code=ErrorCode.SUCCESS,
            result_string="ok",
            files=[urls_pb(f, urls) for f, urls in answers],
            refused=refused,
        )

    async def sign(call: HttpCall) -> dict[str, Any]:
        """``POST /files/sign``: signed URLs of files the user may read."""
        user = await files.user_of(call)
        ids = call.json().get("ids")
        if not isinstance(ids, list):
            raise FileError(400, ErrorCode.INVALID_ARGUMENT, "ids must be a list of file ids")
        answers, refused = await files.sign(user, ids)
        out = {
            f.file_id: {**urls, "name": f.name, "mime": f.mime, "size": f.size, "kind": f.kind} for f, urls in answers
        }
        return {"files": out, "refused": refused}

    async def usage(call: HttpCall) -> dict[str, Any]:
        """``GET /files/usage``: the user's storage used and quota."""
        user = await files.user_of(call)
        used, count = await files.store.usage(user.user_id)
        return {"used": used, "files": count, "quota": config.quota_bytes}

    async def info(call: HttpCall) -> dict[str, Any]:
        """``GET /files/{file_id}/info``: a readable file's FileInfo."""
        user = await files.user_of(call)
        fid = call.params["file_id"]
        found = (await files.store.files_by_ids([fid])).get(fid) if _ID_TEXT.match(fid) else None
        if found is None or fid not in await files.readable(user.user_id, [found]):
            raise FileError(404, ErrorCode.NOT_FOUND, "no such file")
        return {"file": files.info(found)}

    async def delete(call: HttpCall) -> dict[str, Any]:
        """``DELETE /files/{file_id}``: the uploader removes a file (for everyone)."""
        user = await files.user_of(call)
        fid = call.params["file_id"]
        found = (await files.store.files_by_ids([fid])).get(fid) if _ID_TEXT.match(fid) else None
        if found is None or found.owner_id != user.user_id:
            raise FileError(404, ErrorCode.NOT_FOUND, "no such file of yours")
        await files.remove(fid)
        return {"removed": fid}

    upload_limit = config.max_upload_bytes
    api.route("POST", "/files", http_route(files.upload), auth="user", max_body=upload_limit, raw=True)
    api.route("POST", "/files/sign", http_route(sign), auth="user")
    api.route("GET", "/files/usage", http_route(usage), auth="user")
    api.route("OPTIONS", "/files/uploads", http_route(files.tus_options, tus=True), auth="user")
    api.route("POST", "/files/uploads", http_route(files.tus_create, tus=True), auth="user")
    for method, handler in (("HEAD", files.tus_head), ("PATCH", files.tus_patch), ("DELETE", files.tus_delete)):
        raw = method == "PATCH"
        api.route(
            method,
            "/files/uploads/{upload_id}",
            http_route(handler, tus=True),
            auth="user",
            max_body=upload_limit if raw else None,
            raw=raw,
        )
    api.route("GET", "/files/uploads/{upload_id}", http_route(files.tus_result), auth="user")
    api.route("GET", "/files/{file_id}/info", http_route(info), auth="user")
    for method in ("GET", "HEAD"):
        api.route(method, "/files/{file_id}", http_route(files.download), auth="user")
        api.route(method, "/files/{file_id}/{variant}", http_route(files.download), auth="user")
    api.route("DELETE", "/files/{file_id}", http_route(delete), auth="user")

    async def admin_usage(call: HttpCall) -> dict[str, Any]:
        """``GET /admin/files/usage``: storage used, in total and by the users using most."""
        rows, (used, count) = await files.store.top_usage(call.query_int("limit", 50, 1))
        return {
            "used": used,
            "files": count,
            "quota": config.quota_bytes,
            "stats": dict(files.stats),
            "users": [{"user_id": u, "used": b, "files": n} for u, b, n in rows],
        }

    async def admin_list(call: HttpCall) -> dict[str, Any]:
        """``GET /admin/users/{user_id}/files``: a user's files, newest first."""
        found = await files.store.files_of(
            call.params["user_id"], call.query_int("before", 0, 0), min(call.query_int("limit", 50, 1), 500)
        )
        return {"files": [files.info(f) for f in found]}

    async def admin_delete(call: HttpCall) -> dict[str, Any]:
        """``DELETE /admin/files/{file_id}``: remove any file."""
        removed = await files.remove(call.params["file_id"])
        if removed is None:
            raise ChatError(ErrorCode.NOT_FOUND, "no such file")
        return {"removed": removed.file_id}

    api.hook("account/deleted", lambda user: defer.ensureDeferred(files.account_deleted(user)))
    amount = integer(0)
    api.route(
        "GET",
        "/admin/files/usage",
        admin_usage,
        auth="admin",
        query=(Query("limit", integer(1, PATH_INT_MAX), "how many of the users using most (default 50)"),),
        response=obj(
            ["used", "files", "users"],
            used=amount,
            files=amount,
            quota=amount,
            stats=obj(),
            users=array(obj(["user_id", "used", "files"], user_id=integer(1), used=amount, files=amount)),
        ),
    )
    api.route(
        "GET",
        "/admin/users/{user_id:int}/files",
        admin_list,
        auth="admin",
        query=(
            Query("before", integer(0, PATH_INT_MAX), "uploaded before (unix seconds; 0: from the newest)"),
            Query("limit", integer(1, PATH_INT_MAX), "page size (default 50, at most 500)"),
        ),
        response=obj(["files"], files=array(obj(["id", "size"], id=string(), size=amount, mime=string()))),
    )
    api.route(
        "DELETE", "/admin/files/{file_id}", admin_delete, auth="admin", response=obj(["removed"], removed=string())
    )
    return files
