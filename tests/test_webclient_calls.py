"""Voice and video calls in the web client, in a real browser (the fixtures and steps of
tests/test_webclient.py): two people in two browser contexts of Debian's Chromium, launched with
fake media devices (``--use-fake-device-for-media-stream``: a test pattern and a beep) and the
permission prompt answered yes (``--use-fake-ui-for-media-stream``).

Alice video-calls Bob from the chat header; both of Bob's devices ring, he accepts on one (the
other stops: answered elsewhere); the WebRTC connection (signalled through the server: invite
with the offer, 180, 200 with the answer, trickle ICE over VOIP_SIGNAL) reaches ICE state
"connected" on both pages and each page plays the other's video;
Carol's call to Bob meanwhile is busy; Alice mutes, then hangs up: both panels say the call ended
and both conversations get the history line "Video call, 0:0N" (the server's AVCHAT record).
Then a declined voice call and a missed one (``[calls] ring_timeout`` is 8 s here) leave
"Declined voice call" and "Missed voice call" on both sides."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import test_webclient
from .test_webclient import (
    CHROMIUM,
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Browser,
    _playwright_or_skip,
    conversation,
    find_person,
    log_in,
    register,
    send,
)

FAKE_MEDIA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
RING_TIMEOUT = 8  # s: the missed call's wait
ICE_UP = re.compile(r"^(connected|completed)$")


class CallServer(test_webclient.Server):
    """The web client's test server with ``extra`` appended to its config before twistd starts."""

    def __init__(self, folder: Path, extra: str) -> None:
        start = test_webclient.twistd

        def twistd(cwd: Path, *args: str) -> Any:
            config = Path(args[-1])  # "--config", path
            config.write_text(config.read_text() + extra)
            return start(cwd, *args)

        test_webclient.twistd = twistd
        try:
            super().__init__(folder)
        finally:
            test_webclient.twistd = start


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CallServer]:
    running = CallServer(tmp_path, f"[calls]\nring_timeout = {RING_TIMEOUT}\n")
    try:
        running.wait_until_listening()
        yield running
    finally:
        running.stop()
    log = running.log()
    assert "Traceback" not in log, log


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """tests/test_webclient.py's browser, relaunched with fake media devices (this test only)."""
    sync_api = _playwright_or_skip()
    opened = Browser(sync_api, tmp_path)
    plain = opened.browser
    opened.browser = plain.browser_type.launch(executable_path=CHROMIUM, args=[*CHROMIUM_ARGS, *FAKE_MEDIA])
    plain.close()
    try:
        yield opened
    finally:
        opened.close()


def last_call_line(page: Any) -> Any:
    return page.get_by_test_id("call-line-text").last


def test_calls_connect_end_and_leave_their_lines(server: CallServer, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    asked: list[str] = []  # the ICE servers are asked for with the login token
    for page in (alice, bob):
        page.on("request", lambda r: r.url.endswith("/api/ice-servers") and asked.append(r.headers["authorization"]))
    phone = b.page(PHONE, server.url)  # Bob's second device
    log_in(b, phone, "bobby")
    carol = b.page(DESKTOP, server.url)
    register(b, carol, "carol", "Carol")
    find_person(b, carol, "bobby", bob_id).click()
    expect(carol.get_by_test_id("voice-call-button")).to_be_visible()
    find_person(b, alice, "bobby", bob_id).click()
    send(alice, "Can we talk?")
    expect(conversation(bob, alice_id)).to_have_count(1)
    conversation(bob, alice_id).click()
    expect(bob.get_by_test_id("chat-title")).to_have_text("Alice")

    # The header offers both calls in a 1:1 chat.
    expect(alice.get_by_test_id("voice-call-button")).to_be_visible()
    expect(alice.get_by_test_id("video-call-button")).to_be_visible()
    a_panel = alice.get_by_test_id("call-panel")
    b_panel = bob.get_by_test_id("call-panel")
    expect(a_panel).to_be_hidden()

    # -- 1. Alice video-calls Bob; both of Bob's devices ring; he accepts on one; ICE connects.
    phone_panel = phone.get_by_test_id("call-panel")
    alice.get_by_test_id("video-call-button").click()
    expect(b_panel).to_have_attribute("data-call-state", "incoming")
    expect(phone_panel).to_have_attribute("data-call-state", "incoming")
    expect(b_panel).to_have_attribute("data-call-type", "video")
    expect(b_panel.get_by_test_id("call-peer")).to_have_text("Alice")
    expect(b_panel.get_by_test_id("call-status")).to_have_text("Incoming video call")
    expect(a_panel).to_have_attribute("data-call-state", "ringing")  # Bob's 180 came back
    expect(alice.get_by_test_id("video-call-button")).to_be_disabled()  # one call at a time
    b.screenshot(bob, "webclient-call-incoming")
    bob.get_by_test_id("call-accept").click()
    # his phone stops ringing: answered elsewhere (the server's ANSWERED_ELSEWHERE)
    expect(phone_panel).to_have_attribute("data-end-reason", "answered-elsewhere")
    expect(phone_panel.get_by_test_id("call-status")).to_have_text("Answered on another device")
    for panel in (a_panel, b_panel):
        expect(panel).to_have_attribute("data-ice-state", ICE_UP, timeout=30_000)
        expect(panel).to_have_attribute("data-call-state", "active")
    assert len(asked) == 2 and all(a.startswith("Bearer ") for a in asked), asked  # once per side
    # Carol calls Bob meanwhile: busy (486), and Bob's call goes on
    c_panel = carol.get_by_test_id("call-panel")
    carol.get_by_test_id("voice-call-button").click()
    expect(c_panel).to_have_attribute("data-end-reason", "busy")
    expect(c_panel.get_by_test_id("call-status")).to_have_text("Bob is on another call.")
    expect(last_call_line(carol)).to_have_text("Voice call, busy")
    expect(b_panel).to_have_attribute("data-call-state", "active")
    # the media flows both ways: each page plays the other's (fake) camera
    for page in (alice, bob):
        page.wait_for_function(
            """() => { const v = document.querySelector('[data-testid="call-remote-video"]');
                       return v && v.srcObject && v.videoWidth > 0 && v.currentTime > 0; }""",
            timeout=20_000,
        )
    expect(a_panel.get_by_test_id("call-duration")).to_have_text(re.compile(r"^0:(0[2-9]|[1-5]\d)$"))
    alice.get_by_test_id("call-mute").click()
    expect(alice.get_by_test_id("call-mute")).to_have_attribute("aria-pressed", "true")
    local_audio = "() => document.querySelector('[data-testid=\"call-local-video\"]').srcObject.getAudioTracks()"
    assert alice.evaluate(f"{local_audio}[0].enabled") is False
    b.screenshot(alice, "webclient-call-video")

    # Alice hangs up: both sides end, both conversations get the call's line.
    alice.get_by_test_id("call-hangup").click()
    expect(a_panel).to_have_attribute("data-call-state", "ended")
    expect(a_panel).to_have_attribute("data-end-reason", "ended")
    expect(b_panel).to_have_attribute("data-call-state", "ended")
    expect(b_panel).to_have_attribute("data-end-reason", "ended")
    expect(b_panel.get_by_test_id("call-status")).to_have_text("Call ended")
    for page in (alice, bob):
        expect(last_call_line(page)).to_have_text(re.compile(r"^Video call, 0:(0[2-9]|[1-5]\d)$"))
        expect(page.get_by_test_id("call-line").last).to_have_attribute("data-result", "ended")
    expect(conversation(bob, alice_id).get_by_test_id("conversation-preview")).to_have_text(
        re.compile(r"^Video call, 0:[0-5]\d$")
    )
    # the panels close by themselves; the camera and microphone are released
    expect(a_panel).to_be_hidden()
    expect(b_panel).to_be_hidden()
    assert alice.evaluate("() => document.querySelector('[data-testid=\"call-local-video\"]').srcObject") is None

    # -- 2. A voice call that Bob declines.
    expect(alice.get_by_test_id("voice-call-button")).to_be_enabled()
    alice.get_by_test_id("voice-call-button").click()
    expect(b_panel).to_have_attribute("data-call-state", "incoming")
    expect(b_panel.get_by_test_id("call-status")).to_have_text("Incoming voice call")
    bob.get_by_test_id("call-decline").click()
    expect(b_panel).to_have_attribute("data-end-reason", "declined")
    expect(a_panel).to_have_attribute("data-call-state", "ended")
    expect(a_panel).to_have_attribute("data-end-reason", "declined")
    expect(a_panel.get_by_test_id("call-status")).to_have_text("Call declined")
    for page in (alice, bob):
        expect(last_call_line(page)).to_have_text("Declined voice call")
    expect(a_panel).to_be_hidden()

    # -- 3. A voice call nobody answers: missed after the server's ring_timeout.
    alice.get_by_test_id("voice-call-button").click()
    expect(b_panel).to_have_attribute("data-call-state", "incoming")
    expect(a_panel).to_have_attribute("data-call-state", "ended", timeout=(RING_TIMEOUT + 10) * 1000)
    expect(a_panel).to_have_attribute("data-end-reason", "no-answer")
    expect(a_panel.get_by_test_id("call-status")).to_have_text("No answer")
    expect(b_panel).to_have_attribute("data-end-reason", "missed")
    expect(b_panel.get_by_test_id("call-status")).to_have_text("Missed call from Alice")
    for page in (alice, bob):
        expect(last_call_line(page)).to_have_text("Missed voice call")
        expect(page.get_by_test_id("call-line").last).to_have_attribute("data-result", "missed")
    assert [t.strip() for t in bob.get_by_test_id("call-line-text").all_text_contents()][1:] == [
        "Declined voice call",
        "Missed voice call",
    ]

    # After a reload the lines come from the history, the same.
    bob.reload()
    expect(bob.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    conversation(bob, alice_id).click()
    expect(bob.get_by_test_id("call-line-text")).to_have_count(3)
    expect(last_call_line(bob)).to_have_text("Missed voice call")

    # -- 4. Signing out during a call hangs it up first: Bob's side ends now, not after the
    # server's heartbeat timeout (a device that only disconnects keeps its call that long).
    alice.get_by_test_id("voice-call-button").click()
    expect(b_panel).to_have_attribute("data-call-state", "incoming")
    bob.get_by_test_id("call-accept").click()
    expect(b_panel).to_have_attribute("data-ice-state", ICE_UP, timeout=30_000)
    alice.get_by_test_id("logout-button").click()
    expect(alice.get_by_test_id("login-screen")).to_be_visible()
    expect(b_panel).to_have_attribute("data-call-state", "ended", timeout=8_000)
    expect(b_panel).to_have_attribute("data-end-reason", "ended")
    expect(last_call_line(bob)).to_have_text(re.compile(r"^Voice call, 0:[0-5]\d$"))
    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
