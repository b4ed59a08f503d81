"""The web client's friends panel and online status, in a real browser against a real server:
a request with a message, accept and decline, a remark, the online dot and "last seen" in the
chat header, delete."""

from __future__ import annotations

import re

from .test_webclient import (  # noqa: F401  (fixtures)
    DESKTOP,
    Browser,
    Server,
    browser,
    find_person,
    group_item,
    last_message,
    pick,
    register,
    server,
)


def open_panel(page) -> None:
    if page.get_by_test_id("friends-panel").is_hidden():
        page.get_by_test_id("friends-button").click()


def test_friends_and_online_status_in_the_browser(server: Server, browser: Browser) -> None:  # noqa: F811
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    carol_id = register(b, carol, "carol", "Carol")

    # Alice asks Bob, with a message; she sees it among her sent requests.
    open_panel(alice)
    alice.get_by_test_id("friend-add-user").fill(str(bob_id))
    alice.get_by_test_id("friend-add-message").fill("Coffee sometime? ☕")
    alice.get_by_test_id("friend-add-submit").click()
    expect(alice.get_by_test_id(f"friend-request-out-{bob_id}")).to_be_visible()

    # Bob is told at once (the badge), sees the message and accepts.
    expect(bob.get_by_test_id("friends-badge")).to_have_text("1")
    open_panel(bob)
    request = bob.get_by_test_id(f"friend-request-in-{alice_id}")
    expect(request.get_by_test_id("friend-request-message")).to_have_text("Coffee sometime? ☕")
    bob.get_by_test_id(f"friend-accept-{alice_id}").click()
    expect(bob.get_by_test_id(f"friend-{alice_id}")).to_be_visible()
    expect(bob.get_by_test_id("friends-badge")).to_be_hidden()
    expect(alice.get_by_test_id(f"friend-{bob_id}")).to_be_visible()
    expect(alice.get_by_test_id(f"friend-request-out-{bob_id}")).to_have_count(0)

    # Carol asks Alice; Alice declines, and Carol's sent request goes away.
    open_panel(carol)
    carol.get_by_test_id("friend-add-user").fill(str(alice_id))
    carol.get_by_test_id("friend-add-submit").click()
    expect(alice.get_by_test_id(f"friend-request-in-{carol_id}")).to_be_visible()
    alice.get_by_test_id(f"friend-decline-{carol_id}").click()
    expect(alice.get_by_test_id(f"friend-request-in-{carol_id}")).to_have_count(0)
    expect(carol.get_by_test_id(f"friend-request-out-{alice_id}")).to_have_count(0)
    expect(carol.get_by_test_id("friend-list").locator("li")).to_have_count(0)

    # Bob is online: a green dot in Alice's list.  She gives him a remark that only she sees.
    friend = alice.get_by_test_id(f"friend-{bob_id}")
    expect(friend.get_by_test_id("presence-dot")).to_have_attribute("data-state", "online")
    alice.get_by_test_id(f"friend-remark-input-{bob_id}").fill("Bob from work")
    alice.get_by_test_id(f"friend-remark-save-{bob_id}").click()
    expect(alice.get_by_test_id(f"friend-name-{bob_id}")).to_have_text("Bob from work")
    expect(bob.get_by_test_id(f"friend-name-{alice_id}")).to_have_text("Alice")
    b.screenshot(alice, "webclient-friends-panel")

    # The chat with him shows the remark and "online"; when he goes, "last seen".
    alice.get_by_test_id(f"friend-name-{bob_id}").click()
    expect(alice.get_by_test_id("chat-title")).to_have_text("Bob from work")
    expect(alice.get_by_test_id("chat-presence")).to_have_text("online")
    bob.context.close()
    expect(alice.get_by_test_id("chat-presence")).to_have_text(re.compile(r"^last seen \d"), timeout=20_000)
    expect(alice.get_by_test_id("chat-presence")).to_have_attribute("data-state", "offline")
    b.screenshot(alice, "webclient-last-seen")

    # Deleting him empties her list.
    open_panel(alice)
    alice.get_by_test_id(f"friend-delete-{bob_id}").click()
    expect(alice.get_by_test_id(f"friend-{bob_id}")).to_have_count(0)
    assert not b.problems, b.problems
    assert not b.dialogs, b.dialogs


def test_a_remark_is_shown_where_the_friends_nick_is(server: Server, browser: Browser) -> None:  # noqa: F811
    """My remark of a friend replaces their nick where I see it: the chat title, and in a group
    the sender of their messages and the conversation list's preview; not in what I send."""
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    open_panel(alice)
    alice.get_by_test_id("friend-add-user").fill(str(bob_id))
    alice.get_by_test_id("friend-add-submit").click()
    open_panel(bob)
    bob.get_by_test_id(f"friend-accept-{alice_id}").click()
    expect(alice.get_by_test_id(f"friend-{bob_id}")).to_be_visible()
    alice.get_by_test_id(f"friend-remark-input-{bob_id}").fill("Bob from work")
    alice.get_by_test_id(f"friend-remark-save-{bob_id}").click()
    expect(alice.get_by_test_id(f"friend-name-{bob_id}")).to_have_text("Bob from work")
    alice.get_by_test_id("friends-close").click()

    alice.get_by_test_id("new-chat-button").click()
    alice.get_by_test_id("new-group-button").click()
    alice.get_by_test_id("group-name-input").fill("Lunch")
    pick(alice, "group-member-picker", bob_id)
    alice.get_by_test_id("create-group-submit").click()
    expect(alice.get_by_test_id("chat-title")).to_have_text("Lunch")
    created = alice.locator('[data-testid="conversation-item"][data-session-type="2"]')
    group_id = int(created.get_attribute("data-group-id"))
    server.send_over_tcp("bobby", group_id, "noon?", group=True)
    expect(last_message(alice).get_by_test_id("message-sender")).to_have_text("Bob from work")
    expect(group_item(alice, group_id).get_by_test_id("conversation-preview")).to_have_text("Bob from work: noon?")
    # she forwards it into the group: her copy says whom it is from, by the remark too
    noon = alice.get_by_test_id("message").filter(has_text="noon?")
    noon.get_by_test_id("message-actions").click()
    noon.get_by_test_id("forward-button").click()
    picker = alice.get_by_test_id("forward-picker")
    picker.locator(f'[data-testid="forward-target"][data-key="g{group_id}"] input').check()
    picker.get_by_test_id("forward-send").click()
    expect(picker).to_have_count(0)
    expect(last_message(alice).get_by_test_id("forwarded-from")).to_have_text("Forwarded from Bob from work")
    # what she sends names him by his nick, which the group knows (the remark is hers alone)
    alice.get_by_test_id("composer-input").fill("@Bo")
    alice.get_by_test_id("mention-option").filter(has_text="Bob").click()
    expect(alice.get_by_test_id("composer-input")).to_have_value("@Bob ")
    assert not b.problems, b.problems


def test_a_remark_is_shown_in_group_requests(server: Server, browser: Browser) -> None:  # noqa: F811
    """A friend who asks to join my group appears under my remark of them."""
    from .test_webclient_group_requests import open_requests, request_item, set_models

    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, b.page(DESKTOP, server.url), "bobby", "Bob")
    carol_id = register(b, carol, "carol", "Carol")
    open_panel(carol)
    carol.get_by_test_id("friend-add-user").fill(str(alice_id))
    carol.get_by_test_id("friend-add-submit").click()
    open_panel(alice)
    alice.get_by_test_id(f"friend-accept-{carol_id}").click()
    alice.get_by_test_id(f"friend-remark-input-{carol_id}").fill("Carol from the library")
    alice.get_by_test_id(f"friend-remark-save-{carol_id}").click()
    expect(alice.get_by_test_id(f"friend-name-{carol_id}")).to_have_text("Carol from the library")
    alice.get_by_test_id("friends-close").click()
    carol.get_by_test_id("friends-close").click()

    find_person(b, alice, "bobby", bob_id)  # the pickers list contacts and those found
    alice.get_by_test_id("new-group-button").click()
    alice.get_by_test_id("group-name-input").fill("Books")
    pick(alice, "group-member-picker", bob_id)
    alice.get_by_test_id("create-group-submit").click()
    expect(alice.get_by_test_id("chat-title")).to_have_text("Books")
    created = alice.locator('[data-testid="conversation-item"][data-session-type="2"]')
    group_id = int(created.get_attribute("data-group-id"))
    set_models(server, "alice", group_id)
    open_requests(carol)
    carol.get_by_test_id("join-group-id").fill(str(group_id))
    carol.get_by_test_id("join-group-submit").click()
    expect(alice.get_by_test_id("group-requests-count")).to_have_text("(1)")
    open_requests(alice)
    text = request_item(alice, "request").get_by_test_id("group-request-text")
    expect(text).to_have_text("Carol from the library asks to join “Books”")
    assert not b.problems, b.problems
