"""Web Push in a real browser (fixtures of tests/test_webclient.py), against ``twistd`` with
``[push.webpush]`` and a local push service (a plain HTTP server on loopback).

Headless Chromium has no push service to subscribe with (pushManager.subscribe needs Google's),
so the test gives the page a subscription of its own making: PushManager's subscribe and
getSubscription answer a subscription whose endpoint is the local service and whose keys the
test holds.  Everything else is real: the page registers the service worker (sw.js, with its
Service-Worker-Allowed header), fetches the VAPID key, registers the subscription
(PUSH_REGISTER_REQ), and when Bob has left, Carol's message reaches the local service as Web Push:
the test checks the VAPID JWT and decrypts the payload.  What cannot be tested here: the browser's
own push service delivering to sw.js, and the notification it shows."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from . import test_webclient
from .pushreceiver import Arrival, Subscription, verify_vapid
from .test_webclient import DESKTOP, Browser, browser, log_in, register  # noqa: F401

SUBJECT = "mailto:admin@chat.example.com"


class LocalPushService:
    """A push service endpoint in a thread: records each POST."""

    def __init__(self) -> None:
        self.arrivals: queue.Queue[Arrival] = queue.Queue()
        arrivals = self.arrivals

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                arrivals.put(Arrival(self.path, headers, body, 201))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


class PushServer(test_webclient.Server):
    """The web client's test server with Web Push on (endpoints on loopback: allow_http)."""

    def __init__(self, folder: Path, vapid_pem: Path) -> None:
        self.extra = (
            f'[push.webpush]\nvapid_private_key = "{vapid_pem}"\nvapid_subject = "{SUBJECT}"\nallow_http = true\n'
            "[push]\nbadge_ttl = 0.0\n"
        )
        original = Path.write_text

        def write_text(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
            if path.name == "coffeechat.toml":
                text += self.extra
            return original(path, text, *args, **kwargs)

        Path.write_text = write_text  # the parent writes its config, then starts twistd
        try:
            super().__init__(folder)
        finally:
            Path.write_text = original


FAKE_SUBSCRIPTION = """
(() => {
  const sub = %s;
  const unsubscribe = async () => (window.__pushUnsubscribed = true);
  const fake = { endpoint: sub.endpoint, toJSON: () => sub, unsubscribe };
  PushManager.prototype.getSubscription = async function () { return window.__pushSubscribed ? fake : null; };
  PushManager.prototype.subscribe = async function (options) {
    window.__pushSubscribed = true;
    window.__pushKey = btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)));
    return fake;
  };
})();
"""


def test_the_page_registers_its_subscription_and_gets_web_push(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "vapid.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    service = LocalPushService()
    server = PushServer(tmp_path, pem)
    try:
        server.wait_until_listening()
        vapid = json.load(urllib.request.urlopen(server.url + "push/vapid"))
        public = key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        assert vapid["error_code"] == 200 and len(vapid["public_key"]) == 87
        sw = urllib.request.urlopen(server.url + "app/sw.js")
        assert sw.headers["Service-Worker-Allowed"] == "/" and "javascript" in sw.headers["Content-Type"]

        b = browser
        subscription = Subscription()
        endpoint = f"{service.url}/push/bob-browser"
        context = b.browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
        context.grant_permissions(["notifications"], origin=server.url.rstrip("/"))
        context.add_init_script(FAKE_SUBSCRIPTION % json.dumps({"endpoint": endpoint, "keys": subscription.keys}))
        bob = context.new_page()
        bob.on("pageerror", lambda error: b.problems.append(f"page error: {error}"))
        bob.on("console", lambda msg: msg.type == "error" and b.problems.append(f"console: {msg.text}"))
        bob.goto(server.url)
        bob_id = register(b, bob, "bobby", "Bob")
        b.expect(bob.get_by_test_id("push-status")).to_have_text("Notifications are on")
        # the page subscribed with the server's VAPID key, and its service worker is registered
        import base64

        assert base64.b64decode(bob.evaluate("window.__pushKey")) == public
        assert bob.evaluate("navigator.serviceWorker.getRegistration('/').then(r => r.active.scriptURL)").endswith(
            "/app/sw.js"
        )
        # the privacy control: preview off
        bob.get_by_test_id("profile-button").click()
        bob.get_by_test_id("push-preview").uncheck()
        b.expect(bob.get_by_test_id("push-status")).to_contain_text("New message")
        bob.get_by_test_id("push-preview").check()
        b.expect(bob.get_by_test_id("push-status")).to_have_text("Notifications show the message")
        context.close()  # Bob has gone: offline

        # The server notices the closed WebSocket a moment later: until it does, Bob is online and
        # a message is not pushed, so Carol writes again until one is (each one counts as unread).
        sent = 0
        arrival = None
        deadline = time.monotonic() + 30
        while arrival is None and time.monotonic() < deadline:
            carol_id = server.send_over_tcp("carol", bob_id, "Hi Bob, it's Carol")
            sent += 1
            try:
                arrival = service.arrivals.get(timeout=2)
            except queue.Empty:
                pass
        assert arrival is not None, "no Web Push arrived"
        assert arrival.path == "/push/bob-browser"
        verify_vapid(arrival, service.url, time.time(), SUBJECT, vapid["public_key"])
        payload = json.loads(subscription.decrypt(arrival.body))
        assert (payload["title"], payload["body"], payload["badge"]) == ("Carol", "Hi Bob, it's Carol", sent)
        assert payload["tag"] == f"c1-{carol_id}" and payload["data"]["session_id"] == carol_id

        # Logging out unregisters: the server's target and the browser's subscription
        context = b.browser.new_context(viewport=DESKTOP, locale="en-GB", timezone_id="UTC")
        context.grant_permissions(["notifications"], origin=server.url.rstrip("/"))
        context.add_init_script(FAKE_SUBSCRIPTION % json.dumps({"endpoint": endpoint, "keys": subscription.keys}))
        again = context.new_page()
        again.goto(server.url)
        log_in(b, again, "bobby")
        b.expect(again.get_by_test_id("push-status")).to_have_text("Notifications are on")
        again.get_by_test_id("logout-button").click()
        b.expect(again.get_by_test_id("login-screen")).to_be_visible()
        assert again.evaluate("window.__pushUnsubscribed") is True
        context.close()
        assert b.problems == []
    finally:
        server.stop()
        service.close()
    log = server.log()
    assert "Traceback" not in log, log


def test_a_clicked_notification_opens_its_conversation(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    """The service worker opens ``/#open=<type>:<id>`` when no page is open; the page then opens
    that conversation once it is online (a page already open gets the same through postMessage)."""
    b = browser
    server = test_webclient.Server(tmp_path)
    try:
        server.wait_until_listening()
        alice = b.page(DESKTOP, server.url)
        register(b, alice, "alice", "Alice")
        bob = b.page(DESKTOP, server.url)
        bob_id = register(b, bob, "bobby", "Bob")
        b.expect(alice.get_by_test_id("chat-header")).to_be_hidden()
        alice.goto(f"{server.url}#open=1:{bob_id}")
        alice.reload()
        b.expect(alice.get_by_test_id("chat-title")).to_have_text("Bob")
        assert "#open" not in alice.url
        assert b.problems == [], b.problems
    finally:
        server.stop()
