"""Files and media in the web client, in a real browser (the fixtures and steps of
tests/test_webclient.py): Alice attaches a photo and a PDF; both upload over HTTP and go out as
IMAGE and FILE messages; Bob sees the thumbnail load (through a signed URL), taps it to open the
reduced copy, and downloads the PDF by its link; Carol, who is not in the conversation, cannot
read the photo."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request

from PIL import Image

from .test_webclient import DESKTOP, Browser, Server, browser, conversation, find_person, register, send, server

__all__ = ["browser", "server"]  # the fixtures, imported for pytest


def photo() -> bytes:
    im = Image.new("RGB", (1200, 800), (40, 120, 200))
    for x in range(0, 1200, 60):
        im.paste((250, 200, 40), (x, 0, x + 30, 800))
    exif = Image.Exif()
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 24.0), 3: "E", 4: (2.0, 21.0, 3.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n" + b"x" * 3000


def natural_width(locator) -> int:
    return locator.evaluate("img => img.complete ? img.naturalWidth : 0")


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def test_photo_and_file_round_trip_in_the_browser(server: Server, browser: Browser) -> None:
    b = browser
    expect = b.expect
    alice = b.page(DESKTOP, server.url)
    bob = b.page(DESKTOP, server.url)
    carol = b.page(DESKTOP, server.url)
    alice_id = register(b, alice, "alice", "Alice")
    bob_id = register(b, bob, "bobby", "Bob")
    register(b, carol, "carol", "Carol")

    find_person(b, alice, "bobby", bob_id).click()
    send(alice, "Look at this")
    expect(conversation(bob, alice_id)).to_have_count(1)

    # Alice picks a photo: it uploads, then shows in her chat as a thumbnail.
    expect(alice.get_by_test_id("attach-button")).to_be_visible()
    alice.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "beach.jpg", "mimeType": "image/jpeg", "buffer": photo()}]
    )
    mine = alice.get_by_test_id("message").filter(has=alice.get_by_test_id("media-image"))
    expect(mine).to_have_count(1)
    expect(mine.get_by_test_id("message-status")).not_to_have_attribute("data-status", "pending")
    image = mine.get_by_test_id("media-image")
    expect(image).to_have_attribute("src", re.compile(r"/files/[A-Za-z0-9_-]+/thumb\?exp=\d+&sig="))
    alice.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert natural_width(image) == 320  # the thumbnail's longest side

    # And a PDF, which shows as a card with its name and size.
    alice.get_by_test_id("attach-input").set_input_files(
        files=[{"name": "plan.pdf", "mimeType": "application/pdf", "buffer": PDF}]
    )
    expect(alice.get_by_test_id("media-file-link")).to_have_text("plan.pdf")

    # Bob's conversation list says "[Photo]"/"[File]"; in the chat the photo loads for him too.
    conversation(bob, alice_id).click()
    theirs = bob.get_by_test_id("message").filter(has=bob.get_by_test_id("media-image"))
    expect(theirs).to_have_count(1)
    bob_image = theirs.get_by_test_id("media-image")
    bob.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=bob_image.element_handle())
    thumb_url = bob_image.get_attribute("src")
    b.screenshot(bob, "webclient-media")

    # A tap opens the reduced copy (at most 1280 px: the photo's own 1200) with a link to the original.
    theirs.get_by_test_id("media-card").click()
    viewer = bob.get_by_test_id("media-viewer")
    expect(viewer).to_be_visible()
    big = viewer.get_by_test_id("media-viewer-image")
    bob.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=big.element_handle())
    assert natural_width(big) == 1200
    original = viewer.get_by_test_id("media-original").get_attribute("href")
    bob.keyboard.press("Escape")
    expect(viewer).to_have_count(0)

    # The original, fetched by its signed URL with no header: the same photo, its GPS position gone.
    status, body = fetch(server.url.rstrip("/") + original)
    assert status == 200
    stored = Image.open(io.BytesIO(body))
    assert stored.size == (1200, 800) and 0x8825 not in stored.getexif()

    # The file's link downloads the PDF as it was sent.
    link = bob.get_by_test_id("media-file-link")
    expect(link).to_have_text("plan.pdf")
    expect(bob.get_by_test_id("media-file-size")).to_have_text(f"{len(PDF) / 1024:.1f} KB")
    status, body = fetch(server.url.rstrip("/") + link.get_attribute("href"))
    assert status == 200 and body == PDF

    # Carol is refused the photo's signature: it was not sent to her.
    file_id = thumb_url.split("/files/")[1].split("/")[0]
    answer = carol.evaluate(
        """async (id) => {
            const token = JSON.parse(localStorage.getItem('coffeechat.session')).token;
            const r = await fetch('/files/sign', {method: 'POST', body: JSON.stringify({ids: [id]}),
                                                headers: {Authorization: 'Bearer ' + token}});
            return await r.json();
        }""",
        file_id,
    )
    assert answer["refused"] == [file_id], json.dumps(answer)
    assert b.problems == [], b.problems
