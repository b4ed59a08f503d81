"""The web client in a real browser: Debian's Chromium driven by Playwright against ``twistd -n
coffeechat`` in a subprocess (Playwright's sync API cannot run inside the reactor, and a real
process is what users run).

Two people chat in two browser contexts; a third writes from the TCP client library in a
subprocess. Then three people chat in a group (created, joined and left from the page), with a
fourth device writing to it over TCP. Then two people see each other typing and recall messages.
Without Chromium or Playwright the tests are skipped, except under CI (env CI set), where that is
a failure. ``UPDATE_SCREENSHOTS=1`` rewrites the screenshots in docs/images/.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .test_process import ROOT, free_port, port_open, twistd

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
SCREENSHOTS = ROOT / "docs" / "images"
PASSWORD = "correct horse"
XSS = "<img src=x onerror=alert(1)>"

# Runs in a subprocess with its own reactor: registers (or reuses) an account over HTTP, logs in
# over CIM TCP and sends each text to the user (session type 1) or group (2) given; prints its user
# id and the stored ids.
TCP_SENDER = """
import json, sys
from twisted.internet import defer, task
from coffeechat.protocols import client

async def main(reactor, cim, http, name, password, session_type, to_id, *texts):
    pw = client.md5_password(password)
    answer = await client.register(reactor, http, name, name.title(), pw)
    assert answer["error_code"] in (200, 9000), answer
    conn = await client.connect(reactor, cim)
    rsp = await conn.login_password(name, pw)
    assert rsp.result_code == 200, rsp
    ids = []
    for text in texts:
        ack = await conn.send_message(int(to_id), text, session_type=int(session_type))
        assert ack.res_code == 1, ack
        ids.append(ack.server_msg_id)
    print(json.dumps({"user_id": conn.user_id, "ids": ids}))
    await conn.close()

task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
"""


def _playwright_or_skip() -> Any:
    """The sync Playwright module, or skip (fail under CI) saying what is missing."""
    reason = None
    try:
        from playwright import sync_api
    except ImportError:
        sync_api = None
        reason = "playwright is not installed (pip install '.[test]')"
    if sync_api is not None and not Path(CHROMIUM).exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
    if reason is None:
        return sync_api
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


class Server:
    """``twistd -n coffeechat`` on free loopback ports, with its data in a temporary folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.cim, self.http, self.ws = free_port(), free_port(), free_port()
        config = folder / "coffeechat.toml"
        config.write_text(
            f'[server]\ndata_dir = "{folder / "data"}"\n'
            f'[listen]\ncim = ["tcp:{self.cim}:interface=127.0.0.1"]\n'
            f'http = ["tcp:{self.http}:interface=127.0.0.1"]\n'
            f'ws = ["tcp:{self.ws}:interface=127.0.0.1"]\n'
            # A cheap password hash: logins in a test need not resist brute force.
            "[auth]\nscrypt_n = 1024\n"
        )
        self.process = twistd(folder, "--config", str(config))
        self.url = f"http://127.0.0.1:{self.http}/"

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not all(port_open(p) for p in (self.cim, self.http, self.ws)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"twistd did not start:\n{self.log()}")
            time.sleep(0.1)

    def log(self) -> str:
        return (self.folder / "twistd.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def send_over_tcp(self, sender: str, to_id: int, *texts: str, group: bool = False) -> int:
        """Send texts to ``to_id`` (a user, or a group) as ``sender`` with the TCP client library;
        the sender's user id."""
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        session_type = "2" if group else "1"
        args = [f"tcp:127.0.0.1:{self.cim}", self.url.rstrip("/"), sender, PASSWORD, session_type, str(to_id), *texts]
        result = subprocess.run(
            [sys.executable, "-c", TCP_SENDER, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        answer = json.loads(result.stdout.strip().splitlines()[-1])
        assert len(answer["ids"]) == len(texts), answer
        return answer["user_id"]


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


class Browser:
    """Chromium with one context per person (each with its own storage), collecting anything the
    pages complain about: script errors, console errors (CSP violations among them) and dialogs."""

    def __init__(self, sync_api: Any, tmp_path: Path) -> None:
        self.expect = sync_api.expect
        self.expect.set_options(timeout=15_000)
        self._manager = sync_api.sync_playwright()
        playwright = self._manager.__enter__()
        # launch() gives every run a fresh temporary profile (user data dir) of its own.
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        self.problems: list[str] = []
        self.dialogs: list[str] = []
        self.shots = tmp_path / "screenshots"
        self.shots.mkdir()

    def page(
        self, viewport: dict[str, int], url: str, *, block_ws: dict[str, Any] | None = None, fake_clock: bool = False
    ) -> Any:
        context = self.browser.new_context(viewport=viewport, locale="en-GB", timezone_id="UTC")
        page = context.new_page()
        if fake_clock:
            # The page's clock runs as usual until the test moves it on (page.clock.fast_forward).
            page.clock.install()
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("console", lambda msg: msg.type == "error" and self.problems.append(f"console: {msg.text}"))
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        if block_ws is not None:
            # Lets the test cut this page's WebSocket and hold it offline, as a flaky network would.
            def route(ws: Any) -> None:
                if block_ws["blocked"]:
                    ws.close()
                else:
                    ws.connect_to_server()
                    block_ws["open"].append(ws)

            page.route_web_socket("**/ws", route)
        page.goto(url)
        return page

    def screenshot(self, page: Any, name: str) -> None:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path))
        if os.environ.get("UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)

    def close(self) -> None:
        self.browser.close()
        self._manager.__exit__(None, None, None)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    sync_api = _playwright_or_skip()
    opened = Browser(sync_api, tmp_path)
    try:
        yield opened
    finally:
        opened.close()


# ---- steps ---------------------------------------------------------------------------------------


def register(b: Browser, page: Any, name: str, nick: str) -> int:
    """Register through the page; it logs in by itself. Returns the user id it stored."""
    page.get_by_test_id("register-tab").click()
    page.get_by_test_id("login-username").fill(name)
    page.get_by_test_id("login-nickname").fill(nick)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    b.expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    b.expect(page.get_by_test_id("me-name")).to_have_text(nick)
    return page.evaluate("JSON.parse(localStorage.getItem('coffeechat.session')).userId")


def log_in(b: Browser, page: Any, name: str) -> None:
    b.expect(page.get_by_test_id("login-screen")).to_be_visible()
    page.get_by_test_id("login-username").fill(name)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()
    b.expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")


def conversation(page: Any, peer_id: int) -> Any:
    return page.locator(f'[data-testid="conversation-item"][data-peer-id="{peer_id}"]')


def group_item(page: Any, group_id: int) -> Any:
    return page.locator(f'[data-testid="conversation-item"][data-group-id="{group_id}"]')


def find_person(b: Browser, page: Any, query: str, user_id: int) -> Any:
    """Open "New chat" and search the directory for ``query``: the result for ``user_id``.  The
    panel lists only one's contacts (docs/directory.md): anyone else is found by name."""
    page.get_by_test_id("new-chat-button").click()
    page.get_by_test_id("user-search-input").fill(query)
    result = page.locator(f'[data-testid="search-result"][data-user-id="{user_id}"]')
    b.expect(result).to_be_visible()
    return result


def pick(page: Any, picker: str, user_id: int) -> None:
    """Tick a person in one of the pickers (new group, add members)."""
    page.get_by_test_id(picker).locator(f'[data-testid="pick-item"][data-user-id="{user_id}"] input').check()


def last_message(page: Any) -> Any:
    return page.get_by_test_id("message").last


def send(page: Any, text: str) -> None:
    page.get_by_test_id("composer-input").fill(text)
    page.get_by_test_id("send-button").click()


def texts(page: Any) -> list[str]:
    return page.get_by_test_id("message-text").all_text_contents()


def statuses(page: Any) -> list[str]:
    return [s.get_attribute("data-status") for s in page.get_by_test_id("message-status").all()]


# ---- the scenario ------------------------------------------------------------------------------


def test_two_people_chat_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    link = {"blocked": False, "open": []}
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url, block_ws=link)
    phone = b.page(PHONE, server.url)
    expect(alice.get_by_test_id("login-screen")).to_be_visible()
    b.screenshot(alice, "webclient-login-desktop")
    b.screenshot(phone, "webclient-login-phone")

    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")

    # Alice finds Bob by name in "New chat" and writes, with emoji and markup.
    find_person(b, alice, "bob", bob_id).click()
    expect(alice.get_by_test_id("chat-title")).to_have_text("Bob")
    send(alice, "Hi Bob! Coffee later? ☕")
    send(alice, XSS)
    alice.get_by_test_id("composer-input").fill("See you at 3 ")
    alice.get_by_test_id("emoji-button").click()
    alice.get_by_test_id("emoji").filter(has_text="😀").click()
    alice.get_by_test_id("send-button").click()
    expect(alice.get_by_test_id("message-status")).to_have_count(3)
    expect(alice.locator('[data-status="sent"]')).to_have_count(3)

    # A third person writes to Bob from the TCP client library.
    carol_id = server.send_over_tcp("carol", bob_id, "Hello from the terminal", "Are you coming to the standup?")

    # Bob, with no chat open, sees both conversations with their unread counts and previews.
    expect(conversation(bob, alice_id).get_by_test_id("unread-badge")).to_have_text("3")
    expect(conversation(bob, alice_id).get_by_test_id("conversation-preview")).to_have_text("See you at 3 😀")
    expect(conversation(bob, carol_id).get_by_test_id("unread-badge")).to_have_text("2")
    expect(conversation(bob, carol_id).get_by_test_id("conversation-name")).to_have_text("Carol")
    expect(bob).to_have_title("(5) CoffeeChat")
    b.screenshot(bob, "webclient-list-desktop")

    # Bob on his phone too (a second device): same list, same badges.
    log_in(b, phone, "bobby")
    expect(conversation(phone, alice_id).get_by_test_id("unread-badge")).to_have_text("3")
    expect(conversation(phone, carol_id).get_by_test_id("unread-badge")).to_have_text("2")
    expect(phone.get_by_test_id("chat-view")).to_be_hidden()  # phone: the list is the whole screen
    b.screenshot(phone, "webclient-list-phone")

    # Bob opens Alice's chat: the text shows as text (no element, no script), the badge goes,
    # on his phone too, and Alice sees her messages read.
    conversation(bob, alice_id).click()
    expect(bob.get_by_test_id("message-text")).to_have_text(["Hi Bob! Coffee later? ☕", XSS, "See you at 3 😀"])
    assert bob.get_by_test_id("message-list").locator("img").count() == 0
    expect(conversation(bob, alice_id).get_by_test_id("unread-badge")).to_have_count(0)
    expect(conversation(phone, alice_id).get_by_test_id("unread-badge")).to_have_count(0)
    expect(alice.locator('[data-status="read"]')).to_have_count(3)

    # Bob answers; Alice, who has the chat open, gets it live and reads it at once.
    send(bob, "Sounds good 👍 see you there")
    expect(alice.get_by_test_id("message-text").last).to_have_text("Sounds good 👍 see you there")
    expect(bob.locator('[data-status="read"]')).to_have_count(1)
    expect(conversation(alice, bob_id).get_by_test_id("unread-badge")).to_have_count(0)
    b.screenshot(alice, "webclient-chat-desktop")

    conversation(phone, alice_id).click()
    expect(phone.get_by_test_id("conversation-list")).to_be_hidden()
    expect(phone.get_by_test_id("message-text")).to_have_count(4)
    b.screenshot(phone, "webclient-chat-phone")
    phone.get_by_test_id("back-button").click()
    expect(phone.get_by_test_id("conversation-list")).to_be_visible()

    # A reload keeps Bob logged in (the stored token) and shows the history with read states.
    bob.reload()
    expect(bob.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(bob.get_by_test_id("login-screen")).to_be_hidden()
    conversation(bob, alice_id).click()
    expect(bob.get_by_test_id("message-text")).to_have_text(
        ["Hi Bob! Coffee later? ☕", XSS, "See you at 3 😀", "Sounds good 👍 see you there"]
    )
    expect(bob.get_by_test_id("history-start")).to_be_visible()
    assert statuses(bob) == ["read"]

    # Bob's network drops; what is sent meanwhile arrives when he is back, by catch-up.
    link["blocked"] = True
    for ws in link["open"]:
        ws.close()
    expect(bob.get_by_test_id("conn-status")).to_have_attribute("data-state", "offline")
    send(alice, "Are you still there?")
    server.send_over_tcp("carol", bob_id, "Ping from the terminal")
    bob.wait_for_timeout(500)  # a reconnect attempt or two is refused meanwhile
    assert "Are you still there?" not in texts(bob)
    link["blocked"] = False
    bob.evaluate("window.dispatchEvent(new Event('online'))")  # what the browser says when the network is back
    expect(bob.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(bob.get_by_test_id("message-text").last).to_have_text("Are you still there?")
    expect(conversation(bob, carol_id).get_by_test_id("unread-badge")).to_have_text("3")
    expect(alice.locator('[data-status="read"]')).to_have_count(4)  # Bob's open chat read it

    # A long conversation pages backwards as Bob scrolls up.
    server.send_over_tcp("carol", bob_id, *[f"Line {i}" for i in range(1, 61)])
    expect(conversation(bob, carol_id).get_by_test_id("unread-badge")).to_have_text("63")
    conversation(bob, carol_id).click()
    expect(bob.get_by_test_id("message-text").last).to_have_text("Line 60")
    assert bob.get_by_test_id("message").count() < 63  # only the newest page so far
    for _ in range(10):
        if bob.get_by_test_id("history-start").count():
            break
        bob.get_by_test_id("message-list").evaluate("list => { list.scrollTop = 0; }")
        bob.wait_for_timeout(300)
    expect(bob.get_by_test_id("history-start")).to_be_visible()
    shown = texts(bob)
    assert shown == [
        "Hello from the terminal",
        "Are you coming to the standup?",
        "Ping from the terminal",
        *[f"Line {i}" for i in range(1, 61)],
    ]
    seqs = [int(s) for s in bob.get_by_test_id("message").evaluate_all("items => items.map(i => i.dataset.seq)")]
    assert seqs == list(range(1, 64))

    # Logging out revokes the token: a reload shows the login screen.
    token = bob.evaluate("JSON.parse(localStorage.getItem('coffeechat.session')).token")
    bob.get_by_test_id("logout-button").click()
    expect(bob.get_by_test_id("login-screen")).to_be_visible()
    answer = bob.evaluate(
        """token => fetch('api/logout', {method: 'POST', headers: {Authorization: 'Bearer ' + token}})
                     .then(r => r.json())""",
        token,
    )
    assert answer["error_code"] == 2002, answer
    bob.reload()
    expect(bob.get_by_test_id("login-screen")).to_be_visible()

    # A wrong password is refused with a reason; a stored token the server refuses leads back to
    # the login screen, saying why.
    bob.get_by_test_id("login-username").fill("bobby")
    bob.get_by_test_id("login-password").fill("not the password")
    bob.get_by_test_id("login-submit").click()
    expect(bob.get_by_test_id("login-error")).to_have_text("Wrong user name or password.")
    stale = json.dumps({"userId": bob_id, "userName": "bobby", "nickName": "Bob", "token": token})
    bob.evaluate("session => localStorage.setItem('coffeechat.session', session)", stale)
    bob.reload()
    expect(bob.get_by_test_id("login-error")).to_have_text("Your session has expired. Please log in again.")
    assert bob.evaluate("localStorage.getItem('coffeechat.session')") is None

    assert b.dialogs == [], b.dialogs  # the markup never ran
    assert b.problems == [], b.problems


def test_group_chat_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(PHONE, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    carol_id = register(b, carol, "carol", "Carol")
    name = "Weekend trip ⛺"

    # Alice creates a group with Bob from the page: pencil, Bob found by name, "New group", a
    # name, Bob ticked (the pickers list the people one knows: contacts and those found).
    find_person(b, alice, "bobby", bob_id)
    alice.get_by_test_id("new-group-button").click()
    alice.get_by_test_id("group-name-input").fill(name)
    expect(alice.get_by_test_id("create-group-submit")).to_be_disabled()
    pick(alice, "group-member-picker", bob_id)
    alice.get_by_test_id("create-group-submit").click()
    expect(alice.get_by_test_id("chat-title")).to_have_text(name)
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("2 members")
    expect(alice.get_by_test_id("system-message")).to_have_text([f"You created the group “{name}” with Bob"])
    created = alice.locator('[data-testid="conversation-item"][data-session-type="2"]')
    group_id = int(created.get_attribute("data-group-id"))

    # She writes, naming Bob with the @ picker; Bob, with nothing open, sees the group in his list:
    # its name, the sender in the preview, unread 2 (the creation notice and the message), "@you".
    alice.get_by_test_id("composer-input").fill("@Bo")
    alice.get_by_test_id("mention-option").filter(has_text="Bob").click()
    alice.keyboard.insert_text("are you in for Saturday? ☀️")
    alice.get_by_test_id("send-button").click()
    expect(alice.locator('[data-status="sent"]')).to_have_count(1)
    entry = group_item(bob, group_id)
    expect(entry.get_by_test_id("unread-badge")).to_have_text("2")
    expect(entry.get_by_test_id("conversation-name")).to_have_text(name)
    expect(entry.get_by_test_id("conversation-preview")).to_have_text("Alice: @Bob are you in for Saturday? ☀️")
    expect(entry.get_by_test_id("mention-marker")).to_have_text("@you")
    expect(bob).to_have_title("(2) CoffeeChat")
    # The same from the server after a reload: the list's summary (unread, atMe) and GROUP_INFO.
    bob.reload()
    expect(entry.get_by_test_id("conversation-name")).to_have_text(name)
    expect(entry.get_by_test_id("unread-badge")).to_have_text("2")
    expect(entry.get_by_test_id("mention-marker")).to_have_text("@you")
    expect(entry.get_by_test_id("conversation-preview")).to_have_text("Alice: @Bob are you in for Saturday? ☀️")

    # Bob opens it: the notice as a system line, Alice's message under her name; the badge goes,
    # and Alice's message counts as read by everyone who could see it (✓✓).
    entry.click()
    expect(bob.get_by_test_id("system-message")).to_have_text([f"Alice created the group “{name}” with you"])
    expect(bob.get_by_test_id("message-text")).to_have_text(["@Bob are you in for Saturday? ☀️"])
    expect(bob.get_by_test_id("message-sender")).to_have_text(["Alice"])
    expect(bob.get_by_test_id("history-start")).to_have_text("This is the start of the group.")
    expect(entry.get_by_test_id("unread-badge")).to_have_count(0)
    expect(entry.get_by_test_id("mention-marker")).to_have_count(0)
    expect(alice.locator('[data-status="read"]')).to_have_count(1)
    send(bob, "Count me in! 🎒")
    expect(last_message(alice).get_by_test_id("message-text")).to_have_text("Count me in! 🎒")
    expect(last_message(alice).get_by_test_id("message-sender")).to_have_text("Bob")
    expect(group_item(alice, group_id).get_by_test_id("unread-badge")).to_have_count(0)  # open: read at once

    # Alice finds Carol by name, then invites her from the group panel.
    find_person(b, alice, "carol", carol_id)
    alice.get_by_test_id("user-list-close").click()
    alice.get_by_test_id("group-info-button").click()
    expect(alice.get_by_test_id("member-name")).to_have_text(["Alice (you)", "Bob"])
    alice.get_by_test_id("invite-button").click()
    expect(alice.get_by_test_id("invite-picker").get_by_test_id("pick-item")).to_have_count(1)  # only Carol is not in
    pick(alice, "invite-picker", carol_id)
    alice.get_by_test_id("invite-submit").click()
    expect(alice.get_by_test_id("system-message").last).to_have_text("You invited Carol")
    expect(bob.get_by_test_id("system-message").last).to_have_text("Alice invited Carol")
    send(alice, "Welcome, Carol! 👋")

    # The member list: the three, Alice the owner.
    expect(alice.get_by_test_id("member-name")).to_have_text(["Alice (you)", "Bob", "Carol"])
    expect(alice.get_by_test_id("member-role")).to_have_text(["Owner"])
    owner = alice.locator('[data-testid="member-item"][data-role="owner"]')
    expect(owner).to_have_attribute("data-user-id", str(alice_id))
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("3 members")

    # Carol, on her phone, has the group: the invitation and what came after it, nothing from before
    # she joined (the server refuses it; the page says so instead of "Loading…").
    entry = group_item(carol, group_id)
    expect(entry.get_by_test_id("unread-badge")).to_have_text("2")
    entry.click()
    expect(carol.get_by_test_id("conversation-list")).to_be_hidden()
    expect(carol.get_by_test_id("system-message")).to_have_text(["Alice invited you"])
    expect(carol.get_by_test_id("message-text")).to_have_text(["Welcome, Carol! 👋"])
    expect(carol.get_by_test_id("history-start")).to_have_text("Messages from before you joined are not shown.")
    assert "Count me in" not in carol.get_by_test_id("message-list").inner_text()

    # Carol also writes from a terminal (the TCP client library, her second device): every page
    # shows it, hers as her own.
    server.send_over_tcp("carol", group_id, "Hello from the terminal 🖥️", group=True)
    for page in (alice, bob, carol):
        expect(last_message(page).get_by_test_id("message-text")).to_have_text("Hello from the terminal 🖥️")
    expect(last_message(alice).get_by_test_id("message-sender")).to_have_text("Carol")
    expect(last_message(carol)).to_have_attribute("data-mine", "true")
    send(bob, "Hi Carol 😊")
    expect(last_message(carol).get_by_test_id("message-sender")).to_have_text("Bob")
    expect(last_message(alice).get_by_test_id("message-text")).to_have_text("Hi Carol 😊")
    b.screenshot(alice, "webclient-group-desktop")
    b.screenshot(carol, "webclient-group-phone")
    carol.get_by_test_id("group-info-button").click()  # the panel covers the phone's screen
    expect(carol.get_by_test_id("member-name")).to_have_text(["Alice", "Carol (you)", "Bob"])
    b.screenshot(carol, "webclient-group-members-phone")
    carol.get_by_test_id("group-panel-close").click()
    expect(carol.get_by_test_id("group-panel")).to_be_hidden()

    # Bob leaves. The group is gone from his list; Alice and Carol see "Bob left", and Alice's
    # member list follows.
    bob.get_by_test_id("group-info-button").click()
    bob.get_by_test_id("leave-group-button").click()
    expect(bob.get_by_test_id("leave-confirm-text")).to_contain_text(f"Leave “{name}”?")
    bob.get_by_test_id("leave-confirm-button").click()
    expect(group_item(bob, group_id)).to_have_count(0)
    expect(bob.get_by_test_id("chat-empty")).to_be_visible()
    expect(alice.get_by_test_id("system-message").last).to_have_text("Bob left")
    expect(carol.get_by_test_id("system-message").last).to_have_text("Bob left")
    expect(alice.get_by_test_id("member-name")).to_have_text(["Alice (you)", "Carol"])
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("2 members")
    send(alice, "Bob will be missed")
    expect(last_message(carol).get_by_test_id("message-text")).to_have_text("Bob will be missed")

    # In a group, "typing…" names the typer, in the header and in the list.
    carol.get_by_test_id("composer-input").fill("Where do we meet")
    expect(alice.get_by_test_id("typing-indicator")).to_have_text("Carol is typing…")
    expect(alice.get_by_test_id("chat-subtitle")).to_be_hidden()
    expect(group_item(alice, group_id).get_by_test_id("conversation-typing")).to_have_text("Carol is typing…")
    carol.get_by_test_id("composer-input").fill("")
    expect(alice.get_by_test_id("typing-indicator")).to_have_text("")
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("2 members")
    expect(group_item(alice, group_id).get_by_test_id("conversation-typing")).to_have_count(0)

    # The owner may recall anyone's message (a member only their own): Alice takes back what
    # Carol wrote from the terminal; both see that she did, neither the text.
    theirs = carol.get_by_test_id("message").filter(has_text="Bob will be missed")
    theirs.get_by_test_id("message-actions").click()  # a member: Forward only on others' messages
    expect(theirs.get_by_test_id("forward-button")).to_be_visible()
    expect(theirs.get_by_test_id("recall-button")).to_be_hidden()
    carol.keyboard.press("Escape")
    terminal = alice.get_by_test_id("message").filter(has_text="Hello from the terminal")
    terminal.get_by_test_id("message-actions").click()
    alice.get_by_test_id("recall-button").click()
    expect(alice.get_by_test_id("recalled-message")).to_have_text(["You recalled a message"])
    expect(carol.get_by_test_id("recalled-message")).to_have_text(["Alice recalled a message"])
    for page in (alice, carol):
        expect(page.get_by_test_id("message-list")).not_to_contain_text("Hello from the terminal")

    # After a reload, the group is still not Bob's; Alice's list still shows it, by name.
    bob.reload()
    expect(bob.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(bob.get_by_test_id("conversation-item")).to_have_count(0)
    expect(group_item(bob, group_id)).to_have_count(0)
    alice.reload()
    expect(alice.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(group_item(alice, group_id).get_by_test_id("conversation-name")).to_have_text(name)
    expect(group_item(alice, group_id).get_by_test_id("conversation-preview")).to_have_text("You: Bob will be missed")
    group_item(alice, group_id).click()
    expect(alice.get_by_test_id("recalled-message")).to_have_text(["You recalled a message"])
    expect(alice.get_by_test_id("message-list")).not_to_contain_text("Hello from the terminal")

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems


def test_typing_and_recall_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url, fake_clock=True)  # for the timeouts of "typing…" and of recall
    bob = b.page(DESKTOP, server.url)

    # Alice's socket passes through Playwright, which can answer a recall in the server's stead:
    # the server's refusals (RECALL_TOO_LATE after two minutes) are not to be waited for here.
    refuse = {"recall": False}

    def route(ws: Any) -> None:
        upstream = ws.connect_to_server()

        def from_page(message: str | bytes) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if refuse["recall"] and frame.get("cmd") == "MSG_RECALL_REQ":
                body = {**frame["body"], "resultCode": "kCIM_ERR_RECALL_TOO_LATE", "resultString": "too late"}
                ws.send(json.dumps({"cmd": "MSG_RECALL_RSP", "seq": frame["seq"], "body": body}))
            else:
                upstream.send(message)

        ws.on_message(from_page)

    alice.route_web_socket("**/ws", route)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    find_person(b, alice, "bobby", bob_id).click()
    send(alice, "Hi Bob")
    conversation(bob, alice_id).click()
    expect(bob.get_by_test_id("message-text")).to_have_text(["Hi Bob"])

    # Bob types: Alice sees it in the chat's header and in her list; it goes when he clears the
    # text, when the notice's ttl (6 s) has passed, and when his message arrives.
    typing = alice.get_by_test_id("typing-indicator")
    composer = bob.get_by_test_id("composer-input")
    composer.fill("Are you th")
    expect(typing).to_have_text("Bob is typing…")
    expect(conversation(alice, bob_id).get_by_test_id("conversation-typing")).to_have_text("typing…")
    expect(conversation(alice, bob_id).get_by_test_id("conversation-preview")).to_be_hidden()
    composer.fill("")
    expect(typing).to_have_text("")
    expect(conversation(alice, bob_id).get_by_test_id("conversation-typing")).to_have_count(0)
    composer.fill("Yes")
    expect(typing).to_have_text("Bob is typing…")
    alice.clock.fast_forward(6_500)
    expect(typing).to_have_text("")
    composer.fill("")
    composer.fill("Yes, here")
    expect(typing).to_have_text("Bob is typing…")
    bob.get_by_test_id("send-button").click()
    expect(alice.get_by_test_id("message-text").last).to_have_text("Yes, here")
    expect(typing).to_have_text("")
    expect(conversation(alice, bob_id).get_by_test_id("conversation-preview")).to_have_text("Yes, here")

    # Recall is offered on one's own messages (Bob has it on his, not on Alice's).
    send(alice, "Oops, wrong chat 🙈")
    expect(bob.get_by_test_id("message-text").last).to_have_text("Oops, wrong chat 🙈")
    expect(bob.locator('[data-mine="true"] [data-testid="message-actions"]')).to_have_count(1)
    oops_for_bob = bob.get_by_test_id("message").filter(has_text="Oops, wrong chat")
    oops_for_bob.get_by_test_id("message-actions").click()  # Bob may forward it, not recall it
    expect(oops_for_bob.get_by_test_id("recall-button")).to_be_hidden()
    bob.keyboard.press("Escape")

    # A refusal shows under the message, which stays (and offers no second try).
    refuse["recall"] = True
    first = alice.get_by_test_id("message").filter(has_text="Hi Bob")
    first.get_by_test_id("message-actions").click()
    first.get_by_test_id("recall-button").click()
    expect(first.get_by_test_id("recall-error")).to_have_text(
        "Too late: messages can only be recalled for a short while after sending."
    )
    expect(first.get_by_test_id("recall-button")).to_be_disabled()
    alice.keyboard.press("Escape")
    expect(alice.get_by_test_id("message-menu")).to_have_count(0)
    first.get_by_test_id("message-actions").click()  # no second try (Forward stays)
    expect(first.get_by_test_id("recall-button")).to_be_hidden()
    alice.keyboard.press("Escape")
    refuse["recall"] = False

    # Alice recalls her last message: a line on both pages, the text gone from both, the list too.
    oops = alice.get_by_test_id("message").filter(has_text="Oops")
    oops.get_by_test_id("message-actions").click()
    alice.get_by_test_id("recall-button").click()
    expect(alice.get_by_test_id("recalled-message")).to_have_text(["You recalled a message"])
    expect(bob.get_by_test_id("recalled-message")).to_have_text(["Alice recalled a message"])
    expect(alice.get_by_test_id("message-text")).to_have_text(["Hi Bob", "Yes, here"])
    expect(bob.get_by_test_id("message-text")).to_have_text(["Hi Bob", "Yes, here"])
    expect(conversation(alice, bob_id).get_by_test_id("conversation-preview")).to_have_text("You recalled a message")
    expect(conversation(bob, alice_id).get_by_test_id("conversation-preview")).to_have_text("Alice recalled a message")
    for page in (alice, bob):
        assert "Oops" not in page.content()

    # After a reload (the list and the history from the server) it is still recalled.
    for page, line in ((alice, "You recalled a message"), (bob, "Alice recalled a message")):
        page.reload()
        expect(page.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
        peer = bob_id if page is alice else alice_id
        expect(conversation(page, peer).get_by_test_id("conversation-preview")).to_have_text(line)
        conversation(page, peer).click()
        expect(page.get_by_test_id("recalled-message")).to_have_text([line])
        expect(page.get_by_test_id("message-text")).to_have_text(["Hi Bob", "Yes, here"])
        assert "Oops" not in page.content()

    # One's own messages can be recalled for two minutes: then the button goes.
    send(alice, "Last word")
    latest = alice.get_by_test_id("message").filter(has_text="Last word")
    latest.get_by_test_id("message-actions").click()
    expect(latest.get_by_test_id("recall-button")).to_be_visible()
    alice.clock.fast_forward(121_000)
    latest.get_by_test_id("message-actions").click()
    expect(latest.get_by_test_id("recall-button")).to_be_hidden()

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems


def test_files_are_served_with_strict_headers(server: Server) -> None:
    """The page at /, its files under /app/ with their types, nothing else from the folder."""

    def get(path: str) -> tuple[int, dict[str, str], bytes]:
        try:
            with urllib.request.urlopen(server.url + path, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    status, headers, body = get("")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<script type="module" src="app/app.js">' in body
    csp = headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "style-src 'self'" in csp and "connect-src 'self' ws: wss:" in csp
    assert "unsafe-inline" not in csp
    assert headers["Cache-Control"] == "no-cache"
    for name, content_type in [
        ("app.js", "text/javascript; charset=utf-8"),
        ("protocol.js", "text/javascript; charset=utf-8"),
        ("md5.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("icon.svg", "image/svg+xml"),
    ]:
        status, headers, _ = get(f"app/{name}")
        assert (status, headers["Content-Type"]) == (200, content_type), name
        assert headers["Cache-Control"] == "no-cache" and "Content-Security-Policy" in headers
    for path in ("app/__init__.py", "app/", "app/__pycache__/", "app/%2e%2e/setup.py", "app/.hidden.js", "app.js"):
        assert get(path)[0] == 404, path
    status, _, body = get("health")  # the API is still there beside it
    assert status == 200 and json.loads(body)["status"] == "ok"


def test_md5_in_the_browser_matches_python(server: Server, browser: Browser) -> None:
    """md5.js hashes passwords exactly as the other clients (and the server's tools) do."""
    page = browser.page(DESKTOP, server.url)
    samples = ["", "a", "secret", "correct horse", "pässwörd ☕ 😀", "x" * 55, "y" * 56, "z" * 64, "w" * 1000]
    hashes = page.evaluate("samples => import('./app/md5.js').then(m => samples.map(m.md5Hex))", samples)
    assert hashes == [hashlib.md5(s.encode()).hexdigest() for s in samples]
    assert browser.problems == []
