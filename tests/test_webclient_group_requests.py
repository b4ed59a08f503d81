"""Group requests in a real browser (fixtures of tests/test_webclient.py): Carol asks to join a
group by its id and Alice approves from her pending list, Dave accepts an invitation to a group
whose invitees must agree, Dave's consent setting survives a reload, and Alice hands the group to
Bob from the members panel."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from . import test_webclient
from .test_webclient import DESKTOP, PASSWORD, ROOT, Browser, Server, find_person, group_item, pick, register

browser = test_webclient.browser  # the fixtures
server = test_webclient.server

# The owner changes the group's join models over TCP (the web client has no control for them).
SET_MODELS = """
import sys
from twisted.internet import defer, task
from coffeechat.protocols import client
from coffeechat.schema import Cmd, pb

async def main(reactor, cim, name, password, group_id):
    c = await client.connect(reactor, cim)
    rsp = await c.login_password(name, client.md5_password(password))
    assert rsp.result_code == 200, rsp
    req = pb.CIMGroupUpdateReq(group_id=int(group_id), join_model=1, be_invite_model=1)
    rsp = await c.request(Cmd.GROUP_UPDATE_REQ, req)
    assert rsp.result_code == 200, rsp
    print("ok")
    c.transport.loseConnection()

task.react(lambda reactor: defer.ensureDeferred(main(reactor, *sys.argv[1:])))
"""


def set_models(running: Server, owner: str, group_id: int) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [f"tcp:127.0.0.1:{running.cim}", owner, PASSWORD, str(group_id)]
    result = subprocess.run(
        [sys.executable, "-c", SET_MODELS, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stdout + result.stderr


def open_requests(page: Any) -> None:
    area = page.get_by_test_id("group-requests-area")
    if area.get_attribute("open") is None:
        area.locator("summary").click()


def request_item(page: Any, kind: str) -> Any:
    return page.locator(f'[data-testid="group-request-item"][data-kind="{kind}"]')


def test_group_requests_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    dave = b.page(DESKTOP, server.url)
    register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    register(b, carol, "carol", "Carol")
    dave_id = register(b, dave, "david", "Dave")
    name = "Book club 📚"

    find_person(b, alice, "bobby", bob_id)  # the pickers list the people one knows (or found)
    alice.get_by_test_id("new-group-button").click()
    alice.get_by_test_id("group-name-input").fill(name)
    pick(alice, "group-member-picker", bob_id)
    alice.get_by_test_id("create-group-submit").click()
    expect(alice.get_by_test_id("chat-title")).to_have_text(name)
    created = alice.locator('[data-testid="conversation-item"][data-session-type="2"]')
    group_id = int(created.get_attribute("data-group-id"))
    set_models(server, "alice", group_id)  # requests need approval, invitees must agree

    # Carol asks to join by the group's id, with a message.
    open_requests(carol)
    carol.get_by_test_id("join-group-id").fill("999")
    carol.get_by_test_id("join-group-submit").click()
    expect(carol.get_by_test_id("join-group-status")).to_have_text("No group with that id takes requests to join.")
    carol.get_by_test_id("join-group-id").fill(str(group_id))
    carol.get_by_test_id("join-group-message").fill("I love books <b>!</b>")
    carol.get_by_test_id("join-group-submit").click()
    expect(carol.get_by_test_id("join-group-status")).to_have_text(f"Request sent to “{name}”. Its admins will decide.")
    expect(request_item(carol, "request").get_by_test_id("group-request-text")).to_have_text(
        f"You asked to join “{name}”"
    )
    expect(request_item(carol, "request").get_by_test_id("withdraw-request")).to_be_visible()

    # Alice, the owner, sees it pushed (the count in the summary), approves it; Bob, a member, does not.
    expect(alice.get_by_test_id("group-requests-count")).to_have_text("(1)")
    open_requests(alice)
    item = request_item(alice, "request")
    expect(item.get_by_test_id("group-request-text")).to_have_text(f"Carol asks to join “{name}”")
    expect(item.get_by_test_id("group-request-message")).to_have_text("“I love books <b>!</b>”")
    expect(bob.get_by_test_id("group-requests-count")).to_have_text("")
    item.get_by_test_id("approve-request").click()
    expect(alice.get_by_test_id("group-request-item")).to_have_count(0)
    expect(carol.get_by_test_id("group-request-item")).to_have_count(0)  # told it was handled
    expect(group_item(carol, group_id)).to_be_visible()
    expect(alice.get_by_test_id("system-message").last).to_have_text("You let in Carol")

    # Alice finds Dave by name and invites him: the group asks him first; he accepts from his list.
    find_person(b, alice, "david", dave_id)
    alice.get_by_test_id("user-list-close").click()
    alice.get_by_test_id("group-info-button").click()
    alice.get_by_test_id("invite-button").click()
    pick(alice, "invite-picker", dave_id)
    alice.get_by_test_id("invite-submit").click()
    open_requests(dave)
    invitation = request_item(dave, "invitation")
    expect(invitation.get_by_test_id("group-request-text")).to_have_text(f"Alice invites you to “{name}”")
    expect(group_item(dave, group_id)).to_have_count(0)  # not in before he agrees
    expect(request_item(alice, "invitation").get_by_test_id("group-request-text")).to_have_text(
        f"You invited Dave to “{name}”"
    )
    invitation.get_by_test_id("accept-invitation").click()
    expect(group_item(dave, group_id)).to_be_visible()
    expect(alice.get_by_test_id("group-request-item")).to_have_count(0)
    expect(alice.get_by_test_id("member-name")).to_have_text(["Alice (you)", "Bob", "Carol", "Dave"])

    # Dave wants to be asked from now on, in any group; the setting is the server's.
    dave.get_by_test_id("invite-consent-toggle").check()
    dave.wait_for_timeout(300)
    dave.reload()
    expect(dave.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(dave.get_by_test_id("invite-consent-toggle")).to_be_checked()

    # Alice hands the group to Bob and becomes an admin; the panel shows the id to share.
    expect(alice.get_by_test_id("group-id-line")).to_have_text(f"Group id {group_id} · people may ask to join with it")
    expect(alice.get_by_test_id("transfer-area")).to_be_visible()
    alice.get_by_test_id("transfer-owner-select").select_option(str(bob_id))
    alice.get_by_test_id("transfer-owner-button").click()
    owner = alice.locator('[data-testid="member-item"][data-role="owner"]')
    expect(owner).to_have_attribute("data-user-id", str(bob_id))
    expect(alice.locator('[data-testid="member-item"][data-role="admin"]').get_by_test_id("member-name")).to_have_text(
        "Alice (you)"
    )
    expect(alice.get_by_test_id("transfer-area")).to_be_hidden()
    expect(alice.get_by_test_id("system-message").last).to_have_text("You handed the group to Bob")
    bob.get_by_test_id("conversation-item").first.click()
    expect(bob.get_by_test_id("system-message").last).to_have_text("Alice handed the group to you")
    b.screenshot(alice, "group-requests")
    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
