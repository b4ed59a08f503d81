"""The CIM wire schema: the generated messages (``pb``) and the protocol table.

The table is read from ``cim.proto`` itself: every ``CIMCmdID`` value carries options naming the
message type of its body, the command a request is answered with and whether the server starts
it (a push).  So a command is declared once, in the schema, and everything that speaks the
protocol (the session, the JSON form, the cluster, the client library, the web client's table
served by the HTTP transport) reads the same table.  Nothing here knows Twisted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from google.protobuf.message import DecodeError, Message

from . import cim_pb2 as pb

__all__ = [
    "BODY_TYPES",
    "PUSH_COMMANDS",
    "RESPONSE_OF",
    "TABLE",
    "BodyError",
    "Cmd",
    "Command",
    "decode_body",
    "encode_body",
    "error_answer",
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
_ECHOED = ("group_id", "msg_id", "session_id", "session_type", "to_session_id", "client_msg_id")


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
    """A frame body that cannot be turned into a message: unknown command id or bad protobuf."""

    def __init__(self, cmd: int, message: str) -> None:
        super().__init__(f"command 0x{cmd:04x}: {message}")
        self.cmd = cmd


def decode_body(cmd: int, body: bytes) -> Message:
    """Parse ``body`` as the message type of command ``cmd``; raises :class:`BodyError`."""
    cls = BODY_TYPES.get(cmd)
    if cls is None:
        raise BodyError(cmd, "unknown command id")
    try:
        return cls.FromString(body)
    except DecodeError as e:
        raise BodyError(cmd, f"cannot parse {cls.__name__}: {e}") from None


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
