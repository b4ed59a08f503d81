"""The admin console in a real browser: Debian's Chromium driven by Playwright against ``twistd -n
coffeechat`` in a subprocess (as tests/test_webclient.py, whose skip logic this follows).

The node has real data: earlier days as a node's flushes wrote them into the SQLite file before
the server started, and today's from four people who register over HTTP and chat over CIM TCP
(texts, images, a custom card, a group) in a subprocess that stays connected.  The operator signs
in with the admin token, and the test checks that the cards show today's figures, that each chart
was drawn (a canvas) from the days the API answers, point for point, that the top group, the node
and the accounts are listed, that the CSV export downloads those days, and that kicking and
disabling an account work.  ``UPDATE_SCREENSHOTS=1`` rewrites docs/images/admin-console-*.png.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import treq

from coffeechat.errors import ErrorCode

from .test_process import ROOT, free_port, port_open, twistd
from .test_webclient import CHROMIUM, CHROMIUM_ARGS, _playwright_or_skip

ADMIN = "console-admin-token"
PASSWORD = "correct horse"
SCREENSHOTS = ROOT / "docs" / "images"
DESKTOP = {"width": 1440, "height": 1000}
HISTORY_DAYS = 20

# Earlier days, written through the analytics store the way a node's flushes write them.
SEED_HISTORY = """
import sys
from twisted.internet import defer, task
from coffeechat.backends.sqlite import SQLiteStore
from coffeechat.features.analytics import Batch, SQLAnalyticsStore, day_of
from coffeechat.sql import load_migrations

async def main(reactor, path, days):
    store = SQLiteStore(reactor, path)
    await store.start()
    await store.migrate("analytics", load_migrations(SQLAnalyticsStore.migrations))
    facet = SQLAnalyticsStore(store)
    today = day_of(reactor.seconds())
    for back in range(int(days), 0, -1):
        day = today - back
        i = int(days) - back
        counts = [(day, "messages", "1", 60 + 4 * i + (i * 37) % 23), (day, "messages", "3", 5 + i % 4),
                  (day, "messages_session", "single", 30 + 5 * i),
                  (day, "messages_session", "group", 15 + 2 * i + i % 4),
                  (day, "new_users", "", 1 + i % 3)]
        if i % 5 == 0:
            counts.append((day, "messages", "100", 2))
            counts.append((day, "messages_session", "single", 2))
        active = tuple((1000 + u, day) for u in range(3 + i % 6))
        await facet.flush(Batch(counts=tuple(counts), active=active, keep_from=today - 60))
    await store.stop()

task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
"""

# Registers four people over HTTP, logs them in over CIM TCP and sends today's traffic; prints
# their ids as one JSON line and stays connected until its stdin closes.
TRAFFIC = """
import json, sys
from twisted.internet import defer, task, threads
from coffeechat.protocols import client
from coffeechat.schema import Cmd, pb

async def main(reactor, cim, http, password):
    pw = client.md5_password(password)
    conns = {}
    for name in ("alice", "bobby", "carol", "daveo"):
        answer = await client.register(reactor, http, name, name.title(), pw)
        assert answer["error_code"] == 200, answer
        conns[name] = conn = await client.connect(reactor, cim)
        rsp = await conn.login_password(name, pw)
        assert rsp.result_code == 200, rsp
    ids = {name: c.user_id for name, c in conns.items()}
    alice, bob, carol = conns["alice"], conns["bobby"], conns["carol"]
    for i in range(5):
        assert (await alice.send_message(ids["bobby"], f"hello {i}")).res_code == 1
        assert (await bob.send_message(ids["alice"], f"hi {i}")).res_code == 1
    for i in range(2):
        image = json.dumps({"url": f"https://example.com/{i}.jpg", "width": 4, "height": 3})
        assert (await bob.send_message(ids["alice"], image, msg_type=3)).res_code == 1
    assert (await carol.send_custom(ids["alice"], {"description": "a card", "kind": "dice"})).res_code == 1
    create = pb.CIMGroupCreateReq(group_name="Coffee lovers", member_id_list=[ids["bobby"], ids["carol"]])
    rsp = await alice.request(Cmd.GROUP_CREATE_DEFAULT_REQ, create)
    assert rsp.result_code == 200, rsp
    gid = rsp.group_info.group_id
    for i in range(3):
        assert (await alice.send_message(gid, f"group {i}", session_type=2)).res_code == 1
    for i in range(2):
        assert (await bob.send_message(gid, f"group reply {i}", session_type=2)).res_code == 1
    print(json.dumps({"ids": ids, "group": gid}), flush=True)
    await threads.deferToThread(sys.stdin.read)

task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
"""

TODAY = {"text": 15, "image": 2, "custom": 1}  # texts: 5 + 5 one to one, 3 + 2 in the group
TODAY_GROUP = 5


class Server:
    """``twistd -n coffeechat`` with the admin token, on free loopback ports."""

    def __init__(self, folder: Path, extra_config: str = "", seed: bool = True) -> None:
        self.folder = folder
        self.cim, self.http = free_port(), free_port()
        data = folder / "data"
        data.mkdir()
        self.env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        if seed:
            seeded = subprocess.run(
                [sys.executable, "-c", SEED_HISTORY, str(data / "coffeechat.sqlite3"), str(HISTORY_DAYS)],
                env=self.env,
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
            assert seeded.returncode == 0, seeded.stdout + seeded.stderr
        config = folder / "coffeechat.toml"
        config.write_text(
            f'[server]\ndata_dir = "{data}"\nnode_name = "node-a"\n'
            f'[listen]\ncim = ["tcp:{self.cim}:interface=127.0.0.1"]\n'
            f'http = ["tcp:{self.http}:interface=127.0.0.1"]\nws = []\n'
            f'[http]\nadmin_token = "{ADMIN}"\n'
            "[auth]\nscrypt_n = 1024\n" + extra_config
        )
        self.process = twistd(folder, "--config", str(config))
        self.url = f"http://127.0.0.1:{self.http}"
        self.traffic: subprocess.Popen | None = None

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in (self.cim, self.http)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"twistd did not start:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return (self.folder / "twistd.log").read_text(errors="replace")

    def chat(self) -> dict[str, Any]:
        """Start today's traffic; its ids once it is all stored (its people stay online)."""
        args = [f"tcp:127.0.0.1:{self.cim}", self.url, PASSWORD]
        self.traffic = subprocess.Popen(
            [sys.executable, "-c", TRAFFIC, *args],
            env=self.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.traffic.stdout.readline()
        assert line, self.traffic.stderr.read()
        return json.loads(line)

    def admin(self, path: str) -> Any:
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {ADMIN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if response.headers.get_content_type() == "application/json" else body.decode()

    def stop(self) -> None:
        if self.traffic is not None and self.traffic.poll() is None:
            self.traffic.stdin.close()
            try:
                self.traffic.wait(15)
            except subprocess.TimeoutExpired:
                self.traffic.kill()
                self.traffic.wait()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path)
    try:
        running.wait_until_listening()
        yield running
    finally:
        running.stop()
    log = running.log()
    assert "Traceback" not in log, log


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Any]:
    sync_api = _playwright_or_skip()
    sync_api.expect.set_options(timeout=15_000)
    problems: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC", accept_downloads=True)
        opened = context.new_page()
        opened.on("pageerror", lambda error: problems.append(f"page error: {error}"))
        opened.on("console", lambda msg: msg.type == "error" and problems.append(f"console: {msg.text}"))
        dialogs: list[str] = []
        opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        opened.problems, opened.dialogs = problems, dialogs
        try:
            yield opened
        finally:
            browser.close()


def screenshot(page: Any, tmp_path: Path, name: str, **options: Any) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), **options)
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, SCREENSHOTS / path.name)


def shows_online(page: Any, count: int) -> None:
    """Online now shows ``count``, after a Refresh or two: a kicked device is gone from presence a
    moment after the kick's answer."""
    figure = page.get_by_test_id("online-now")
    for _ in range(40):
        if figure.text_content() == str(count):
            return
        time.sleep(0.25)
        page.get_by_test_id("refresh").click()
    assert figure.text_content() == str(count)


def test_console_shows_real_data_and_acts_on_accounts(server: Server, page: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    people = server.chat()
    ids, gid = people["ids"], people["group"]
    page.goto(server.url + "/admin/")
    expect(page.get_by_test_id("login-screen")).to_be_visible()
    box = page.locator(".login-box").bounding_box()
    margin = 40
    around = {"x": box["x"] - margin, "y": box["y"] - margin, "width": box["width"] + 2 * margin}
    screenshot(page, tmp_path, "admin-console-login", clip={**around, "height": box["height"] + 2 * margin})

    # a wrong token is refused, and says so
    page.get_by_test_id("token-input").fill("not-the-token")
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("login-error")).to_contain_text("refused")
    expect(page.get_by_test_id("dashboard")).to_be_hidden()

    page.get_by_test_id("token-input").fill(ADMIN)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("dashboard")).to_be_visible()
    expect(page.locator("body")).to_have_attribute("data-loaded", "1")

    # the cards: today's figures, as the API has them and as the test made them
    summary = server.admin("/admin/stats/summary")
    assert summary["today"]["messages_by_type"] == TODAY, summary
    assert (summary["online_users"], summary["dau"], summary["today"]["new_users"]) == (4, 4, 4)
    expect(page.get_by_test_id("online-now")).to_have_text("4")
    expect(page.get_by_test_id("dau")).to_have_text("4")
    expect(page.get_by_test_id("mau")).to_have_text(str(summary["mau"]))
    expect(page.get_by_test_id("messages-today")).to_have_text(str(sum(TODAY.values())))
    expect(page.get_by_test_id("new-users-today")).to_have_text("4")
    expect(page.get_by_test_id("storage-used")).to_have_text("0 B")
    assert summary["mau"] == 4 + 8  # today's four and the seeded 1000..1007

    # the charts: drawn on a canvas, one point per day of the 30, the values of the daily API
    daily = server.admin("/admin/stats/daily")["days"]
    assert len(daily) == 30 and daily[-1]["messages_by_type"] == TODAY
    assert sum(1 for d in daily if d["messages"]) == HISTORY_DAYS + 1
    charts = page.evaluate(
        """() => Object.fromEntries(Object.entries(window.adminConsole.charts).map(([k, u]) =>
             [k, {series: u.series.slice(1).map(s => s.label), data: u.data.map(a => Array.from(a))}]))"""
    )
    for key in ("active", "messages", "new-users"):
        chart = page.get_by_test_id(f"chart-{key}")
        expect(chart).to_have_attribute("data-points", "30")
        expect(chart.locator("canvas")).to_have_count(1)
        size = chart.locator("canvas").bounding_box()
        assert size["width"] > 200 and size["height"] > 100, (key, size)
        assert len(charts[key]["data"][0]) == 30
    xs = charts["active"]["data"][0]
    assert [time.strftime("%Y-%m-%d", time.gmtime(x)) for x in xs] == [d["day"] for d in daily]
    assert charts["active"]["series"] == ["DAU", "MAU"]
    assert charts["active"]["data"][1] == [d["active_users"] for d in daily]
    assert charts["active"]["data"][2] == [d["mau"] for d in daily]
    assert charts["messages"]["series"] == ["custom", "image", "text"]
    for i, name in enumerate(charts["messages"]["series"], 1):
        assert charts["messages"]["data"][i] == [d["messages_by_type"].get(name, 0) for d in daily], name
    assert charts["messages"]["data"][3][-1] == TODAY["text"]
    assert charts["new-users"]["data"][1] == [d["new_users"] for d in daily]
    assert charts["new-users"]["data"][1][-1] == 4

    # top groups and nodes
    top = server.admin("/admin/stats/top-groups?limit=10")["groups"]
    assert top == [{"group_id": gid, "messages": TODAY_GROUP, "name": "Coffee lovers"}]
    expect(page.get_by_test_id("top-group")).to_have_count(1)
    today_group = page.locator(f'[data-testid="top-group"][data-group-id="{gid}"]')
    expect(today_group).to_contain_text("Coffee lovers")
    expect(today_group).to_contain_text(str(TODAY_GROUP))
    node = page.locator('[data-testid="node"][data-node="node-a"]')
    expect(node.get_by_test_id("node-health")).to_have_text("ok")
    expect(node).to_contain_text("4")

    # the accounts, listed from the admin API
    users = page.get_by_test_id("user-row")
    expect(users).to_have_count(4)
    expect(page.locator('[data-testid="group-row"]')).to_have_count(1)
    screenshot(page, tmp_path, "admin-console-dashboard", full_page=True)

    # CSV export: the same 30 days
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / "export.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text())))
    assert [r["day"] for r in table] == [d["day"] for d in daily]
    assert table[-1]["messages_text"] == str(TODAY["text"]) and table[-1]["active_users"] == "4"
    assert server.admin("/admin/stats/daily.csv").replace("\r\n", "\n") == saved.read_text().replace("\r\n", "\n")

    # kick daveo: his one device goes, and online now follows
    dave = page.locator(f'[data-testid="user-row"][data-user-id="{ids["daveo"]}"]')
    dave.get_by_test_id("user-kick").click()
    expect(page.get_by_test_id("status")).to_contain_text("daveo: kick done, 1 device(s) disconnected")
    shows_online(page, 3)

    # disable carol: the row says so, the account is disabled, and she is offline
    carol = page.locator(f'[data-testid="user-row"][data-user-id="{ids["carol"]}"]')
    carol.get_by_test_id("user-disable").click()
    expect(carol.get_by_test_id("user-state")).to_have_text("disabled")
    assert server.admin(f"/admin/users/{ids['carol']}")["user"]["disabled"] is True
    shows_online(page, 2)

    # change the group's owner to bobby
    row = page.locator(f'[data-testid="group-row"][data-group-id="{gid}"]')
    row.get_by_test_id("group-owner-open").click()
    expect(page.get_by_test_id("group-detail")).to_be_visible()
    page.get_by_test_id("new-owner").select_option(str(ids["bobby"]))
    screenshot(page, tmp_path, "admin-console-actions", clip=page.locator("section.tables").nth(1).bounding_box())
    page.get_by_test_id("change-owner").click()
    expect(row.get_by_test_id("group-owner")).to_have_text(str(ids["bobby"]))
    assert server.admin(f"/admin/groups/{gid}")["group"]["ownerId"] == ids["bobby"]

    # and carol may log in again
    carol.get_by_test_id("user-enable").click()
    expect(carol.get_by_test_id("user-state")).to_have_text("active")
    assert server.admin(f"/admin/users/{ids['carol']}")["user"]["disabled"] is False

    # delete daveo (the page asks first; the test's dialog handler says yes), dissolve the group
    dave.get_by_test_id("user-delete").click()
    expect(dave.get_by_test_id("user-state")).to_have_text("deleted")
    assert server.admin(f"/admin/users/{ids['daveo']}")["user"]["deleted"] is True
    row.get_by_test_id("group-dissolve").click()
    expect(page.get_by_test_id("group-row")).to_have_count(0)
    assert page.dialogs == [
        f"Delete daveo (id {ids['daveo']}) and their data? This cannot be undone.",
        f"Dissolve Coffee lovers (id {gid})? Every member loses it.",
    ]

    # the wrong token's 401 is the only thing the browser complained of
    assert [p for p in page.problems if "status of 401" not in p] == [], page.problems


@pytest_twisted.ensureDeferred
async def test_the_page_and_its_files_are_served_and_the_api_still_wants_the_token(live_node):
    base = live_node.http_url
    page = await treq.get(base + "/admin/")
    html = (await page.content()).decode()
    assert page.code == 200 and page.headers.getRawHeaders("content-type") == ["text/html; charset=utf-8"]
    assert "script-src 'self'" in page.headers.getRawHeaders("content-security-policy")[0]
    assert 'src="/admin/console/console.js"' in html and "cdn" not in html.lower()
    for name, kind in (
        ("console.js", "text/javascript; charset=utf-8"),
        ("uPlot.iife.min.js", "text/javascript; charset=utf-8"),
        ("uPlot.min.css", "text/css; charset=utf-8"),
        ("console.css", "text/css; charset=utf-8"),
    ):
        answer = await treq.get(f"{base}/admin/console/{name}")
        assert answer.code == 200 and answer.headers.getRawHeaders("content-type") == [kind], name
        assert len(await answer.content()) > 1000, name
    for path in ("/admin/console/__init__.py", "/admin/console/uPlot-LICENSE", "/admin/console/../http.py"):
        answer = await treq.get(base + path)
        assert answer.code == 404, path
        await answer.content()
    redirect = await treq.get(base + "/admin", allow_redirects=False)
    assert redirect.code == 301 and redirect.headers.getRawHeaders("location") == ["/admin/"]
    await redirect.content()
    # everything else under /admin/ is the API: the token first
    for path in ("/admin/stats/summary", "/admin/users/search", "/admin/consolex", "/admin//x"):
        answer = await treq.get(base + path)
        assert answer.code == 401 and json.loads(await answer.content())["error_code"] == ErrorCode.FORBIDDEN, path
    answer = await treq.post(base + "/admin", b"{}")
    assert answer.code == 401
    await answer.content()


def test_without_the_analytics_feature_the_actions_still_work(tmp_path: Path, page: Any) -> None:
    """Analytics off: the token still signs in, the page says why there are no figures, and the
    accounts are listed and can be acted on."""
    from playwright.sync_api import expect

    from coffeechat.config import DEFAULT_FEATURES

    features = json.dumps([f for f in DEFAULT_FEATURES if f != "analytics"])
    running = Server(tmp_path, f"[features]\nenabled = {features}\n", seed=False)
    try:
        running.wait_until_listening()
        ids = running.chat()["ids"]
        page.goto(running.url + "/admin/")
        page.get_by_test_id("token-input").fill(ADMIN)
        page.get_by_test_id("login-submit").click()
        expect(page.get_by_test_id("status")).to_contain_text("analytics feature is off")
        row = page.locator(f'[data-testid="user-row"][data-user-id="{ids["bobby"]}"]')
        row.get_by_test_id("user-disable").click()
        expect(row.get_by_test_id("user-state")).to_have_text("disabled")
        assert running.admin(f"/admin/users/{ids['bobby']}")["user"]["disabled"] is True
    finally:
        running.stop()
    assert "Traceback" not in running.log()
    assert [p for p in page.problems if "status of 404" not in p] == [], page.problems
