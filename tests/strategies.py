"""Hypothesis strategies for the fuzzers (tests/test_fuzz.py): CIM frames and protobuf bodies
of every command in the protocol table, built from the schema's descriptors, with the values
that break servers (extreme integers, huge and odd strings, random bytes)."""

from __future__ import annotations

from typing import Any

from google.protobuf import message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from coffeechat.protocols.framing import HEADER
from coffeechat.schema import INT_RANGES, TABLE

F = FieldDescriptor

# Integers at the edges of every width a field or a column can have, and a few ordinary ones.
EDGES = [0, 1, 2, 3, 127, 128, 255, 256, 2**15 - 1, 2**16 - 1, 2**16, 2**31 - 1, 2**31, 2**32 - 1, 2**32]
EDGES += [2**53, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1]


def integers(low: int, high: int) -> st.SearchStrategy[int]:
    """Any integer in [low, high], the edges (of every width, and negative ones) often."""
    edges = sorted({v for e in EDGES for v in (e, -e) if low <= v <= high} | {low, high})
    return st.one_of(st.sampled_from(edges), st.integers(low, high), st.integers(0, 40).filter(lambda v: low <= v))


# Strings: short and ordinary, or long, or full of what breaks text handling.
ODD_TEXT = [
    "",
    " ",
    "\n",
    "alice\n",
    "\x00",
    "a\x00b",
    "%00",
    "../../etc/passwd",
    "ſ",
    "ß",
    "İ",
    "\u202e",
    "😀",
]
ODD_TEXT += ["x" * 65, "x" * 513, "é" * 3000, "ab" * 40_000, "{", "[" * 200, '{"url": 1}', "null"]
texts = st.one_of(st.sampled_from(ODD_TEXT), st.text(max_size=40), st.text(alphabet="ab_.@-09", max_size=70))
#: Text as JSON can carry it (and protobuf strings cannot): lone surrogates too.
json_texts = st.one_of(texts, st.sampled_from(["\ud800", "zz\udfff", "\udc00x"]))
# Bodies of non-text messages: JSON objects that are close to right, nested ones, not JSON.
JSON_BODIES = [b'{"url": "https://x/f"}', b'{"latitude": 1.5, "longitude": -2}', b'{"latitude": 1e999, "longitude": 1}']
JSON_BODIES += [b'{"url": ' + b"[" * 5000 + b"]" * 5000 + b"}", b'{"url": "\\ud800"}', b"{}", b"[]", b'{"url": NaN}']
binaries = st.one_of(
    st.sampled_from(JSON_BODIES), st.binary(max_size=60), st.sampled_from([b"\xff" * 70_000, b"x" * 13_000])
)


# Ids (uint64): the largest that storage keeps, the first ones it cannot, existing small ones.
ids = st.one_of(
    st.sampled_from([2**63 - 1, 2**63, 2**63 + 1, 2**64 - 1]), st.integers(0, 12), st.integers(0, 2**64 - 1)
)


def _field(f: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if f.type == F.TYPE_MESSAGE:
        return messages(f.message_type, depth + 1)
    if f.type == F.TYPE_ENUM:
        known = [v.number for v in f.enum_type.values]
        return st.one_of(st.sampled_from(known), integers(-(2**31), 2**31 - 1))  # open enums keep any int32
    if f.type == F.TYPE_BOOL:
        return st.booleans()
    if f.type == F.TYPE_STRING:
        return texts
    if f.type == F.TYPE_BYTES:
        return binaries
    if f.type in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return ids
    if f.type in (F.TYPE_DOUBLE, F.TYPE_FLOAT):
        return st.floats(allow_nan=True, width=32 if f.type == F.TYPE_FLOAT else 64)
    return integers(*INT_RANGES[f.type])


@st.composite
def _message(draw: Any, desc: Descriptor, depth: int) -> Message:
    msg = message_factory.GetMessageClass(desc)()
    for f in desc.fields:
        if not draw(st.booleans()):
            continue
        if f.type == F.TYPE_MESSAGE and f.message_type.GetOptions().map_entry:
            key, value = f.message_type.fields_by_name["key"], f.message_type.fields_by_name["value"]
            entries = draw(st.dictionaries(_field(key, depth), _field(value, depth), max_size=3))
            target = getattr(msg, f.name)
            for k, v in entries.items():
                if value.type == F.TYPE_MESSAGE:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif f.is_repeated:
            values = draw(st.lists(_field(f, depth), max_size=3 if depth else 6))
            target = getattr(msg, f.name)
            if f.type == F.TYPE_MESSAGE:
                for value in values:
                    target.add().CopyFrom(value)
            else:
                target.extend(values)
        elif f.type == F.TYPE_MESSAGE:
            getattr(msg, f.name).CopyFrom(draw(_field(f, depth)))
        else:
            setattr(msg, f.name, draw(_field(f, depth)))
    return msg


def messages(desc: Descriptor, depth: int = 0) -> st.SearchStrategy[Message]:
    """Messages of type ``desc`` with any subset of their fields set to fuzzed values."""
    if depth > 3:  # no type of cim.proto nests this deep; a recursive one would stop here
        return st.builds(message_factory.GetMessageClass(desc))
    return _message(desc, depth)


#: Every command of the protocol table (requests, answers and pushes: a client may send any).
COMMANDS = sorted(TABLE)


@st.composite
def command_bodies(draw: Any) -> tuple[int, bytes]:
    """A command id of the table (or any 16-bit id now and then) and a body: its own message
    type fuzzed, another command's, or random bytes."""
    cmd = draw(st.one_of(st.sampled_from(COMMANDS), st.sampled_from(COMMANDS), st.integers(0, 0xFFFF)))
    kind = draw(st.sampled_from(["own", "own", "own", "other", "bytes"]))
    if kind == "bytes" or (kind == "own" and cmd not in TABLE):
        return cmd, draw(st.binary(max_size=80))
    source = cmd if kind == "own" else draw(st.sampled_from(COMMANDS))
    return cmd, draw(messages(TABLE[source].body.DESCRIPTOR)).SerializeToString()


def headers(length: int, cmd: int, seq: int, version: int = 1, flag: int = 0, service: int = 0) -> bytes:
    return HEADER.pack(length, version, flag, service, cmd, seq, 0)
