"""Generator processes: each holds a share of the connections and runs its share of a scenario.

Why processes: one Python process cannot hold more than ~19,000 sockets here (20,000 open files)
nor use more than one core.  The parent sends a phase (``name``, keyword arguments) over a pipe;
the worker runs it on its asyncio loop and answers ``("ok", result)`` or ``("error", traceback)``.
Phases that the parent must line up across workers (a login storm, a measurement window) carry
absolute ``time.monotonic()`` instants: CLOCK_MONOTONIC is one clock for every process on Linux.

Every worker is bounded: a watchdog ends it after ``lifetime`` seconds whatever happens, and it
exits when the parent's pipe closes.
"""

from __future__ import annotations

import asyncio
import gc
import os
import resource
import threading
import time
import traceback
from array import array
from collections import Counter
from multiprocessing.connection import Connection
from typing import Any

from . import wire
from .live_worker import LiveWorker
from .wire import Conn, frame, pb

_now = time.monotonic
_MsgData = pb.CIMMsgData
_MsgDataAck = pb.CIMMsgDataAck
_pack = wire._pack
_HDR = wire.HEADER_SIZE
_MSG_DATA = wire.MSG_DATA
_MSG_DATA_ACK = wire.MSG_DATA_ACK
_HEARTBEAT = wire.LOGIN_HEARTBEAT
_KICKOUT = wire.KICKOUT_NOTIFY
_HEARTBEAT_FRAME_LEN = _HDR
_GROUP_CHANGED = wire.GROUP_MEMBER_CHANGED_NOTIFY
# What a group push is to the generator (see Worker._new_push).
_PUSH_BENCH, _PUSH_NOTICE, _PUSH_FOREIGN = 0, 1, 2


def cpu_now() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker_main(pipe: Connection, index: int, cpus: list[int] | None, lifetime: float) -> None:
    """Process entry point: pin, raise the open-file limit, arm the watchdog, serve phases."""
    if cpus:
        try:
            os.sched_setaffinity(0, set(cpus))
        except (AttributeError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def watchdog() -> None:
        time.sleep(lifetime)
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    # Fewer, later collections: the hot loop allocates many short-lived objects, no cycles.
    gc.set_threshold(100_000, 50, 50)
    try:
        asyncio.run(Worker(pipe, index).serve())
    except (EOFError, KeyboardInterrupt, BrokenPipeError):
        pass


class Pair:
    """A sender and a receiver connection and what each has seen of their messages.

    ``open`` maps a message number to ``[t_send, t_ack, t_delivered, sid_ack, sid_delivered]``
    while the message is not complete (acked at the sender AND pushed to the receiver).
    """

    __slots__ = (
        "index",
        "s_uid",
        "s_token",
        "r_uid",
        "r_token",
        "sender",
        "receiver",
        "next_n",
        "open",
        "sids",
        "acked",
        "delivered",
        "completed",
        "errors",
        "acked_ids",
    )

    def __init__(self, index: int, s_uid: int, s_token: str, r_uid: int, r_token: str) -> None:
        self.index = index
        self.s_uid = s_uid
        self.s_token = s_token
        self.r_uid = r_uid
        self.r_token = r_token
        self.sender: Conn | None = None
        self.receiver: Conn | None = None
        self.next_n = 1
        self.open: dict[int, list] = {}
        self.sids: set[int] = set()
        self.acked = 0
        self.delivered = 0
        self.completed = 0
        self.errors = 0
        self.acked_ids: dict[int, int] = {}  # offline: message number -> server_msg_id


class Member:
    """One member device of a group run: its connection and what it received.

    ``seen`` is a bitmap by server_msg_id (one byte per id, the group's ids are dense and small),
    which makes the exactly-once check a lookup per delivery and one big-integer AND per device
    at the end.
    """

    __slots__ = ("uid", "token", "group", "conn", "seen", "notices", "changed", "acked_sids")

    def __init__(self, uid: int, token: str, group: BenchGroup) -> None:
        self.uid = uid
        self.token = token
        self.group = group
        self.conn: Conn | None = None
        self.seen = bytearray(4096)
        self.notices = 0  # NOTIFICATION messages pushed (the group's creation)
        self.changed = 0  # GROUP_MEMBER_CHANGED pushes
        self.acked_sids: list[int] = []  # of the messages this device sent


class BenchGroup:
    """One group of a group run: its members (the first creates it, the first ``senders`` send)
    and the server_msg_ids seen for it."""

    __slots__ = (
        "index", "members", "senders", "gid", "created_members", "receivers", "acked_sids", "sent", "acked",
        "refused", "completed",
    )  # fmt: skip

    def __init__(self, index: int, members: list[list], senders: int) -> None:
        self.index = index
        self.members = [Member(uid, token, self) for uid, token in members]
        self.senders = senders
        self.gid = 0
        self.created_members = 0
        self.receivers = 0
        self.acked_sids: set[int] = set()
        self.sent = self.acked = self.refused = self.completed = 0

    def missing_creation_pushes(self) -> int:
        """Creation pushes not yet received by online members: GROUP_MEMBER_CHANGED for everyone,
        the NOTIFICATION message for everyone but the creator's device (it has it in the answer)."""
        if not self.gid:
            return 0
        online = [m for m in self.members if m.conn is not None]
        return sum(1 for m in online if m.changed < 1) + sum(1 for m in online[1:] if m.notices < 1)

    def creation_pushes_complete(self) -> bool:
        return self.missing_creation_pushes() == 0


class Worker(LiveWorker):
    """One generator process's state across the phases of a scenario."""

    def __init__(self, pipe: Connection, index: int) -> None:
        self.pipe = pipe
        self.index = index
        self.conns: list[Conn | None] = []
        self.pairs: list[Pair] = []
        self.events: Counter[str] = Counter()
        self.host = "127.0.0.1"
        self.port = 0
        self.ws_path: str | None = None  # None: TCP; else the WebSocket path on ``port``
        self.sources: list[str] = []
        self.opened: Counter[int] = Counter()  # connections opened per destination port
        # Heartbeats answered per server node (``conn.tag`` is the node's index; 0 with one server).
        self.hb_by_node: list[int] = [0]

    async def serve(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            name, kwargs = await loop.run_in_executor(None, self.pipe.recv)
            if name == "exit":
                self.close_all()
                self.pipe.send(("ok", None))
                return
            try:
                result = await getattr(self, "do_" + name)(**kwargs)
            except Exception:
                self.pipe.send(("error", f"generator {self.index}, phase {name}:\n{traceback.format_exc()}"))
            else:
                self.pipe.send(("ok", result))

    def close_all(self) -> None:
        for conn in self.conns:
            if conn is not None:
                conn.close()
        for pair in self.pairs:
            for conn in (pair.sender, pair.receiver):
                if conn is not None:
                    conn.close()

    def _lost(self, conn: Conn) -> None:
        self.events["connection lost"] += 1
        if conn.why_closed:
            self.events[f"closed: {conn.why_closed}"[:120]] += 1

    def _endpoint(self, host: str, port: int, ws_path: str | None) -> None:
        self.host, self.port, self.ws_path = host, port, ws_path

    async def _open(
        self, handler: wire.FrameHandler, timeout: float, errors: Counter, port: int | None = None
    ) -> Conn | None:
        """Connect to ``port`` (default: the phase's), from the next of ``sources`` for that port:
        each (source address, destination port) has its own ephemeral port range."""
        port = self.port if port is None else port
        source = None
        if self.sources:
            source = self.sources[self.opened[port] % len(self.sources)]
            self.opened[port] += 1
        try:
            conn = await wire.connect(self.host, port, handler, timeout, source, self.ws_path)
        except (TimeoutError, OSError) as e:
            errors[f"connect: {type(e).__name__}: {e}"[:120]] += 1
            return None
        conn.on_lost = self._lost
        return conn

    async def _login(self, conn: Conn | None, uid: int, token: str, timeout: float, errors: Counter) -> bool:
        if conn is None:
            return False
        try:
            code = await wire.login_token(conn, uid, token, timeout)
        except (TimeoutError, ConnectionError) as e:
            errors[f"login: {type(e).__name__}"] += 1
            return False
        if code != wire.SUCCESS:
            errors[f"login: result {code}"] += 1
            return False
        return True

    async def do_close(self) -> dict[str, Any]:
        self.close_all()
        await asyncio.sleep(0.05)
        return {"events": dict(self.events)}

    # ---- connections -----------------------------------------------------------------------

    def _conn_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        if cmd == _HEARTBEAT:
            if conn.hb_at:
                self.hb_rtt.append(_now() - conn.hb_at)
                conn.hb_at = 0.0
                self.hb_answered += 1
                self.hb_by_node[conn.tag] += 1
        elif cmd == _KICKOUT:
            self.events["kicked out (0x0802)"] += 1
        else:
            self.events[f"unexpected frame 0x{cmd:04x}"] += 1

    async def do_connect(
        self,
        host: str,
        port: int,
        users: list[tuple[int, str]],
        concurrency: int,
        timeout: float,
        sources: list[str] | None = None,
        ws_path: str | None = None,
        nodes: list[int] | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        """Open one connection per user (not logged in yet), from ``sources`` in turn if given.
        With several server nodes, user i goes to node ``nodes[i]``, listening on ``ports[node]``
        (``port`` is then unused); ``conn.tag`` is the node's index."""
        self._endpoint(host, port, ws_path)
        self.sources = sources or []
        cpu0 = cpu_now()
        self.users = users
        self.nodes = nodes if nodes is not None else [0] * len(users)
        ports = ports or [port]
        self.conns = [None] * len(users)
        self.hb_rtt = array("d")
        self.hb_answered = 0
        self.hb_by_node = [0] * len(ports)
        errors: Counter[str] = Counter()

        async def one(i: int) -> None:
            node = self.nodes[i]
            conn = await self._open(self._conn_frame, timeout, errors, ports[node])
            if conn is not None:
                conn.tag = node
            self.conns[i] = conn

        t0 = _now()
        await wire.run_bounded(range(len(users)), one, concurrency)
        t1 = _now()
        ok = sum(1 for c in self.conns if c is not None)
        by_node = [0] * len(ports)
        for c in self.conns:
            if c is not None:
                by_node[c.tag] += 1
        return {
            "ok": ok,
            "failed": len(users) - ok,
            "ok_by_node": by_node,
            "t0": t0,
            "t1": t1,
            "errors": dict(errors),
            "cpu": cpu_now() - cpu0,
        }

    async def do_login(self, start_at: float, concurrency: int, timeout: float) -> dict[str, Any]:
        """Token-login every open connection, starting at ``start_at`` (all workers at once)."""
        await asyncio.sleep(max(0.0, start_at - _now()))
        errors: Counter[str] = Counter()
        latencies = array("d")
        by_node = [0] * len(self.hb_by_node)
        cpu0 = cpu_now()

        async def one(i: int) -> None:
            t = _now()
            uid, token = self.users[i]
            if await self._login(self.conns[i], uid, token, timeout, errors):
                latencies.append(_now() - t)
                by_node[self.nodes[i]] += 1

        t0 = _now()
        await wire.run_bounded(range(len(self.users)), one, concurrency)
        t1 = _now()
        return {
            "ok": len(latencies),
            "failed": len(self.users) - len(latencies),
            "ok_by_node": by_node,
            "t0": t0,
            "t1": t1,
            "latencies": latencies.tobytes(),
            "errors": dict(errors),
            "cpu": cpu_now() - cpu0,
        }

    async def do_hold(self, t_start: float, t_end: float, interval: float, grace: float) -> dict[str, Any]:
        """Hold the connections idle from ``t_start`` to ``t_end``, each sending a heartbeat every
        ``interval`` seconds, staggered evenly (as a real population of clients would)."""
        conns = [c for c in self.conns if c is not None and not c.lost]
        n = len(conns)
        loop = asyncio.get_running_loop()
        self.hb_rtt = array("d")
        self.hb_answered = 0
        self.hb_by_node = [0] * len(self.hb_by_node)
        sent_by_node = [0] * len(self.hb_by_node)
        lost0 = self.events["connection lost"]
        state = {"sent": 0, "cpu0": 0.0, "cpu1": 0.0}
        done = loop.create_future()
        spacing = interval / n if n else interval
        hb = frame(_HEARTBEAT, 1)

        def tick() -> None:
            k = state["sent"]
            now = _now()
            while True:
                due = t_start + (k + 0.5) * spacing
                if due > now or due >= t_end:
                    break
                conn = conns[k % n]
                if not conn.lost:
                    conn.hb_at = now
                    conn.out(hb)
                    sent_by_node[conn.tag] += 1
                k += 1
            state["sent"] = k
            due = t_start + (k + 0.5) * spacing
            if due < t_end:
                loop.call_at(max(due, now + 0.01), tick)

        def window_start() -> None:
            state["cpu0"] = cpu_now()
            if n:
                tick()

        def window_end() -> None:
            state["cpu1"] = cpu_now()
            if not done.done():
                done.set_result(None)

        loop.call_at(t_start, window_start)
        loop.call_at(t_end, window_end)
        await done
        await asyncio.sleep(grace)  # answers to the last heartbeats
        return {
            "connections": n,
            "heartbeats_sent": state["sent"],
            "heartbeats_answered": self.hb_answered,
            "sent_by_node": sent_by_node,
            "answered_by_node": list(self.hb_by_node),
            "rtt": self.hb_rtt.tobytes(),
            "lost": self.events["connection lost"] - lost0,
            "still_open": sum(1 for c in conns if not c.lost),
            "cpu": state["cpu1"] - state["cpu0"],
            "events": dict(self.events),
        }

    # ---- p2p -------------------------------------------------------------------------------

    async def _setup_pairs(
        self,
        pairs: list[list],
        concurrency: int,
        timeout: float,
        receivers: bool = True,
        nodes: list[list[int]] | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        """Connect and log in the senders (and the receivers) of ``pairs``.  With several server
        nodes, pair i's sender goes to node ``nodes[i][0]`` and its receiver to ``nodes[i][1]``,
        each listening on ``ports[node]``; else both go to the phase's port."""
        self.pairs = [Pair(*p) for p in pairs]
        errors: Counter[str] = Counter()
        ends: list[tuple[int, bool]] = [(i, True) for i in range(len(self.pairs))]
        if receivers:
            ends += [(i, False) for i in range(len(self.pairs))]
        ok = 0
        by_node = [0] * len(ports or [0])

        async def one(end: tuple[int, bool]) -> None:
            nonlocal ok
            i, is_sender = end
            pair = self.pairs[i]
            node = nodes[i][0 if is_sender else 1] if nodes else 0
            handler = self._sender_frame if is_sender else self._receiver_frame
            conn = await self._open(handler, timeout, errors, ports[node] if ports else None)
            if conn is None:
                return
            conn.tag = pair
            if is_sender:
                pair.sender = conn
                logged = await self._login(conn, pair.s_uid, pair.s_token, timeout, errors)
            else:
                pair.receiver = conn
                logged = await self._login(conn, pair.r_uid, pair.r_token, timeout, errors)
            ok += logged
            by_node[node] += logged

        t0 = _now()
        await wire.run_bounded(ends, one, concurrency)
        return {
            "logged_in": ok,
            "failed": len(ends) - ok,
            "logged_in_by_node": by_node,
            "t0": t0,
            "t1": _now(),
            "errors": dict(errors),
        }

    async def do_p2p_setup(
        self,
        host: str,
        port: int,
        pairs: list[list],
        concurrency: int,
        timeout: float,
        ws_path: str | None = None,
        nodes: list[list[int]] | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        self._endpoint(host, port, ws_path)
        return await self._setup_pairs(pairs, concurrency, timeout, nodes=nodes, ports=ports)

    def _send(self, pair: Pair, t_sched: float) -> None:
        """Encode and write one MSG_DATA; its number is its client_msg_id."""
        conn = pair.sender
        if conn is None or conn.lost:
            self.run_events["send on a closed connection"] += 1
            return
        n = pair.next_n
        pair.next_n = n + 1
        body = _MsgData(
            from_user_id=pair.s_uid,
            to_session_id=pair.r_uid,
            client_msg_id=str(n),
            create_time=self.create_time,
            msg_type=wire.TEXT,
            session_type=wire.SINGLE,
            msg_data=self.payload,
        ).SerializeToString()
        pair.open[n] = [t_sched, 0.0, 0.0, 0, 0]
        conn.out(_pack(_HDR + len(body), 1, 0, 0, _MSG_DATA, n % 65534 + 1, 0) + body)
        self.sent += 1

    def _complete(self, pair: Pair, n: int, st: list, t: float) -> None:
        del pair.open[n]
        pair.completed += 1
        if st[3] != st[4]:
            self.run_events["ack and push disagree on server_msg_id"] += 1
        ts = st[0]
        if self.win_start <= ts < self.win_end:
            self.ack_lat.append(st[1] - ts)
            self.del_lat.append(st[2] - ts)
        if self.win_start <= t < self.win_end:
            self.completed_in_window += 1
        if self.closed_loop and t < self.t_stop and self.sent < self.budget:
            self._send(pair, t)

    def _sender_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        if cmd == _MSG_DATA_ACK:
            t = _now()
            ack = _MsgDataAck.FromString(body)
            pair: Pair = conn.tag
            try:
                n = int(ack.client_msg_id)
            except ValueError:
                self.run_events["ack with a foreign client_msg_id"] += 1
                return
            st = pair.open.get(n)
            if st is None or st[1]:
                self.run_events["duplicate or unexpected ack"] += 1
                return
            if ack.res_code != wire.RES_OK:
                pair.errors += 1
                self.run_events[f"send refused: error {ack.error_code} {ack.error_msg}"[:100]] += 1
                del pair.open[n]
                if self.closed_loop and t < self.t_stop and self.sent < self.budget:
                    self._send(pair, t)
                return
            sid = ack.server_msg_id
            st[1] = t
            st[3] = sid
            pair.acked += 1
            if sid in pair.sids:
                self.run_events["server_msg_id acked twice"] += 1
            pair.sids.add(sid)
            if st[2]:
                self._complete(pair, n, st, t)
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"sender got frame 0x{cmd:04x}"] += 1

    def _receiver_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        if cmd == _MSG_DATA:
            t = _now()
            push = _MsgData.FromString(body)
            pair: Pair = conn.tag
            ack = _MsgDataAck(
                from_user_id=pair.r_uid,
                to_session_id=push.from_user_id,
                client_msg_id=push.client_msg_id,
                server_msg_id=push.server_msg_id,
                session_type=push.session_type,
                res_code=wire.RES_OK,
            ).SerializeToString()
            conn.out(_pack(_HDR + len(ack), 1, 0, 0, _MSG_DATA_ACK, seq, 0) + ack)
            if push.from_user_id != pair.s_uid:
                self.run_events["push from an unexpected sender"] += 1
                return
            n = int(push.client_msg_id)
            st = pair.open.get(n)
            if st is None:
                self.run_events["duplicate delivery" if n < pair.next_n else "delivery of an unknown message"] += 1
                return
            if st[2]:
                self.run_events["duplicate delivery"] += 1
                return
            st[2] = t
            st[4] = push.server_msg_id
            pair.delivered += 1
            if st[1]:
                self._complete(pair, n, st, t)
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"receiver got frame 0x{cmd:04x}"] += 1

    async def do_p2p_run(
        self,
        t0: float,
        warmup: float,
        duration: float,
        drain: float,
        rate: float | None,
        budget: int,
        payload_size: int,
    ) -> dict[str, Any]:
        """Closed loop (``rate`` None: each sender's next message as soon as its previous one is
        complete) or open loop (``rate`` msgs/s for this worker, paced by a schedule, whatever the
        completions).  Figures count only messages sent within the window after ``warmup``."""
        loop = asyncio.get_running_loop()
        pairs = [p for p in self.pairs if p.sender is not None and p.receiver is not None]
        self.payload = (b"coffeechat benchmark message " * (payload_size // 29 + 1))[:payload_size] or b"x"
        self.create_time = int(time.time())
        self.win_start = t0 + warmup
        self.win_end = self.t_stop = t0 + warmup + duration
        self.closed_loop = rate is None
        self.budget = budget
        self.sent = 0
        self.completed_in_window = 0
        self.ack_lat = array("d")
        self.del_lat = array("d")
        self.run_events: Counter[str] = Counter()
        lost0 = self.events["connection lost"]
        cpu = {"start": 0.0, "end": 0.0}
        lag = array("d")

        def window_start() -> None:
            cpu["start"] = cpu_now()

        def window_end() -> None:
            cpu["end"] = cpu_now()

        loop.call_at(self.win_start, window_start)
        loop.call_at(self.win_end, window_end)
        await asyncio.sleep(max(0.0, t0 - _now()))

        if self.closed_loop:
            now = _now()
            for pair in pairs:
                if self.sent < budget:
                    self._send(pair, now)
        elif pairs and rate:
            interval = 1.0 / rate
            state = {"j": 0}
            npairs = len(pairs)

            def tick() -> None:
                j = state["j"]
                now = _now()
                while j < budget:
                    due = t0 + j * interval
                    if due > now or due >= self.t_stop:
                        break
                    if due >= self.win_start:
                        lag.append(now - due)
                    self._send(pairs[j % npairs], due)
                    j += 1
                state["j"] = j
                due = t0 + j * interval
                if j < budget and due < self.t_stop:
                    loop.call_at(due, tick)

            tick()
        await asyncio.sleep(max(0.0, self.t_stop - _now()))
        # Drain: every message sent must complete; give the stragglers ``drain`` seconds.
        drain_end = _now() + drain
        while _now() < drain_end and any(p.open for p in pairs):
            await asyncio.sleep(0.02)
        return self._p2p_result(pairs, cpu["end"] - cpu["start"], lag, lost0)

    def _p2p_result(self, pairs: list[Pair], cpu: float, lag: array, lost0: int) -> dict[str, Any]:
        acked = delivered = completed = errors = 0
        acked_not_delivered = delivered_not_acked = unanswered = 0
        gap_pairs = missing_ids = 0
        for p in pairs:
            acked += p.acked
            delivered += p.delivered
            completed += p.completed
            errors += p.errors
            for st in p.open.values():
                if st[1] and not st[2]:
                    acked_not_delivered += 1
                elif st[2] and not st[1]:
                    delivered_not_acked += 1
                else:
                    unanswered += 1
            # The conversation of a fresh pair must hold 1..n, no gap, no repeat.
            if p.sids and (len(p.sids) != p.acked or max(p.sids) != len(p.sids) or min(p.sids) != 1):
                gap_pairs += 1
                missing_ids += max(p.sids) - len(p.sids)
        events = Counter(self.run_events)
        lost = self.events["connection lost"] - lost0
        if lost:
            events["connection lost"] += lost
        return {
            "pairs": len(pairs),
            "sent": self.sent,
            "acked": acked,
            "delivered": delivered,
            "completed": completed,
            "completed_in_window": self.completed_in_window,
            "refused": errors,
            "acked_not_delivered": acked_not_delivered,
            "delivered_not_acked": delivered_not_acked,
            "unanswered": unanswered,
            "gap_pairs": gap_pairs,
            "missing_ids": missing_ids,
            "ack_lat": self.ack_lat.tobytes(),
            "del_lat": self.del_lat.tobytes(),
            "send_lag": lag.tobytes(),
            "cpu": cpu,
            "events": dict(events),
        }

    # ---- group -----------------------------------------------------------------------------

    async def do_group_setup(
        self,
        host: str,
        port: int,
        groups: list[dict[str, Any]],
        concurrency: int,
        timeout: float,
        settle: float,
        ws_path: str | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        """Log every member in (one connection each), then each group's first member creates
        the group with all the others (GROUP_CREATE, 0x0501), then wait until every member has the
        creation's pushes (GROUP_MEMBER_CHANGED, and the NOTIFICATION message for all but the
        creator's device) so that the measured phase starts quiet.  With several server nodes a
        group's ``nodes`` (one per member) say where each member connects: ``ports[node]``."""
        self._endpoint(host, port, ws_path)
        self.groups = [BenchGroup(g["index"], g["members"], g["senders"]) for g in groups]
        self.by_gid: dict[int, BenchGroup] = {}
        self.gmsgs: dict[int, list] = {}
        self.push_info: dict[bytes, tuple] = {}
        self.notice_sids: dict[int, set[int]] = {}  # group id -> ids of its NOTIFICATION messages
        self.run_events = Counter()
        errors: Counter[str] = Counter()
        members = [m for g in self.groups for m in g.members]
        placed = [n for g in groups for n in (g.get("nodes") or [0] * len(g["members"]))]
        by_node = [0] * len(ports or [0])

        async def one(i: int) -> None:
            member, node = members[i], placed[i]
            conn = await self._open(self._member_frame, timeout, errors, ports[node] if ports else None)
            if conn is None:
                return
            conn.tag = member
            if await self._login(conn, member.uid, member.token, timeout, errors):
                member.conn = conn
                by_node[node] += 1

        t0 = _now()
        await wire.run_bounded(range(len(members)), one, concurrency)
        t_logged = _now()
        logged_in = sum(1 for m in members if m.conn is not None)
        create_errors: list[dict[str, Any]] = []

        async def create(group: BenchGroup) -> None:
            owner = group.members[0]
            if owner.conn is None:
                create_errors.append({"group": group.index, "error": "the creator is not logged in"})
                return
            others = [m.uid for m in group.members[1:]]
            body = pb.CIMGroupCreateReq(
                user_id=owner.uid, group_name=f"bench {group.index}", member_id_list=others
            ).SerializeToString()
            try:
                cmd, answer = await asyncio.wait_for(
                    owner.conn.request(wire.GROUP_CREATE_REQ, body, wire.GROUP_CREATE_RSP), timeout
                )
            except (TimeoutError, ConnectionError) as e:
                create_errors.append({"group": group.index, "error": f"{type(e).__name__}: {e}"})
                return
            if cmd == wire.ERROR_RSP:
                err = pb.CIMErrorRsp.FromString(answer)
                create_errors.append(
                    {"group": group.index, "answer_cmd": cmd, "code": int(err.error_code), "text": err.error_msg}
                )
                return
            rsp = pb.CIMGroupCreateRsp.FromString(answer)
            if rsp.result_code != wire.SUCCESS or not rsp.group_info.group_id:
                create_errors.append({"group": group.index, "answer_cmd": cmd, "code": int(rsp.result_code)})
                return
            group.gid = rsp.group_info.group_id
            group.created_members = len(rsp.member_id_list)
            self.by_gid[group.gid] = group

        t_create = _now()
        await asyncio.gather(*(create(g) for g in self.groups))
        t_created = _now()
        # The creation's pushes: wait (bounded) until every online member has them.
        deadline = _now() + settle
        while _now() < deadline and not create_errors:
            if all(g.creation_pushes_complete() for g in self.groups):
                break
            await asyncio.sleep(0.02)
        missing_notices = sum(g.missing_creation_pushes() for g in self.groups) if not create_errors else 0
        return {
            "logged_in": logged_in,
            "logged_in_by_node": by_node,
            "members": len(members),
            "login_s": t_logged - t0,
            "create_s": t_created - t_create,
            "groups_created": sum(1 for g in self.groups if g.gid),
            "group_ids": [g.gid for g in self.groups],
            "create_errors": create_errors,
            "missing_creation_pushes": missing_notices,
            "errors": dict(errors),
            "events": dict(self.run_events),
        }

    def _new_push(self, body: bytes) -> tuple:
        """Decode a group push once per message (the server sends every member the same bytes) and
        build the delivery ack every receiver sends back.  The ack leaves ``from_user_id`` out: the
        server takes the user from the connection, so the same body serves every member."""
        push = _MsgData.FromString(body)
        sid = push.server_msg_id
        ack = _MsgDataAck(
            to_session_id=push.to_session_id,
            client_msg_id=push.client_msg_id,
            server_msg_id=sid,
            session_type=push.session_type,
            res_code=wire.RES_OK,
        ).SerializeToString()
        group = self.by_gid.get(push.to_session_id)
        st = None
        if push.session_type == wire.GROUP and push.msg_type == wire.NOTIFICATION:
            # The creation's notice reaches members before the creator has the group's id.
            kind = _PUSH_NOTICE
            self.notice_sids.setdefault(push.to_session_id, set()).add(sid)
        elif push.session_type != wire.GROUP or group is None:
            kind = _PUSH_FOREIGN
        else:
            kind = _PUSH_BENCH
            cid = push.client_msg_id
            st = self.gmsgs.get(int(cid)) if cid.isdigit() else None
            if st is None:
                kind = _PUSH_FOREIGN
            elif st[7] is not group or push.from_user_id != st[8].uid:
                self.run_events["push in the wrong group or from the wrong sender"] += 1
                kind = _PUSH_FOREIGN
            else:
                st[6] = sid
                st[9] = body
        info = (ack, _HDR + len(ack), sid, st, kind)
        self.push_info[body] = info
        return info

    def _member_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        """The hot path of a group run: one call per delivery to every member device."""
        if cmd == _MSG_DATA:
            info = self.push_info.get(body)
            if info is None:
                info = self._new_push(body)
            conn.out(_pack(info[1], 1, 0, 0, _MSG_DATA_ACK, seq, 0) + info[0])
            member: Member = conn.tag
            sid = info[2]
            seen = member.seen
            if sid >= len(seen):
                seen.extend(bytes(sid + 4096 - len(seen)))
            elif seen[sid]:
                self.run_events["duplicate delivery to a device"] += 1
                return
            seen[sid] = 1
            st = info[3]
            if st is None:
                if info[4] == _PUSH_NOTICE:
                    member.notices += 1
                else:
                    self.run_events["delivery of an unknown message"] += 1
                return
            if st[8] is member:
                self.run_events["a device got its own message back"] += 1
                return
            self.deliveries += 1
            if not st[2]:
                st[2] = _now()
            left = st[4] - 1
            st[4] = left
            if left == 0:
                t = _now()
                st[3] = t
                if st[1]:
                    self._group_complete(st, t)
            elif left < 0:
                self.run_events["more deliveries than receivers"] += 1
        elif cmd == _MSG_DATA_ACK:
            self._group_ack(conn, body)
        elif cmd == _GROUP_CHANGED:
            conn.tag.changed += 1
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"member got frame 0x{cmd:04x}"] += 1

    def _group_send(self, member: Member, t_sched: float) -> None:
        conn = member.conn
        if conn is None or conn.lost:
            self.run_events["send on a closed connection"] += 1
            return
        group = member.group
        n = self.next_n
        self.next_n = n + 1
        body = _MsgData(
            from_user_id=member.uid,
            to_session_id=group.gid,
            client_msg_id=str(n),
            create_time=self.create_time,
            msg_type=wire.TEXT,
            session_type=wire.GROUP,
            msg_data=self.payload,
        ).SerializeToString()
        # [t_send, t_ack, t_first, t_last, receivers left, sid acked, sid pushed, group, sender, push body, n]
        self.gmsgs[n] = [t_sched, 0.0, 0.0, 0.0, group.receivers, 0, 0, group, member, None, n]
        conn.out(_pack(_HDR + len(body), 1, 0, 0, _MSG_DATA, n % 65534 + 1, 0) + body)
        self.sent += 1
        group.sent += 1

    def _group_ack(self, conn: Conn, body: bytes) -> None:
        t = _now()
        ack = _MsgDataAck.FromString(body)
        cid = ack.client_msg_id
        st = self.gmsgs.get(int(cid)) if cid.isdigit() else None
        if st is None or st[1] or st[8] is not conn.tag:
            self.run_events["duplicate or unexpected ack"] += 1
            return
        group: BenchGroup = st[7]
        if ack.res_code != wire.RES_OK:
            group.refused += 1
            self.run_events[f"send refused: error {ack.error_code} {ack.error_msg}"[:100]] += 1
            del self.gmsgs[int(cid)]
            if self.closed_loop and t < self.t_stop and self.sent < self.budget:
                self._group_send(st[8], t)
            return
        sid = ack.server_msg_id
        st[1] = t
        st[5] = sid
        if sid in group.acked_sids:
            self.run_events["server_msg_id acked twice"] += 1
        group.acked_sids.add(sid)
        st[8].acked_sids.append(sid)
        group.acked += 1
        if st[4] == 0 and st[3]:
            self._group_complete(st, t)

    def _group_complete(self, st: list, t: float) -> None:
        """Acked at the sender and delivered to every other member device: record, send the next."""
        del self.gmsgs[st[10]]
        if st[9] is not None:
            self.push_info.pop(st[9], None)
        st[7].completed += 1
        self.completed += 1
        if st[5] != st[6]:
            self.run_events["ack and push disagree on server_msg_id"] += 1
        ts = st[0]
        if self.win_start <= ts < self.win_end:
            self.ack_lat.append(st[1] - ts)
            self.first_lat.append(st[2] - ts)
            self.last_lat.append(st[3] - ts)
        if self.closed_loop and t < self.t_stop and self.sent < self.budget:
            self._group_send(st[8], t)

    async def do_group_run(
        self, t0: float, warmup: float, duration: float, drain: float, budget: int, payload_size: int, window: int
    ) -> dict[str, Any]:
        """Closed loop: each sender keeps ``window`` messages in flight; a message is complete when
        its sender has the ack and every other member device has the push.  Deliveries and
        completions are counted between the window's two instants (callbacks at those instants
        read the counters, so the hot path does not look at the clock for that)."""
        loop = asyncio.get_running_loop()
        self.payload = (b"coffeechat group benchmark " * (payload_size // 27 + 1))[:payload_size] or b"x"
        self.create_time = int(time.time())
        self.win_start = t0 + warmup
        self.win_end = self.t_stop = t0 + warmup + duration
        self.closed_loop = True
        self.budget = budget
        self.sent = self.completed = self.deliveries = 0
        self.next_n = 1
        self.ack_lat = array("d")
        self.first_lat = array("d")
        self.last_lat = array("d")
        self.push_info.clear()  # the creation notices' entries
        self.run_events = Counter()
        lost0 = self.events["connection lost"]
        snap: dict[str, float] = {}
        for g in self.groups:
            g.receivers = sum(1 for m in g.members if m.conn is not None) - 1

        def window_start() -> None:
            snap.update(cpu0=cpu_now(), d0=self.deliveries, c0=self.completed)

        def window_end() -> None:
            snap.update(cpu1=cpu_now(), d1=self.deliveries, c1=self.completed)

        loop.call_at(self.win_start, window_start)
        loop.call_at(self.win_end, window_end)
        await asyncio.sleep(max(0.0, t0 - _now()))
        now = _now()
        for _ in range(max(1, window)):
            for g in self.groups:
                if not g.gid or g.receivers < 1:
                    continue
                for member in g.members[: g.senders]:
                    if self.sent < budget:
                        self._group_send(member, now)
        await asyncio.sleep(max(0.0, self.t_stop - _now()))
        drain_end = _now() + drain
        while _now() < drain_end and self.gmsgs:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)  # late duplicates, if any, still get counted
        return self._group_result(snap, lost0)

    def _group_result(self, snap: dict[str, float], lost0: int) -> dict[str, Any]:
        """Totals and the exactly-once checks: each device got each acked message of its group
        that it did not send once (bitmaps by server_msg_id), each group's ids are dense."""
        unanswered = acked_not_delivered = delivered_not_acked = 0
        for st in self.gmsgs.values():
            if st[1] and st[4] > 0:
                acked_not_delivered += 1
            elif not st[1] and st[4] <= 0:
                delivered_not_acked += 1
            else:
                unanswered += 1
        missing = gap_groups = missing_ids = 0
        acked = refused = notices = 0
        for g in self.groups:
            acked += g.acked
            refused += g.refused
            if not g.acked_sids:
                continue
            notice_sids = self.notice_sids.get(g.gid, set())
            top = max(max(g.acked_sids), max(notice_sids, default=0))
            want = bytearray(top + 1)
            for sid in g.acked_sids:
                want[sid] = 1
            want_bits = int.from_bytes(want, "little")
            for m in g.members:
                if m.conn is None:
                    continue
                notices += m.notices
                expected = len(g.acked_sids) - len(m.acked_sids)
                # bytes are 0 or 1: the AND's set bits are the acked messages this device got
                got = (int.from_bytes(m.seen[: top + 1], "little") & want_bits).bit_count()
                missing += expected - got
            ids = g.acked_sids | notice_sids
            if len(ids) != top or min(ids) != 1:
                gap_groups += 1
                missing_ids += top - len(ids)
        events = Counter(self.run_events)
        lost = self.events["connection lost"] - lost0
        if lost:
            events["connection lost"] += lost
        return {
            "groups": sum(1 for g in self.groups if g.gid),
            "sent": self.sent,
            "acked": acked,
            "refused": refused,
            "completed": self.completed,
            "deliveries": self.deliveries,
            "deliveries_in_window": int(snap.get("d1", 0) - snap.get("d0", 0)),
            "completed_in_window": int(snap.get("c1", 0) - snap.get("c0", 0)),
            "unanswered": unanswered,
            "acked_not_delivered": acked_not_delivered,
            "delivered_not_acked": delivered_not_acked,
            "missing_deliveries": missing,
            "gap_groups": gap_groups,
            "missing_ids": missing_ids,
            "notice_deliveries": notices,
            "ack_lat": self.ack_lat.tobytes(),
            "first_lat": self.first_lat.tobytes(),
            "last_lat": self.last_lat.tobytes(),
            "cpu": snap.get("cpu1", 0.0) - snap.get("cpu0", 0.0),
            "events": dict(events),
        }

    # ---- offline ---------------------------------------------------------------------------

    async def do_offline_setup(
        self, host: str, port: int, pairs: list[list], concurrency: int, timeout: float, ws_path: str | None = None
    ) -> dict[str, Any]:
        """Connect and log in the senders only: the receivers stay offline."""
        self._endpoint(host, port, ws_path)
        return await self._setup_pairs(pairs, concurrency, timeout, receivers=False)

    async def do_offline_send(
        self, start_at: float, count: int, window: int, deadline: float, payload_size: int, timeout: float
    ) -> dict[str, Any]:
        """Send ``count`` messages (spread over the pairs), ``window`` in flight per sender; every
        acked one is remembered with its server_msg_id for the catch-up check."""
        pairs = [p for p in self.pairs if p.sender is not None and not p.sender.lost]
        if not pairs:
            return {"sent": 0, "acked": 0, "t0": _now(), "t1": _now(), "cpu": 0.0, "events": {"no sender connected": 1}}
        payload = (b"offline benchmark message " * (payload_size // 26 + 1))[:payload_size] or b"x"
        quota = {p.index: count // len(pairs) + (1 if i < count % len(pairs) else 0) for i, p in enumerate(pairs)}
        events: Counter[str] = Counter()
        state = {"sent": 0, "acked": 0, "last_ack": 0.0}
        await asyncio.sleep(max(0.0, start_at - _now()))
        cpu0 = cpu_now()

        async def lane(pair: Pair) -> None:
            conn = pair.sender
            while pair.next_n <= quota[pair.index] and _now() < deadline and not conn.lost:
                n = pair.next_n
                pair.next_n += 1
                body = wire.msg_data_body(pair.s_uid, pair.r_uid, str(n), payload)
                state["sent"] += 1
                try:
                    cmd, answer = await asyncio.wait_for(conn.request(_MSG_DATA, body, _MSG_DATA_ACK), timeout)
                except (TimeoutError, ConnectionError) as e:
                    events[f"send: {type(e).__name__}"] += 1
                    continue
                if cmd != _MSG_DATA_ACK:
                    events[f"send answered 0x{cmd:04x}"] += 1
                    continue
                ack = _MsgDataAck.FromString(answer)
                if ack.res_code != wire.RES_OK:
                    events[f"send refused: error {ack.error_code}"] += 1
                    continue
                pair.acked_ids[n] = ack.server_msg_id
                state["acked"] += 1
                state["last_ack"] = _now()

        t0 = _now()
        await asyncio.gather(*(lane(p) for p in pairs for _ in range(max(1, window))))
        return {
            "sent": state["sent"],
            "acked": state["acked"],
            "t0": t0,
            "t1": state["last_ack"] or _now(),
            "cpu": cpu_now() - cpu0,
            "events": dict(events),
        }

    async def do_offline_catchup(self, start_at: float, page: int, concurrency: int, timeout: float) -> dict[str, Any]:
        """Log the receivers in and catch up as a client does: the conversation list (0x0201),
        then history pages (0x0205) backwards from the newest until message 1; check every acked
        message arrived with its server_msg_id and nothing is missing."""
        await asyncio.sleep(max(0.0, start_at - _now()))
        errors: Counter[str] = Counter()
        totals = Counter()
        durations = array("d")
        cpu0 = cpu_now()

        async def one(pair: Pair) -> None:
            t = _now()
            conn = await self._open(self._receiver_frame_offline, timeout, errors)
            pair.receiver = conn
            if not await self._login(conn, pair.r_uid, pair.r_token, timeout, errors):
                totals["missing"] += len(pair.acked_ids)
                return
            try:
                got, latest, pages = await self._catch_up(conn, pair, page, timeout)
            except (TimeoutError, ConnectionError, ValueError) as e:
                errors[f"catch-up: {type(e).__name__}: {e}"[:120]] += 1
                totals["missing"] += len(pair.acked_ids)
                return
            durations.append(_now() - t)
            totals["fetched"] += len(got)
            totals["pages"] += pages
            missing = sum(1 for n, sid in pair.acked_ids.items() if got.get(sid) != str(n))
            totals["missing"] += missing
            totals["expected"] += len(pair.acked_ids)
            # Stored but never acked (a send cut by the deadline) is allowed; a gap is not.
            if got and (min(got) != 1 or max(got) != len(got)):
                totals["gap_conversations"] += 1
            if latest != len(got):
                totals["conversation_list_mismatch"] += 1

        t0 = _now()
        await wire.run_bounded(self.pairs, one, concurrency)
        return {
            "t0": t0,
            "t1": _now(),
            "receivers": len(self.pairs),
            "expected": totals["expected"],
            "fetched": totals["fetched"],
            "pages": totals["pages"],
            "missing": totals["missing"],
            "gap_conversations": totals["gap_conversations"],
            "conversation_list_mismatch": totals["conversation_list_mismatch"],
            "durations": durations.tobytes(),
            "cpu": cpu_now() - cpu0,
            "errors": dict(errors),
        }

    def _receiver_frame_offline(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        # Messages sent before the login are not pushed; anything pushed now is unexpected.
        self.events[f"receiver got frame 0x{cmd:04x} while catching up"] += 1

    async def _catch_up(self, conn: Conn, pair: Pair, page: int, timeout: float) -> tuple[dict[int, str], int, int]:
        req = pb.CIMRecentContactSessionReq(user_id=pair.r_uid, latest_update_time=0).SerializeToString()
        cmd, body = await asyncio.wait_for(conn.request(wire.LIST_SESSIONS_REQ, req, wire.LIST_SESSIONS_RSP), timeout)
        if cmd != wire.LIST_SESSIONS_RSP:
            raise ValueError(f"conversation list answered 0x{cmd:04x}")
        sessions = pb.CIMRecentContactSessionRsp.FromString(body).contact_session_list
        latest = next((s.server_msg_id for s in sessions if s.session_id == pair.s_uid), 0)
        got: dict[int, str] = {}
        end = 0
        pages = 0
        while latest:
            req = pb.CIMGetMsgListReq(
                user_id=pair.r_uid, session_type=wire.SINGLE, session_id=pair.s_uid, end_msg_id=end, limit_count=page
            ).SerializeToString()
            cmd, body = await asyncio.wait_for(conn.request(wire.LIST_MSG_REQ, req, wire.LIST_MSG_RSP), timeout)
            if cmd != wire.LIST_MSG_RSP:
                raise ValueError(f"history answered 0x{cmd:04x}")
            pages += 1
            msgs = pb.CIMGetMsgListRsp.FromString(body).msg_list
            if not msgs:
                break
            for m in msgs:
                got[m.server_msg_id] = m.client_msg_id
            end = msgs[0].server_msg_id
            if end <= 1:
                break
        return got, latest, pages
