"""CIM v1 framing: a 16-byte big-endian header, then the protobuf body.

Independent of Twisted so that the server, the client library and benchmarks share one codec.
The decoder buffers partial frames across reads (the original server dropped them).
"""

from __future__ import annotations

import struct

__all__ = [
    "DEFAULT_MAX_FRAME_BYTES",
    "HEADER",
    "HEADER_SIZE",
    "VERSION",
    "FrameDecoder",
    "FrameError",
    "encode_frame",
    "encode_header",
]

# length (header included), version, flag, service_id, command_id, seq_num, reserved
HEADER = struct.Struct(">IHHHHHH")
HEADER_SIZE = 16
VERSION = 1
# The original's limit; servers usually configure less.
DEFAULT_MAX_FRAME_BYTES = 10 * 1024 * 1024

assert HEADER.size == HEADER_SIZE

_MAX_U16 = 0xFFFF
_MAX_U32 = 0xFFFFFFFF
# Only the fields the decoder needs: length, command_id, seq_num.
_FIELDS = struct.Struct(">I6xHH2x")
_LENGTH = struct.Struct(">I")
_pack = HEADER.pack
_unpack_fields = _FIELDS.unpack_from
_unpack_length = _LENGTH.unpack_from


class FrameError(ValueError):
    """The byte stream is not CIM framing (bad length); the connection cannot be resynchronized.

    ``frames`` holds the complete frames that preceded the bad header in the same read, so a
    caller may still handle them before closing.
    """

    def __init__(self, message: str, frames: list[tuple[int, int, bytes]] | None = None) -> None:
        super().__init__(message)
        self.frames = frames if frames is not None else []


def encode_header(command_id: int, seq: int, body_len: int) -> bytes:
    """The 16-byte header of a frame; lets a fan-out encode a body once and prefix it per peer."""
    try:
        return _pack(HEADER_SIZE + body_len, VERSION, 0, 0, command_id, seq, 0)
    except struct.error:
        pass
    if not 0 <= command_id <= _MAX_U16:
        raise FrameError(f"command id {command_id!r} does not fit 16 bits")
    if not 0 <= seq <= _MAX_U16:
        raise FrameError(f"seq {seq!r} does not fit 16 bits")
    raise FrameError(f"body of {body_len!r} bytes cannot be framed")


def encode_frame(command_id: int, seq: int, body: bytes) -> bytes:
    """A whole frame: header plus ``body``."""
    return encode_header(command_id, seq, len(body)) + body


class FrameDecoder:
    """Turns a byte stream into ``(command_id, seq, body)`` frames.

    Bytes of an incomplete frame stay in a buffer until the rest arrives.  The version, flag,
    service_id and reserved fields are informational and not checked.
    """

    __slots__ = ("_buf", "_max", "_error")

    def __init__(self, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> None:
        if max_frame_bytes < HEADER_SIZE:
            raise ValueError(f"max_frame_bytes must be at least {HEADER_SIZE}")
        self._buf = bytearray()
        self._max = max_frame_bytes
        self._error: str | None = None

    @property
    def max_frame_bytes(self) -> int:
        return self._max

    def buffered(self) -> int:
        """Bytes held for an incomplete frame (for flow-control and memory accounting)."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        """Add received bytes; return the frames they complete, in order.

        Raises :class:`FrameError` when a header announces a length below 16 or above the
        limit; the decoder then refuses all further input.
        """
        if self._error is not None:
            raise FrameError(self._error)
        frames: list[tuple[int, int, bytes]] = []
        buf = self._buf
        if not buf and type(data) is bytes:
            # Fast path: nothing buffered, parse straight from the read, copying only the bodies
            # and any trailing partial frame.
            end = self._parse(data, frames)
            if end < len(data):
                buf += data[end:] if end else data
            return frames
        buf += data
        with memoryview(buf) as view:
            end = self._parse(view, frames)
        if end:
            # CPython deletes a bytearray's head by moving its start pointer: no copy of the rest.
            del buf[:end]
        return frames

    def _parse(self, data: bytes | memoryview, frames: list[tuple[int, int, bytes]]) -> int:
        """Append the complete frames of ``data`` to ``frames``; return the offset after them."""
        size = len(data)
        off = 0
        limit = self._max
        append = frames.append
        while True:
            left = size - off
            if left >= HEADER_SIZE:
                length, cmd, seq = _unpack_fields(data, off)
            elif left >= 4:
                # A partial header: its length field alone may already be invalid.
                (length,) = _unpack_length(data, off)
                cmd = seq = 0
            else:
                break
            if length < HEADER_SIZE or length > limit:
                # Remember only the text: the exception's traceback would pin the buffer.
                self._error = f"frame length {length} outside {HEADER_SIZE}..{limit}"
                self._buf = bytearray()
                raise FrameError(self._error, frames)
            if length > left:
                break
            end = off + length
            # Slicing bytes copies; slicing the buffer's memoryview does not, so copy it once.
            body = data[off + HEADER_SIZE : end]
            append((cmd, seq, body if type(body) is bytes else body.tobytes()))
            off = end
        return off
