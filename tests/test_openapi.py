"""The OpenAPI documents the server serves (``GET /admin/openapi.json``, ``GET /api/openapi.json``),
and schemathesis run against the admin one over a real node on loopback: every operation, with
generated valid and invalid input, must answer as the document says (no server error, a
documented status and content type, an answer matching its schema, invalid input refused)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
import schemathesis
from twisted.internet import reactor, threads
from twisted.web.client import Agent, readBody
from twisted.web.http_headers import Headers

from coffeechat.schema import pb

from .conftest import node_config, start_node, stop_node
from .test_admin_api import TOKEN, Admin, md5

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

#: the checks schemathesis makes of every answer (its "all" less those needing links between
#: operations, which the document does not declare)
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "ignored_auth",
)


async def get_json(url: str, token: str | None = None) -> tuple[int, dict]:
    headers = Headers({b"Authorization": [f"Bearer {token}".encode()]} if token else {})
    response = await Agent(reactor).request(b"GET", url.encode(), headers)
    return response.code, json.loads(await readBody(response))


@pytest_twisted.async_yield_fixture
async def node(tmp_path):
    settings = {
        "listen.ws": [],
        "admin_api.broadcast_interval": 0.2,
        # so that POST /admin/backups takes one (202) rather than refusing
        "backups.dir": str(tmp_path / "backups"),
    }
    live = await start_node(node_config(tmp_path, **settings))
    yield Admin(live)
    await stop_node(live)


def admin_routes(core) -> set[tuple[str, str]]:
    return {
        (r.method.lower(), "/" + "/".join(s if isinstance(s, str) else f"{{{s[0]}}}" for s in r.segments))
        for r in core.registry.routes
        if r.auth == "admin" and r.method not in ("HEAD", "OPTIONS")
    }


@pytest_twisted.ensureDeferred
async def test_the_admin_document_describes_every_admin_route(node):
    status, document = await get_json(node.live.http_url + "/admin/openapi.json", TOKEN)
    assert status == 200
    assert document["openapi"] == "3.1.0"
    described = {(m, p) for p, item in document["paths"].items() for m in item}
    assert described == admin_routes(node.core)
    # those of other features too, described in full
    for method, path in [
        ("get", "/admin/users/search"),
        ("delete", "/admin/users/{user_id}"),
        ("post", "/admin/users/{user_id}/kick"),
        ("get", "/admin/groups"),
        ("post", "/admin/groups/{group_id}/owner"),
        ("get", "/admin/messages"),
        ("get", "/admin/messages/export"),
        ("post", "/admin/messages/recall"),
        ("post", "/admin/broadcasts"),
        ("get", "/admin/stats"),
        ("post", "/admin/users"),
        ("post", "/admin/users/{user_id}/disable"),
        ("get", "/admin/webhooks"),
        ("get", "/admin/files/usage"),
        ("get", "/admin/bots"),
    ]:
        operation = document["paths"][path][method]
        assert operation["summary"] and operation["security"] == [{"adminToken": []}], (method, path)
        assert "401" in operation["responses"] and "400" in operation["responses"]
        success = operation["responses"].get("200") or operation["responses"]["202"]
        assert success["content"], (method, path)
    started = document["paths"]["/admin/broadcasts"]["post"]["responses"]
    assert "202" in started and "200" not in started
    assert "202" not in document["paths"]["/admin/users"]["post"]["responses"]
    export = document["paths"]["/admin/messages/export"]["get"]
    assert list(export["responses"]["200"]["content"]) == ["application/x-ndjson"]
    search = document["paths"]["/admin/users/search"]["get"]
    assert [p["name"] for p in search["parameters"]] == ["q", "after", "limit"]
    # no admin route in the public document, and no public one here
    status, public = await get_json(node.live.http_url + "/api/openapi.json")
    assert status == 200
    assert "/api/login" in public["paths"] and "/user/register" in public["paths"]
    assert not [p for p in public["paths"] if p.startswith("/admin/")]
    # schemathesis reads both
    assert len(list(schemathesis.openapi.from_dict(document).get_all_operations())) == len(described)
    assert list(schemathesis.openapi.from_dict(public).get_all_operations())


@pytest_twisted.ensureDeferred
async def test_the_document_needs_the_admin_token(node):
    status, answer = await get_json(node.live.http_url + "/admin/openapi.json")
    assert status == 401 and answer["error_msg"] == "a valid admin token is required"


def schemathesis_run(url: str, report: Path, *args: str) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        url,
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--checks",
        ",".join(CHECKS),
        "--workers",
        "1",
        "--seed",
        "14",
        "--report",
        "junit",
        "--report-junit-path",
        str(report),
        "--no-color",
        *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=report.parent)


@pytest_twisted.ensureDeferred
async def test_schemathesis_against_the_admin_api(node, tmp_path):
    # something to find: users with devices, a group, a conversation
    alice, bob = await node.user("alice"), await node.user("bobby")
    await node.group(alice, [bob], "Team")
    device = await node.device("alice", client_type=pb.kCIM_CLIENT_TYPE_WEB)
    await device.send_message(bob, "hello")
    await node.core.feature("accounts").create_user("carol", "Carol", md5("secret"))
    report = tmp_path / "junit.xml"
    result = await threads.deferToThread(
        schemathesis_run,
        node.live.http_url + "/admin/openapi.json",
        report,
        "--max-examples",
        "25",
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    # every operation of the document was tested, but the one that served schemathesis the
    # document itself (which it leaves out; the tests above read it)
    routes = len(admin_routes(node.core)) - 1
    assert f"Selected: {routes}/{routes}" in result.stdout and f"Tested: {routes}" in result.stdout, result.stdout
    assert "<failure" not in report.read_text()
