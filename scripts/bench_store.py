"""Micro-benchmark of a store alone: appends/s with group commit.

Fires ``--appends`` appends (default 20,000) from the reactor thread, spread round-robin over
``--conversations`` 1:1 conversations (default 500), without waiting, and times until every
Deferred has fired, i.e. until every append is durably committed.  Runs on a fresh temporary
database; ``--rounds N`` repeats that N times on the same, growing database and prints each
round.  Bounded; not a test.

``--backend postgres`` measures the PostgreSQL store instead: on ``--dsn`` (an empty database),
or, without one, on a throwaway server started from the installed binaries (tests/pgserver.py).

    python scripts/bench_store.py [--appends 20000] [--conversations 500] [--rounds 1]
                                  [--synchronous full] [--max-batch 512] [--group-commit-ms 2]
                                  [--backend sqlite|postgres] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, reactor, task  # noqa: E402

from coffeechat.backends.sqlite import SQLiteStore  # noqa: E402
from coffeechat.model import NewMessage, SessionType, conversation_key  # noqa: E402


def messages(args: argparse.Namespace, round_no: int) -> list[NewMessage]:
    out = []
    for n in range(args.appends):
        a, b = 2 * (n % args.conversations) + 1, 2 * (n % args.conversations) + 2
        sender, to = (a, b) if n % 2 else (b, a)
        out.append(
            NewMessage(
                conv=conversation_key(SessionType.SINGLE, sender, to),
                session_type=SessionType.SINGLE,
                sender_id=sender,
                to_id=to,
                client_msg_id=f"{round_no}-{n}",
                msg_type=1,
                data=b"hello there, this is a benchmark message",
                created_at=1_700_000_000 + n // 1000,
            )
        )
    return out


def make_store(args: argparse.Namespace, where: str) -> Any:
    options = {"group_commit_ms": args.group_commit_ms, "max_batch": args.max_batch, "synchronous": args.synchronous}
    if args.backend == "postgres":
        from coffeechat.backends.postgres import PostgresStore

        return PostgresStore(reactor, where, **options)
    return SQLiteStore(reactor, where, **options)


async def bench(args: argparse.Namespace, where: str) -> None:
    store = make_store(args, where)
    await store.start()
    try:
        for round_no in range(args.rounds):
            batch = messages(args, round_no)
            commits0 = store.commits
            t0 = time.perf_counter()
            results = await defer.gatherResults([store.append(m) for m in batch])
            elapsed = time.perf_counter() - t0
            assert all(r.created for r in results)
            commits = store.commits - commits0
            stored = args.appends * (round_no + 1)
            print(
                f"{args.appends} appends over {args.conversations} conversations in {elapsed:.3f}s: "
                f"{args.appends / elapsed:,.0f} appends/s ({commits} commits, "
                f"{args.appends / max(commits, 1):.0f} appends/commit, {args.backend}, synchronous={args.synchronous}"
                + (f", {stored} messages stored)" if args.rounds > 1 else ")"),
                flush=True,
            )
    finally:
        await store.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--group-commit-ms", type=float, default=2)
    parser.add_argument("--max-batch", type=int, default=512)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    parser.add_argument("--dsn", default=None, help="postgres: an empty database (default: a throwaway server)")
    args = parser.parse_args()
    if args.backend == "postgres" and args.dsn is None:
        from tests.pgserver import PgServer, find_bindir

        bindir = find_bindir()
        if bindir is None:
            sys.exit("no PostgreSQL binaries found: pass --dsn")
        server = PgServer(bindir)
        server.start()
        try:
            dsn = server.dsn(server.create_database("bench"))
            task.react(lambda _r: defer.ensureDeferred(bench(args, dsn)))
        finally:
            server.stop()
    elif args.backend == "postgres":
        task.react(lambda _r: defer.ensureDeferred(bench(args, args.dsn)))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            task.react(lambda _r: defer.ensureDeferred(bench(args, os.path.join(tmp, "bench.sqlite3"))))


if __name__ == "__main__":
    main()
