"""The CIM wire schema: the generated messages (``pb``) and the protocol table.

The table is read from ``cim.proto`` itself: every ``CIMCmdID`` value carries options naming the
message type of its body, the command a request is answered with and whether the server starts
it (a push).  So a command is declared once, in the schema, and everything that speaks the
protocol (the session, the JSON form, the cluster, the client library, the web client's table
served by the HTTP transport) reads the same table.  Nothing here knows Twisted.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError, Message

from . import cim_pb2 as pb

__all__ = [
    "BODY_TYPES",
    "INT_RANGES",
    "MAX_ID",
    "PUSH_COMMANDS",
    "RESPONSE_OF",
    "TABLE",
    "BodyError",
    "Cmd",
    "Command",
    "decode_body",
    "encode_body",
    "error_answer",
    "out_of_range",
    "pb",
]

_PREFIX = "kCIM_CID_"
_COMMANDS = pb.DESCRIPTOR.enum_types_by_name["CIMCmdID"]

#: Frame command ids: ``CIMCmdID`` without the ``kCIM_CID_`` prefix (``Cmd.MSG_DATA`` = 0x0301).
Cmd = IntEnum("Cmd", {v.name[len(_PREFIX) :]: v.number for v in _COMMANDS.values if v.number})
Cmd.__module__ = __name__
Cmd.__doc__ = "Frame command ids, derived from CIMCmdID in cim.proto."


@dataclass(frozen=True, slots=True)
class Command:
    """One row of the protocol table."""

    cmd: int
    name: str
    body: type[Message]
    answer: int | None  # requests: the command they are answered with
    push: bool  # the server starts it (with the connection's own seq counter)
    failures_in_answer: bool  # a failed request is answered with ``answer``, carrying the error


def _table() -> dict[int, Command]:
    answers: dict[int, int] = {}
    bodies: dict[int, type[Message]] = {}
    pushes: set[int] = set()
    for value in _COMMANDS.values:
        options = value.GetOptions()
        if not options.HasExtension(pb.body):
            continue
        bodies[value.number] = getattr(pb, options.Extensions[pb.body])
        if options.Extensions[pb.answer]:
            answers[value.number] = int(Cmd[options.Extensions[pb.answer]])
        if options.Extensions[pb.push]:
            pushes.add(value.number)
    table = {}
    for cmd, body in bodies.items():
        answer = answers.get(cmd)
        carries = answer is not None and _code_field(bodies[answer]) is not None
        table[cmd] = Command(cmd, Cmd(cmd).name, body, answer, cmd in pushes, carries)
    return table


_CODE_FIELDS = ("result_code", "error_code")
_TEXT_FIELDS = ("result_string", "error_msg")
_TIME_FIELDS = ("server_time", "create_time")
# What a failure's answer repeats from its request, so that a client can tell which one failed.
_ECHOED = ("group_id", "msg_id", "session_id", "session_type", "to_session_id", "client_msg_id", "room_id")


def _code_field(message_type: type[Message]) -> str | None:
    fields = message_type.DESCRIPTOR.fields_by_name
    return next((name for name in _CODE_FIELDS if name in fields), None)


#: Every command with a body type, by id.
TABLE: dict[int, Command] = _table()
BODY_TYPES: dict[int, type[Message]] = {cmd: c.body for cmd, c in TABLE.items()}
#: The command a server answers each request with (same frame seq).  ERROR_RSP may answer any.
RESPONSE_OF: dict[int, int] = {cmd: c.answer for cmd, c in TABLE.items() if c.answer is not None}
#: Commands the server starts itself (with its own seq counter), never as an answer.
PUSH_COMMANDS: frozenset[int] = frozenset(cmd for cmd, c in TABLE.items() if c.push)


class BodyError(ValueError):
    """A frame body that cannot be turned into a message: unknown command id, bad protobuf, or an
    integer outside what the server can store."""

    def __init__(self, cmd: int, message: str) -> None:
        super().__init__(f"command 0x{cmd:04x}: {message}")
        self.cmd = cmd


#: The largest id a client may send: storage keeps ids as signed 64-bit integers (SQLite's
#: INTEGER, PostgreSQL's bigint), so a uint64 field at or above 2^63 is refused when decoded.
MAX_ID = 2**63 - 1
#: What each protobuf integer type holds on the wire (fuzzers draw values from these).
INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}

_UNSIGNED_64 = frozenset({FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64})
# check(message, body) -> the path of a field out of range, or None
_Check = Callable[[Message, bytes | None], "str | None"]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _tags(f: FieldDescriptor) -> tuple[int | bytes, ...]:
    """The encoded keys field ``f`` can appear under in a body: length-delimited (a message, a
    packed list) or one element of an unpacked list (varint or 64-bit); a one-byte key as an int,
    which ``in`` finds faster than a one-byte string."""
    wire_types = (2,) if f.type == FieldDescriptor.TYPE_MESSAGE else (2, f.type == FieldDescriptor.TYPE_FIXED64)
    keys = (_varint(f.number << 3 | int(wire_type)) for wire_type in wire_types)
    return tuple(key[0] if len(key) == 1 else key for key in keys)


def _read(name: str) -> str:
    """The expression reading field ``name`` of ``msg`` (a field may be named like a keyword)."""
    return f"getattr(msg, {name!r})" if keyword.iskeyword(name) else f"msg.{name}"


def _range_check(desc: Descriptor, memo: dict[str, _Check | None]) -> _Check | None:
    """A function that names the first unsigned 64-bit field of a ``desc`` message (nested and
    repeated ones included) above :data:`MAX_ID`, or None when the type has no such field.

    It runs on every decoded frame, so it is built once per message type as straight-line code
    (as :mod:`dataclasses` builds ``__init__``, and measured cheaper than a loop over the names):
    a CIMMsgData costs three attribute reads and two byte searches.  A repeated or nested field
    (whose container costs more to read than all the singular fields) is read only when the body
    holds its key at all, which a typical frame (a text message without mentions) does not."""
    if desc.full_name in memo:
        return memo[desc.full_name]
    memo[desc.full_name] = None  # a recursive type (none in cim.proto) is checked to one level
    namespace: dict[str, object] = {"MAX_ID": MAX_ID}
    lines: list[str] = []
    scalars = [f.name for f in desc.fields if f.type in _UNSIGNED_64 and not f.is_repeated]
    if scalars:
        lines.append("    if " + " or ".join(f"{_read(name)} > MAX_ID" for name in scalars) + ":")
        lines.append(f"        return next(n for n in {tuple(scalars)!r} if getattr(msg, n) > MAX_ID)")
    for f in desc.fields:
        if f.type in _UNSIGNED_64 and f.is_repeated:
            inner = None
        elif f.type == FieldDescriptor.TYPE_MESSAGE and not f.message_type.GetOptions().map_entry:
            inner = _range_check(f.message_type, memo)
            if inner is None:
                continue
        else:
            continue
        keys = []
        for i, tag in enumerate(_tags(f)):
            namespace[f"key_{f.number}_{i}"] = tag
            keys.append(f"key_{f.number}_{i} in body")
        lines.append(f"    if body is None or {' or '.join(keys)}:")
        if inner is None:
            lines.append(f"        values = {_read(f.name)}")
            lines.append("        if values and max(values) > MAX_ID:")
            lines.append(f"            return {f.name!r}")
            continue
        namespace[f"inner_{f.number}"] = inner
        items = _read(f.name) if f.is_repeated else f"({_read(f.name)},)"
        lines.append(f"        for item in {items}:")
        lines.append(f"            bad = inner_{f.number}(item, None)")
        lines.append("            if bad is not None:")
        lines.append(f"                return {f.name + '.'!r} + bad")
    if not lines:
        return None
    source = "def check(msg, body):\n" + "\n".join(lines) + "\n    return None\n"
    exec(compile(source, f"<range check of {desc.full_name}>", "exec"), namespace)  # noqa: S102
    check = namespace["check"]
    memo[desc.full_name] = check
    return check


_memo: dict[str, _Check | None] = {}
# cmd -> (body type, its range check or None): one dict lookup per decoded frame.
_DECODERS: dict[int, tuple[type[Message], _Check | None]] = {
    cmd: (cls, _range_check(cls.DESCRIPTOR, _memo)) for cmd, cls in BODY_TYPES.items()
}
del _memo


def out_of_range(cmd: int, msg: Message) -> str | None:
    """The error text for a decoded body of command ``cmd`` with an id above :data:`MAX_ID`
    (None when every id fits): for decoders other than :func:`decode_body` (the JSON form)."""
    entry = _DECODERS.get(cmd)
    bad = entry[1](msg, None) if entry is not None and entry[1] is not None else None
    return None if bad is None else f"{bad} is out of range (ids are at most 2^63-1)"


def decode_body(cmd: int, body: bytes) -> Message:
    """Parse ``body`` as the message type of command ``cmd``, with every id within
    :data:`MAX_ID`; raises :class:`BodyError`."""
    entry = _DECODERS.get(cmd)
    if entry is None:
        raise BodyError(cmd, "unknown command id")
    cls, check = entry
    try:
        msg = cls.FromString(body)
    except DecodeError as e:
        raise BodyError(cmd, f"cannot parse {cls.__name__}: {e}") from None
    if check is not None:
        bad = check(msg, body)
        if bad is not None:
            raise BodyError(cmd, f"{bad} is out of range (ids are at most 2^63-1)")
    return msg


def encode_body(msg: Message) -> bytes:
    """Serialize a message for a frame body (proto3: default-valued fields are left out)."""
    return msg.SerializeToString()


def error_answer(
    cmd: int, request: Message | None, code: int, text: str, now: int, served: bool = True
) -> tuple[int, Message]:
    """The answer to a failed request: its own answer type when that carries a result code (the
    logins, MSG_DATA_ACK, the group commands, recall ...), with the request's identifying fields
    repeated; otherwise, and for commands this server does not serve (``served`` False), our
    generic ERROR_RSP."""
    command = TABLE.get(cmd)
    if served and command is not None and command.failures_in_answer:
        answer_type = BODY_TYPES[command.answer]
        fields = answer_type.DESCRIPTOR.fields_by_name
        answer = answer_type()
        setattr(answer, _code_field(answer_type), code)
        for name in _TEXT_FIELDS:
            if name in fields:
                setattr(answer, name, text)
        for name in _TIME_FIELDS:
            if name in fields:
                setattr(answer, name, now)
        if request is not None:
            asked = request.DESCRIPTOR.fields_by_name
            for name in _ECHOED:
                if name in fields and name in asked:
                    setattr(answer, name, getattr(request, name))
        return command.answer, answer
    return Cmd.ERROR_RSP, pb.CIMErrorRsp(cmd_id=cmd, error_code=code, error_msg=text)
