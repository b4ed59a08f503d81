"""Error codes the core answers with: ``CIMErrorCode`` of the schema, by short name.

The values below 10000 are CIM v1's own; the others are CoffeeChat extensions (documented in
docs/protocol.md), declared once in cim.proto with everything else on the wire.
"""

from __future__ import annotations

from enum import IntEnum

from coffeechat.schema import pb


def _short(name: str) -> str:
    for prefix in ("kCIM_ERR_", "kCIM_ERROR_"):
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


ErrorCode = IntEnum("ErrorCode", {_short(v.name): v.number for v in pb.CIMErrorCode.DESCRIPTOR.values})
ErrorCode.__module__ = __name__
ErrorCode.__doc__ = "CIMErrorCode of cim.proto without its prefix (ErrorCode.NOT_FOUND = 10009)."


def code_name(code: int) -> str:
    """The name of a code for logs (its number when it has none)."""
    try:
        return ErrorCode(code).name
    except ValueError:
        return str(code)


class ChatError(Exception):
    """A request the core refuses; transports turn it into an answer carrying ``code``."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message or code_name(code).lower().replace("_", " ")

    def __str__(self) -> str:
        return f"{code_name(self.code)} ({int(self.code)}): {self.message}"
