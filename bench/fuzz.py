"""``coffeechat-bench fuzz``: a million random and mutated frames at a real server, and what they did.

    coffeechat-bench fuzz                                   # 1,000,000 frames, 8 TCP + 2 WebSocket connections
    coffeechat-bench fuzz --frames 20000 --seed 7           # a short run (the test suite's)

Where the suite's fuzzers (tests/test_fuzz.py, hypothesis) find a bug in a few hundred examples on
an in-memory node, this one looks for what only volume and a real process show: a crash, a hang
(a connection whose frames stop being answered), memory that grows with the frames, a line logged
at error or critical level.  It starts its own server as the other scenarios do (``twistd -n
coffeechat`` on SQLite), logs half of its connections in (token login) and leaves the others
logged out, and sends each connection batches of frames taken from a corpus built from the
protocol table with a seeded generator: every command's body with fuzzed fields (extreme ints,
odd and huge strings, random bytes), other commands' bodies, random bytes, truncated and bit-
flipped bodies, unknown command ids, now and then a broken header (which closes that
connection: it reconnects); over WebSocket, JSON frames with poisoned values (lone surrogates,
``1e999``, ids past 2^64, deep nesting) as text messages.  Each batch ends with a heartbeat whose
answer it waits for (``--hang-timeout``), so every batch is answered before the next is sent.

At the end: the server is still running, ``/health`` answers, a new login and a heartbeat work;
RSS before and after, frames sent, answers, disconnects, hangs, and the server's log lines at
error or critical level.  Bounded: ``--frames`` frames, ``--time-limit`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from coffeechat.protocols.framing import HEADER
from coffeechat.schema import INT_RANGES, TABLE, Cmd

from . import wire
from .report import fmt
from .scenarios import Rows, create, health_of
from .server import Target, rss_kib

F = FieldDescriptor
HEARTBEAT = int(Cmd.LOGIN_HEARTBEAT)
LOGOUT = int(Cmd.LOGIN_AUTH_LOGOUT_REQ)
BARRIER_SEQ = 65_000  # fuzzed frames use seqs below it; the batch's closing heartbeat uses it
EDGES = [0, 1, 2, 127, 128, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 + 1]
EDGES += [2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]
ODD_TEXT = ["", " ", "\n", "alice\n", "\x00", "a\x00b", "%00", "../../x", "ſ", "ß", "İ", "\u202e", "😀"]
ODD_TEXT += ["x" * 65, "x" * 513, "é" * 3000, "ab" * 20_000, "{", "[" * 200, "null"]
ODD_BYTES = [b'{"url": "https://x/f"}', b'{"latitude": 1.5, "longitude": -2}', b'{"latitude": NaN, "longitude": 1}']
ODD_BYTES += [b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"url": "\\ud800"}', b"{}", b"\xff" * 70_000]
POISON: list[Any] = [float("inf"), float("nan"), 1e300, 2**63, 2**64, -1, "18446744073709551615", "\ud800"]
POISON += [{"\ud800": 1}, [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]], "", None, True, 1.5, "kCIM_NOPE"]
# twistd's log lines carry the level after the namespace: "[coffeechat.session#critical]".
_BAD_LINE = re.compile(r"#(?:error|critical)\]|Unhandled Error|Traceback \(most recent call last\)")


def add_arguments(sub: Any, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("fuzz", parents=[common], help="random and mutated frames: crashes, hangs, memory growth")
    p.add_argument("--frames", type=int, default=1_000_000, help="frames to send in all (default 1,000,000)")
    p.add_argument("--tcp-connections", type=int, default=8, help="CIM connections over TCP (default 8)")
    p.add_argument("--ws-connections", type=int, default=2, help="WebSocket connections sending JSON (default 2)")
    p.add_argument("--batch", type=int, default=200, help="frames sent before waiting for an answer (default 200)")
    p.add_argument("--seed", type=int, default=11, help="seed of the corpus and the mutations (default 11)")
    p.add_argument("--corpus", type=int, default=5000, help="distinct frames generated per kind (default 5000)")
    p.add_argument("--hang-timeout", type=float, default=15.0, help="seconds a batch may go unanswered (default 15)")
    p.add_argument("--time-limit", type=float, default=900.0, help="stop sending after this many seconds (default 900)")


# ---- the corpus ----------------------------------------------------------------------------


class Corpus:
    """Frames to send, built once from the protocol table with one seeded generator."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self.rng = rng
        self.commands = sorted(TABLE)
        self.logged_out = [self._binary() for _ in range(size)]
        self.logged_in = [self._binary() for _ in range(size)]
        self.json = [self._json_text() for _ in range(max(1, size // 2))]

    # -- values

    def _int(self, low: int, high: int) -> int:
        r = self.rng.random()
        if r < 0.5:
            choices = [v for e in EDGES for v in (e, -e) if low <= v <= high]
            return self.rng.choice(choices)
        if r < 0.8:
            return self.rng.randint(max(low, 0), min(high, 50))
        return self.rng.randint(low, high)

    def _text(self) -> str:
        r = self.rng.random()
        if r < 0.4:
            return self.rng.choice(ODD_TEXT)
        alphabet = "abcxyz_.@-09 " if r < 0.8 else "aé中😀\u0301\ufeff"
        return "".join(self.rng.choice(alphabet) for _ in range(self.rng.randint(0, 40)))

    def _bytes(self) -> bytes:
        if self.rng.random() < 0.4:
            return self.rng.choice(ODD_BYTES)
        return self.rng.randbytes(self.rng.randint(0, 60))

    def _value(self, f: FieldDescriptor, depth: int) -> Any:
        if f.type == F.TYPE_MESSAGE:
            return self.message(f.message_type, depth + 1)
        if f.type == F.TYPE_ENUM:
            if self.rng.random() < 0.7:
                return self.rng.choice(f.enum_type.values).number
            return self._int(-(2**31), 2**31 - 1)
        if f.type == F.TYPE_BOOL:
            return self.rng.random() < 0.5
        if f.type == F.TYPE_STRING:
            return self._text()
        if f.type == F.TYPE_BYTES:
            return self._bytes()
        if f.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
            return self.rng.choice([0.0, -1.5, 1e30, float("inf"), float("nan")])
        return self._int(*INT_RANGES[f.type])

    def message(self, desc: Descriptor, depth: int = 0) -> Message:
        msg = message_factory.GetMessageClass(desc)()
        if depth > 3:
            return msg
        for f in desc.fields:
            if self.rng.random() < 0.4:
                continue
            if f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
                key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
                target = getattr(msg, f.name)
                for _ in range(self.rng.randint(0, 3)):
                    if value.type == F.TYPE_MESSAGE:
                        target[self._value(key, depth)].CopyFrom(self._value(value, depth))
                    else:
                        target[self._value(key, depth)] = self._value(value, depth)
            elif f.is_repeated:
                target = getattr(msg, f.name)
                for _ in range(self.rng.randint(0, 4)):
                    value = self._value(f, depth)
                    if f.type == F.TYPE_MESSAGE:
                        target.add().CopyFrom(value)
                    else:
                        target.append(value)
            elif f.type == F.TYPE_MESSAGE:
                getattr(msg, f.name).CopyFrom(self._value(f, depth))
            else:
                setattr(msg, f.name, self._value(f, depth))
        return msg

    # -- frames

    def _binary(self) -> bytes:
        rng = self.rng
        r = rng.random()
        cmd = rng.choice(self.commands) if r < 0.93 else rng.randint(0, 0xFFFF)
        seq = rng.randint(1, BARRIER_SEQ - 1)
        kind = rng.random()
        if kind < 0.6 and cmd in TABLE:
            body = self.message(TABLE[cmd].body.DESCRIPTOR).SerializeToString()
        elif kind < 0.7:
            body = self.message(TABLE[rng.choice(self.commands)].body.DESCRIPTOR).SerializeToString()
        elif kind < 0.8:
            body = rng.randbytes(rng.randint(0, 80))
        elif kind < 0.9 and cmd in TABLE:
            body = bytearray(self.message(TABLE[cmd].body.DESCRIPTOR).SerializeToString())
            for _ in range(rng.randint(1, 3)):
                if body:
                    body[rng.randrange(len(body))] ^= 1 << rng.randrange(8)
            body = bytes(body)
        else:
            body = self.message(TABLE[cmd].body.DESCRIPTOR).SerializeToString() if cmd in TABLE else b""
            body = body[: rng.randint(0, len(body))]
        if rng.random() < 0.002:  # a broken header: the server closes the connection
            length = rng.choice([0, 1, 15, 2**31, 2**32 - 1, 300 * 1024 * 1024])
            return HEADER.pack(length, 1, 0, 0, cmd, seq, 0) + body
        if rng.random() < 0.02:  # the informational header fields, odd
            return HEADER.pack(16 + len(body), rng.randint(0, 0xFFFF), 0xFFFF, 0xFFFF, cmd, seq, 0xFFFF) + body
        return wire.frame(cmd, seq, body)

    def _json_text(self) -> bytes:
        rng = self.rng
        cmd = rng.choice(self.commands)
        body = json_format.MessageToDict(self.message(TABLE[cmd].body.DESCRIPTOR))
        for _ in range(rng.randint(0, 2)):
            if body and rng.random() < 0.5:
                body[rng.choice(sorted(body))] = rng.choice(POISON)
            else:
                body[rng.choice(["zz\ud800", "msgType", "toSessionId", self._text()])] = rng.choice(POISON)
        name: Any = Cmd(cmd).name if rng.random() < 0.9 else rng.choice([cmd, -1, 70_000, None, "NOPE", [1]])
        seq: Any = rng.randint(1, BARRIER_SEQ - 1) if rng.random() < 0.9 else rng.choice(POISON)
        frame: Any = {"cmd": name, "seq": seq, "body": body}
        if rng.random() < 0.03:
            frame = rng.choice(POISON)
        text = json.dumps(frame, ensure_ascii=True, allow_nan=True)
        r = rng.random()
        if r < 0.05:
            text = text[: rng.randint(0, len(text))]
        elif r < 0.08:
            text = text.replace('"body": {', '"body": {"x":' + "[" * 50 + "]" * 50 + ",", 1)
        elif r < 0.1:
            text = text.replace("null", "Infinity").replace("1.5", "1e999")
        return text.encode()


# ---- the connections -------------------------------------------------------------------------


class Lane:
    """One connection slot: reconnects (and logs in again) whenever the server closed it."""

    def __init__(self, run: Run, index: int, kind: str, user: tuple[int, str] | None) -> None:
        self.run = run
        self.index = index
        self.kind = kind  # "tcp" or "ws"
        self.user = user  # (user_id, token) for logged-in lanes
        self.conn: wire.Conn | None = None
        self.answers = 0
        self.barrier: asyncio.Future | None = None

    def _frame(self, conn: wire.Conn, cmd: int, seq: int, body: bytes) -> None:
        self.answers += 1
        if seq == BARRIER_SEQ and self.barrier is not None and not self.barrier.done():
            self.barrier.set_result(cmd)

    async def _open(self) -> wire.Conn:
        run = self.run
        target = run.target
        ws_path = target.ws_path if self.kind == "ws" else None
        port = target.ws_port if self.kind == "ws" else target.cim_port
        conn = await wire.connect(target.host, port, self._frame, run.args.connect_timeout, ws_path=ws_path)
        if self.user is not None:
            code = await wire.login_token(conn, self.user[0], self.user[1], run.args.login_timeout)
            if code != wire.SUCCESS:
                run.events[f"re-login refused ({code})"] += 1
        return conn

    async def send_batch(self, frames: list[bytes]) -> None:
        run = self.run
        if self.conn is None or self.conn.lost:
            if self.conn is not None:
                run.disconnects[self.kind] += 1
                why = self.conn.why_closed
                if why:
                    run.events[f"closed: {why[:60]}"] += 1
            self.conn = await self._open()
        conn = self.conn
        if self.kind == "ws":
            for text in frames:
                conn.raw(wire.ws_frame(wire._OP_TEXT, text))
        else:
            conn.raw(b"".join(frames))
        run.sent += len(frames)
        run.sample_rss()
        self.barrier = asyncio.get_running_loop().create_future()
        conn.write(wire.frame(HEARTBEAT, BARRIER_SEQ))
        lost = asyncio.get_running_loop().create_future()
        conn.on_lost = lambda c: lost.done() or lost.set_result(None)
        if conn.lost and not lost.done():
            lost.set_result(None)
        done, _ = await asyncio.wait({self.barrier, lost}, timeout=run.args.hang_timeout, return_when="FIRST_COMPLETED")
        if not done:
            run.hangs += 1
            conn.close()
        conn.on_lost = None

    async def drive(self) -> None:
        run = self.run
        corpus = run.corpus
        pool = corpus.json if self.kind == "ws" else (corpus.logged_in if self.user else corpus.logged_out)
        rng = random.Random(run.args.seed * 1000 + self.index)
        while True:
            n = run.reserve(run.args.batch)
            if not n:
                break
            batch = [pool[rng.randrange(len(pool))] for _ in range(n)]
            try:
                await self.send_batch(batch)
            except (TimeoutError, OSError, wire.ServerClosed, wire.HandshakeError) as e:
                run.events[f"connect/login failed: {type(e).__name__}"] += 1
                run.connect_failures += 1
                if run.connect_failures > 50:
                    raise
                await asyncio.sleep(0.2)
        if self.conn is not None:
            self.conn.close()


class Run:
    def __init__(self, args: argparse.Namespace, target: Target, corpus: Corpus) -> None:
        self.args = args
        self.target = target
        self.corpus = corpus
        self.sent = 0
        self.hangs = 0
        self.connect_failures = 0
        self.disconnects: Counter[str] = Counter()
        self.events: Counter[str] = Counter()
        self.deadline = time.monotonic() + args.time_limit
        self.reserved = 0
        # RSS at every tenth of the frames sent (growth after the first
        # tenth is what frames cost; before it, caches and the first stored messages)
        self.rss: dict[str, int | None] = {}
        self._marks = [i / 10 for i in range(1, 10)]

    def reserve(self, wanted: int) -> int:
        """How many frames a lane may send next (0: the run is over)."""
        if time.monotonic() >= self.deadline:
            return 0
        n = min(wanted, self.args.frames - self.reserved)
        self.reserved += max(n, 0)
        return max(n, 0)

    def sample_rss(self) -> None:
        while self._marks and self.sent >= self._marks[0] * self.args.frames:
            mark = self._marks.pop(0)
            self.rss[f"{mark:.0%}"] = rss_kib(self.target.pid) if self.target.pid else None


async def _still_serving(target: Target, user: tuple[int, str], timeout: float) -> dict[str, Any]:
    """A new connection logs in and has its heartbeat answered; /health answers."""
    out: dict[str, Any] = {"health": bool(health_of(target)), "login": False, "heartbeat": False}
    try:
        conn = await wire.connect(target.host, target.cim_port, timeout=timeout)
        out["login"] = await wire.login_token(conn, user[0], user[1], timeout) == wire.SUCCESS
        cmd, _ = await asyncio.wait_for(conn.request(HEARTBEAT, b"", HEARTBEAT), timeout)
        out["heartbeat"] = cmd == HEARTBEAT
        conn.close()
    except (TimeoutError, OSError, wire.ServerClosed) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def _log_path(target: Target) -> Path | None:
    data_dir = target.config.get("server", {}).get("data_dir")
    return Path(data_dir).parent / "twistd.log" if data_dir else None


def _bad_lines(path: Path | None, start: int) -> list[str]:
    if path is None:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(start)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line[:300] for line in text.splitlines() if _BAD_LINE.search(line)]


def run_fuzz(
    args: argparse.Namespace, target: Target, cpus: list[int] | None, cluster: Any = None
) -> tuple[dict, Rows]:
    """The scenario (see the module docstring); ``correct`` when nothing crashed, hung or was logged."""
    if args.frames < 1 or args.tcp_connections < 0 or args.ws_connections < 0 or args.batch < 1:
        raise ValueError("fuzz: --frames and --batch must be at least 1, connection counts at least 0")
    if args.tcp_connections + args.ws_connections < 1:
        raise ValueError("fuzz: at least one connection")
    if args.ws_connections and target.ws_port is None:
        raise ValueError("fuzz: --ws-connections needs a WebSocket listener (--ws with --target)")
    t0 = time.monotonic()
    corpus = Corpus(random.Random(args.seed), args.corpus)
    built_s = time.monotonic() - t0
    lanes_wanted = args.tcp_connections + args.ws_connections
    users, _ = create(target, "fuzz", lanes_wanted + 1)
    log_path = _log_path(target)
    log_start = log_path.stat().st_size if log_path is not None and log_path.exists() else 0
    pid = target.pid
    rss_before = rss_kib(pid) if pid else None

    async def main() -> tuple[Run, list[Lane], dict[str, Any]]:
        run = Run(args, target, corpus)
        lanes = []
        for i in range(args.tcp_connections):
            lanes.append(Lane(run, i, "tcp", users[i] if i % 2 == 0 else None))  # half of them logged in
        for i in range(args.ws_connections):
            j = args.tcp_connections + i
            lanes.append(Lane(run, j, "ws", users[j] if i % 2 == 0 else None))
        results = await asyncio.gather(*(lane.drive() for lane in lanes), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                run.events[f"lane failed: {type(r).__name__}: {r}"[:120]] += 1
        await asyncio.sleep(0.5)  # let the server finish the last batch's work
        return run, lanes, await _still_serving(target, users[-1], args.login_timeout)

    start = time.monotonic()
    run, lanes, serving = asyncio.run(main())
    wall = time.monotonic() - start
    rss_after = rss_kib(pid) if pid else None
    alive = rss_after is not None if pid else None
    bad = _bad_lines(log_path, log_start)
    answers = sum(lane.answers for lane in lanes)
    growth = rss_after - rss_before if rss_before is not None and rss_after is not None else None
    correct = bool(
        alive is not False
        and serving["health"]
        and serving["login"]
        and serving["heartbeat"]
        and run.hangs == 0
        and not bad
        and run.sent >= min(args.frames, 1)
    )
    results = {
        "frames_sent": run.sent,
        "frames_asked": args.frames,
        "answers_received": answers,
        "frames_per_s": round(run.sent / wall) if wall > 0 else None,
        "wall_s": round(wall, 1),
        "corpus_build_s": round(built_s, 1),
        "connections": {"tcp": args.tcp_connections, "ws": args.ws_connections},
        "disconnects": dict(run.disconnects),
        "hangs": run.hangs,
        "server_alive": alive,
        "still_serving": serving,
        "server_rss_kib": {"before": rss_before, **run.rss, "after": rss_after, "growth": growth},
        "rss_growth_after_first_tenth_kib": (
            rss_after - run.rss["10%"] if rss_after is not None and run.rss.get("10%") is not None else None
        ),
        "server_log_bad_lines": len(bad),
        "server_log_examples": bad[:10],
        "events": dict(run.events),
        "time_limit_hit": run.sent < args.frames,
        "correct": correct,
    }
    rows: Rows = [
        ("frames sent", f"{fmt(run.sent)} of {fmt(args.frames)} in {wall:.1f} s ({fmt(results['frames_per_s'])}/s)"),
        ("answers received", fmt(answers)),
        ("connections", f"{args.tcp_connections} TCP + {args.ws_connections} WebSocket JSON, half logged in"),
        ("disconnects", ", ".join(f"{k} {v}" for k, v in sorted(run.disconnects.items())) or "none"),
        ("hangs", f"{run.hangs} batch(es) unanswered within {args.hang_timeout:g} s"),
        ("server RSS", f"{fmt(rss_before)} KiB before, {fmt(rss_after)} KiB after ({fmt(growth)} KiB)"),
        ("RSS as frames went", ", ".join(f"{k} {fmt(v)} KiB" for k, v in run.rss.items()) or "-"),
        ("still serving", ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in serving.items() if k != "error")),
        ("server log", f"{len(bad)} line(s) at error/critical level"),
    ]
    for line in bad[:5]:
        rows.append(("  logged", line.strip()))
    if run.events:
        rows.append(("events", ", ".join(f"{k}: {v}" for k, v in run.events.most_common(6))))
    rows.append(("correct", "yes" if correct else "NO"))
    return results, rows
