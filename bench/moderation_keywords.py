"""Microbenchmark of the keyword filter's cost per message (docs/moderation.md quotes it).

    python -m coffeechat.bench.moderation_keywords [--keywords 5000] [--n 20000]

Times the send check itself (``Moderation.check_for``: fold, automaton pass, replacement and
the body's re-validation) on TEXT messages that are ASCII, CJK and mixed-width, clean and with a
match, and on a CUSTOM JSON body; one core, no network, no storage.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from types import SimpleNamespace

from coffeechat.config import LimitsConfig
from coffeechat.features.messages import Outgoing
from coffeechat.features.moderation import Config, KeywordFilter, Moderation
from coffeechat.model import User


def _words(count: int, rng: random.Random) -> list[str]:
    latin = ["".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10))) for _ in range(count // 2)]
    cjk = ["".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(rng.randint(2, 4))) for _ in range(count // 2)]
    return latin + cjk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keywords", type=int, default=5000)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args(argv)
    rng = random.Random(13)
    words = _words(args.keywords, rng)
    started = time.perf_counter()
    KeywordFilter(words)
    built = time.perf_counter() - started

    config = Config(keywords=words)
    messages = SimpleNamespace(limits=LimitsConfig(), msg_types={100: lambda *a: None})
    api = SimpleNamespace(clock=SimpleNamespace(seconds=time.time), log=None)
    moderation = Moderation(api, config, messages)  # type: ignore[arg-type]
    check = moderation.check_for(1, callback=False)
    sender = User(1, "alice", "Alice")
    hit = words[7]
    fox = "The quick brown fox jumps over the {} dog, then naps in the warm sun."
    cases = {
        "ASCII text, clean": fox.format("lazy"),
        "ASCII text, 1 match": fox.format(hit.upper()),
        "CJK text, clean": "今天天气很好我们一起去公园散步然后去吃午饭再回家休息一下晚上看电影",
        "CJK text, 1 match": "今天天气很好我们一起去公园" + words[-1] + "散步然后去吃午饭",
        "fullwidth/accented mix, clean": "Ｈｅｌｌｏ wörld, straße café ＡＢＣ 123 — naïve façade coöperate ﬁsh",
        "ASCII text, clean, long": ("lorem ipsum dolor sit amet " * 75)[:2000],
    }
    print(f"{len(words)} keywords, automaton built in {built * 1000:.1f} ms")
    for name, text in cases.items():
        data = text.encode()
        outgoing = Outgoing(2, "c", 1, data)
        check(sender, outgoing)
        changed = "replaced" if outgoing.data != data else "unchanged"
        started = time.perf_counter()
        for _ in range(args.n):
            check(sender, Outgoing(2, "c", 1, data))
        per = (time.perf_counter() - started) / args.n
        print(f"{name:34s} {per * 1e6:7.1f} µs per message ({len(text)} characters, {changed})")
    custom = json.dumps({"type": "card", "description": "a card about " + hit, "items": ["one", "two"]}).encode()
    started = time.perf_counter()
    for _ in range(args.n):
        check(sender, Outgoing(2, "c", 100, custom))
    per = (time.perf_counter() - started) / args.n
    print(f"{'CUSTOM JSON, 3 strings, 1 match':34s} {per * 1e6:7.1f} µs per message")
    baseline = time.perf_counter()
    for _ in range(args.n):
        Outgoing(2, "c", 1, b"x")
    per = (time.perf_counter() - baseline) / args.n
    print(f"{'(building the Outgoing alone)':34s} {per * 1e6:7.1f} µs per message")


if __name__ == "__main__":
    main()
