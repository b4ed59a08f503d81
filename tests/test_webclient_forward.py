"""Forward and custom messages in the web client, in a real browser (the fixtures and steps of
tests/test_webclient.py): a custom message shows as a card, a message is forwarded from its menu
through the picker and shows "Forwarded from", a merged chat record folds and unfolds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .test_process import ROOT
from .test_webclient import (
    DESKTOP,
    PASSWORD,
    XSS,
    Browser,
    Server,
    browser,
    conversation,
    find_person,
    register,
    send,
    server,
)

__all__ = ["browser", "server"]  # the fixtures, imported for pytest

# Bob, over TCP with the client library: a custom message and two texts to Alice, then the three
# merged into one chat record for Carol.  Prints the ids.
BOB = """
import json, sys
from twisted.internet import defer, task
from coffeechat.protocols import client

async def main(reactor, cim, http, password, alice_id, carol_id, xss):
    pw = client.md5_password(password)
    answer = await client.register(reactor, http, "bobby", "Bob", pw)
    assert answer["error_code"] == 200, answer
    conn = await client.connect(reactor, cim)
    rsp = await conn.login_password("bobby", pw)
    assert rsp.result_code == 200, rsp
    alice_id, carol_id = int(alice_id), int(carol_id)
    dice = await conn.send_custom(alice_id, {"type": "dice", "value": 5, "description": "[Dice] 5"})
    noon = await conn.send_message(alice_id, "Meet at noon")
    markup = await conn.send_message(alice_id, xss)
    ids = [dice.server_msg_id, noon.server_msg_id, markup.server_msg_id]
    assert all(ack.res_code == 1 for ack in (dice, noon, markup))
    merged = await conn.forward(alice_id, ids, [(1, carol_id)], merged=True, title="Plans with Alice")
    assert merged.result_code == 200 and merged.results[0].result_code == 200, merged
    print(json.dumps({"user_id": conn.user_id, "ids": ids}))
    await conn.close()

task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
"""


def bob_writes(server: Server, alice_id: int, carol_id: int) -> int:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [f"tcp:127.0.0.1:{server.cim}", server.url.rstrip("/"), PASSWORD, str(alice_id), str(carol_id), XSS]
    result = subprocess.run(
        [sys.executable, "-c", BOB, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])["user_id"]


def test_forward_and_custom_messages_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    carol_id = register(b, carol, "carol", "Carol")

    # Carol and Alice have a chat: a conversation to forward into.
    find_person(b, carol, "alice", alice_id).click()  # "New chat" lists contacts: others are searched
    send(carol, "Hi Alice")
    expect(conversation(alice, carol_id)).to_have_count(1)

    bob_id = bob_writes(server, alice_id, carol_id)

    # Alice opens Bob's chat: the custom message is a card with its description.
    expect(conversation(alice, bob_id).get_by_test_id("conversation-preview")).to_have_text(XSS)
    conversation(alice, bob_id).click()
    card = alice.get_by_test_id("custom-card")
    expect(card.get_by_test_id("custom-description")).to_have_text("[Dice] 5")
    expect(card.get_by_test_id("custom-kind")).to_have_text("dice")
    expect(alice.get_by_test_id("message-text").filter(visible=True)).to_have_text(["Meet at noon", XSS])

    # She forwards "Meet at noon" to Carol from the message's menu (Forward, no Recall: not hers).
    noon = alice.get_by_test_id("message").filter(has_text="Meet at noon")
    noon.get_by_test_id("message-actions").click()
    expect(noon.get_by_test_id("recall-button")).to_be_hidden()
    noon.get_by_test_id("forward-button").click()
    picker = alice.get_by_test_id("forward-picker")
    expect(picker).to_be_visible()
    expect(picker.get_by_test_id("forward-send")).to_be_disabled()
    picker.locator(f'[data-testid="forward-target"][data-key="u{carol_id}"] input').check()
    expect(picker.get_by_test_id("forward-send")).to_be_enabled()
    b.screenshot(alice, "webclient-forward-picker")
    picker.get_by_test_id("forward-send").click()
    expect(picker).to_have_count(0)

    # Carol sees it in her chat with Alice, from Bob; Alice too, as hers.
    conversation(carol, alice_id).click()
    copy = carol.get_by_test_id("message").filter(has_text="Meet at noon")
    expect(copy.get_by_test_id("forwarded-from")).to_have_text("Forwarded from Bob")
    expect(copy).to_have_attribute("data-from", str(alice_id))
    conversation(alice, carol_id).click()
    mine = alice.get_by_test_id("message").filter(has_text="Meet at noon")
    expect(mine.get_by_test_id("forwarded-from")).to_have_text("Forwarded from Bob")
    hi = alice.get_by_test_id("message").filter(has_text="Hi Alice")
    expect(hi.get_by_test_id("forwarded-from")).to_have_count(0)

    # Bob's chat record for Carol: folded, three lines; a tap shows every entry, markup as text.
    expect(conversation(carol, bob_id).get_by_test_id("conversation-preview")).to_have_text(
        "[Chat record] Plans with Alice"
    )
    conversation(carol, bob_id).click()
    record = carol.get_by_test_id("chat-record")
    expect(record.get_by_test_id("chat-record-title")).to_have_text("Plans with Alice")
    expect(record.get_by_test_id("chat-record-line")).to_have_count(3)
    expect(record.get_by_test_id("chat-record-footer")).to_have_text("3 messages · Tap to see all")
    b.screenshot(carol, "webclient-chat-record")
    record.click()
    entries = carol.get_by_test_id("chat-record-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("[Dice] 5")
    expect(entries.nth(1)).to_contain_text("Meet at noon")
    expect(entries.nth(2)).to_contain_text(XSS)
    assert carol.get_by_test_id("message-list").locator("img").count() == 0
    expect(record.get_by_test_id("chat-record-footer")).to_have_text("3 messages · Tap to fold")
    carol.get_by_test_id("chat-record").click()
    expect(carol.get_by_test_id("chat-record-line")).to_have_count(3)

    # After a reload, history brings the origin back (the server keeps it).
    carol.reload()
    expect(carol.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    conversation(carol, alice_id).click()
    copy = carol.get_by_test_id("message").filter(has_text="Meet at noon")
    expect(copy.get_by_test_id("forwarded-from")).to_have_text("Forwarded from Bob")
    b.screenshot(carol, "webclient-forwarded")

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
