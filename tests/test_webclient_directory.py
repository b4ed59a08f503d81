"""The directory and the block list in a real browser (Chromium via Playwright against ``twistd
-n coffeechat``, as tests/test_webclient.py): finding people by name in "New chat", editing one's
profile (seen on one's other device and by the people one writes to), blocking from a chat's
header (the blocked sender's message is not sent), and the block list with its Unblock button."""

from __future__ import annotations

from typing import Any

from .test_webclient import (  # noqa: F401  (fixtures)
    DESKTOP,
    PHONE,
    Browser,
    Server,
    browser,
    conversation,
    find_person,
    log_in,
    register,
    send,
    server,
    statuses,
    texts,
)


def open_profile(page: Any) -> None:
    page.get_by_test_id("profile-button").click()


def test_search_profile_and_block_in_the_browser(server: Server, browser: Browser) -> None:  # noqa: F811
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    bob_phone = b.page(PHONE, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    server.send_over_tcp("bobcat", alice_id, "meow")  # another "bob", by user name

    # "New chat" lists contacts (Alice's only one is bobcat, who wrote to her); anyone else is
    # found by name, user name or nick name, case-insensitively.
    alice.get_by_test_id("new-chat-button").click()
    expect(alice.get_by_test_id("user-item")).to_have_count(1)
    alice.get_by_test_id("user-search-input").fill("BOB")
    expect(alice.get_by_test_id("search-result-name")).to_have_text(["Bob", "Bobcat"])
    expect(alice.get_by_test_id("user-list")).to_be_hidden()
    b.screenshot(alice, "webclient-search-desktop")
    alice.get_by_test_id("user-search-input").fill("nobody")
    expect(alice.get_by_test_id("user-search-status")).to_have_text("Nobody is called “nobody”.")
    alice.get_by_test_id("user-search-input").fill("")
    expect(alice.get_by_test_id("user-list")).to_be_visible()
    alice.get_by_test_id("user-list-close").click()
    find_person(b, alice, "bobb", bob_id).click()
    expect(alice.get_by_test_id("chat-title")).to_have_text("Bob")
    send(alice, "Hi Bob")
    expect(alice.locator('[data-status="sent"]')).to_have_count(1)

    # Bob edits his profile; a bad avatar URL is refused with the server's reason.
    log_in(b, bob_phone, "bobby")
    open_profile(bob)
    expect(bob.get_by_test_id("profile-nick-input")).to_have_value("Bob")
    bob.get_by_test_id("profile-avatar-input").fill("javascript:alert(1)")
    bob.get_by_test_id("profile-save").click()
    expect(bob.get_by_test_id("profile-error")).to_contain_text("http")
    bob.get_by_test_id("profile-avatar-input").fill("https://example.com/bob.png")
    bob.get_by_test_id("profile-nick-input").fill("Bobby Tables")
    bob.get_by_test_id("profile-signature-input").fill("Little Bobby")
    bob.get_by_test_id("profile-save").click()
    expect(bob.get_by_test_id("profile-status")).to_have_text("Saved.")
    expect(bob.get_by_test_id("me-name")).to_have_text("Bobby Tables")
    expect(bob_phone.get_by_test_id("me-name")).to_have_text("Bobby Tables")  # his other device was told
    b.screenshot(bob, "webclient-profile-desktop")
    # Alice finds him by the new nick, and his next message carries it.
    bob.get_by_test_id("profile-close").click()
    conversation(bob, alice_id).click()
    send(bob, "New name, who dis?")
    expect(alice.get_by_test_id("chat-title")).to_have_text("Bobby Tables")
    alice.get_by_test_id("new-chat-button").click()
    alice.get_by_test_id("user-search-input").fill("bobby t")
    expect(alice.get_by_test_id("search-result-name")).to_have_text(["Bobby Tables"])
    alice.get_by_test_id("user-list-close").click()

    # Alice blocks Bob from the chat's header: his next message is not sent (he sees why).
    conversation(alice, bob_id).click()
    expect(alice.get_by_test_id("block-button")).to_have_text("Block")
    alice.get_by_test_id("block-button").click()
    expect(alice.get_by_test_id("block-button")).to_have_text("Unblock")
    expect(alice.get_by_test_id("blocked-note")).to_be_visible()
    send(bob, "Hello?")
    expect(bob.locator('[data-status="failed"]')).to_have_count(1)
    refused = "Not sent: the recipient does not accept your messages"
    expect(bob.locator('[data-status="failed"]')).to_have_attribute("title", refused)
    assert texts(alice) == ["Hi Bob", "New name, who dis?"]

    # Her block list (from her profile) shows him; Unblock lets him write again.
    open_profile(alice)
    alice.get_by_test_id("block-list-button").click()
    expect(alice.get_by_test_id("blocked-name")).to_have_text(["Bobby Tables"])
    b.screenshot(alice, "webclient-blocks-desktop")
    alice.get_by_test_id("unblock-button").click()
    expect(alice.get_by_test_id("blocked-item")).to_have_count(0)
    expect(alice.get_by_test_id("blocks-empty")).to_be_visible()
    expect(alice.get_by_test_id("block-button")).to_have_text("Block")
    send(bob, "Back again")
    expect(alice.get_by_test_id("message-text").last).to_have_text("Back again")
    assert "failed" in statuses(bob)
    assert b.problems == [] and b.dialogs == []
