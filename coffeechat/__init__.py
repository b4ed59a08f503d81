"""CoffeeChat: a self-hosted instant-messaging server on Twisted.

The core (this package) knows no transport and no database driver; transports live in
``coffeechat.protocols`` and storage/presence implementations in ``coffeechat.backends``.
"""

from pathlib import Path

__version__ = "0.2.0"

# setup.py installs the top-level ``protocols/`` and ``backends/`` folders as
# ``coffeechat.protocols`` and ``coffeechat.backends`` (package_dir).  In a source checkout they
# sit beside this package instead, so let the package path reach them there too.
_checkout = Path(__file__).resolve().parent.parent
if not (Path(__file__).parent / "protocols").is_dir() and (_checkout / "protocols" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # type: ignore[name-defined]  # noqa: F821
