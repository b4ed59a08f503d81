"""The CIM frame codec: header layout, buffering across reads, and rejection of bad lengths."""

from __future__ import annotations

import random
import struct

import pytest

from coffeechat.protocols.framing import (
    DEFAULT_MAX_FRAME_BYTES,
    HEADER,
    HEADER_SIZE,
    FrameDecoder,
    FrameError,
    encode_frame,
    encode_header,
)


def frame(cmd: int, seq: int, body: bytes, version: int = 1) -> bytes:
    """A frame built by hand, independently of encode_frame."""
    return struct.pack(">IHHHHHH", HEADER_SIZE + len(body), version, 0, 0, cmd, seq, 0) + body


def test_header_layout() -> None:
    assert HEADER_SIZE == HEADER.size == 16
    data = encode_frame(0x0301, 7, b"abc")
    fields = [b"\x00\x00\x00\x13", b"\x00\x01", b"\x00\x00", b"\x00\x00", b"\x03\x01", b"\x00\x07", b"\x00\x00"]
    assert data == b"".join(fields) + b"abc"


def test_encode_header_matches_encode_frame() -> None:
    body = b"x" * 300
    assert encode_header(0x0105, 65534, len(body)) + body == encode_frame(0x0105, 65534, body)


@pytest.mark.parametrize("seq", [0, 1, 65534, 65535])
def test_seq_edges_round_trip(seq: int) -> None:
    assert FrameDecoder(1024).feed(encode_frame(0x0102, seq, b"\x08\x01")) == [(0x0102, seq, b"\x08\x01")]


@pytest.mark.parametrize(("cmd", "seq", "body_len"), [(0x10000, 1, 0), (-1, 1, 0), (1, 65536, 0), (1, -1, 0)])
def test_encode_rejects_values_that_do_not_fit(cmd: int, seq: int, body_len: int) -> None:
    with pytest.raises(FrameError):
        encode_header(cmd, seq, body_len)


def test_encode_rejects_oversized_body_length() -> None:
    with pytest.raises(FrameError):
        encode_header(1, 1, 2**32)


def test_empty_body() -> None:
    data = encode_frame(0x0105, 3, b"")
    assert len(data) == HEADER_SIZE
    assert FrameDecoder(1024).feed(data) == [(0x0105, 3, b"")]


def test_many_frames_in_one_read() -> None:
    frames = [(0x0300 + i % 8, i, bytes([i % 256]) * (i % 50)) for i in range(500)]
    data = b"".join(encode_frame(*f) for f in frames)
    decoder = FrameDecoder(1024)
    assert decoder.feed(data) == frames
    assert decoder.buffered() == 0


def test_split_at_every_byte() -> None:
    frames = [(0x0301, 1, b"hello"), (0x0105, 2, b""), (0x0206, 3, bytes(range(256)))]
    data = b"".join(encode_frame(*f) for f in frames)
    for cut in range(len(data) + 1):
        decoder = FrameDecoder(1024)
        got = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert got == frames, cut
        assert decoder.buffered() == 0


def test_byte_by_byte() -> None:
    frames = [(0x0301, 1, b"hello"), (0x0105, 2, b""), (0x0302, 3, b"\x01" * 40)]
    data = b"".join(encode_frame(*f) for f in frames)
    decoder = FrameDecoder(1024)
    got = []
    for i in range(len(data)):
        got += decoder.feed(data[i : i + 1])
    assert got == frames


def test_random_chunking() -> None:
    rng = random.Random(1234)
    frames = [
        (rng.randrange(0x0101, 0x0603), rng.randrange(1, 65535), rng.randbytes(rng.randrange(0, 2000)))
        for _ in range(300)
    ]
    data = b"".join(encode_frame(*f) for f in frames)
    decoder = FrameDecoder(4096)
    got = []
    pos = 0
    while pos < len(data):
        step = rng.randrange(1, 5000)
        got += decoder.feed(data[pos : pos + step])
        pos += step
    assert got == frames
    assert decoder.buffered() == 0


def test_bodies_are_bytes_in_both_paths() -> None:
    data = encode_frame(1, 1, b"abc") + encode_frame(2, 2, b"def")
    decoder = FrameDecoder(1024)
    first = decoder.feed(data[:20])  # fast path, leaves a partial frame
    rest = decoder.feed(data[20:])  # buffered path
    for _, _, body in first + rest:
        assert type(body) is bytes


def test_accepts_bytearray_and_memoryview_input() -> None:
    data = encode_frame(5, 6, b"xyz")
    assert FrameDecoder(64).feed(bytearray(data)) == [(5, 6, b"xyz")]
    assert FrameDecoder(64).feed(memoryview(data)) == [(5, 6, b"xyz")]


def test_large_frame_in_small_reads() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    data = encode_frame(0x0301, 9, body)
    decoder = FrameDecoder(DEFAULT_MAX_FRAME_BYTES)
    got = []
    for i in range(0, len(data), 1460):
        got += decoder.feed(data[i : i + 1460])
    assert got == [(0x0301, 9, body)]


def test_exactly_max_is_accepted() -> None:
    body = b"z" * (100 - HEADER_SIZE)
    assert FrameDecoder(100).feed(encode_frame(7, 1, body)) == [(7, 1, body)]


def test_length_above_max_is_rejected() -> None:
    decoder = FrameDecoder(100)
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(7, 1, b"z" * (101 - HEADER_SIZE)))


def test_length_above_max_is_rejected_from_the_length_field_alone() -> None:
    # No need to wait for the rest of a 4 GB frame to know it is too big.
    with pytest.raises(FrameError):
        FrameDecoder(100).feed(b"\xff\xff\xff\xff")


@pytest.mark.parametrize("length", [0, 1, 15])
def test_length_below_header_size_is_rejected(length: int) -> None:
    data = struct.pack(">IHHHHHH", length, 1, 0, 0, 0x0105, 1, 0)
    with pytest.raises(FrameError):
        FrameDecoder(1024).feed(data)


def test_garbage_is_rejected() -> None:
    with pytest.raises(FrameError):
        FrameDecoder(DEFAULT_MAX_FRAME_BYTES).feed(b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n")


def test_frames_before_the_bad_header_are_kept_on_the_error() -> None:
    good = [(1, 1, b"a"), (2, 2, b"bb")]
    data = b"".join(encode_frame(*f) for f in good) + b"\x00\x00\x00\x02garbage"
    with pytest.raises(FrameError) as info:
        FrameDecoder(1024).feed(data)
    assert info.value.frames == good


def test_decoder_stays_failed() -> None:
    decoder = FrameDecoder(1024)
    with pytest.raises(FrameError):
        decoder.feed(b"\x00\x00\x00\x00")
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(1, 1, b""))


def test_bad_length_after_buffered_partial() -> None:
    decoder = FrameDecoder(1024)
    assert decoder.feed(encode_frame(1, 1, b"ok")[:10]) == []
    with pytest.raises(FrameError):
        decoder.feed(encode_frame(1, 1, b"ok")[10:] + b"\x00\x00\x00\x05")


def test_version_and_reserved_fields_are_not_checked() -> None:
    data = struct.pack(">IHHHHHH", HEADER_SIZE + 2, 7, 0xFFFF, 3, 0x0301, 42, 9) + b"hi"
    assert FrameDecoder(1024).feed(data) == [(0x0301, 42, b"hi")]
    assert FrameDecoder(1024).feed(frame(0x0105, 1, b"", version=0)) == [(0x0105, 1, b"")]


def test_partial_header_is_buffered() -> None:
    decoder = FrameDecoder(1024)
    data = frame(0x0105, 1, b"")
    assert decoder.feed(data[:3]) == []
    assert decoder.buffered() == 3
    assert decoder.feed(data[3:]) == [(0x0105, 1, b"")]


def test_max_frame_bytes_below_header_size_is_refused() -> None:
    with pytest.raises(ValueError):
        FrameDecoder(15)


def test_seq_wrap_sequence_decodes_in_order() -> None:
    seqs = [65533, 65534, 1, 2]
    data = b"".join(encode_frame(0x0105, s, b"") for s in seqs)
    assert [seq for _, seq, _ in FrameDecoder(1024).feed(data)] == seqs
