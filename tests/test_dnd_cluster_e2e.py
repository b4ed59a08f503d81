"""Do-not-disturb and pins across two real nodes sharing a real PostgreSQL and Redis
(the fixtures of tests/test_cluster_e2e.py): a user's change on one node reaches their device on
the other, and the other node's settings cache sees it."""

from __future__ import annotations

import pytest_twisted

from coffeechat.model import Message
from coffeechat.schema import Cmd
from tests.pgserver import pg_server  # noqa: F401  (session fixture)
from tests.redisserver import redis_server  # noqa: F401
from tests.test_cluster_e2e import two_nodes, until  # noqa: F401


@pytest_twisted.ensureDeferred
async def test_dnd_and_pins_cross_nodes_over_redis_and_postgresql(two_nodes):  # noqa: F811
    n1, n2 = two_nodes
    alice_id = await n1.register("alice")
    bob_id = await n1.register("bobby")
    alice = await n1.login("alice")
    phone = await n1.login("bobby")
    laptop = await n2.login("bobby", transport="ws-json")
    await until(lambda: n1.core.presence.live_nodes() == {"n1", "n2"})
    await alice.send_message(bob_id, "hello")
    message = Message(f"p:{alice_id}:{bob_id}", 1, 1, alice_id, bob_id, "x", 1, b"hello", 0)
    dnd2 = n2.core.feature("dnd")
    assert await dnd2.notify_wanted(bob_id, message, (), False)  # cached on n2 now

    assert (await phone.mute(alice_id)).result_code == 200
    _, _, notice = await laptop.next_push(Cmd.DND_NOTIFY, timeout=10)
    assert (notice.conversation.session_id, notice.conversation.muted) == (alice_id, True)
    await until(lambda: bob_id not in dnd2._cache)
    assert not await dnd2.notify_wanted(bob_id, message, (), False)
    assert await dnd2.notify_wanted(bob_id, message, (bob_id,), False)  # a mention still notifies

    assert (await phone.pin(alice_id)).result_code == 200
    _, _, notice = await laptop.next_push(Cmd.PIN_NOTIFY, timeout=10)
    assert (notice.session_id, notice.pinned) == (alice_id, True)
    listing = await laptop.sessions()
    assert [(s.session_id, s.muted, s.pinned) for s in listing.contact_session_list] == [(alice_id, True, True)]
