"""Offline push end to end: two users over real TCP, a real node (SQLite), and a local webhook
receiver on loopback that verifies each Standard Webhooks signature.  Bob registers, goes away,
Alice writes: exactly one notification each time, with the badge, the thread, the preview or
"New message"; DND silences; an @mention in a muted group still notifies; a dead token is
removed; a 503 is retried."""

from __future__ import annotations

import pytest_twisted
from standardwebhooks import Webhook
from twisted.internet import reactor
from twisted.internet.task import deferLater

from coffeechat.schema import Cmd, pb

from .conftest import node_config, start_node, stop_node
from .pushreceiver import start_service
from .test_cluster_e2e import until

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GROUP = pb.kCIM_SESSION_TYPE_GROUP


@pytest_twisted.async_yield_fixture
async def setup(tmp_path):
    receiver = await start_service()
    verifier = Webhook(SECRET)
    receiver.service.check = lambda a: verifier.verify(a.body, a.headers)
    settings = {
        "push.webhook": {"url": f"{receiver.url}/hook", "secret": SECRET},
        "push.retry_base": 0.05,
        "push.badge_ttl": 0.0,
        "push.interval": 0.01,
    }
    live = await start_node(node_config(tmp_path, **settings))
    yield live, receiver
    await stop_node(live)
    await receiver.stop()


async def notified(receiver) -> dict:
    arrival = await receiver.service.next()
    assert arrival.status == 201, arrival
    return arrival.checked  # the verified payload


async def gone(live, client, user_id: int) -> None:
    """The device goes offline (its connection drops; a logout would unregister its targets)."""
    client.transport.loseConnection()
    await until(lambda: not live.core.router.devices_of(user_id))


@pytest_twisted.ensureDeferred
async def test_offline_push_end_to_end(setup):
    live, receiver = setup
    push = live.core.feature("push")
    alice_id = await live.register("alice", nick="Alice")
    bob_id = await live.register("bobby", nick="Bob")
    alice = await live.login("alice")
    bob = await live.login("bobby")
    unavailable = await bob.push_register("apns", "abc")
    assert unavailable.result_code == pb.kCIM_ERR_PUSH_PLATFORM_UNAVAILABLE
    registered = await bob.push_register("webhook", "bob-phone", app_id="com.example.chat", locale="en")
    assert registered.result_code == 200 and registered.target_id > 0

    # online and in the foreground: no notification (the next one that arrives is a later message)
    assert (await alice.send_message(bob_id, "you are online")).server_msg_id == 1
    await until(lambda: push.stats["decided"] == 1)  # decided while bob is still here
    await gone(live, bob, bob_id)

    ack = await alice.send_message(bob_id, "hello bob")
    body = await notified(receiver)
    n = body["notification"]
    assert body["target"]["token"] == "bob-phone" and body["target"]["user_id"] == bob_id
    assert (n["title"], n["body"], n["badge"], n["thread_id"]) == ("Alice", "hello bob", 2, f"c1-{alice_id}")
    assert (n["server_msg_id"], n["session_id"], n["sender_id"]) == (ack.server_msg_id, alice_id, alice_id)
    await alice.send_message_with(bob_id, "secret plans", push_content="Alice sent you something")
    n = (await notified(receiver))["notification"]
    assert (n["body"], n["badge"]) == ("Alice sent you something", 3)

    # privacy: "New message", and no sender
    bob = await live.login("bobby")
    assert (await bob.push_settings(show_preview=False, show_sender=False)).settings.show_preview is False
    assert (await bob.push_settings()).settings.show_sender is False
    # this connection did not register: its target is bound to the old one, so it is notified
    await alice.send_message(bob_id, "private")
    n = (await notified(receiver))["notification"]
    assert (n["title"], n["body"]) == ("CoffeeChat", "New message")
    # registered again here, then in the background: notified although connected
    assert (await bob.push_register("webhook", "bob-phone")).target_id == registered.target_id
    await alice.send_message(bob_id, "not pushed: bob is here")
    await until(lambda: push.stats["decided"] == 5)
    assert (await bob.app_state(background=True)).result_code == 200
    await alice.send_message(bob_id, "bob is in the background")
    n = (await notified(receiver))["notification"]
    assert n["body"] == "New message" and n["server_msg_id"] == 6
    await bob.push_settings(show_preview=True, show_sender=True)

    # DND on, the group muted: nothing, except an @mention in the group
    rsp = await alice.request(
        Cmd.GROUP_CREATE_DEFAULT_REQ, pb.CIMGroupCreateReq(group_name="Coffee lovers", member_id_list=[bob_id])
    )
    gid = rsp.group_info.group_id
    assert (await bob.set_dnd(True)).result_code == 200
    assert (await bob.mute(gid, session_type=GROUP)).result_code == 200
    await gone(live, bob, bob_id)
    await alice.send_message(bob_id, "quiet please")
    await alice.send_message(gid, "to the group", session_type=GROUP)
    await alice.send_message_with(gid, "@Bob look", session_type=GROUP, at_user_list=[bob_id])
    n = (await notified(receiver))["notification"]
    assert (n["title"], n["body"], n["thread_id"]) == ("Coffee lovers", "Alice: @Bob look", f"c2-{gid}")
    assert n["session_type"] == GROUP
    assert len(receiver.service.all) == 5  # exactly one per notified message

    # a 503 is retried (after its backoff); a 410 removes the token
    bob = await live.login("bobby")
    await bob.set_dnd(False)
    await gone(live, bob, bob_id)
    receiver.service.script["/hook"] = [503]
    await alice.send_message(bob_id, "try again")
    first = await receiver.service.next()
    assert first.status == 503
    n = (await notified(receiver))["notification"]
    assert n["body"] == "try again" and push.stats["retried"] == 1
    receiver.service.script["/hook"] = [410]
    await alice.send_message(bob_id, "to a dead phone")
    assert (await receiver.service.next()).status == 410
    await until(lambda: push.stats["dead"] == 1)
    targets = await push.store.targets_of([bob_id])
    await until(lambda: bob_id not in push._cache)
    assert targets == {}
    await alice.send_message(bob_id, "nobody to tell")
    bob = await live.login("bobby")
    assert (await bob.push_register("webhook", "bob-tablet")).result_code == 200
    assert (await bob.push_unregister()).removed == 1  # this connection's targets
    assert await push.store.targets_of([bob_id]) == {}
    # signing out unregisters the device's targets; another device's stay
    assert (await bob.push_register("webhook", "bob-tablet")).result_code == 200
    laptop = await live.login("bobby")
    assert (await laptop.push_register("webhook", "bob-laptop")).result_code == 200
    assert (await bob.logout()).result_code == 200
    await until(lambda: len(live.core.router.devices_of(bob_id)) == 1)
    for _ in range(100):  # the targets are removed in the database's threads, after the logout
        left = [t.target.token for t in (await push.store.targets_of([bob_id]))[bob_id]]
        if left != ["bob-tablet", "bob-laptop"]:
            break
        await deferLater(reactor, 0.02)
    assert left == ["bob-laptop"]
    await laptop.push_unregister()
    assert len(receiver.service.all) == 8
    assert push.stats["dropped"] == 0 and push.stats["overflow"] == 0


@pytest_twisted.async_yield_fixture
async def webpush_setup(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    receiver = await start_service()
    key = ec.generate_private_key(ec.SECP256R1())
    pem = tmp_path / "vapid.pem"
    pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings = {
        "push.webpush": {"vapid_private_key": str(pem), "vapid_subject": SUBJECT, "allow_http": True},
        "push.unifiedpush": {"allow_http": True},
    }
    live = await start_node(node_config(tmp_path, **settings))
    yield live, receiver
    await stop_node(live)
    await receiver.stop()


SUBJECT = "mailto:ops@chat.example.com"


@pytest_twisted.ensureDeferred
async def test_web_push_and_unifiedpush_through_the_feature(webpush_setup):
    import json
    import time

    import treq
    from twisted.internet import reactor

    from .pushreceiver import Subscription, verify_vapid

    live, receiver = webpush_setup
    answer = await (await treq.get(f"{live.http_url}/push/vapid", reactor=reactor)).json()
    assert answer["error_code"] == 200
    receiver.service.check = lambda a: (
        verify_vapid(a, receiver.url, time.time(), SUBJECT, answer["public_key"]) if "/wp/" in a.path else None
    )
    await live.register("alice", nick="Alice")
    bob_id = await live.register("bobby", nick="Bob")
    alice = await live.login("alice")
    bob = await live.login("bobby")
    sub = Subscription()
    bad = await bob.push_register("webpush", f"{receiver.url}/wp/1", extra={"p256dh": "AAAA", "auth": "BBBB"})
    assert bad.result_code == pb.kCIM_ERR_PUSH_BAD_TARGET
    assert (await bob.push_register("webpush", f"{receiver.url}/wp/1", extra=sub.keys)).result_code == 200
    assert (await bob.push_register("unifiedpush", f"{receiver.url}/up/1")).result_code == 200
    await gone(live, bob, bob_id)
    await alice.send_message(bob_id, "über push")
    arrivals = sorted([await receiver.service.next(), await receiver.service.next()], key=lambda a: a.path)
    unified, web = arrivals
    assert web.path == "/wp/1" and web.status == 201 and web.checked["aud"] == receiver.url
    assert json.loads(sub.decrypt(web.body))["body"] == "über push"
    assert unified.path == "/up/1" and json.loads(unified.body)["body"] == "über push"
