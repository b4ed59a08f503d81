"""Files end to end on a real node (SQLite; a local blob directory, or a real S3-compatible
server) over real HTTP and TCP: upload, media processing (EXIF stripped, thumbnail), access by
conversation through signed URLs, Range and ETag, quotas, removal on recall, tus uploads with the
tuspy client, limits and refusals."""

from __future__ import annotations

import io
import json
import os
import urllib.parse

import pytest
import pytest_twisted
import treq
from PIL import Image
from twisted.internet import reactor, threads

from backends.blobs import make_blob_store
from coffeechat.protocols import client as cim_client
from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node
from .s3server import s3_server  # noqa: F401  (the session fixture)
from .test_cluster_e2e import until

IMAGE = pb.kCIM_MSG_TYPE_IMAGE
FILE = pb.kCIM_MSG_TYPE_FILE
ADMIN = {"Authorization": "Bearer admin-secret"}


def photo(width: int = 1600, height: int = 1200, gps: bool = True) -> bytes:
    """A JPEG as a phone writes it: EXIF with a GPS position."""
    im = Image.new("RGB", (width, height))
    for x in range(0, width, 40):  # some detail, so that the copies are smaller than the original
        im.paste((x % 256, (x * 7) % 256, 90), (x, 0, x + 20, height))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    if gps:
        exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", quality=95, exif=exif)
    return out.getvalue()


def pdf() -> bytes:
    return b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + b"x" * 2000


@pytest_twisted.async_yield_fixture(params=["local", "s3"])
async def files_node(tmp_path, request):
    """A node storing its files in a local directory, or in a bucket of a real S3-compatible server."""
    settings = {"files.url_granularity": 60, "files.url_ttl": 120}
    if request.param == "s3":
        storage = request.getfixturevalue("s3_server").storage()
        blobs = make_blob_store(storage, str(tmp_path), reactor)
        await blobs.ensure_bucket()
        await blobs.close()
        settings["files.storage"] = storage
    live = await start_node(node_config(tmp_path, **settings))
    yield live
    await stop_node(live)


async def user(live, name: str):
    user_id = await live.register(name)
    client = await live.login(name)
    return user_id, client


async def upload(live, token: str, data: bytes, name: str, content_type: str, **kwargs):
    return await cim_client.upload_file(reactor, live.http_url, token, data, name, content_type, **kwargs)


async def get(live, path: str, headers: dict | None = None, method: str = "GET"):
    response = await treq.request(method, live.http_url + path, headers=headers or {}, reactor=reactor)
    return response, await response.content()


def bearer(client) -> dict:
    return {"Authorization": f"Bearer {client.user_token}"}


async def sign(live, client, ids: list[str]) -> dict:
    response = await treq.post(
        live.http_url + "/files/sign", json.dumps({"ids": ids}).encode(), headers=bearer(client), reactor=reactor
    )
    return await response.json()


@pytest_twisted.ensureDeferred
async def test_an_image_round_trip_with_access_by_conversation(files_node):
    live = files_node
    alice_id, alice = await user(live, "alice")
    bob_id, bob = await user(live, "bobby")
    _, carol = await user(live, "carol")
    status, answer = await upload(live, alice.user_token, photo(), "holiday.jpg", "image/jpeg")
    assert status == 200 and answer["error_code"] == 0, answer
    info = answer["file"]
    assert info["kind"] == "image" and info["mime"] == "image/jpeg"
    assert (info["width"], info["height"]) == (1600, 1200) and info["blurhash"]
    assert info["thumb_url"] == f"/files/{info['id']}/thumb" and info["reduced_url"]

    # the stored original has no GPS position (nor any EXIF: the maker is gone too)
    response, body = await get(live, info["signed"]["url"])
    assert response.code == 200 and response.headers.getRawHeaders("content-type") == ["image/jpeg"]
    assert "inline" in response.headers.getRawHeaders("content-disposition")[0]
    stored = Image.open(io.BytesIO(body))
    assert stored.size == (1600, 1200) and 0x8825 not in stored.getexif() and 0x010F not in stored.getexif()
    response, thumb = await get(live, info["signed"]["thumb_url"])
    assert response.code == 200 and max(Image.open(io.BytesIO(thumb)).size) == 320 and len(thumb) < len(body)

    # before it is sent, only Alice may read it
    assert (await sign(live, bob, [info["id"]]))["refused"] == [info["id"]]
    content = json.dumps({"url": info["url"], "thumbUrl": info["thumb_url"], "width": 1600, "height": 1200})
    ack = await alice.send_message(bob_id, content, msg_type=IMAGE)
    assert ack.server_msg_id > 0
    await bob.next_push()
    signed = await sign(live, bob, [info["id"]])
    assert signed["refused"] == [] and signed["files"][info["id"]]["thumb_url"].startswith(
        f"/files/{info['id']}/thumb?"
    )
    # over CIM too; Carol, who is not in the conversation, is refused
    over_cim = await bob.sign_files([info["id"]])
    assert [f.file_id for f in over_cim.files] == [info["id"]] and over_cim.files[0].kind == "image"
    assert list((await carol.sign_files([info["id"]])).refused) == [info["id"]]

    # a login token works as well as a signature, for those who may read it
    response, _ = await get(live, info["url"], bearer(bob))
    assert response.code == 200
    response, _ = await get(live, info["url"], bearer(carol))
    assert response.code == 404
    response, _ = await get(live, info["url"])
    assert response.code == 401
    url = signed["files"][info["id"]]["url"]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    response, _ = await get(live, tampered)
    assert response.code == 403
    expired = f"/files/{info['id']}?exp=1000&sig=" + urllib.parse.parse_qs(url.split("?")[1])["sig"][0]
    response, _ = await get(live, expired)
    assert response.code == 403
    # the admin reads any file
    response, _ = await get(live, info["url"], ADMIN)
    assert response.code == 200
    assert alice_id != bob_id


@pytest_twisted.ensureDeferred
async def test_ranges_etags_and_attachments(files_node):
    live = files_node
    _, alice = await user(live, "alice")
    data = pdf()
    status, answer = await upload(live, alice.user_token, data, "report 2026 (final).pdf", "application/pdf")
    assert status == 200, answer
    info = answer["file"]
    assert info["kind"] == "file" and info["mime"] == "application/pdf" and info["thumb_url"] == ""
    url = info["signed"]["url"]
    response, body = await get(live, url)
    assert body == data
    disposition = response.headers.getRawHeaders("content-disposition")[0]
    assert disposition.startswith("attachment;") and "report%202026%20%28final%29.pdf" in disposition
    assert response.headers.getRawHeaders("x-content-type-options") == ["nosniff"]
    assert response.headers.getRawHeaders("cache-control")[0].startswith("public")
    etag = response.headers.getRawHeaders("etag")[0]

    response, body = await get(live, url, {"Range": "bytes=10-19"})
    assert response.code == 206 and body == data[10:20]
    assert response.headers.getRawHeaders("content-range") == [f"bytes 10-19/{len(data)}"]
    response, body = await get(live, url, {"Range": "bytes=-5"})
    assert response.code == 206 and body == data[-5:]
    response, body = await get(live, url, {"Range": f"bytes={len(data) - 3}-"})
    assert response.code == 206 and body == data[-3:]
    response, _ = await get(live, url, {"Range": f"bytes={len(data)}-"})
    assert response.code == 416 and response.headers.getRawHeaders("content-range") == [f"bytes */{len(data)}"]
    response, body = await get(live, url, {"Range": "bytes=0-1,5-6"})  # several ranges: the whole file
    assert response.code == 200 and body == data
    response, body = await get(live, url, {"If-None-Match": etag})
    assert response.code == 304 and body == b""
    response, body = await get(live, url, method="HEAD")
    assert response.code == 200 and body == b"" and response.headers.getRawHeaders("content-length") == [str(len(data))]
    for bad in ("/files/short", "/files/" + "A" * 22, f"/files/{info['id']}/nothing"):
        response, _ = await get(live, bad, bearer(alice))
        assert response.code == 404, bad


@pytest_twisted.ensureDeferred
async def test_quota_usage_and_removal_on_recall(tmp_path):
    live = await start_node(node_config(tmp_path, **{"files.quota_bytes": 60_000}))
    try:
        alice_id, alice = await user(live, "alice")
        bob_id, bob = await user(live, "bobby")
        data = pdf() * 10  # ~20 KB
        status, first = await upload(live, alice.user_token, data, "a.pdf", "application/pdf")
        assert status == 200, first
        status, second = await upload(live, alice.user_token, data, "b.pdf", "application/pdf")
        assert status == 200, second
        status, refused = await upload(live, alice.user_token, data + data, "c.pdf", "application/pdf")
        assert status == 507 and refused["error_code"] == pb.kCIM_ERR_FILE_QUOTA_EXCEEDED, refused
        response = await treq.get(live.http_url + "/files/usage", headers=bearer(alice), reactor=reactor)
        usage = await response.json()
        assert usage["used"] == 2 * len(data) and usage["files"] == 2 and usage["quota"] == 60_000
        response = await treq.get(live.http_url + "/admin/files/usage", headers=ADMIN, reactor=reactor)
        admin = await response.json()
        assert admin["users"] == [{"user_id": alice_id, "used": 2 * len(data), "files": 2}]
        response = await treq.get(live.http_url + f"/admin/users/{alice_id}/files", headers=ADMIN, reactor=reactor)
        assert {f["name"] for f in (await response.json())["files"]} == {"a.pdf", "b.pdf"}

        # sent, then recalled: the file is gone, its bytes too, and the quota is free again
        info = first["file"]
        ack = await alice.send_message(bob_id, json.dumps({"url": info["url"], "displayName": "a.pdf"}), msg_type=FILE)
        await bob.next_push()
        assert (await sign(live, bob, [info["id"]]))["refused"] == []
        blob_dir = tmp_path / "data" / "files" / info["id"]
        assert blob_dir.exists()
        recalled = await alice.recall(bob_id, ack.server_msg_id)
        assert recalled.result_code == pb.kCIM_ERR_SUCCESS
        files = live.core.feature("files")
        await until(lambda: files.stats["removed"] == 1)
        response, _ = await get(live, info["url"], bearer(alice))
        assert response.code == 404
        assert not any(blob_dir.rglob("*"))
        status, third = await upload(live, alice.user_token, data, "c.pdf", "application/pdf")
        assert status == 200, third

        # the owner deletes a file; another user cannot
        fid = second["file"]["id"]
        response = await treq.delete(live.http_url + f"/files/{fid}", headers=bearer(bob), reactor=reactor)
        assert response.code == 404
        response = await treq.delete(live.http_url + f"/files/{fid}", headers=bearer(alice), reactor=reactor)
        assert response.code == 200 and (await response.json())["removed"] == fid
        response = await treq.get(live.http_url + "/files/usage", headers=bearer(alice), reactor=reactor)
        assert (await response.json())["used"] == len(data)
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_limits_and_refusals(tmp_path):
    settings = {"files.max_upload_bytes": 50_000, "files.allowed_types": ["image/*", "audio/*"]}
    live = await start_node(node_config(tmp_path, **settings))
    try:
        _, alice = await user(live, "alice")
        status, answer = await upload(live, alice.user_token, b"x" * 60_000, "big.bin", "image/png")
        # refused on its headers, before the body is read
        assert status == 413 and answer["error_code"] == pb.kCIM_ERR_MSG_TOO_LARGE, answer
        status, answer = await upload(live, alice.user_token, pdf(), "doc.pdf", "image/png")  # a lie: sniffed
        assert status == 415 and answer["error_code"] == pb.kCIM_ERR_FILE_TYPE_REFUSED, answer
        status, answer = await upload(live, "not-a-token", photo(40, 30), "p.jpg", "image/jpeg")
        assert status == 401, answer
        status, answer = await upload(live, alice.user_token, b"", "empty", "image/png")
        assert status == 400, answer
        # a decompression bomb: a small PNG declaring a huge image
        bomb = io.BytesIO()
        Image.new("1", (9000, 9000)).save(bomb, "PNG")
        status, answer = await upload(live, alice.user_token, bomb.getvalue(), "bomb.png", "image/png")
        assert status in (413, 422), answer
        if status == 422:
            assert answer["error_code"] == pb.kCIM_ERR_FILE_REFUSED
        response = await treq.get(live.http_url + "/files/usage", headers=bearer(alice), reactor=reactor)
        assert (await response.json())["used"] == 0  # nothing refused counts
        assert not os.listdir(tmp_path / "data" / "uploads")  # nothing staged is left behind
        # the server still serves
        status, answer = await upload(live, alice.user_token, photo(40, 30), "p.jpg", "image/jpeg")
        assert status == 200, answer
    finally:
        await stop_node(live)


@pytest_twisted.ensureDeferred
async def test_group_members_read_what_is_sent_in_the_group(files_node):
    live = files_node
    _, alice = await user(live, "alice")
    bob_id, bob = await user(live, "bobby")
    _, carol = await user(live, "carol")
    created = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="trip", member_id_list=[bob_id])
    )
    group_id = created.group_info.group_id
    status, answer = await upload(live, alice.user_token, photo(200, 100), "g.jpg", "image/jpeg")
    assert status == 200, answer
    info = answer["file"]
    ack = await alice.send_message(
        group_id, json.dumps({"url": info["url"]}), msg_type=IMAGE, session_type=pb.kCIM_SESSION_TYPE_GROUP
    )
    assert ack.server_msg_id > 0
    files = live.core.feature("files")
    await until(lambda: not files.pending_grants)
    assert (await sign(live, bob, [info["id"]]))["refused"] == []
    assert (await sign(live, carol, [info["id"]]))["refused"] == [info["id"]]


def _tus_upload(url: str, token: str, data: bytes, chunk: int, stop_after: int | None = None) -> str:
    from tusclient import client as tus_client

    tus = tus_client.TusClient(url, headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(
        file_stream=io.BytesIO(data), chunk_size=chunk, metadata={"filename": "video notes.bin", "filetype": "x/y"}
    )
    if stop_after is None:
        uploader.upload()
    else:
        uploader.upload(stop_at=stop_after)
    return uploader.url


def _tus_resume(upload_url: str, token: str, data: bytes, chunk: int) -> int:
    from tusclient import client as tus_client

    tus = tus_client.TusClient(upload_url.rsplit("/", 1)[0], headers={"Authorization": f"Bearer {token}"})
    uploader = tus.uploader(file_stream=io.BytesIO(data), chunk_size=chunk, url=upload_url)
    start = uploader.offset  # asked with HEAD
    uploader.upload()
    return start


@pytest_twisted.ensureDeferred
async def test_tus_uploads_resume_and_terminate(files_node):
    pytest.importorskip("tusclient")
    live = files_node
    _, alice = await user(live, "alice")
    _, bob = await user(live, "bobby")
    data = os.urandom(3 * 1024 * 1024 + 17)
    endpoint = live.http_url + "/files/uploads"
    response = await treq.request("OPTIONS", endpoint, headers=bearer(alice), reactor=reactor)
    assert response.code == 204 and response.headers.getRawHeaders("tus-version") == ["1.0.0"]

    # an upload that stops after its first megabyte, and is resumed from where the server says
    url = await threads.deferToThread(_tus_upload, endpoint, alice.user_token, data, 1024 * 1024, 1024 * 1024)
    path = urllib.parse.urlparse(url).path
    response = await treq.head(
        live.http_url + path, headers={**bearer(alice), "Tus-Resumable": "1.0.0"}, reactor=reactor
    )
    assert response.headers.getRawHeaders("upload-offset") == [str(1024 * 1024)]
    # another user cannot see it, nor continue it
    response = await treq.head(live.http_url + path, headers={**bearer(bob), "Tus-Resumable": "1.0.0"}, reactor=reactor)
    assert response.code == 404
    # a PATCH at the wrong offset is refused with the right one
    response = await treq.patch(
        live.http_url + path,
        b"zz",
        headers={
            **bearer(alice),
            "Tus-Resumable": "1.0.0",
            "Upload-Offset": "5",
            "Content-Type": "application/offset+octet-stream",
        },
        reactor=reactor,
    )
    assert response.code == 409 and response.headers.getRawHeaders("upload-offset") == [str(1024 * 1024)]
    started = await threads.deferToThread(_tus_resume, url, alice.user_token, data, 1024 * 1024)
    assert started == 1024 * 1024
    response = await treq.get(live.http_url + path, headers=bearer(alice), reactor=reactor)
    result = await response.json()
    assert (
        result["done"] is True and result["file"]["size"] == len(data) and result["file"]["name"] == "video notes.bin"
    )
    _, body = await get(live, result["file"]["signed"]["url"])
    assert body == data

    # a terminated upload gives its reservation back
    url = await threads.deferToThread(_tus_upload, endpoint, alice.user_token, data, 1024 * 1024, 1024 * 1024)
    path = urllib.parse.urlparse(url).path
    response = await treq.delete(
        live.http_url + path, headers={**bearer(alice), "Tus-Resumable": "1.0.0"}, reactor=reactor
    )
    assert response.code == 204
    response = await treq.get(live.http_url + "/files/usage", headers=bearer(alice), reactor=reactor)
    assert (await response.json())["used"] == len(data)
    # tus without its header is refused
    response = await treq.post(endpoint, b"", headers={**bearer(alice), "Upload-Length": "10"}, reactor=reactor)
    assert response.code == 412
