"""coffeechat.media: what an upload really is, its metadata removed, and the copies clients show.

Images are made here with Pillow; audio and video with ffmpeg's lavfi sources (those tests skip
without ffmpeg, and fail under CI, where it must be installed)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import blurhash
import pytest
from PIL import Image, ImageSequence

from coffeechat.config import ConfigError
from coffeechat.media import (
    MediaConfig,
    MediaRejected,
    analyse,
    run_tool,
    sniff,
    strip_gif,
    strip_jpeg,
    strip_png,
)

XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>secret-xmp-place</rdf:RDF></x:xmpmeta>'


def gps_exif(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(0x8825)
    gps[1] = "N"
    gps[2] = (52.0, 31.0, 12.0)
    gps[3] = "E"
    gps[4] = (13.0, 24.0, 17.0)
    return exif


def two_colour(width: int = 200, height: int = 100) -> Image.Image:
    """Red left half, blue right half: shows where a rotation put the left side."""
    im = Image.new("RGB", (width, height), (255, 0, 0))
    im.paste((0, 0, 255), (width // 2, 0, width, height))
    return im


def analysed(tmp_path: Path, name: str, declared: str = "image/jpeg", config: MediaConfig | None = None):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return analyse(str(tmp_path / name), declared, name, config or MediaConfig(), str(work))


def near(pixel, colour, tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], colour, strict=True))


# -- images


def test_a_jpeg_loses_its_gps_exif_and_xmp_and_keeps_its_pixels_byte_for_byte(tmp_path):
    src = tmp_path / "photo.jpg"
    two_colour().save(src, "JPEG", quality=90, exif=gps_exif().tobytes(), xmp=XMP)
    with Image.open(src) as before:
        assert before.getexif().get_ifd(0x8825)  # the test image does carry a position
    res = analysed(tmp_path, "photo.jpg")
    assert (res.kind, res.mime, res.width, res.height) == ("image", "image/jpeg", 200, 100)
    cleaned = Path(res.cleaned_path).read_bytes()
    assert b"PhoneMaker" not in cleaned and b"secret-xmp-place" not in cleaned and b"Exif\0\0" not in cleaned
    with Image.open(res.cleaned_path) as after:
        assert not after.getexif().get_ifd(0x8825) and "exif" not in after.info and "xmp" not in after.info
        assert after.size == (200, 100)
    # no rotation needed: the entropy-coded data is copied, not re-encoded
    original = src.read_bytes()
    sos = original.index(b"\xff\xda")
    assert cleaned.endswith(original[sos:])
    for v in res.variants.values():
        data = Path(v.path).read_bytes()
        assert b"PhoneMaker" not in data and b"secret-xmp-place" not in data


def test_the_exif_orientation_is_applied_then_dropped(tmp_path):
    two_colour().save(tmp_path / "turned.jpg", "JPEG", quality=95, exif=gps_exif(orientation=6).tobytes())
    res = analysed(tmp_path, "turned.jpg")
    assert (res.width, res.height) == (100, 200)  # orientation 6: shown turned 90° clockwise
    with Image.open(res.cleaned_path) as im:
        assert im.size == (100, 200)
        assert im.getexif().get(0x0112, 1) == 1 and not im.getexif().get_ifd(0x8825)
        rgb = im.convert("RGB")
        assert near(rgb.getpixel((50, 20)), (255, 0, 0)) and near(rgb.getpixel((50, 180)), (0, 0, 255))
    with Image.open(res.variants["thumb"].path) as thumb:
        assert thumb.height > thumb.width


def test_the_declared_type_and_name_are_not_trusted(tmp_path):
    (tmp_path / "cat.png").write_bytes(b"<html><script>alert(1)</script></html>")
    res = analysed(tmp_path, "cat.png", declared="image/png")
    assert (res.kind, res.mime, res.variants) == ("file", "text/plain", {})
    two_colour().save(tmp_path / "notes.txt", "PNG")
    res = analysed(tmp_path, "notes.txt", declared="text/plain")
    assert (res.kind, res.mime, res.width) == ("image", "image/png", 200)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    res = analysed(tmp_path, "broken.png", declared="image/png")
    assert res.kind == "file" and res.mime == "application/octet-stream" and res.notes


def test_an_hls_playlist_posing_as_a_video_never_reaches_ffmpeg(tmp_path):
    (tmp_path / "v.mp4").write_bytes(b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
    res = analysed(tmp_path, "v.mp4", declared="video/mp4")
    assert res.kind == "file" and "poster" not in res.variants


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge image (what a decompression bomb looks like at first)."""

    def chunk(ctype: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_before_it_is_decoded(tmp_path):
    (tmp_path / "bomb.png").write_bytes(png_claiming(60_000, 60_000))
    with pytest.raises(MediaRejected, match="too large"):
        analysed(tmp_path, "bomb.png", declared="image/png")
    (tmp_path / "big.png").write_bytes(png_claiming(9000, 9000))  # 81 Mpx: under Pillow's own limit
    with pytest.raises(MediaRejected, match="more than 50000000 pixels"):
        analysed(tmp_path, "big.png", declared="image/png")
    two_colour().save(tmp_path / "small.png")
    with pytest.raises(MediaRejected):
        analysed(tmp_path, "small.png", config=MediaConfig(max_pixels=19_999))
    assert analysed(tmp_path, "small.png", config=MediaConfig(max_pixels=20_000)).kind == "image"


def test_a_png_with_alpha_keeps_its_transparency_in_the_thumbnail(tmp_path):
    im = Image.new("RGBA", (600, 400), (0, 128, 0, 0))
    im.paste((0, 128, 0, 255), (0, 0, 300, 400))
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at home")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    im.save(tmp_path / "logo.png", pnginfo=info)
    res = analysed(tmp_path, "logo.png", declared="image/png")
    assert (res.kind, res.mime, res.width, res.height) == ("image", "image/png", 600, 400)
    thumb = res.variants["thumb"]
    assert thumb.mime == "image/png" and (thumb.width, thumb.height) == (320, 213)
    with Image.open(thumb.path) as t:
        assert t.mode == "RGBA" and t.getpixel((10, 10))[3] == 255 and t.getpixel((310, 10))[3] == 0
    cleaned = Path(res.cleaned_path).read_bytes()
    assert b"taken at home" not in cleaned and b"secret-xmp-place" not in cleaned
    with Image.open(res.cleaned_path) as c:  # lossless: the same pixels
        assert c.tobytes() == im.tobytes()
    assert "reduced" not in res.variants  # small enough to be shown as it is
    assert blurhash.is_valid_blurhash(res.blurhash)


def test_an_animated_gif_keeps_its_frames_and_loses_its_comments(tmp_path):
    frames = [Image.new("RGB", (64, 48), (c, 255 - c, 0)) for c in (0, 120, 240)]
    frames[0].save(
        tmp_path / "anim.gif",
        save_all=True,
        append_images=frames[1:],
        duration=[100, 200, 300],
        loop=0,
        comment=b"secret comment",
    )
    res = analysed(tmp_path, "anim.gif", declared="image/gif")
    assert (res.kind, res.mime, res.width, res.height) == ("image", "image/gif", 64, 48)
    assert b"secret comment" not in Path(res.cleaned_path).read_bytes()
    with Image.open(res.cleaned_path) as gif:
        assert gif.n_frames == 3 and gif.info.get("loop") == 0
        assert [f.info["duration"] for f in ImageSequence.Iterator(gif)] == [100, 200, 300]
    assert "thumb" in res.variants and "reduced" not in res.variants  # an animation is opened as it is


def test_a_webp_loses_its_exif(tmp_path):
    two_colour().save(tmp_path / "p.webp", "WEBP", exif=gps_exif().tobytes(), xmp=XMP)
    res = analysed(tmp_path, "p.webp", declared="image/webp")
    assert (res.kind, res.mime) == ("image", "image/webp")
    data = Path(res.cleaned_path).read_bytes()
    assert b"PhoneMaker" not in data and b"secret-xmp-place" not in data
    with Image.open(res.cleaned_path) as im:
        im.load()
        assert im.size == (200, 100) and "exif" not in im.info


def test_the_reduced_copy_follows_the_configured_size_and_quality(tmp_path):
    noise = Image.effect_noise((2400, 1600), 60).convert("RGB")
    noise.save(tmp_path / "big.jpg", "JPEG", quality=95)
    sizes = {}
    for q in (30, 90):
        cfg = MediaConfig(reduced_max_px=1000, jpeg_quality=q, thumb_max_px=200)
        work = tmp_path / f"w{q}"
        work.mkdir()
        res = analyse(str(tmp_path / "big.jpg"), "image/jpeg", "big.jpg", cfg, str(work))
        reduced = res.variants["reduced"]
        assert (reduced.width, reduced.height, reduced.mime) == (1000, 667, "image/jpeg")
        assert (res.variants["thumb"].width, res.variants["thumb"].height) == (200, 133)
        sizes[q] = os.path.getsize(reduced.path)
    assert sizes[30] < sizes[90] * 0.7
    work = tmp_path / "webp"
    work.mkdir()
    res = analyse(str(tmp_path / "big.jpg"), "", "x", MediaConfig(variant_format="webp"), str(work))
    assert res.variants["reduced"].mime == "image/webp" and res.variants["thumb"].path.endswith(".webp")


def test_strippers_reject_what_is_not_their_container():
    for strip in (strip_jpeg, strip_png, strip_gif):
        with pytest.raises(ValueError):
            strip(b"not an image at all")


def test_sniff_knows_the_common_signatures():
    assert sniff(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert sniff(b"RIFF\0\0\0\0WAVEfmt ") == "audio/wav"
    assert sniff(b"\0\0\0\x18ftypqt  ") == "video/quicktime"
    assert sniff(b"\0\0\0\x18ftypM4A ") == "audio/mp4"
    assert sniff(b"\0\0\0\x18ftypheic") == "image/heic"
    assert sniff(b"\0\0\0\x18ftypisom") == "video/mp4"
    assert sniff(b"OggS\0\x02" + b"\0" * 22 + b"OpusHead") == "audio/ogg"
    assert sniff(b"ID3\x04") == "audio/mpeg"
    assert sniff(b"%PDF-1.7") == "application/pdf"
    assert sniff("héllo wörld".encode()) == "text/plain"
    assert sniff(b"\0\1\2\3") == "application/octet-stream"
    assert sniff(b"") == "application/octet-stream"


def test_the_config_is_validated():
    MediaConfig().validate()
    for bad in (
        {"thumb_max_px": 10},
        {"reduced_max_px": 100},
        {"jpeg_quality": 0},
        {"variant_format": "gif"},
        {"max_pixels": 0},
        {"tool_timeout": 0},
    ):
        with pytest.raises(ConfigError):
            MediaConfig(**bad).validate()


def test_tools_run_with_a_timeout_and_bounded_output():
    code, out, _ = run_tool(["sleep", "30"], timeout=0.5)
    assert code < 0
    code, out, _ = run_tool(["yes"], timeout=30, limit=1000)
    assert len(out) == 1000 and code != 0  # killed once over the limit


# -- audio and video (ffmpeg)


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    path, probe = shutil.which("ffmpeg"), shutil.which("ffprobe")
    if not path or not probe:
        reason = "ffmpeg/ffprobe are not installed (apt-get install ffmpeg)"
        if os.environ.get("CI"):
            pytest.fail(reason + " (CI is set: not skipping)")
        pytest.skip(reason)
    return path


def make(ffmpeg: str, out: Path, *args: str) -> Path:
    subprocess.run([ffmpeg, "-nostdin", "-v", "error", "-y", *args, str(out)], check=True, timeout=60)
    return out


def test_voice_note_duration(ffmpeg, tmp_path):
    make(ffmpeg, tmp_path / "voice.ogg", "-f", "lavfi", "-i", "sine=frequency=440:duration=2.5", "-c:a", "libopus")
    res = analysed(tmp_path, "voice.ogg", declared="audio/ogg")
    assert (res.kind, res.mime) == ("audio", "audio/ogg")
    assert res.duration == pytest.approx(2.5, abs=0.1)
    assert res.cleaned_path == str(tmp_path / "voice.ogg") and res.variants == {} and res.notes == []


def test_an_audio_only_webm_as_browsers_record_it_is_audio(ffmpeg, tmp_path):
    make(ffmpeg, tmp_path / "rec.webm", "-f", "lavfi", "-i", "sine=duration=1.2", "-c:a", "libopus", "-f", "webm")
    res = analysed(tmp_path, "rec.webm", declared="video/webm")  # what the declared type says is not used
    assert (res.kind, res.mime) == ("audio", "audio/webm")
    assert res.duration == pytest.approx(1.2, abs=0.1)


def test_a_recording_without_a_duration_in_its_header_is_timed_from_its_packets(ffmpeg, tmp_path):
    # Written to a pipe, as a browser's MediaRecorder writes it: the WebM header has no duration.
    with open(tmp_path / "live.webm", "wb") as out:
        argv = [ffmpeg, "-nostdin", "-v", "error", "-f", "lavfi", "-i", "sine=duration=3"]
        subprocess.run([*argv, "-c:a", "libopus", "-f", "webm", "pipe:1"], stdout=out, check=True, timeout=60)
    header = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(tmp_path / "live.webm")],
        capture_output=True,
        timeout=30,
    )
    assert header.stdout.strip() in (b"", b"N/A")  # the case this is about
    res = analysed(tmp_path, "live.webm", declared="audio/webm")
    assert res.kind == "audio" and res.duration == pytest.approx(3.0, abs=0.1)


def test_video_size_duration_poster_and_no_location(ffmpeg, tmp_path):
    make(
        ffmpeg,
        tmp_path / "clip.mp4",
        *("-f", "lavfi", "-i", "testsrc=size=320x240:rate=10:duration=2"),
        *("-f", "lavfi", "-i", "sine=duration=2", "-shortest"),
        *("-c:v", "mpeg4", "-c:a", "aac", "-metadata", "location=+52.5200+013.4050/", "-metadata", "title=secret"),
    )
    res = analysed(tmp_path, "clip.mp4", declared="application/octet-stream")
    assert (res.kind, res.mime, res.width, res.height) == ("video", "video/mp4", 320, 240)
    assert res.duration == pytest.approx(2.0, abs=0.15)
    poster = res.variants["poster"]
    assert (poster.mime, poster.width, poster.height) == ("image/jpeg", 320, 240)
    with Image.open(poster.path) as im:
        im.load()
    assert res.variants["thumb"].width == 320 and blurhash.is_valid_blurhash(res.blurhash)
    assert res.cleaned_path != str(tmp_path / "clip.mp4") and res.notes == []
    tags = json.loads(
        subprocess.run(
            ["ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", res.cleaned_path],
            capture_output=True,
            check=True,
            timeout=30,
        ).stdout
    )
    assert "location" not in tags["format"].get("tags", {}) and "secret" not in json.dumps(tags)
    assert {s["codec_type"] for s in tags["streams"]} == {"video", "audio"}
    before = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", str(tmp_path / "clip.mp4")], capture_output=True, timeout=30
    ).stdout
    assert b"location" in before  # the test file did carry a position


def test_without_ffmpeg_the_notes_say_so(ffmpeg, tmp_path):
    make(ffmpeg, tmp_path / "clip.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5:duration=1", "-c:v", "mpeg4")
    make(ffmpeg, tmp_path / "rec.webm", "-f", "lavfi", "-i", "sine=duration=1", "-c:a", "libopus", "-f", "webm")
    off = MediaConfig(ffmpeg="", ffprobe="")
    res = analysed(tmp_path, "clip.mp4", declared="video/mp4", config=off)
    assert (res.kind, res.duration, res.variants) == ("video", None, {})
    assert any("ffprobe is off" in n for n in res.notes) and any("no poster frame" in n for n in res.notes)
    missing = MediaConfig(ffmpeg="/nonexistent/ffmpeg", ffprobe="/nonexistent/ffprobe")
    res = analysed(tmp_path, "clip.mp4", declared="video/mp4", config=missing)
    assert any("ffprobe is not installed" in n for n in res.notes)
    assert any("ffmpeg is not installed: no poster frame" in n for n in res.notes)
    res = analysed(tmp_path, "rec.webm", declared="audio/webm;codecs=opus", config=off)
    assert (res.kind, res.mime) == ("audio", "audio/webm")  # the declared audio/ type decides, without ffprobe


def test_a_truncated_video_is_a_file(ffmpeg, tmp_path):
    make(ffmpeg, tmp_path / "clip.mp4", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=5:duration=1", "-c:v", "mpeg4")
    data = (tmp_path / "clip.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:64])
    res = analysed(tmp_path, "cut.mp4", declared="video/mp4")
    assert res.kind == "file" and res.notes
