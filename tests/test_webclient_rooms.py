"""Chat rooms in the web client, in a real browser (the fixtures and steps of
tests/test_webclient.py): Alice creates a room from the rooms panel and is in it; Bob finds it in
the list and joins; both see two people there (the coalesced ROOM_EVENT_NOTIFY, or the periodic
ROOM_MEMBERS_REQ); they exchange messages (markup shows as text); Carol, a newcomer, joins and
sees the recent messages at once, in order; Bob sees her arrive; Bob leaves and the count goes
down; after Alice's connection drops, her page joins the room again by itself; Alice, the owner,
mutes Carol, then closes the room."""

from __future__ import annotations

from typing import Any

from .test_webclient import DESKTOP, PHONE, XSS, Browser, Server, browser, register, server

__all__ = ["browser", "server"]  # the fixtures, imported for pytest

ROOM = "Launch party 🚀"


def room_item(page: Any, name: str) -> Any:
    return page.get_by_test_id("room-item").filter(has=page.get_by_test_id("room-name").filter(has_text=name))


def room_send(page: Any, text: str) -> None:
    page.get_by_test_id("room-input").fill(text)
    page.get_by_test_id("room-send").click()


def room_texts(page: Any) -> list[str]:
    return page.get_by_test_id("room-message-text").all_text_contents()


def join(b: Browser, page: Any, name: str) -> None:
    page.get_by_test_id("rooms-button").click()
    b.expect(room_item(page, name)).to_have_count(1)
    room_item(page, name).get_by_test_id("room-open").click()
    b.expect(page.get_by_test_id("room-view")).to_be_visible()
    b.expect(page.get_by_test_id("room-title")).to_have_text(name)


def test_people_join_a_room_chat_and_see_who_is_there(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    link = {"blocked": False, "open": []}
    alice = b.page(DESKTOP, server.url, block_ws=link)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(PHONE, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    carol_id = register(b, carol, "carol", "Carol")

    # Alice creates the room: she is its owner, alone in it.
    alice.get_by_test_id("rooms-button").click()
    expect(alice.get_by_test_id("rooms-panel")).to_be_visible()
    alice.get_by_test_id("room-name-input").fill(ROOM)
    alice.get_by_test_id("room-topic-input").fill("Tonight at 8")
    alice.get_by_test_id("room-create-submit").click()
    view = alice.get_by_test_id("room-view")
    expect(view).to_be_visible()
    expect(view).to_have_attribute("data-role", "owner")
    expect(alice.get_by_test_id("room-title")).to_have_text(ROOM)
    expect(alice.get_by_test_id("room-topic-line")).to_have_text("Tonight at 8")
    expect(alice.get_by_test_id("room-member-count")).to_have_attribute("data-count", "1")
    expect(alice.get_by_test_id("room-member-count")).to_have_text("1 person here")
    expect(room_item(alice, ROOM).get_by_test_id("room-joined")).to_be_visible()

    # Bob finds it in the list and joins: both see two people there.
    join(b, bob, ROOM)
    expect(bob.get_by_test_id("room-view")).to_have_attribute("data-role", "member")
    for page in (alice, bob):
        expect(page.get_by_test_id("room-member-count")).to_have_attribute("data-count", "2")
    expect(alice.get_by_test_id("room-member-count")).to_have_text("2 people here")
    expect(alice.get_by_test_id("room-event").last).to_contain_text("Bob joined")

    # They talk; the markup stays text.
    room_send(alice, "Welcome, everyone!")
    expect(bob.get_by_test_id("room-message-text")).to_have_text(["Welcome, everyone!"])
    expect(bob.get_by_test_id("room-message-sender")).to_have_text(["Alice · owner"])
    room_send(bob, XSS)
    room_send(bob, "Glad to be here 🎉")
    expect(alice.get_by_test_id("room-message-text")).to_have_text(["Welcome, everyone!", XSS, "Glad to be here 🎉"])
    expect(bob.get_by_test_id("room-message-status")).to_have_count(2)
    expect(bob.locator('[data-testid="room-message-status"][data-status="sent"]')).to_have_count(2)
    expect(alice.locator('[data-testid="room-messages"] img')).to_have_count(0)
    b.screenshot(alice, "webclient-room")

    # Carol (on a phone) comes late: the recent messages are there at once, in order, once each.
    join(b, carol, ROOM)
    expect(carol.get_by_test_id("room-message-text")).to_have_text(["Welcome, everyone!", XSS, "Glad to be here 🎉"])
    expect(carol.get_by_test_id("conversation-panel")).to_be_hidden()  # the room has the whole screen
    for page in (alice, bob, carol):
        expect(page.get_by_test_id("room-member-count")).to_have_attribute("data-count", "3")
    expect(bob.get_by_test_id("room-event").last).to_contain_text("Carol joined")
    room_send(carol, "Hi from my phone")
    for page in (alice, bob):
        expect(page.get_by_test_id("room-message-text").last).to_have_text("Hi from my phone")
    b.screenshot(carol, "webclient-room-phone")

    # Who is here: the sample; the owner may act on the others.
    alice.get_by_test_id("room-members-button").click()
    expect(alice.get_by_test_id("room-member")).to_have_count(3)
    member = '[data-testid="room-member"][data-user-id="{}"] [data-testid="room-kick"]'
    expect(alice.locator(member.format(bob_id))).to_be_visible()
    expect(alice.locator(member.format(alice_id))).to_have_count(0)  # not on herself

    # Bob leaves: the others see two people again, and he is back in his chats.
    bob.get_by_test_id("room-leave").click()
    expect(bob.get_by_test_id("room-view")).to_be_hidden()
    for page in (alice, carol):
        expect(page.get_by_test_id("room-member-count")).to_have_attribute("data-count", "2")
    expect(alice.get_by_test_id("room-event").last).to_contain_text("Bob left")

    # Alice's connection drops and comes back: her page joins the room again by itself.
    link["blocked"] = True
    for ws in link["open"]:
        ws.close()
    expect(alice.get_by_test_id("conn-status")).not_to_have_attribute("data-state", "online")
    link["blocked"] = False
    alice.evaluate("window.dispatchEvent(new Event('online'))")
    expect(alice.get_by_test_id("conn-status")).to_have_attribute("data-state", "online", timeout=30_000)
    room_send(carol, "Still there?")
    expect(alice.get_by_test_id("room-message-text").last).to_have_text("Still there?")
    assert room_texts(alice).count("Welcome, everyone!") == 1  # the rejoin's recent did not repeat it

    # The owner mutes Carol for ten minutes: her page says so and she cannot write.
    expect(alice.get_by_test_id("room-members")).to_be_visible()  # still open from before
    alice.locator(f'[data-testid="room-member"][data-user-id="{carol_id}"] [data-testid="room-mute"]').click()
    expect(carol.get_by_test_id("room-note")).to_contain_text("You are muted until")
    expect(carol.get_by_test_id("room-input")).to_be_disabled()

    # She closes the room (a second click confirms): everyone in it is told, it leaves the lists.
    alice.get_by_test_id("room-close-button").click()
    expect(alice.get_by_test_id("room-close-button")).to_have_text("Close it for everyone?")
    alice.get_by_test_id("room-close-button").click()
    expect(alice.get_by_test_id("room-note")).to_have_text("You closed this room.")
    expect(carol.get_by_test_id("room-note")).to_have_text("This room was closed.")
    expect(carol.get_by_test_id("room-composer")).to_be_hidden()
    bob.get_by_test_id("rooms-refresh").click()
    expect(room_item(bob, ROOM)).to_have_count(0)

    assert b.dialogs == [], b.dialogs
    assert b.problems == [], b.problems
