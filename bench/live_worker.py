"""The generator side of the ``room`` and ``calls`` scenarios (mixed into :class:`.worker.Worker`).

Why a room is cheap to receive here: the server encodes a ROOM_MSG_NOTIFY batch once and writes the
same bytes to every connection of the room on a node, so a batch is decoded once per generator
(cached by its bytes) and every other receiver only adds the batch's message count and checksum to
its own totals: two additions per frame, whatever the batch holds.  Latency is taken at a sample of
receivers (``sampled`` members decode every message's send time); the exactly-once check holds for
every member: each keeps the count and a checksum (a sum of per-message tokens) of what it got,
which the parent compares with what the senders had acked.

A call round is a burst: every caller of the worker sends VOIP_INVITE at once, each callee answers
180 then 200 as soon as the invite is pushed to it, the caller times invite -> 200 OK, then hangs up
(VOIP_BYE) and the round ends when every bye is answered and told to the callee.
"""

from __future__ import annotations

import asyncio
import resource
import time
from array import array
from collections import Counter
from typing import Any

from coffeechat.schema import Cmd

from . import wire
from .wire import Conn, pb

_now = time.monotonic
_pack = wire._pack
_HDR = wire.HEADER_SIZE
_ROOM_CREATE_REQ = int(Cmd.ROOM_CREATE_REQ)
_ROOM_CREATE_RSP = int(Cmd.ROOM_CREATE_RSP)
_ROOM_JOIN_REQ = int(Cmd.ROOM_JOIN_REQ)
_ROOM_JOIN_RSP = int(Cmd.ROOM_JOIN_RSP)
_ROOM_MSG_REQ = int(Cmd.ROOM_MSG_REQ)
_ROOM_MSG_RSP = int(Cmd.ROOM_MSG_RSP)
_ROOM_MSG_NOTIFY = int(Cmd.ROOM_MSG_NOTIFY)
_ROOM_MEMBERS_REQ = int(Cmd.ROOM_MEMBERS_REQ)
_ROOM_MEMBERS_RSP = int(Cmd.ROOM_MEMBERS_RSP)
_ROOM_EVENT_NOTIFY = int(Cmd.ROOM_EVENT_NOTIFY)
_VOIP_INVITE = int(Cmd.VOIP_INVITE_REQ)
_VOIP_REPLY = int(Cmd.VOIP_INVITE_REPLY)
_VOIP_REPLY_ACK = int(Cmd.VOIP_INVITE_REPLY_ACK)
_VOIP_BYE_REQ = int(Cmd.VOIP_BYE_REQ)
_VOIP_BYE_RSP = int(Cmd.VOIP_BYE_RSP)
_VOIP_BYE_NOTIFY = int(Cmd.VOIP_BYE_NOTIFY)
_VOIP_STATE_NOTIFY = int(Cmd.VOIP_CALL_STATE_NOTIFY)
_MSG_DATA = wire.MSG_DATA
_MSG_DATA_ACK = wire.MSG_DATA_ACK
_HEARTBEAT = wire.LOGIN_HEARTBEAT
_KICKOUT = wire.KICKOUT_NOTIFY
_ERROR_RSP = wire.ERROR_RSP
_SUCCESS = wire.SUCCESS
_RoomNotify = pb.CIMRoomMsgNotify
_RoomMsgRsp = pb.CIMRoomMsgRsp
_RoomMsgReq = pb.CIMRoomMsgReq
_VoipReply = pb.CIMVoipInviteReply
_TRYING = int(pb.kCIM_VOIP_INVITE_CODE_TRYING)
_RINGING = int(pb.kCIM_VOIP_INVITE_CODE_RINGING)
_OK = int(pb.KCIM_VOIP_INVITE_CODE_OK)
_BUSY = int(pb.kCIM_VOIP_INVITE_CODE_BUSY)
_AVCHAT = int(pb.kCIM_MSG_TYPE_AVCHAT)
_MASK64 = (1 << 64) - 1
# Decoded batches are kept this long (then dropped: a receiver later than that decodes it again).
_CACHE_SECONDS = 5.0
_HEARTBEAT_EVERY = 25.0


def msg_token(sender: int, n: int) -> int:
    """The checksum token of message ``n`` of sender ``sender`` (a 64-bit mix: a duplicate and a
    loss at one receiver do not cancel out)."""
    return (((sender << 32) | n) * 0x9E3779B97F4A7C15) & _MASK64


class RoomMember:
    """One connection in the room: what it received (count and checksum of message tokens), and
    for a sender what it sent and got acked."""

    __slots__ = (
        "index", "uid", "token", "node", "is_sender", "sampled", "conn", "joined", "count", "sum", "echo_count",
        "echo_sum", "next_n", "seqs", "acked", "acked_sum", "refused", "sent", "flags", "acked_ids",
    )  # fmt: skip

    def __init__(self, index: int, uid: int, token: str, node: int, is_sender: bool, sampled: bool) -> None:
        self.index = index
        self.uid = uid
        self.token = token
        self.node = node
        self.is_sender = is_sender
        self.sampled = sampled
        self.flags = is_sender or sampled  # the hot path looks at the messages of a batch only then
        self.conn: Conn | None = None
        self.joined = False
        self.count = self.sum = 0  # every message received (own echoes included)
        self.echo_count = self.echo_sum = 0  # own messages received back
        self.next_n = 1
        self.seqs: dict[int, int] = {}  # frame seq -> message number, until answered
        self.sent = self.acked = self.acked_sum = self.refused = 0
        self.acked_ids: list[int] = []


class LiveWorker:
    """The ``room_*`` and ``calls_*`` phases; the rest of the worker (``_open``, ``_login``,
    ``events``, ``conns``) is :class:`.worker.Worker`'s."""

    # ---- room ------------------------------------------------------------------------------

    async def do_room_login(
        self,
        host: str,
        port: int,
        members: list[list],
        concurrency: int,
        timeout: float,
        ws_path: str | None = None,
        ports: list[int] | None = None,
    ) -> dict[str, Any]:
        """Connect and log in one connection per member (member i on ``ports[node]``)."""
        self._endpoint(host, port, ws_path)
        self.rmembers = [RoomMember(*m) for m in members]
        self.room_id = 0
        self.rmsgs: dict[str, list] = {}
        self.room_cache: dict[bytes, list] = {}
        self.run_events: Counter[str] = Counter()
        self.room_deliveries = 0
        self.room_decoded = 0  # distinct batches decoded (the rest found in the cache)
        self.room_frames = 0  # ROOM_MSG_NOTIFY frames (a batch of one or more messages each)
        self.room_notices = 0
        self.room_running = False
        errors: Counter[str] = Counter()
        by_node = [0] * len(ports or [0])

        async def one(m: RoomMember) -> None:
            conn = await self._open(self._room_frame, timeout, errors, ports[m.node] if ports else None)
            if conn is None:
                return
            conn.tag = m
            self.conns.append(conn)
            if await self._login(conn, m.uid, m.token, timeout, errors):
                m.conn = conn
                by_node[m.node] += 1

        self.conns = []
        t0 = _now()
        await wire.run_bounded(self.rmembers, one, concurrency)
        self._room_heartbeats()
        return {
            "logged_in": sum(1 for m in self.rmembers if m.conn is not None),
            "logged_in_by_node": by_node,
            "login_s": _now() - t0,
            "errors": dict(errors),
        }

    def _room_heartbeats(self) -> None:
        """A login heartbeat per connection every 25 s, staggered (the server's idle timeout)."""
        loop = asyncio.get_running_loop()
        conns = [m.conn for m in self.rmembers if m.conn is not None]
        if not conns:
            return
        hb = wire.frame(_HEARTBEAT, 1)
        spacing = _HEARTBEAT_EVERY / len(conns)
        state = {"i": 0, "t": _now()}

        def tick() -> None:
            now = _now()
            i = state["i"]
            while state["t"] <= now and i < len(conns) * 1000:  # bounded: 1,000 rounds (7 hours)
                conn = conns[i % len(conns)]
                if not conn.lost:
                    conn.out(hb)
                i += 1
                state["t"] += spacing
            state["i"] = i
            if i < len(conns) * 1000:
                loop.call_at(max(state["t"], now + 0.05), tick)

        state["t"] = _now() + spacing
        loop.call_at(state["t"], tick)

    async def do_room_create(self, create: bool, name: str, max_members: int, timeout: float) -> dict[str, Any]:
        """The first member of the run (the owner, on generator 0) creates the room."""
        if not create:
            return {"created": False}
        owner = self.rmembers[0]
        if owner.conn is None:
            return {"created": False, "error": "the owner is not logged in"}
        body = pb.CIMRoomCreateReq(user_id=owner.uid, name=name, max_members=max_members).SerializeToString()
        try:
            cmd, answer = await asyncio.wait_for(owner.conn.request(_ROOM_CREATE_REQ, body, _ROOM_CREATE_RSP), timeout)
        except (TimeoutError, ConnectionError) as e:
            return {"created": False, "error": f"ROOM_CREATE: {type(e).__name__}: {e}"}
        if cmd == _ERROR_RSP:
            err = pb.CIMErrorRsp.FromString(answer)
            return {"created": False, "answer_cmd": cmd, "code": int(err.error_code), "text": err.error_msg}
        rsp = pb.CIMRoomCreateRsp.FromString(answer)
        if rsp.result_code != _SUCCESS or not rsp.room.room_id:
            return {"created": False, "answer_cmd": cmd, "code": int(rsp.result_code), "text": rsp.result_string}
        return {"created": True, "room_id": rsp.room.room_id, "max_members": rsp.room.max_members}

    async def do_room_join(self, room_id: int, concurrency: int, timeout: float, settle: float) -> dict[str, Any]:
        """Every logged-in member joins ``room_id`` (ROOM_JOIN, at most ``concurrency`` at once),
        then a quiet ``settle`` (the coalesced join notices go out meanwhile)."""
        self.room_id = room_id
        errors: Counter[str] = Counter()
        recent = 0

        async def one(m: RoomMember) -> None:
            nonlocal recent
            if m.conn is None:
                return
            body = pb.CIMRoomJoinReq(user_id=m.uid, room_id=room_id).SerializeToString()
            try:
                cmd, answer = await asyncio.wait_for(m.conn.request(_ROOM_JOIN_REQ, body, _ROOM_JOIN_RSP), timeout)
            except (TimeoutError, ConnectionError) as e:
                errors[f"join: {type(e).__name__}"] += 1
                return
            if cmd == _ERROR_RSP:
                errors[f"join: ERROR_RSP {pb.CIMErrorRsp.FromString(answer).error_code}"] += 1
                return
            rsp = pb.CIMRoomJoinRsp.FromString(answer)
            if rsp.result_code != _SUCCESS:
                errors[f"join: result {rsp.result_code} {rsp.result_string}"[:100]] += 1
                return
            recent += len(rsp.recent)
            m.joined = True

        t0 = _now()
        await wire.run_bounded(self.rmembers, one, concurrency)
        t1 = _now()
        await asyncio.sleep(settle)
        joined_by_node: Counter[int] = Counter(m.node for m in self.rmembers if m.joined)
        return {
            "joined": sum(1 for m in self.rmembers if m.joined),
            "joined_by_node": dict(joined_by_node),
            "join_s": t1 - t0,
            "recent_messages": recent,
            "event_notices": self.room_notices,
            "errors": dict(errors),
        }

    async def do_room_members(self, timeout: float) -> dict[str, Any]:
        """The member count the server reports (ROOM_MEMBERS, from the first joined member here)."""
        m = next(
            (m for m in self.rmembers if m.joined and not m.is_sender and m.conn is not None and not m.conn.lost),
            None,
        )
        if m is None:
            return {"member_count": None}
        body = pb.CIMRoomMembersReq(user_id=m.uid, room_id=self.room_id, sample_size=10).SerializeToString()
        try:
            cmd, answer = await asyncio.wait_for(m.conn.request(_ROOM_MEMBERS_REQ, body, _ROOM_MEMBERS_RSP), timeout)
        except (TimeoutError, ConnectionError) as e:
            return {"member_count": None, "error": f"{type(e).__name__}"}
        if cmd != _ROOM_MEMBERS_RSP:
            return {"member_count": None, "error": f"answered 0x{cmd:04x}"}
        rsp = pb.CIMRoomMembersRsp.FromString(answer)
        return {"member_count": int(rsp.member_count), "sample": len(rsp.sample), "result_code": int(rsp.result_code)}

    def _room_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        """The hot path: one call per ROOM_MSG_NOTIFY to every member connection."""
        if cmd == _ROOM_MSG_NOTIFY:
            e = self.room_cache.get(body)
            if e is None:
                e = self._room_batch(body)
            m: RoomMember = conn.tag
            m.count += e[0]
            m.sum += e[1]
            self.room_deliveries += e[0]
            self.room_frames += 1
            if m.flags:
                self._room_special(m, e)
        elif cmd == _ROOM_MSG_RSP or (cmd == _ERROR_RSP and conn.tag.seqs):
            self._room_ack(conn, cmd, seq, body)
        elif cmd == _ROOM_EVENT_NOTIFY:
            self.room_notices += 1
        elif cmd == _HEARTBEAT:
            pass
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"member got frame 0x{cmd:04x}"] += 1

    def _room_batch(self, body: bytes) -> list:
        """Decode a batch once: [count, checksum, ((send time, state, sender index, token), ...), when]."""
        notify = _RoomNotify.FromString(body)
        total = 0
        msgs = []
        rmsgs = self.rmsgs
        if notify.room_id != self.room_id:
            self.run_events["a batch of another room"] += 1
        for msg in notify.msgs:
            cid = msg.client_msg_id
            sender, _, n = cid.partition(".")
            try:
                si, ni = int(sender), int(n)
                ts = float(msg.msg_data.split(b" ", 1)[0])
            except ValueError:
                self.run_events["a message the benchmark did not send"] += 1
                continue
            token = msg_token(si, ni)
            total += token
            st = rmsgs.get(cid)
            if st is not None:
                if st[6] == 0:
                    st[6] = msg.msg_id
                elif st[6] != msg.msg_id:
                    self.run_events["one message, two msg_ids"] += 1
            msgs.append((ts, st, si, token))
        self.room_decoded += 1
        e = [len(msgs), total, msgs, _now()]
        self.room_cache[body] = e
        return e

    def _room_special(self, m: RoomMember, e: list) -> None:
        """A sampled receiver (latency, completion of the local senders' messages) or a sender
        (its own messages coming back, if the server echoes them)."""
        now = _now()
        lat = self.room_lat
        win_start, win_end = self.win_start, self.win_end
        for ts, st, si, token in e[2]:
            if si == m.index:
                m.echo_count += 1
                m.echo_sum += token
                continue
            if not m.sampled:
                continue
            if win_start <= ts < win_end:
                lat.append(now - ts)
            if st is not None and st[2] > 0:
                st[2] -= 1
                if st[2] == 0:
                    st[5] = now
                    if st[1]:
                        self._room_complete(st, now)

    def _room_send(self, m: RoomMember, t_sched: float) -> None:
        conn = m.conn
        if conn is None or conn.lost:
            self.run_events["send on a closed connection"] += 1
            return
        n = m.next_n
        m.next_n = n + 1
        cid = f"{m.index}.{n}"
        data = (f"{t_sched:.6f} ".encode() + self.room_payload)[: max(self.room_size, 18)]
        body = _RoomMsgReq(
            user_id=m.uid, room_id=self.room_id, client_msg_id=cid, msg_type=wire.TEXT, msg_data=data
        ).SerializeToString()
        seq = n % 65534 + 1
        m.seqs[seq] = n
        # [t_send, t_ack, sampled receivers left, member, n, t_last sampled, msg_id]
        self.rmsgs[cid] = [t_sched, 0.0, self.room_local_sampled - (1 if m.sampled else 0), m, n, 0.0, 0]
        conn.out(_pack(_HDR + len(body), 1, 0, 0, _ROOM_MSG_REQ, seq, 0) + body)
        m.sent += 1
        self.room_sent += 1

    def _room_ack(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        t = _now()
        m: RoomMember = conn.tag
        if cmd == _ERROR_RSP:
            n = m.seqs.pop(seq, None)
            err = pb.CIMErrorRsp.FromString(body)
            self.run_events[f"send answered ERROR_RSP {err.error_code} {err.error_msg}"[:100]] += 1
            if n is not None:
                self._room_refused(m, f"{m.index}.{n}", t)
            return
        rsp = _RoomMsgRsp.FromString(body)
        n = m.seqs.pop(seq, None)
        cid = rsp.client_msg_id or (f"{m.index}.{n}" if n is not None else "")
        if rsp.result_code != _SUCCESS:
            self.run_events[f"send refused: {rsp.result_code} {rsp.result_string}"[:100]] += 1
            self._room_refused(m, cid, t)
            return
        st = self.rmsgs.get(cid)
        if st is None or st[1] or st[3] is not m:
            self.run_events["duplicate or unexpected ROOM_MSG_RSP"] += 1
            return
        st[1] = t
        if st[6] and st[6] != rsp.msg_id:
            self.run_events["ack and batch disagree on msg_id"] += 1
        st[6] = rsp.msg_id
        m.acked += 1
        m.acked_sum += msg_token(m.index, st[4])
        m.acked_ids.append(rsp.msg_id)
        if st[2] <= 0:
            self._room_complete(st, t)

    def _room_refused(self, m: RoomMember, cid: str, t: float) -> None:
        st = self.rmsgs.pop(cid, None)
        m.refused += 1
        if st is not None and self.closed_loop and t < self.t_stop and self.room_sent < self.budget:
            # not at once: a refusal for the rate would else turn into a busy loop
            asyncio.get_running_loop().call_later(0.01, self._room_send, m, _now())

    def _room_complete(self, st: list, t: float) -> None:
        """Acked at the sender and received by every sampled member of this generator."""
        m: RoomMember = st[3]
        del self.rmsgs[f"{m.index}.{st[4]}"]
        self.room_completed += 1
        ts = st[0]
        if self.win_start <= ts < self.win_end:
            self.room_ack_lat.append(st[1] - ts)
            if st[5]:
                self.room_last_lat.append(st[5] - ts)
        if self.closed_loop and t < self.t_stop and self.room_sent < self.budget:
            self._room_send(m, t)

    def _room_evict(self) -> None:
        """Drop decoded batches older than a few seconds (bounded memory)."""
        cache = self.room_cache
        limit = _now() - _CACHE_SECONDS
        while cache:
            key = next(iter(cache))
            if cache[key][3] >= limit:
                break
            del cache[key]
        if self.room_running:
            asyncio.get_running_loop().call_later(0.5, self._room_evict)

    async def do_room_run(
        self,
        t0: float,
        warmup: float,
        duration: float,
        drain: float,
        rate: float | None,
        budget: int,
        payload_size: int,
        window: int,
    ) -> dict[str, Any]:
        """Closed loop (``rate`` None): each sender keeps ``window`` messages in flight, a message
        being done when acked (ROOM_MSG_RSP) and received by every sampled member of this
        generator; open loop: ``rate`` msgs/s for this worker's senders, on a schedule."""
        loop = asyncio.get_running_loop()
        self.room_size = payload_size
        self.room_payload = (b"coffeechat room benchmark " * (payload_size // 26 + 1))[:payload_size]
        self.win_start = t0 + warmup
        self.win_end = self.t_stop = t0 + warmup + duration
        self.closed_loop = rate is None
        self.budget = budget
        self.room_sent = self.room_completed = 0
        self.room_lat = array("d")
        self.room_ack_lat = array("d")
        self.room_last_lat = array("d")
        self.run_events = Counter()
        self.room_local_sampled = sum(1 for m in self.rmembers if m.sampled and m.joined)
        lost0 = self.events["connection lost"]
        snap: dict[str, float] = {}
        lag = array("d")
        senders = [m for m in self.rmembers if m.is_sender and m.joined and m.conn is not None]
        self.room_running = True
        loop.call_later(0.5, self._room_evict)

        def window_start() -> None:
            snap.update(
                cpu0=cpu_now(), f0=self.room_frames, d0=self.room_deliveries, c0=self.room_completed, s0=self.room_sent
            )

        def window_end() -> None:
            snap.update(
                cpu1=cpu_now(), f1=self.room_frames, d1=self.room_deliveries, c1=self.room_completed, s1=self.room_sent
            )

        loop.call_at(self.win_start, window_start)
        loop.call_at(self.win_end, window_end)
        await asyncio.sleep(max(0.0, t0 - _now()))
        if self.closed_loop:
            now = _now()
            for _ in range(max(1, window)):
                for m in senders:
                    if self.room_sent < budget:
                        self._room_send(m, now)
        elif senders and rate:
            interval = 1.0 / rate
            state = {"j": 0}

            def tick() -> None:
                j = state["j"]
                now = _now()
                while j < budget:
                    due = t0 + j * interval
                    if due > now or due >= self.t_stop:
                        break
                    if due >= self.win_start:
                        lag.append(now - due)
                    self._room_send(senders[j % len(senders)], due)
                    j += 1
                state["j"] = j
                due = t0 + j * interval
                if j < budget and due < self.t_stop:
                    loop.call_at(due, tick)

            tick()
        await asyncio.sleep(max(0.0, self.t_stop - _now()))
        drain_end = _now() + drain
        while _now() < drain_end and self.rmsgs:
            await asyncio.sleep(0.02)
        await asyncio.sleep(min(drain, 1.0))  # the batches to the other generators' members too
        self.room_running = False
        return self._room_result(snap, lag, lost0)

    async def do_room_tally(self) -> dict[str, Any]:
        """Each member's totals, after every generator's drain (late batches included)."""
        members = [
            (m.index, m.count, m.sum, m.echo_count, m.echo_sum, m.acked, m.acked_sum) for m in self.rmembers if m.joined
        ]
        return {"members": members, "events": dict(self.run_events)}

    def _room_result(self, snap: dict[str, float], lag: array, lost0: int) -> dict[str, Any]:
        unanswered = acked_not_done = 0
        for st in self.rmsgs.values():
            if st[1]:
                acked_not_done += 1
            else:
                unanswered += 1
        events = Counter(self.run_events)
        lost = self.events["connection lost"] - lost0
        if lost:
            events["connection lost"] += lost
        senders = [m for m in self.rmembers if m.is_sender]
        return {
            "senders": sum(1 for m in senders if m.joined),
            "sampled": self.room_local_sampled,
            "sent": self.room_sent,
            "acked": sum(m.acked for m in senders),
            "refused": sum(m.refused for m in senders),
            "completed": self.room_completed,
            "unanswered": unanswered,
            "acked_not_completed": acked_not_done,
            "deliveries_in_window": int(snap.get("d1", 0) - snap.get("d0", 0)),
            "frames_in_window": int(snap.get("f1", 0) - snap.get("f0", 0)),
            "decoded_batches": self.room_decoded,
            "completed_in_window": int(snap.get("c1", 0) - snap.get("c0", 0)),
            "sent_in_window": int(snap.get("s1", 0) - snap.get("s0", 0)),
            "acked_ids": [i for m in senders for i in m.acked_ids],
            "lat": self.room_lat.tobytes(),
            "ack_lat": self.room_ack_lat.tobytes(),
            "last_lat": self.room_last_lat.tobytes(),
            "send_lag": lag.tobytes(),
            "cpu": snap.get("cpu1", 0.0) - snap.get("cpu0", 0.0),
            "events": dict(events),
        }

    # ---- calls -----------------------------------------------------------------------------

    async def do_calls_setup(
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
        """Log in both ends of every pair, the caller on ``ports[nodes[i][0]]`` and the callee on
        ``ports[nodes[i][1]]``."""
        self._endpoint(host, port, ws_path)
        self.cpairs = [CallPair(*p) for p in pairs]
        self.run_events = Counter()
        self.conns = []
        errors: Counter[str] = Counter()
        by_node = [0] * len(ports or [0])
        ends = [(p, True) for p in self.cpairs] + [(p, False) for p in self.cpairs]

        async def one(end: tuple[CallPair, bool]) -> None:
            pair, is_caller = end
            node = nodes[pair.index][0 if is_caller else 1] if nodes else 0
            handler = self._caller_frame if is_caller else self._callee_frame
            conn = await self._open(handler, timeout, errors, ports[node] if ports else None)
            if conn is None:
                return
            conn.tag = pair
            self.conns.append(conn)
            uid, token = (pair.caller_uid, pair.caller_token) if is_caller else (pair.callee_uid, pair.callee_token)
            if await self._login(conn, uid, token, timeout, errors):
                if is_caller:
                    pair.caller = conn
                else:
                    pair.callee = conn
                by_node[node] += 1

        t0 = _now()
        await wire.run_bounded(ends, one, concurrency)
        return {
            "logged_in": sum((p.caller is not None) + (p.callee is not None) for p in self.cpairs),
            "logged_in_by_node": by_node,
            "login_s": _now() - t0,
            "errors": dict(errors),
        }

    def _call_step(self) -> None:
        """One pair reached the state the round waits for."""
        self.call_waiting -= 1
        if self.call_waiting <= 0 and self.call_wake is not None and not self.call_wake.done():
            self.call_wake.set_result(None)

    def _caller_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        pair: CallPair = conn.tag
        if cmd == _VOIP_REPLY:
            t = _now()
            reply = _VoipReply.FromString(body)
            code = reply.rsp_code
            if pair.state != 1:
                self.run_events[f"caller got reply {code} outside a set-up"] += 1
                return
            if code == _TRYING:
                if pair.t_trying:
                    self.run_events["two 100 Trying"] += 1
                pair.t_trying = t
                pair.channel = reply.channel_info.SerializeToString()
                pair.channel_name = reply.channel_info.channel_name
            elif code == _RINGING:
                pair.t_ringing = t
            elif code == _OK:
                pair.t_ok = t
                pair.state = 2
                if not pair.channel:
                    pair.channel = reply.channel_info.SerializeToString()
                # the caller's 0x0403 (reply ack), as CIM v1 clients send it on 200 OK
                ack = pb.CIMVoipInviteReplyAck(channel_info=reply.channel_info).SerializeToString()
                conn.out(_pack(_HDR + len(ack), 1, 0, 0, _VOIP_REPLY_ACK, conn.next_seq(), 0) + ack)
                self._call_step()
            elif code == _BUSY:
                self.run_events["486 Busy"] += 1
                pair.state = 9
                self._call_step()
            else:
                self.run_events[f"caller got reply code {code}"] += 1
        elif cmd == _ERROR_RSP:
            err = pb.CIMErrorRsp.FromString(body)
            self.run_events[f"caller got ERROR_RSP {err.error_code} {err.error_msg}"[:100]] += 1
            if pair.state in (1, 3):
                pair.state = 9
                self._call_step()
        elif cmd == _VOIP_BYE_RSP:
            rsp = pb.CIMVoipByeRsp.FromString(body)
            if pair.state != 3 or pair.t_bye_rsp:
                self.run_events["unexpected VOIP_BYE_RSP"] += 1
                return
            if rsp.error_code != _SUCCESS:
                self.run_events[f"bye answered {rsp.error_code}"] += 1
            pair.t_bye_rsp = _now()
            if pair.t_bye_notify:
                pair.state = 4
                self._call_step()
        elif cmd == _MSG_DATA:
            self._call_record(conn, seq, body, True)
        elif cmd in (_HEARTBEAT, _VOIP_STATE_NOTIFY):
            pass
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"caller got frame 0x{cmd:04x}"] += 1

    def _callee_frame(self, conn: Conn, cmd: int, seq: int, body: bytes) -> None:
        pair: CallPair = conn.tag
        if cmd == _VOIP_INVITE:
            invite = pb.CIMVoipInviteReq.FromString(body)
            if pair.state != 1 or pair.t_push:
                self.run_events["invite pushed outside a set-up"] += 1
                return
            pair.t_push = _now()
            if invite.creator_user_id != pair.caller_uid:
                self.run_events["invite from an unexpected caller"] += 1
            me = pair.callee_uid
            for code, sdp in ((_RINGING, ""), (_OK, "v=0 coffeechat-bench answer")):
                reply = _VoipReply(user_id=me, rsp_code=code, channel_info=invite.channel_info, sdp=sdp)
                data = reply.SerializeToString()
                conn.out(_pack(_HDR + len(data), 1, 0, 0, _VOIP_REPLY, conn.next_seq(), 0) + data)
        elif cmd == _VOIP_BYE_NOTIFY:
            if pair.state != 3 or pair.t_bye_notify:
                self.run_events["unexpected VOIP_BYE_NOTIFY"] += 1
                return
            pair.t_bye_notify = _now()
            if pair.t_bye_rsp:
                pair.state = 4
                self._call_step()
        elif cmd == _MSG_DATA:
            self._call_record(conn, seq, body, False)
        elif cmd == _ERROR_RSP:
            err = pb.CIMErrorRsp.FromString(body)
            self.run_events[f"callee got ERROR_RSP {err.error_code} {err.error_msg}"[:100]] += 1
        elif cmd in (_HEARTBEAT, _VOIP_REPLY_ACK, _VOIP_STATE_NOTIFY):
            pass
        elif cmd == _KICKOUT:
            self.run_events["kicked out (0x0802)"] += 1
        else:
            self.run_events[f"callee got frame 0x{cmd:04x}"] += 1

    def _call_record(self, conn: Conn, seq: int, body: bytes, caller: bool) -> None:
        """A message pushed to a party: the call's record (AVCHAT) is acked and counted."""
        push = pb.CIMMsgData.FromString(body)
        ack = wire.delivery_ack_body(0, push)
        conn.out(_pack(_HDR + len(ack), 1, 0, 0, _MSG_DATA_ACK, seq, 0) + ack)
        if push.msg_type == _AVCHAT:
            self.call_records["caller" if caller else "callee"] += 1
        else:
            self.run_events[f"a message of type {push.msg_type} pushed during calls"] += 1

    async def _call_phase(self, pairs: list[CallPair], timeout: float) -> bool:
        """Wait (at most ``timeout``) until every pair of ``pairs`` has taken its step."""
        if self.call_waiting <= 0:
            return True
        self.call_wake = asyncio.get_running_loop().create_future()
        try:
            await asyncio.wait_for(self.call_wake, timeout)
        except TimeoutError:
            return False
        finally:
            self.call_wake = None
        return True

    async def do_calls_run(
        self, t0: float, duration: float, max_rounds: int, round_timeout: float, hold: float
    ) -> dict[str, Any]:
        """Rounds until ``duration`` has passed (at most ``max_rounds``): every pair's caller
        invites at once, the round waits for every 200 OK (or failure), then every caller hangs up
        and the round waits for every bye's answer and its notice at the callee."""
        pairs = [p for p in self.cpairs if p.caller is not None and p.callee is not None]
        self.call_records: Counter[str] = Counter()
        self.run_events = Counter()
        self.call_wake: asyncio.Future | None = None
        lat = {name: array("d") for name in ("trying", "ringing", "ok", "push", "bye_rsp", "bye_notify", "round")}
        totals: Counter[str] = Counter()
        lost0 = self.events["connection lost"]
        await asyncio.sleep(max(0.0, t0 - _now()))
        cpu0 = cpu_now()
        t_stop = t0 + duration
        rounds = 0
        invite_type = int(pb.kCIM_VOIP_INVITE_TYPE_VOICE_CALL)
        while rounds < max_rounds and _now() < t_stop and pairs:
            rounds += 1
            for p in pairs:
                p.reset()
            self.call_waiting = len(pairs)
            t_round = _now()
            for p in pairs:
                body = pb.CIMVoipInviteReq(
                    creator_user_id=p.caller_uid,
                    invite_user_list=[p.callee_uid],
                    invite_type=invite_type,
                    sdp="v=0 coffeechat-bench offer",
                ).SerializeToString()
                p.state = 1
                p.t_invite = _now()
                p.caller.out(_pack(_HDR + len(body), 1, 0, 0, _VOIP_INVITE, p.caller.next_seq(), 0) + body)
            totals["invites"] += len(pairs)
            if not await self._call_phase(pairs, round_timeout):
                self.run_events["set-ups not done within the round timeout"] += sum(1 for p in pairs if p.state == 1)
            for p in pairs:
                if p.t_trying:
                    totals["trying"] += 1
                    lat["trying"].append(p.t_trying - p.t_invite)
                if p.t_push:
                    totals["pushed"] += 1
                    lat["push"].append(p.t_push - p.t_invite)
                if p.t_ringing:
                    totals["ringing"] += 1
                    lat["ringing"].append(p.t_ringing - p.t_invite)
                if p.t_ok:
                    totals["ok"] += 1
                    lat["ok"].append(p.t_ok - p.t_invite)
            if hold > 0:
                await asyncio.sleep(hold)
            up = [p for p in pairs if p.state == 2]
            self.call_waiting = len(up)
            for p in up:
                p.state = 3
                channel = pb.CIMChannelInfo.FromString(p.channel)
                body = pb.CIMVoipByeReq(
                    local_call_time_len=int(hold),
                    user_id=p.caller_uid,
                    channel_info=channel,
                    bye_reason=int(pb.kCIM_VOIP_BYE_REASON_END),
                ).SerializeToString()
                p.t_bye = _now()
                p.caller.out(_pack(_HDR + len(body), 1, 0, 0, _VOIP_BYE_REQ, p.caller.next_seq(), 0) + body)
            totals["byes"] += len(up)
            if not await self._call_phase(up, round_timeout):
                self.run_events["byes not done within the round timeout"] += sum(1 for p in up if p.state == 3)
            for p in up:
                if p.t_bye_rsp:
                    totals["bye_rsp"] += 1
                    lat["bye_rsp"].append(p.t_bye_rsp - p.t_bye)
                if p.t_bye_notify:
                    totals["bye_notify"] += 1
                    lat["bye_notify"].append(p.t_bye_notify - p.t_bye)
                if p.state == 4:
                    totals["completed"] += 1
            lat["round"].append(_now() - t_round)
            # pairs that failed are left out of the next rounds: their state is unknown
            pairs = [p for p in pairs if p.state == 4]
        cpu1 = cpu_now()
        t_end = _now()
        # the calls' records (AVCHAT messages) of the last round still on their way
        deadline = _now() + 3.0
        want = totals["completed"]
        while _now() < deadline and min(self.call_records["caller"], self.call_records["callee"]) < want:
            await asyncio.sleep(0.05)
        events = Counter(self.run_events)
        lost = self.events["connection lost"] - lost0
        if lost:
            events["connection lost"] += lost
        return {
            "pairs": len(self.cpairs),
            "rounds": rounds,
            **{
                k: totals[k]
                for k in ("invites", "trying", "pushed", "ringing", "ok", "byes", "bye_rsp", "bye_notify", "completed")
            },
            "records": dict(self.call_records),
            "t0": t0,
            "t1": t_end,
            "lat": {k: v.tobytes() for k, v in lat.items()},
            "cpu": cpu1 - cpu0,
            "events": dict(events),
        }


class CallPair:
    """A caller and a callee connection and the times of one round's call between them.
    ``state``: 0 idle, 1 inviting, 2 answered (200 OK), 3 hanging up, 4 done, 9 failed."""

    __slots__ = (
        "index", "caller_uid", "caller_token", "callee_uid", "callee_token", "caller", "callee", "state",
        "channel", "channel_name", "t_invite", "t_trying", "t_push", "t_ringing", "t_ok", "t_bye", "t_bye_rsp",
        "t_bye_notify",
    )  # fmt: skip

    def __init__(self, index: int, caller_uid: int, caller_token: str, callee_uid: int, callee_token: str) -> None:
        self.index = index
        self.caller_uid = caller_uid
        self.caller_token = caller_token
        self.callee_uid = callee_uid
        self.callee_token = callee_token
        self.caller: Conn | None = None
        self.callee: Conn | None = None
        self.reset()

    def reset(self) -> None:
        self.state = 0
        self.channel = b""
        self.channel_name = ""
        self.t_invite = self.t_trying = self.t_push = self.t_ringing = self.t_ok = 0.0
        self.t_bye = self.t_bye_rsp = self.t_bye_notify = 0.0


def cpu_now() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
