"""Figures out: percentiles, the machine description, the stdout table and the JSON document.

Why both: the table is for a person at a terminal; the JSON (with the machine, the server config
and every raw count) is what a later run is compared with.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from array import array
from collections.abc import Iterable
from typing import Any, TextIO


def merge_latencies(chunks: Iterable[bytes]) -> list[float]:
    """Concatenate the float arrays the generators sent (as bytes); sorted, in seconds."""
    values = array("d")
    for chunk in chunks:
        values.frombytes(chunk)
    return sorted(values)


def percentile(sorted_values: list[float], p: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when there are none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(sorted_seconds: list[float]) -> dict[str, Any]:
    """Count, mean and p50/p90/p99/p99.9/max in milliseconds."""
    n = len(sorted_seconds)
    ms = 1000.0

    def pct(p: float) -> float | None:
        v = percentile(sorted_seconds, p)
        return None if v is None else round(v * ms, 3)

    return {
        "count": n,
        "mean_ms": round(sum(sorted_seconds) / n * ms, 3) if n else None,
        "p50_ms": pct(50),
        "p90_ms": pct(90),
        "p99_ms": pct(99),
        "p99_9_ms": pct(99.9),
        "max_ms": round(sorted_seconds[-1] * ms, 3) if n else None,
    }


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    try:
        import resource

        nofile = resource.getrlimit(resource.RLIMIT_NOFILE)
    except ImportError:
        nofile = (None, None)
    try:
        with open("/proc/meminfo") as f:
            mem_kib = int(f.readline().split()[1])
    except (OSError, ValueError, IndexError):
        mem_kib = None
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1) if mem_kib else None,
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "open_files_limit": {"soft": nofile[0], "hard": nofile[1]},
    }


def fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    """A number for the table: thousands separators, fixed decimals, '-' for none."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}{unit}"
    return f"{value}{unit}"


def fmt_latency(summary: dict[str, Any] | None) -> str:
    if not summary or not summary.get("count"):
        return "-"
    return " / ".join(fmt(summary[key], digits=2) for key in ("p50_ms", "p99_ms", "p99_9_ms"))


def print_table(title: str, rows: list[tuple[str, str]], out: TextIO = sys.stdout) -> None:
    """Two aligned columns under a title."""
    width = max((len(k) for k, _ in rows), default=10)
    print(title, file=out)
    print("-" * max(len(title), width + 30), file=out)
    for key, value in rows:
        if key == "":
            print(file=out)
        else:
            print(f"  {key:<{width}}  {value}", file=out)
    out.flush()


def write_json(document: dict[str, Any], where: str) -> None:
    """``where`` is a file name or ``-`` for stdout."""
    text = json.dumps(document, indent=2, sort_keys=False, default=str)
    if where == "-":
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    else:
        with open(where, "w") as f:
            f.write(text + "\n")
