"""Micro-benchmark of the SQLite store alone: appends/s with group commit.

Fires N appends from the reactor thread across C conversations without waiting, and times
until every Deferred has fired (i.e. every append is durably committed).  Bounded: one run of
``--appends`` operations (default 20,000) on a fresh temporary database.  Not a test.

    python scripts/bench_store.py [--appends 20000] [--conversations 500] [--synchronous full]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from twisted.internet import defer, reactor, task  # noqa: E402

from coffeechat.backends.sqlite import SQLiteStore  # noqa: E402
from coffeechat.model import NewMessage, SessionType, conversation_key  # noqa: E402


async def bench(args: argparse.Namespace, path: str) -> None:
    store = SQLiteStore(reactor, path, group_commit_ms=args.group_commit_ms, max_batch=args.max_batch,
                        synchronous=args.synchronous)
    await store.start()
    pairs = [(2 * i + 1, 2 * i + 2) for i in range(args.conversations)]
    msgs = []
    for n in range(args.appends):
        a, b = pairs[n % len(pairs)]
        sender, to = (a, b) if n % 2 else (b, a)
        msgs.append(NewMessage(
            conv=conversation_key(SessionType.SINGLE, sender, to), session_type=SessionType.SINGLE,
            sender_id=sender, to_id=to, client_msg_id=f"c{n}", msg_type=1,
            data=b"hello there, this is a benchmark message", created_at=1_700_000_000 + n // 1000,
        ))
    commits0 = store.commits
    t0 = time.perf_counter()
    results = await defer.gatherResults([store.append(m) for m in msgs])
    elapsed = time.perf_counter() - t0
    assert all(r.created for r in results)
    batches = store.commits - commits0
    await store.stop()
    print(f"{args.appends} appends over {args.conversations} conversations in {elapsed:.3f}s: "
          f"{args.appends / elapsed:,.0f} appends/s ({batches} commits, "
          f"{args.appends / max(batches, 1):.0f} appends/commit, synchronous={args.synchronous})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--group-commit-ms", type=float, default=2)
    parser.add_argument("--max-batch", type=int, default=512)
    parser.add_argument("--synchronous", default="full", choices=["full", "normal"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        task.react(lambda _r: defer.ensureDeferred(bench(args, os.path.join(tmp, "bench.db"))))


if __name__ == "__main__":
    main()
