"""``coffeechat analytics export``: the daily rollups as CSV from the shell (docs/admin-console.md).

The same CSV as the console's "Export CSV" (``GET /admin/stats/daily.csv``), read from the
database directly, so it works with the server stopped or running (what a running node counted
in its last ``analytics.flush_interval`` is not written yet).  Without ``--from`` the export starts
at the first day that has a counter; without ``--to`` it ends today (UTC).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from coffeechat.errors import ChatError
from coffeechat.features.analytics import MAX_RANGE_DAYS, daily_csv, day_of, iso_day, parse_day


def add_parser(commands: Any) -> None:
    """``analytics export [--from DAY] [--to DAY] [--output FILE]``."""
    analytics = commands.add_parser("analytics", help="usage analytics (daily rollups)")
    actions = analytics.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="the daily rollups as CSV (one row per UTC day)")
    export.add_argument("--from", dest="first", metavar="YYYY-MM-DD", help="first day (default: the first counted)")
    export.add_argument("--to", dest="last", metavar="YYYY-MM-DD", help="last day (default: today, UTC)")
    export.add_argument("--output", "-o", metavar="FILE", help="write to FILE instead of stdout")


async def run(node: Any, args: argparse.Namespace, error: type[Exception]) -> int:
    """Write the CSV; a bad day or range is ``error`` (one line on stderr, exit 1)."""
    if "analytics" not in node.features:
        raise error("the analytics feature is not enabled ([features] enabled)")
    analytics = node.feature("analytics")
    try:
        last = parse_day(args.last) if args.last else day_of(node.reactor.seconds())
        if args.first:
            first = parse_day(args.first)
        else:
            counted = await analytics.store.first_day()
            first = min(counted, last) if counted is not None else last
    except ChatError as e:
        raise error(e.message) from None
    if first > last:
        raise error("--from must not be after --to")
    chunks = []
    # Long exports are read in pieces of at most MAX_RANGE_DAYS days (one query each).
    for start in range(first, last + 1, MAX_RANGE_DAYS):
        chunks.extend(await analytics.daily(start, min(last, start + MAX_RANGE_DAYS - 1), flush=False))
    text = daily_csv(chunks)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        except OSError as e:
            raise error(f"cannot write {args.output}: {e.strerror}") from None
        print(f"wrote {len(chunks)} days ({iso_day(first)} .. {iso_day(last)}) to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
    return 0
