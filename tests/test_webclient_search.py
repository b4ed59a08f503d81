"""The web client's message search (protocols/webclient/search.js) in a real browser against a real
server: the sidebar's search box, results with their highlighted words (a CJK query too), paging
by "More", and a click that opens the conversation at the message."""

from __future__ import annotations

import time
from typing import Any

from .test_webclient import DESKTOP, XSS, Browser, Server, browser, find_person, register, send, server  # noqa: F401


def search_until(b: Browser, page: Any, query: str, count: int, timeout: float = 20) -> Any:
    """Type a query and search again (Enter) until ``count`` hits show: the index follows the
    messages within a second or two, and the page searches once per query typed."""
    box = page.get_by_test_id("search-input")
    box.fill(query)
    hits = page.get_by_test_id("search-hit")
    deadline = time.monotonic() + timeout
    while hits.count() != count and time.monotonic() < deadline:
        page.wait_for_timeout(400)
        box.press("Enter")
    assert hits.count() == count, (page.get_by_test_id("search-status").text_content(), b.problems)
    return hits


def test_search_finds_highlights_and_opens_the_conversation(server: Server, browser: Browser) -> None:  # noqa: F811
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")

    find_person(b, alice, "bobby", bob_id).click()  # "New chat" lists contacts: others are searched
    send(alice, "Quarterly report is ready for review")
    send(alice, "我们明天下午开会讨论季度报告")
    send(alice, f"review this {XSS}")
    expect(alice.get_by_test_id("message-text")).to_have_count(3)

    # Bob searches: results replace the list, newest first, with the matched words marked.
    box = bob.get_by_test_id("search-input")
    hits = search_until(b, bob, "review", 2)
    expect(bob.get_by_test_id("conversation-panel")).to_be_hidden()
    expect(hits.first.get_by_test_id("search-hit-chat")).to_have_text("Alice")
    expect(hits.first.get_by_test_id("search-hit-snippet")).to_have_text(f"review this {XSS}")
    assert bob.get_by_test_id("search-results").locator("img").count() == 0  # text, never markup
    expect(hits.nth(1).get_by_test_id("search-highlight")).to_have_text(["review"])
    b.screenshot(bob, "webclient-search")

    # A CJK query: any two consecutive characters find it.
    box.fill("季度报告")
    expect(hits).to_have_count(1)
    expect(hits.first.get_by_test_id("search-highlight")).to_have_text(["季度报告"])
    box.fill("明天 开会")
    expect(hits.first.get_by_test_id("search-highlight")).to_have_text(["明天", "开会"])

    # Nothing found, and a refusal, say so.
    box.fill("nonexistentword")
    expect(bob.get_by_test_id("search-status")).to_have_text("No messages found.")
    box.fill("?!")
    expect(bob.get_by_test_id("search-status")).to_have_text("Type a word to search for.")

    # A click opens the conversation at that message; clearing brings the list back.
    box.fill("quarterly")
    expect(hits).to_have_count(1)
    hits.first.click()
    expect(bob.get_by_test_id("chat-title")).to_have_text("Alice")
    expect(bob.locator("li.search-flash")).to_have_count(1)
    expect(bob.locator("li.search-flash").get_by_test_id("message-text")).to_have_text(
        "Quarterly report is ready for review"
    )
    bob.get_by_test_id("search-clear").click()
    expect(bob.get_by_test_id("search-panel")).to_be_hidden()
    expect(bob.get_by_test_id("conversation-panel")).to_be_visible()
    assert not b.problems, b.problems


def test_search_pages_with_more(server: Server, browser: Browser) -> None:  # noqa: F811
    b = browser
    expect = b.expect
    bob = b.page(DESKTOP, server.url)
    bob_id = register(b, bob, "bobby", "Bob")
    server.send_over_tcp("alice", bob_id, *[f"ticket number {i}" for i in range(25)])
    server.send_over_tcp("alice", bob_id, *[f"filler {i}" for i in range(60)])
    hits = search_until(b, bob, "ticket", 20)
    expect(hits.first.get_by_test_id("search-hit-snippet")).to_have_text("ticket number 24")
    bob.get_by_test_id("search-more").click()
    expect(hits).to_have_count(25)
    expect(bob.get_by_test_id("search-more")).to_be_hidden()
    expect(hits.last.get_by_test_id("search-hit-snippet")).to_have_text("ticket number 0")

    # The oldest one is 85 messages back, beyond the newest page: older pages are loaded for it.
    hits.last.click()
    expect(bob.get_by_test_id("chat-title")).to_have_text("Alice")
    flashed = bob.locator("li.search-flash")
    expect(flashed.get_by_test_id("message-text")).to_have_text("ticket number 0")
    assert not b.problems, b.problems
