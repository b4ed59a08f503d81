"""The JSON form of a frame, ``{"cmd": "MSG_DATA", "seq": 7, "body": {...}}``, whose body is
protobuf's canonical JSON mapping of the frame's message (docs/websocket.md).

Used by the WebSocket transport for text messages, by the client library, and for the web client's
table of the protocol (:func:`web_table`).  No Twisted here.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message as PbMessage

from . import BODY_TYPES, PUSH_COMMANDS, RESPONSE_OF, Cmd, out_of_range, pb

__all__ = [
    "MAX_JSON_DEPTH",
    "JsonFrameError",
    "decode_json_frame",
    "encode_json_body",
    "encode_json_frame",
    "json_depth_within",
    "web_table",
]

#: How deeply a JSON frame may nest objects and arrays (the frame itself is level 1).  The
#: deepest frame of the schema (a CIMGroupInfoReq's version list) nests 4 levels.
MAX_JSON_DEPTH = 16
_MAX_U16 = 0xFFFF
_MALFORMED = pb.kCIM_ERR_MALFORMED_BODY
_UNKNOWN_COMMAND = pb.kCIM_ERR_UNKNOWN_COMMAND

_CMD_BY_NAME: dict[str, int] = {c.name: int(c) for c in Cmd}
# id -> the JSON text of its "cmd" value, so an envelope is formatted, not serialized
_CMD_JSON: dict[int, bytes] = {int(c): b'"' + c.name.encode() + b'"' for c in Cmd}
_BODY_TYPES = {int(k): v for k, v in BODY_TYPES.items()}


class JsonFrameError(ValueError):
    """A text message that is not the JSON form of a frame.

    ``cmd`` and ``seq`` are those of the request as far as they could be read (0 otherwise);
    ``in_body`` tells a body that does not match its command (answered like an undecodable binary
    body) from a broken envelope (answered with ERROR_RSP)."""

    def __init__(self, code: int, message: str, cmd: int = 0, seq: int = 0, in_body: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.cmd = cmd
        self.seq = seq
        self.in_body = in_body


def encode_json_body(message: PbMessage) -> bytes:
    """The canonical protobuf JSON of a body: lowerCamelCase names, 64-bit ints as strings, bytes
    as base64, enums by name, and (as protobuf does) fields at their default value left out, so a
    successful ack carries no ``errorCode`` rather than one named ``kCIM_ERR_UNKNOWN``."""
    return json.dumps(json_format.MessageToDict(message), separators=(",", ":"), ensure_ascii=False).encode()


def encode_json_frame(cmd: int, seq: int, body: bytes) -> bytes:
    """A whole JSON frame around an already encoded body (a fan-out encodes the body once)."""
    name = _CMD_JSON.get(cmd)
    if name is None:
        name = b"%d" % cmd
    return b'{"cmd":%s,"seq":%d,"body":%s}' % (name, seq, body)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_depth_within(text: str | bytes, value: Any, limit: int) -> bool:
    """Whether ``value`` (parsed from ``text``) nests objects and arrays at most ``limit`` deep.

    Counting brackets in the text (at C speed) settles the common case, a small frame, without a
    walk: a value cannot nest deeper than its text has brackets."""
    if isinstance(text, str):
        brackets = text.count("{") + text.count("[")
    else:
        brackets = text.count(b"{") + text.count(b"[")
    if brackets <= limit:
        return True
    level = [(value, 1)]
    while level:
        item, depth = level.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return False
        level.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _command(value: Any) -> int | None:
    if isinstance(value, str):
        return _CMD_BY_NAME.get(value)
    if type(value) is int and 0 <= value <= _MAX_U16:
        return value
    return None


def decode_json_frame(text: str | bytes, ignore_unknown_fields: bool = False) -> tuple[int, int, PbMessage | None]:
    """``(command_id, seq, message)`` of a JSON frame; the message is None for a numeric command id
    without a known body type (the session answers that like the same frame over TCP).

    ``cmd`` is a :class:`Cmd` name or a number, ``seq`` an integer 0..65535, ``body`` (optional,
    default ``{}``) the message in protobuf's JSON mapping, field names in lowerCamelCase or as in
    the .proto, enums by name or number.  Raises :class:`JsonFrameError`: for text that is not
    UTF-8 or not JSON (``NaN`` and ``Infinity`` are not), nests deeper than
    :data:`MAX_JSON_DEPTH`, or a body that is not its command's message (lone surrogates, numbers
    that are not integers where integers belong, ids above 2^63-1 included).
    """
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        frame = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError):  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise JsonFrameError(_MALFORMED, "not JSON") from None
    if not json_depth_within(text, frame, MAX_JSON_DEPTH):
        raise JsonFrameError(_MALFORMED, f"a frame nests at most {MAX_JSON_DEPTH} levels of objects and arrays")
    if not isinstance(frame, dict):
        raise JsonFrameError(_MALFORMED, 'a frame is a JSON object {"cmd", "seq", "body"}')
    raw_seq = frame.get("seq")
    seq = raw_seq if type(raw_seq) is int and 0 <= raw_seq <= _MAX_U16 else None
    cmd = _command(frame.get("cmd"))
    if cmd is None:
        raise JsonFrameError(_UNKNOWN_COMMAND, f"unknown command {frame.get('cmd')!r}"[:200], seq=seq or 0)
    if seq is None:
        raise JsonFrameError(_MALFORMED, "seq must be an integer 0..65535", cmd=cmd)
    cls = _BODY_TYPES.get(cmd)
    if cls is None:
        return cmd, seq, None
    body = frame.get("body")
    if body is None:
        return cmd, seq, cls()
    if not isinstance(body, dict):
        raise JsonFrameError(_MALFORMED, "body must be a JSON object", cmd, seq, in_body=True)
    try:
        message = json_format.ParseDict(body, cls(), ignore_unknown_fields=ignore_unknown_fields)
    except Exception as e:
        # ParseError for what it recognises, but also OverflowError (1e999 for an enum) and
        # SystemError (a key with a lone surrogate) from the C implementation: all bad bodies.
        reason = "a field name is not valid Unicode" if isinstance(e, SystemError) else str(e)
        text = f"body is not a {cls.__name__}: {reason}".encode("utf-8", "backslashreplace").decode()
        raise JsonFrameError(_MALFORMED, text[:300], cmd, seq, in_body=True) from None
    bad = out_of_range(cmd, message)
    if bad is not None:
        raise JsonFrameError(_MALFORMED, bad, cmd, seq, in_body=True)
    return cmd, seq, message


def web_table() -> dict[str, Any]:
    """The protocol table for clients that read it at run time (the web client fetches it as
    ``/app/protocol-table.js``): command ids by name, each request's answer, the pushes, and every
    enum's values by name (the JSON form writes enums by name)."""
    enums = {}
    for enum in pb.DESCRIPTOR.enum_types_by_name.values():
        enums[enum.name] = {value.name: value.number for value in enum.values}
    return {
        "Cmd": {c.name: int(c) for c in Cmd},
        "RESPONSE_OF": {Cmd(req).name: Cmd(rsp).name for req, rsp in RESPONSE_OF.items()},
        "PUSH": sorted(Cmd(c).name for c in PUSH_COMMANDS),
        "ENUMS": enums,
    }
