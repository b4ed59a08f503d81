"""The web client's group administration (protocols/webclient/group_admin.js) in a real browser:
the owner renames the group, changes its announcement and tags, makes a member admin, mutes a
member (whose message the server then refuses, and the page says so), unmutes, mutes everyone and
removes a member. Fixtures and steps come from tests/test_webclient.py."""

from __future__ import annotations

from typing import Any

from . import test_webclient
from .test_webclient import DESKTOP, Browser, Server, find_person, group_item, last_message, pick, register, send

server = test_webclient.server  # the fixtures
browser = test_webclient.browser


def member(page: Any, user_id: int) -> Any:
    return page.locator(f'[data-testid="member-item"][data-user-id="{user_id}"]')


def test_owner_administers_a_group_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    carol_id = register(b, carol, "carol", "Carol")

    # The pickers list the people one knows: contacts and those found in the directory.
    find_person(b, alice, "bobby", bob_id)
    alice.get_by_test_id("user-search-input").fill("carol")
    expect(alice.locator(f'[data-testid="search-result"][data-user-id="{carol_id}"]')).to_be_visible()
    alice.get_by_test_id("new-group-button").click()
    alice.get_by_test_id("group-name-input").fill("Book club")
    pick(alice, "group-member-picker", bob_id)
    pick(alice, "group-member-picker", carol_id)
    alice.get_by_test_id("create-group-submit").click()
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("3 members")
    created = alice.locator('[data-testid="conversation-item"][data-session-type="2"]')
    group_id = int(created.get_attribute("data-group-id"))
    for page in (bob, carol):
        group_item(page, group_id).click()
        expect(page.get_by_test_id("chat-title")).to_have_text("Book club")

    # The owner's panel has the settings and per-member actions; a member's has neither.
    alice.get_by_test_id("group-info-button").click()
    expect(alice.get_by_test_id("group-admin-settings")).to_be_visible()
    expect(member(alice, bob_id).get_by_test_id("member-kick")).to_be_visible()
    carol.get_by_test_id("group-info-button").click()
    expect(carol.get_by_test_id("member-name")).to_have_count(3)
    expect(carol.get_by_test_id("group-admin-settings")).to_be_hidden()
    expect(carol.get_by_test_id("member-kick")).to_have_count(0)
    expect(carol.get_by_test_id("member-mute")).to_have_count(0)

    # Rename: everybody's title follows, with the notice.
    alice.get_by_test_id("group-rename-input").fill("Sci-fi book club 📚")
    alice.get_by_test_id("group-rename-submit").click()
    for page in (alice, bob, carol):
        expect(page.get_by_test_id("chat-title")).to_have_text("Sci-fi book club 📚")

    # Announcement and tags: shown in the panel; the members' panels follow the tags (a push).
    alice.get_by_test_id("group-announcement-input").fill("We meet on Fridays.")
    alice.get_by_test_id("group-announcement-submit").click()
    expect(alice.get_by_test_id("group-announcement")).to_have_text("We meet on Fridays.")
    alice.get_by_test_id("group-tags-input").fill("Books, SCI-FI,  reading club ")
    alice.get_by_test_id("group-tags-submit").click()
    expect(alice.get_by_test_id("group-tag")).to_have_text(["books", "sci-fi", "reading club"])
    expect(carol.get_by_test_id("group-tag")).to_have_text(["books", "sci-fi", "reading club"])

    # Make Bob admin: the role shows everywhere; Carol's panel still offers nothing.
    member(alice, bob_id).get_by_test_id("member-admin-toggle").click()
    expect(member(alice, bob_id).get_by_test_id("member-role")).to_have_text("Admin")
    expect(member(carol, bob_id).get_by_test_id("member-role")).to_have_text("Admin")
    expect(member(alice, bob_id).get_by_test_id("member-admin-toggle")).to_have_text("Remove admin")
    # Bob, an admin, may mute and remove Carol but not the owner.
    bob.get_by_test_id("group-info-button").click()
    expect(member(bob, carol_id).get_by_test_id("member-mute")).to_have_count(3)
    expect(member(bob, carol_id).get_by_test_id("member-kick")).to_be_visible()
    expect(member(bob, bob_id).get_by_test_id("member-kick")).to_have_count(0)
    alice_id = int(alice.evaluate("JSON.parse(localStorage.getItem('coffeechat.session')).userId"))
    expect(member(bob, alice_id).get_by_test_id("member-kick")).to_have_count(0)
    expect(member(bob, alice_id).get_by_test_id("member-mute")).to_have_count(0)

    # Mute Carol for 10 minutes: every panel marks her; her message is refused with the reason.
    member(alice, carol_id).locator('[data-testid="member-mute"][data-duration="600"]').click()
    for page in (alice, bob, carol):
        expect(member(page, carol_id).get_by_test_id("member-muted")).to_contain_text("Muted until")
    carol.get_by_test_id("group-panel-close").click()
    send(carol, "Can anyone hear me?")
    refused = last_message(carol).get_by_test_id("message-status")
    expect(refused).to_have_attribute("data-status", "failed")
    assert "muted in this group until" in (refused.get_attribute("title") or "")
    expect(alice.get_by_test_id("message-list")).not_to_contain_text("Can anyone hear me?")

    # Unmute: she writes again.
    member(alice, carol_id).get_by_test_id("member-unmute").click()
    expect(member(alice, carol_id).get_by_test_id("member-muted")).to_have_count(0)
    send(carol, "Thanks!")
    expect(last_message(alice).get_by_test_id("message-text")).to_have_text("Thanks!")

    # Mute everyone: Carol's composer is disabled; then back.
    alice.get_by_test_id("group-mute-all").check()
    expect(carol.get_by_test_id("composer-input")).to_be_disabled()
    expect(alice.get_by_test_id("group-mute-all")).to_be_checked()
    alice.get_by_test_id("group-mute-all").uncheck()
    expect(carol.get_by_test_id("composer-input")).to_be_enabled()

    # Remove Carol: she is gone from the list, and the group from hers.
    member(alice, carol_id).get_by_test_id("member-kick").click()
    expect(alice.get_by_test_id("member-name")).to_have_text(["Alice (you)", "Bob"])
    expect(alice.get_by_test_id("chat-subtitle")).to_have_text("2 members")
    expect(carol.get_by_test_id("left-note")).to_be_visible()

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
