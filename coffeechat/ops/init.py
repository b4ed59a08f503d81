"""``coffeechat init``: a first configuration file, commented, with fresh secrets.

The file is the sample every key is documented in (``etc/coffeechat.toml``, which setup.py
copies into the package as ``coffeechat/ops/coffeechat.toml``) with its secrets drawn from :mod:`secrets`: the
admin API's token, the moderation callback's signing secret, and the example ``whsec_`` secrets
of the commented-out webhook and push examples, so that uncommenting one never deploys the
secret everyone can read in the repository.  It is written with mode 0600 (it holds tokens) and
never over an existing file unless ``--force``.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import sys
import tempfile
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from coffeechat.config import Config, ConfigError, load_config

DEFAULT_PATH = "coffeechat.toml"
#: The example secret the sample's comments show (Standard Webhooks' documentation value).
EXAMPLE_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class InitError(Exception):
    """Why no file was written, in one line."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    """``init`` takes ``--config`` and ``--data-dir`` after it too (``coffeechat init --config F``)."""
    init = commands.add_parser("init", help="write a commented config file with fresh secrets")
    init.add_argument(
        "--config", "-c", metavar="FILE", default=argparse.SUPPRESS, help=f"file to write (default ./{DEFAULT_PATH})"
    )
    init.add_argument(
        "--data-dir", "-d", metavar="DIR", default=argparse.SUPPRESS, help="server.data_dir, created with mode 0700"
    )
    init.add_argument("--force", action="store_true", help="replace an existing file")


#: The sample in a source checkout, where setup.py has not copied it into the package.
CHECKOUT_SAMPLE = Path(__file__).resolve().parent.parent.parent / "etc" / "coffeechat.toml"


def sample_text() -> str:
    """The sample configuration: as installed with the package, else the checkout's."""
    packaged = resources.files("coffeechat.ops").joinpath("coffeechat.toml")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    if CHECKOUT_SAMPLE.is_file():
        return CHECKOUT_SAMPLE.read_text(encoding="utf-8")
    raise InitError("the sample configuration is not installed (coffeechat/ops/coffeechat.toml): reinstall")


def webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and the base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def render(sample: str, data_dir: str | None = None, now: datetime | None = None) -> tuple[str, list[str]]:
    """The sample with fresh secrets (and ``data_dir``), and the names of the keys given secrets."""
    section = ""
    filled: list[str] = []
    out: list[str] = []
    values = {
        ("http", "admin_token"): lambda: secrets.token_urlsafe(32),
        ("moderation", "secret"): webhook_secret,
    }
    if data_dir is not None:
        values[("server", "data_dir")] = lambda: data_dir
    for line in sample.splitlines():
        header = re.fullmatch(r"\[([\w.]+)\]\s*", line)
        if header:
            section = header.group(1)
        key = re.fullmatch(r'(\w+) = "[^"]*"', line)
        fill = values.pop((section, key.group(1)), None) if key else None
        if fill is not None:
            line = f"{key.group(1)} = {json.dumps(fill())}"
            if key.group(1) != "data_dir":
                filled.append(f"{section}.{key.group(1)}")
        while EXAMPLE_SECRET in line:
            line = line.replace(EXAMPLE_SECRET, webhook_secret(), 1)
        out.append(line)
    if ("http", "admin_token") in values:
        raise InitError("the sample configuration has no [http] admin_token line to fill in")
    when = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        f"# Written by `coffeechat init` on {when}. The secrets in this file are fresh and this file's",
        "# alone: keep it private (mode 0600). Check it with `coffeechat --config FILE check`.",
        "#",
    ]
    return "\n".join(head + out) + "\n", filled


def write(path: Path, text: str, force: bool) -> None:
    """Write ``text`` with mode 0600: atomically over an old file (``force``), else only if none."""
    if force:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise InitError(f"{path} exists; not overwritten (--force replaces it, secrets included)") from None
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def run(args: argparse.Namespace) -> int:
    """``coffeechat init``: write the file, create the data dir, say what to do next."""
    path = Path(args.config or DEFAULT_PATH).absolute()
    data_dir = Path(args.data_dir).absolute() if args.data_dir else None
    try:
        if path.is_dir():
            raise InitError(f"{path} is a directory; name the file to write")
        if not path.parent.is_dir():
            raise InitError(f"{path.parent} does not exist; create it first")
        text, filled = render(sample_text(), str(data_dir) if data_dir else None)
        try:
            load_config_text(text)
        except ConfigError as e:
            raise InitError(f"the configuration written would not load: {e}") from None
        write(path, text, args.force)
    except (InitError, OSError) as e:
        print(f"coffeechat init: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} (mode 0600), fresh secrets in {', '.join(filled)}")
    if data_dir is not None and not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        print(f"created the data dir {data_dir} (mode 0700)")
    print("next:")
    print(f"  coffeechat --config {path} check")
    print(f"  twistd -n coffeechat --config {path}")
    return 0


def load_config_text(text: str) -> Config:
    """Load a configuration from its text, with the checks the server makes."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        return load_config(f.name)
