"""Login throttling, name normalisation, per-user budgets and the fair KDF queue, driven on a
memory reactor with a KDF runner the test steps by hand (issue 11)."""

from __future__ import annotations

from collections import deque

import pytest
from twisted.internet import defer
from twisted.logger import formatEvent, globalLogPublisher

from coffeechat.auth import hash_password
from coffeechat.errors import ChatError, ErrorCode
from coffeechat.ratelimit import FairQueue, LoginThrottle, UserBudgets, address_key, peer_address
from coffeechat.schema import Cmd, pb

from .memory_node import MemoryNode, md5

ATTACKER = "10.0.0.1"
OWNER = "10.0.0.99"


class SteppedKdf:
    """A KDF runner whose jobs wait until the test runs them (``auto`` runs them at once)."""

    def __init__(self) -> None:
        self.jobs: deque = deque()
        self.calls = 0
        self.auto = True

    def __call__(self, f, *args) -> defer.Deferred:
        self.calls += 1
        if self.auto:
            return defer.maybeDeferred(f, *args)
        d: defer.Deferred = defer.Deferred()
        self.jobs.append((d, f, args))
        return d

    def run_one(self) -> None:
        d, f, args = self.jobs.popleft()
        d.callback(f(*args))

    def run_all(self, limit: int = 1000) -> int:
        ran = 0
        while self.jobs and ran < limit:
            self.run_one()
            ran += 1
        return ran


def stepped_node(**overrides) -> tuple[MemoryNode, SteppedKdf]:
    kdf = SteppedKdf()
    node = MemoryNode(run_cpu=kdf, **overrides)
    return node, kdf


def send_login(conn, name: str, password: str) -> None:
    conn.send(Cmd.LOGIN_AUTH_REQ, pb.CIMAuthReq(user_name=name, user_pwd=md5(password), client_type=2))


def login_code(node: MemoryNode, name: str, password: str, address: str) -> int:
    conn = node.connect(address)
    send_login(conn, name, password)
    return conn.only(Cmd.LOGIN_AUTH_RSP).result_code


def answers(conns) -> list[int]:
    codes = []
    for conn in conns:
        codes += [body.result_code for cmd, _, body in conn.frames() if cmd == Cmd.LOGIN_AUTH_RSP]
    return codes


# -- 1. the login throttle cannot be raced


def test_concurrent_wrong_passwords_evaluate_at_most_the_budget():
    # A KDF queue big enough that only the login throttle bounds what is evaluated.
    node, kdf = stepped_node(**{"auth.kdf_jobs_per_address": 100})
    node.user("alice")
    budget = node.config.auth.login_failures_per_minute
    kdf.auto, kdf.calls = False, 0
    conns = [node.connect(ATTACKER) for _ in range(60)]
    for conn in conns:
        send_login(conn, "alice", "wrong")
    refused_at_once = answers(conns)
    kdf.run_all()
    codes = refused_at_once + answers(conns)
    assert kdf.calls == budget  # guesses evaluated: the budget, not 60
    assert codes.count(ErrorCode.LOGIN_INVALID_USER_OR_PWD) == budget
    assert codes.count(ErrorCode.RATE_LIMITED) == 60 - budget
    kdf.auto = True
    # From that address even the right password waits for the minute to end ...
    assert login_code(node, "alice", "secret", ATTACKER) == ErrorCode.RATE_LIMITED
    # ... but the owner, from elsewhere, logs in, and after the minute so does that address.
    assert login_code(node, "alice", "secret", OWNER) == ErrorCode.SUCCESS
    node.advance(61)
    assert login_code(node, "alice", "secret", ATTACKER) == ErrorCode.SUCCESS


def test_a_flood_of_refused_logins_is_one_log_line_per_period():
    """Refusals by the login limits are summarised (one line per 10 s, with a count), so that a
    flood does not become a log line per try; wrong passwords are still logged one by one."""
    node, kdf = stepped_node(**{"auth.kdf_jobs_per_address": 100})
    node.user("alice")
    lines: list[str] = []

    def observe(event: dict) -> None:
        if event.get("log_namespace") == "coffeechat.session" and "login" in (event.get("log_format") or ""):
            lines.append(formatEvent(event))

    globalLogPublisher.addObserver(observe)
    try:
        for _ in range(60):
            login_code(node, "alice", "wrong", ATTACKER)
        node.advance(11)
        login_code(node, "alice", "wrong", ATTACKER)
    finally:
        globalLogPublisher.removeObserver(observe)
    budget = node.config.auth.login_failures_per_minute
    summaries = [line for line in lines if "refused by the login limits" in line]
    assert len(summaries) == 2, summaries
    assert summaries[0].startswith("1 login(s)") and summaries[1].startswith(f"{60 - budget} login(s)")
    assert len([line for line in lines if "login refused for" in line]) == budget


def test_a_right_password_gives_its_reservation_back():
    node = MemoryNode(**{"auth.login_failures_per_minute": 3})
    node.user("alice")
    for _ in range(2):
        assert login_code(node, "alice", "wrong", ATTACKER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    for _ in range(5):  # successes do not use up the budget
        assert login_code(node, "alice", "secret", ATTACKER) == ErrorCode.SUCCESS
    assert login_code(node, "alice", "wrong", ATTACKER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, "alice", "secret", ATTACKER) == ErrorCode.RATE_LIMITED


@pytest.mark.parametrize("variant", ["\u017fally", "SALLY", "\uff53\uff41\uff4c\uff4c\uff59", "Sa\u217c\u217cy"])
def test_spellings_of_a_name_share_its_budget_and_its_account(variant):
    node = MemoryNode()
    sally = node.user("sally")
    for _ in range(node.config.auth.login_failures_per_minute):
        assert login_code(node, "sally", "wrong", ATTACKER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, variant, "wrong", ATTACKER) == ErrorCode.RATE_LIMITED
    assert login_code(node, variant, "secret", ATTACKER) == ErrorCode.RATE_LIMITED
    conn = node.connect(OWNER)
    assert conn.login(variant).user_info.user_id == sally  # one account, however it is spelled


def test_many_addresses_cannot_lock_the_owner_out():
    node = MemoryNode(**{"auth.login_failures_per_name_per_minute": 25})
    node.user("alice")
    per_pair = node.config.auth.login_failures_per_minute
    attackers = [f"10.0.1.{i}" for i in range(1, 4)]
    for address in attackers:  # 30 failures for the name: its budget (25) is spent
        for _ in range(per_pair):
            login_code(node, "alice", "wrong", address)
    # The addresses that failed are refused now, before they reach their own pair budget ...
    for address in attackers:
        assert login_code(node, "alice", "wrong", address) == ErrorCode.RATE_LIMITED
    # ... a fresh address gets one guess, then is refused too ...
    assert login_code(node, "alice", "wrong", "10.0.1.200") == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, "alice", "wrong", "10.0.1.200") == ErrorCode.RATE_LIMITED
    # ... and the owner, from an address that has not failed, logs in.
    assert login_code(node, "alice", "secret", OWNER) == ErrorCode.SUCCESS


def test_one_address_has_a_budget_of_failures_across_names():
    node = MemoryNode(**{"auth.login_failures_per_address_per_minute": 5})
    node.user("alice")
    for i in range(5):
        assert login_code(node, f"nobody{i}", "x", ATTACKER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, "nobody9", "x", ATTACKER) == ErrorCode.RATE_LIMITED
    assert login_code(node, "alice", "secret", OWNER) == ErrorCode.SUCCESS


def test_token_logins_are_not_throttled():
    node = MemoryNode()
    uid = node.user("alice")
    token = node.result(defer.ensureDeferred(node.core.feature("accounts").issue_token(uid)))[0]
    for _ in range(40):
        login_code(node, "alice", "wrong", ATTACKER)
    conn = node.connect(ATTACKER)
    conn.send(Cmd.LOGIN_AUTH_TOKEN_REQ, pb.CIMAuthTokenReq(user_id=uid, user_token=token))
    assert conn.only(Cmd.LOGIN_AUTH_TOKEN_RSP).result_code == ErrorCode.SUCCESS


# -- 2. names: full match, normalised once


def test_a_trailing_newline_is_no_name():
    node = MemoryNode()
    accounts = node.core.feature("accounts")
    node.user("alice")
    for bad in ("alice\n", "bobby\n", "bob\nby", " bobby", "bobby\r\n"):
        with pytest.raises(ChatError) as raised:
            node.result(defer.ensureDeferred(accounts.create_user(bad, "Look-alike", md5("secret"))))
        assert raised.value.code == ErrorCode.USER_INVALID_PARAMETER
    # An account stored with such a name before this check existed cannot log in any more.
    node.result(node.store.create_user("carol\n", "Carol", hash_password(md5("secret"), n=16), 0))
    assert login_code(node, "carol\n", "secret", OWNER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, "alice\n", "secret", OWNER) == ErrorCode.LOGIN_INVALID_USER_OR_PWD
    assert login_code(node, "alice", "secret", OWNER) == ErrorCode.SUCCESS


def test_names_are_one_whatever_the_spelling_at_registration_and_lookup():
    node = MemoryNode()
    accounts = node.core.feature("accounts")
    node.user("Sally")
    with pytest.raises(ChatError) as raised:
        node.result(defer.ensureDeferred(accounts.create_user("SALLY", "Other")))
    assert raised.value.code == ErrorCode.USER_ALREADY_EXIST
    with pytest.raises(ChatError) as raised:  # registration takes ASCII names only
        node.result(defer.ensureDeferred(accounts.create_user("\u017fally", "Other")))
    assert raised.value.code == ErrorCode.USER_INVALID_PARAMETER
    found = node.result(defer.ensureDeferred(accounts.find_user("\u017fALLY")))
    assert found.name == "Sally"  # stored as given


# -- 3. per-user budgets across devices


def test_ten_devices_of_one_user_share_one_message_budget():
    node = MemoryNode(
        **{"limits.message_burst": 20, "limits.user_message_burst": 50, "limits.messages_per_second": 1.0}
    )
    node.user("alice")
    bob = node.user("bobby")
    devices = [node.connect() for _ in range(10)]
    for device in devices:
        device.login("alice")
    accepted = 0
    for device in devices:
        for i in range(25):
            accepted += device.send_text(bob, f"m{i}").error_code == 0
    assert accepted == 50  # not 10 x 20
    node.advance(2)  # (the clock stood still meanwhile) both budgets refill at their rates
    assert devices[9].send_text(bob, "later").error_code == 0


def test_ten_devices_of_one_user_share_one_request_budget():
    node = MemoryNode(**{"limits.request_burst": 20, "limits.user_request_burst": 50})
    node.user("alice")
    devices = [node.connect() for _ in range(10)]
    for device in devices:
        device.login("alice")
    echoed = 0
    for device in devices:
        for _ in range(25):
            device.send(Cmd.LOGIN_HEARTBEAT, pb.CIMHeartBeat())
        echoed += sum(1 for cmd, _, _ in device.frames() if cmd == Cmd.LOGIN_HEARTBEAT)
    assert echoed == 50


def test_reconnecting_does_not_refill_the_user_budget():
    node = MemoryNode(**{"limits.user_message_burst": 5, "limits.user_messages_per_second": 0.01})
    node.user("alice")
    bob = node.user("bobby")
    first = node.connect()
    first.login("alice")
    assert [first.send_text(bob, "x").error_code for _ in range(5)] == [0] * 5
    first.close()
    second = node.connect()
    second.login("alice")
    assert second.send_text(bob, "x").error_code == ErrorCode.RATE_LIMITED


def test_user_budgets_are_dropped_once_idle_and_full():
    node = MemoryNode()
    budgets = UserBudgets(node.clock, node.config.limits)
    for uid in range(1, 3000):
        budgets.acquire(uid)
        budgets.release(uid)
    assert len(budgets) == 0


# -- 4. registrations per address (the HTTP answer is in tests/test_throttle_e2e.py)


def test_registrations_per_address_are_limited():
    node = MemoryNode(**{"auth.registration_burst": 3})
    accounts = node.core.feature("accounts")

    def register(name: str, address: str):
        d = defer.ensureDeferred(accounts.register(name, "Nick", md5("pw"), address))
        return node.result(d)

    for i in range(3):
        register(f"user{i:02d}", ATTACKER)
    with pytest.raises(ChatError) as raised:
        register("user99", ATTACKER)
    assert raised.value.code == ErrorCode.RATE_LIMITED and raised.value.retry_after > 0
    register("owner", OWNER)  # another address is not affected
    node.advance(3600 / node.config.auth.registrations_per_address_per_hour + 1)
    register("user99", ATTACKER)


# -- 5. the KDF queue is fair between addresses


@pytest.mark.parametrize("per_address", [2, 100])
def test_a_kdf_flood_from_one_address_does_not_delay_another(per_address):
    """Whether the flood is refused at the door (a small per-address cap) or queued (a big one),
    the other address's login runs within the next turn of the pool."""
    node, kdf = stepped_node(**{"auth.kdf_jobs_per_address": per_address})
    node.user("alice")
    kdf.auto, kdf.calls = False, 0
    flood = [node.connect(ATTACKER) for _ in range(60)]
    for i, conn in enumerate(flood):
        send_login(conn, f"unknown{i:03d}", "x")
    refused = answers(flood).count(ErrorCode.RATE_LIMITED)
    owner = node.connect(OWNER)
    send_login(owner, "alice", "secret")
    threads = node.config.auth.kdf_threads
    ran = 0
    while not (rsp := owner.frames()) and ran <= 60:
        kdf.run_one()
        ran += 1
    assert rsp[0][2].result_code == ErrorCode.SUCCESS
    # Behind what was running and one turn of the flooding address, not behind the flood.
    assert ran <= threads + 2
    kdf.run_all()
    refused += answers(flood).count(ErrorCode.RATE_LIMITED)
    assert refused >= 60 - max(per_address, node.config.auth.login_failures_per_address_per_minute)


def test_unknown_names_cost_a_hash_like_known_ones():
    node, kdf = stepped_node()
    node.user("alice")
    kdf.calls = 0
    login_code(node, "alice", "wrong", ATTACKER)
    login_code(node, "nobody", "wrong", ATTACKER)
    assert kdf.calls == 2


def test_the_fair_queue_takes_turns_and_refuses_beyond_its_caps():
    kdf = SteppedKdf()
    kdf.auto = False
    queue = FairQueue(kdf, concurrency=1, per_key=3, total=6)
    order = []
    ds = [queue.submit(key, order.append, key) for key in ["a", "a", "a", "b", "b", None]]
    refused = queue.submit("a", order.append, "a")
    assert refused.called and isinstance(refused.result.value, ChatError)
    refused.addErrback(lambda f: None)
    queue.submit("c", order.append, "c")  # the 6th public job
    over = queue.submit("d", order.append, "d")
    assert isinstance(over.result.value, ChatError)  # total cap
    over.addErrback(lambda f: None)
    kdf.run_all()
    assert order == ["a", "a", "b", None, "c", "a", "b"]  # the first "a" started at once
    assert all(d.called for d in ds)
    assert queue.running == 0 and queue.queued("a") == 0


# -- the pieces


def test_address_keys():
    assert peer_address("192.0.2.7:5000") == "192.0.2.7"
    assert peer_address("tcp4:192.0.2.7:5000") == "192.0.2.7"
    assert peer_address("[2001:db8:1:2:3:4:5:6]:5000") == "2001:db8:1:2::/64"
    assert peer_address("tcp6:2001:db8:1:2:3:4:5:6:5000") == "2001:db8:1:2::/64"
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("2001:db8:1:2:ffff::1") == address_key("2001:db8:1:2::9")


def test_login_throttle_windows_and_release():
    node = MemoryNode()
    throttle = LoginThrottle(node.clock, per_name_address=2, per_address=3, per_name=10)
    first = throttle.reserve("alice", "a")
    throttle.reserve("alice", "a")
    with pytest.raises(ChatError):
        throttle.reserve("alice", "a")
    throttle.release(first)
    throttle.reserve("alice", "a")
    throttle.reserve("bobby", "a")
    with pytest.raises(ChatError) as raised:
        throttle.reserve("carol", "a")
    assert 0 < raised.value.retry_after <= 60
    node.advance(60)
    throttle.reserve("carol", "a")


def test_a_registration_refused_as_busy_does_not_use_the_budget():
    node, kdf = stepped_node(**{"auth.registration_burst": 3, "auth.kdf_jobs_per_address": 1})
    accounts = node.core.feature("accounts")
    kdf.auto = False
    first = defer.ensureDeferred(accounts.register("user00", "Nick", md5("pw"), ATTACKER))
    for i in range(1, 6):  # the address's one KDF slot is taken: "busy", not counted
        busy = defer.ensureDeferred(accounts.register(f"user{i:02d}", "Nick", md5("pw"), ATTACKER))
        assert isinstance(busy.result.value, ChatError) and busy.result.value.code == ErrorCode.RATE_LIMITED
        busy.addErrback(lambda f: None)
    kdf.run_all()
    assert node.result(first).name == "user00"
    kdf.auto = True
    for i in range(1, 3):  # the two registrations left in the burst
        node.result(defer.ensureDeferred(accounts.register(f"later{i}", "Nick", md5("pw"), ATTACKER)))
    with pytest.raises(ChatError):
        node.result(defer.ensureDeferred(accounts.register("later3", "Nick", md5("pw"), ATTACKER)))
