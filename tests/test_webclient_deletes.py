"""The web client's deletes in a real browser (the fixtures of tests/test_webclient.py): Alice,
on two pages (two devices), deletes one of Bob's messages for herself, clears the history and
removes the conversation from her list; her other page follows, Bob's page never changes, and a
reload (history and list from the server) shows the same."""

from __future__ import annotations

from typing import Any

from .test_webclient import (
    DESKTOP,
    Browser,
    Server,
    browser,
    conversation,
    find_person,
    group_item,
    log_in,
    pick,
    register,
    send,
    server,
    texts,
)

__all__ = ["browser", "server"]  # the fixtures, imported for pytest


def message(page: Any, text: str) -> Any:
    return page.get_by_test_id("message").filter(has_text=text)


def test_delete_for_me_clear_and_remove_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    other = b.page(DESKTOP, server.url)  # Alice's second device
    log_in(b, other, "alice")

    find_person(b, bob, "alice", alice_id).click()  # "New chat" lists contacts: others are searched
    for text in ("one", "two", "three"):
        send(bob, text)
    expect(bob.get_by_test_id("message-text")).to_have_text(["one", "two", "three"])
    for page in (alice, other):
        conversation(page, bob_id).click()
        expect(page.get_by_test_id("message-text")).to_have_text(["one", "two", "three"])

    # "Delete for me" is in every message's menu; the message goes from Alice's pages only.
    message(alice, "three").get_by_test_id("message-actions").click()
    expect(message(alice, "three").get_by_test_id("recall-button")).to_be_hidden()  # not hers to recall
    message(alice, "three").get_by_test_id("delete-for-me-button").click()
    for page in (alice, other):
        expect(page.get_by_test_id("message-text")).to_have_text(["one", "two"])
        expect(conversation(page, bob_id).get_by_test_id("conversation-preview")).to_have_text("two")
    expect(bob.get_by_test_id("message-text")).to_have_text(["one", "two", "three"])
    expect(conversation(bob, alice_id).get_by_test_id("conversation-preview")).to_have_text("You: three")

    # After a reload the history and the list come from the server: still without it.
    other.reload()
    expect(other.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(conversation(other, bob_id).get_by_test_id("conversation-preview")).to_have_text("two")
    conversation(other, bob_id).click()
    expect(other.get_by_test_id("message-text")).to_have_text(["one", "two"])

    # A new message after the deleted one: no gap is taken for a missed message.
    send(bob, "four")
    for page in (alice, other):
        expect(page.get_by_test_id("message-text")).to_have_text(["one", "two", "four"])

    # Clear history: everything up to now goes, on both of Alice's pages; later messages show.
    alice.get_by_test_id("chat-actions-button").click()
    alice.get_by_test_id("chat-clear-button").click()
    expect(alice.get_by_test_id("chat-actions-menu")).to_be_hidden()
    for page in (alice, other):
        expect(page.get_by_test_id("message-text")).to_have_count(0)
        expect(conversation(page, bob_id).get_by_test_id("conversation-preview")).to_have_text("No messages yet")
    expect(bob.get_by_test_id("message-text")).to_have_text(["one", "two", "three", "four"])
    other.reload()  # the server lists it without a message: it still shows, empty
    expect(other.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(conversation(other, bob_id).get_by_test_id("conversation-preview")).to_have_text("No messages yet")
    expect(conversation(other, bob_id).get_by_test_id("unread-badge")).to_have_count(0)
    conversation(other, bob_id).click()
    expect(other.get_by_test_id("history-start")).to_be_visible()
    expect(other.get_by_test_id("message-text")).to_have_count(0)
    send(bob, "five")
    for page in (alice, other):
        expect(page.get_by_test_id("message-text")).to_have_text(["five"])
    alice.reload()
    expect(alice.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    conversation(alice, bob_id).click()
    expect(alice.get_by_test_id("message-text")).to_have_text(["five"])

    # Remove from list: the conversation leaves both pages' lists, and comes back with a message.
    alice.get_by_test_id("chat-actions-button").click()
    alice.get_by_test_id("chat-remove-button").click()
    for page in (alice, other):
        expect(conversation(page, bob_id)).to_have_count(0)
    expect(alice.get_by_test_id("chat-header")).to_be_hidden()
    expect(conversation(bob, alice_id)).to_have_count(1)
    other.reload()
    expect(other.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(conversation(other, bob_id)).to_have_count(0)
    send(bob, "six")
    for page in (alice, other):
        expect(conversation(page, bob_id).get_by_test_id("conversation-preview")).to_have_text("six")
    conversation(alice, bob_id).click()
    expect(alice.get_by_test_id("message-text")).to_have_text(["five", "six"])
    assert texts(bob) == ["one", "two", "three", "four", "five", "six"]

    # A group removed from the list stays out after a reload too (every group has messages, so the
    # server's list leaving it out means it was removed), until someone writes in it.
    bob.get_by_test_id("new-chat-button").click()
    bob.get_by_test_id("new-group-button").click()
    bob.get_by_test_id("group-name-input").fill("Lunch")
    pick(bob, "group-member-picker", alice_id)
    bob.get_by_test_id("create-group-submit").click()
    expect(bob.get_by_test_id("chat-title")).to_have_text("Lunch")
    group_id = int(
        bob.locator('[data-testid="conversation-item"][data-session-type="2"]').get_attribute("data-group-id")
    )
    expect(group_item(alice, group_id)).to_have_count(1)
    group_item(alice, group_id).click()
    alice.get_by_test_id("chat-actions-button").click()
    alice.get_by_test_id("chat-remove-button").click()
    for page in (alice, other):
        expect(group_item(page, group_id)).to_have_count(0)
    alice.reload()
    expect(alice.get_by_test_id("conn-status")).to_have_attribute("data-state", "online")
    expect(conversation(alice, bob_id)).to_have_count(1)
    expect(group_item(alice, group_id)).to_have_count(0)
    send(bob, "pizza?")
    for page in (alice, other):
        expect(group_item(page, group_id).get_by_test_id("conversation-preview")).to_have_text("Bob: pizza?")

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
