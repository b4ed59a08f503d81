"""Do-not-disturb and pinned conversations in a real browser (fixtures of tests/test_webclient.py):
pinning moves a conversation to the top, muting shows the icon, the global setting with its time
window is saved from the settings panel, and all of it reaches a second page of the same user."""

from __future__ import annotations

from typing import Any

from .test_webclient import DESKTOP, Browser, Server, browser, conversation, log_in, register, server  # noqa: F401


def first_peer(page: Any) -> str | None:
    return page.get_by_test_id("conversation-item").first.get_attribute("data-peer-id")


def test_pin_mute_and_dnd_settings_in_the_browser(server: Server, browser: Browser) -> None:  # noqa: F811
    b = browser
    expect = b.expect
    bob = b.page(DESKTOP, server.url)
    bob_id = register(b, bob, "bobby", "Bob")
    carol_id = server.send_over_tcp("carol", bob_id, "Hi from Carol")
    dave_id = server.send_over_tcp("david", bob_id, "Hi from Dave")  # the newest: on top
    expect(conversation(bob, dave_id).get_by_test_id("unread-badge")).to_have_text("1")
    expect(conversation(bob, carol_id)).to_be_visible()
    assert first_peer(bob) == str(dave_id)
    expect(bob.get_by_test_id("pinned-header")).to_have_count(0)

    # Pin Carol's chat from its header: it moves to the top, under a "Pinned" heading.
    conversation(bob, carol_id).click()
    expect(bob.get_by_test_id("pin-toggle")).to_have_attribute("aria-pressed", "false")
    bob.get_by_test_id("pin-toggle").click()
    expect(bob.get_by_test_id("pin-toggle")).to_have_attribute("aria-pressed", "true")
    expect(conversation(bob, carol_id).get_by_test_id("pinned-icon")).to_be_visible()
    expect(bob.get_by_test_id("pinned-header")).to_be_visible()
    expect(bob.get_by_test_id("conversation-item").first).to_have_attribute("data-peer-id", str(carol_id))

    # Mute it: the struck bell shows in the list.
    bob.get_by_test_id("mute-toggle").click()
    expect(bob.get_by_test_id("mute-toggle")).to_have_attribute("aria-pressed", "true")
    expect(conversation(bob, carol_id).get_by_test_id("muted-icon")).to_be_visible()
    expect(conversation(bob, dave_id).get_by_test_id("muted-icon")).to_have_count(0)

    # A second page of Bob's: the same pins and mutes when it connects ...
    laptop = b.page(DESKTOP, server.url)
    log_in(b, laptop, "bobby")
    expect(laptop.get_by_test_id("conversation-item").first).to_have_attribute("data-peer-id", str(carol_id))
    expect(conversation(laptop, carol_id).get_by_test_id("pinned-icon")).to_be_visible()
    expect(conversation(laptop, carol_id).get_by_test_id("muted-icon")).to_be_visible()

    # ... and the changes made on the first page while it is open.
    conversation(bob, dave_id).click()
    bob.get_by_test_id("mute-toggle").click()
    bob.get_by_test_id("pin-toggle").click()
    expect(conversation(laptop, dave_id).get_by_test_id("muted-icon")).to_be_visible()
    expect(laptop.get_by_test_id("conversation-item").first).to_have_attribute("data-peer-id", str(dave_id))
    conversation(bob, carol_id).click()
    bob.get_by_test_id("pin-toggle").click()  # unpinned: back among the others
    expect(conversation(laptop, carol_id).get_by_test_id("pinned-icon")).to_have_count(0)
    expect(conversation(laptop, carol_id).get_by_test_id("muted-icon")).to_be_visible()
    expect(laptop.get_by_test_id("conversation-item").first).to_have_attribute("data-peer-id", str(dave_id))
    b.screenshot(laptop, "webclient-pins-and-mutes")

    # Global do-not-disturb from 22:00 to 07:00 in Tokyo, from the settings panel.
    bob.get_by_test_id("dnd-settings-button").click()
    expect(bob.get_by_test_id("dnd-status")).to_have_text("Notifications are on.")
    bob.get_by_test_id("dnd-enabled").check()
    bob.get_by_test_id("dnd-window").check()
    bob.get_by_test_id("dnd-start").fill("22:00")
    bob.get_by_test_id("dnd-end").fill("07:00")
    bob.get_by_test_id("dnd-time-zone").fill("Mars/Olympus_Mons")
    bob.get_by_test_id("dnd-save").click()
    expect(bob.get_by_test_id("dnd-error")).to_contain_text("not a time zone")
    bob.get_by_test_id("dnd-time-zone").fill("Asia/Tokyo")
    bob.get_by_test_id("dnd-save").click()
    expect(bob.get_by_test_id("dnd-error")).to_have_text("")
    expect(bob.get_by_test_id("dnd-status")).to_contain_text("from 22:00 to 07:00 (Asia/Tokyo)")
    b.screenshot(bob, "webclient-dnd-settings")
    laptop.get_by_test_id("dnd-settings-button").click()
    expect(laptop.get_by_test_id("dnd-status")).to_contain_text("from 22:00 to 07:00 (Asia/Tokyo)")
    expect(laptop.get_by_test_id("dnd-enabled")).to_be_checked()
    expect(laptop.get_by_test_id("dnd-start")).to_have_value("22:00")
    expect(laptop.get_by_test_id("dnd-time-zone")).to_have_value("Asia/Tokyo")
    bob.get_by_test_id("dnd-enabled").uncheck()
    bob.get_by_test_id("dnd-save").click()
    expect(laptop.get_by_test_id("dnd-status")).to_have_text("Notifications are on.")
    expect(laptop.get_by_test_id("dnd-enabled")).not_to_be_checked()
    laptop.get_by_test_id("dnd-close").click()
    expect(laptop.get_by_test_id("conversation-panel")).to_be_visible()
    assert b.problems == [], b.problems
    assert b.dialogs == []
