"""Media processing for uploaded files: what a file really is, and the copies a chat client shows.

``analyse(path, declared_mime, name, config, workdir)`` is synchronous and CPU/disk bound: the files
feature runs it in a worker (``api.cpu_runner``), never on the reactor.  It

- sniffs the real type from the bytes (the declared type and the name are never trusted: a "photo"
  that is an HTML page is a file, served as an attachment);
- for images (Pillow: JPEG, PNG, GIF, WebP; BMP and TIFF are re-encoded as PNG): refuses
  decompression bombs (``max_pixels``, frames included), applies the EXIF orientation, strips
  EXIF/GPS/XMP/IPTC/comments from the stored original (losslessly by rewriting the container's
  chunks when no rotation is needed, so animated GIF/WebP/APNG keep their frames), and writes a
  thumbnail and a size-reduced copy (maximum size and quality from the config), width/height and a
  blurhash computed on a tiny downscale;
- for audio and video: duration, width/height (rotation applied) with ffprobe, a poster frame with
  ffmpeg, and video metadata (GPS of phone cameras) removed by a lossless remux; each step that
  needs a binary that is not installed says so in ``notes`` instead.

ffmpeg and ffprobe run as subprocesses (never a shell) with a timeout and bounded output, with the
demuxer forced from the sniffed type and only the ``file`` protocol allowed, so an upload that is an
HLS or concat playlist cannot make them read other files or the network.

A refused upload (a decompression bomb) raises ``MediaRejected`` (a ``ValueError``): the caller
answers with an error instead of storing it.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

from coffeechat.config import ConfigError

IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP", "TIFF")  # what Pillow may open (no EPS/PSD/...)
_PIL_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "GIF": "image/gif",
    "WEBP": "image/webp",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
}
_EXT = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/gif": "gif",
    "image/webp": "webp",
    "video/mp4": "mp4",
    "video/quicktime": "mov",
    "video/webm": "webm",
    "video/x-matroska": "mkv",
}
# The demuxer ffmpeg/ffprobe is told to use for each sniffed container (never guessed by ffmpeg).
_DEMUXER = {
    "video/mp4": "mov",
    "video/quicktime": "mov",
    "video/3gpp": "mov",
    "audio/mp4": "mov",
    "video/webm": "matroska",
    "video/x-matroska": "matroska",
    "audio/webm": "matroska",
    "audio/ogg": "ogg",
    "video/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/aac": "aac",
    "audio/wav": "wav",
    "audio/flac": "flac",
    "audio/amr": "amr",
    "video/x-msvideo": "avi",
}
# Lossless remux of a video without its metadata: the muxer per sniffed type.
_REMUX = {"video/mp4": "mp4", "video/quicktime": "mov", "video/webm": "webm", "video/x-matroska": "matroska"}
MAX_TOOL_OUTPUT = 1024 * 1024  # bytes of ffprobe JSON (or ffmpeg stderr) read at most


class MediaRejected(ValueError):
    """The upload must not be stored (e.g. a decompression bomb); the message says why."""


@dataclass
class MediaConfig:
    """The media part of ``[files]`` (``[files.media]``): sizes and quality of the copies, the
    largest image accepted, and the ffmpeg/ffprobe to use ("" turns one off; a bare name is looked
    up in PATH)."""

    thumb_max_px: int = 320
    reduced_max_px: int = 1280
    jpeg_quality: int = 80  # the reduced copy (and WebP's quality when variant_format = "webp")
    thumb_quality: int = 70
    original_quality: int = 92  # an original re-encoded only to apply its EXIF orientation
    variant_format: str = "jpeg"  # "jpeg" (PNG for images with alpha) or "webp"
    reduced_min_bytes: int = 256 * 1024  # an image smaller than this (and than reduced_max_px) has no reduced copy
    max_pixels: int = 50_000_000  # width * height * frames: more is refused as a decompression bomb
    blurhash_components: int = 4  # along the longer side (3 along the shorter)
    strip_video_metadata: bool = True
    ffmpeg: str = "ffmpeg"
    ffprobe: str = "ffprobe"
    tool_timeout: float = 30.0  # seconds per ffmpeg/ffprobe run

    def validate(self) -> None:
        if not 32 <= self.thumb_max_px <= 2048:
            raise ConfigError("files.media.thumb_max_px must be within 32..2048")
        if not self.thumb_max_px <= self.reduced_max_px <= 8192:
            raise ConfigError("files.media.reduced_max_px must be within thumb_max_px..8192")
        for key in ("jpeg_quality", "thumb_quality", "original_quality"):
            if not 1 <= getattr(self, key) <= 100:
                raise ConfigError(f"files.media.{key} must be within 1..100")
        if self.variant_format not in ("jpeg", "webp"):
            raise ConfigError('files.media.variant_format must be "jpeg" or "webp"')
        if self.reduced_min_bytes < 0:
            raise ConfigError("files.media.reduced_min_bytes must be >= 0")
        if not 1 <= self.max_pixels <= 1_000_000_000:
            raise ConfigError("files.media.max_pixels must be within 1..1000000000")
        if not 1 <= self.blurhash_components <= 9:
            raise ConfigError("files.media.blurhash_components must be within 1..9")
        if not 0 < self.tool_timeout <= 3600:
            raise ConfigError("files.media.tool_timeout must be within (0, 3600] seconds")


@dataclass(frozen=True, slots=True)
class Variant:
    """A derived copy of a file (thumbnail, reduced image, video poster)."""

    path: str
    mime: str
    width: int
    height: int


@dataclass(slots=True)
class MediaResult:
    """What ``analyse`` found and made.  ``cleaned_path`` is the file to store as the original (the
    upload itself when nothing had to be removed)."""

    mime: str
    kind: str  # "image" | "audio" | "video" | "file"
    width: int = 0
    height: int = 0
    duration: float | None = None
    blurhash: str = ""
    cleaned_path: str = ""
    variants: dict[str, Variant] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def analyse(path: str, declared_mime: str, name: str, config: MediaConfig, workdir: str) -> MediaResult:
    """Sniff, clean and describe the file at ``path``, writing derived files into ``workdir``.

    ``declared_mime`` and ``name`` are hints only (an audio-only WebM/MP4 recorded by a browser is
    told from a video by ffprobe, or by the declared ``audio/`` type when ffprobe is missing)."""
    with open(path, "rb") as f:
        head = f.read(4096)
    mime = sniff(head)
    if mime.startswith("image/") and mime != "image/heic":
        return _analyse_image(path, mime, config, workdir)
    if mime in _DEMUXER:
        return _analyse_av(path, mime, declared_mime, config, workdir)
    result = MediaResult(mime=mime, kind="file", cleaned_path=path)
    if mime == "image/heic":
        result.notes.append("HEIC/HEIF images are not decoded: stored as a file")
    return result


# -- sniffing


def sniff(head: bytes) -> str:
    """The MIME type the first bytes of a file show (``application/octet-stream`` if unknown)."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and len(head) >= 12:
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav", b"AVI ": "video/x-msvideo"}.get(
            head[8:12], "application/octet-stream"
        )
    if head.startswith(b"BM") and len(head) >= 26 and head[6:10] == b"\0\0\0\0":
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head[:64] else "video/x-matroska"
    if head.startswith(b"OggS"):
        return "video/ogg" if b"theora" in head[:256] else "audio/ogg"
    if head.startswith(b"fLaC"):
        return "audio/flac"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3"):
        return "audio/mpeg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0:
        return "audio/aac"  # ADTS
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"mif1", b"msf1", b"avif"):
            return "image/heic"
        if brand == b"qt  ":
            return "video/quicktime"
        if brand in (b"M4A ", b"M4B "):
            return "audio/mp4"
        if brand.startswith(b"3g"):
            return "video/3gpp"
        return "video/mp4"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"PK\x03\x04"):
        return "application/zip"
    if head and b"\0" not in head:
        try:
            head.decode("utf-8")
            return "text/plain"
        except UnicodeDecodeError as e:
            if e.start >= len(head) - 4:  # a character cut by the 4 KB window
                return "text/plain"
    return "application/octet-stream"


# -- images


def _analyse_image(path: str, mime: str, config: MediaConfig, workdir: str) -> MediaResult:
    from PIL import Image, ImageOps

    notes: list[str] = []
    try:
        im = Image.open(path, formats=IMAGE_FORMATS)  # reads the header only
    except Image.DecompressionBombError as e:
        raise MediaRejected(f"image too large: {e}") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds for a broken file
        return MediaResult(
            mime="application/octet-stream", kind="file", cleaned_path=path, notes=[f"not a decodable image: {e}"]
        )
    with im:
        width, height = im.size
        frames = getattr(im, "n_frames", 1) if im.format in ("GIF", "WEBP", "PNG") else 1
        if width * height * max(1, frames) > config.max_pixels:
            raise MediaRejected(
                f"image too large: {width}x{height} x {frames} frame(s) is more than {config.max_pixels} pixels"
            )
        animated = frames > 1
        fmt = im.format
        orientation = _orientation(im)
        try:
            im.load()
        except Image.DecompressionBombError as e:
            raise MediaRejected(f"image too large: {e}") from None
        except Exception as e:  # noqa: BLE001
            return MediaResult(
                mime="application/octet-stream", kind="file", cleaned_path=path, notes=[f"not a decodable image: {e}"]
            )
        rotate = orientation not in (0, 1) and not animated
        if orientation not in (0, 1) and animated:
            notes.append("EXIF orientation of an animated image is not applied")
        frame = ImageOps.exif_transpose(im) if rotate else im.copy()
        if rotate:
            width, height = frame.size
        cleaned, mime = _clean_original(path, im, frame, fmt, mime, rotate, config, workdir, notes)
    variants: dict[str, Variant] = {}
    variants["thumb"] = _save_variant(frame, config.thumb_max_px, config.thumb_quality, "thumb", config, workdir)
    big = max(width, height) > config.reduced_max_px
    if not animated and (big or os.path.getsize(cleaned) > config.reduced_min_bytes):
        variants["reduced"] = _save_variant(
            frame, config.reduced_max_px, config.jpeg_quality, "reduced", config, workdir
        )
    return MediaResult(
        mime=mime,
        kind="image",
        width=width,
        height=height,
        blurhash=_blurhash(frame, config.blurhash_components),
        cleaned_path=cleaned,
        variants=variants,
        notes=notes,
    )


def _orientation(im: Any) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block means no orientation
        return 1


def _clean_original(
    path: str,
    im: Any,
    frame: Any,
    fmt: str,
    mime: str,
    rotate: bool,
    config: MediaConfig,
    workdir: str,
    notes: list[str],
) -> tuple[str, str]:
    """The original without metadata: its chunks rewritten when no rotation is needed (lossless),
    else re-encoded upright.  BMP/TIFF become PNG."""
    with open(path, "rb") as f:
        data = f.read()
    stripped: bytes | None = None
    if not rotate:
        try:
            stripped = {"JPEG": strip_jpeg, "PNG": strip_png, "GIF": strip_gif, "WEBP": strip_webp}.get(
                fmt, lambda b: None
            )(data)
        except ValueError as e:
            notes.append(f"metadata could not be removed losslessly ({e}): re-encoded")
    if stripped is not None:
        if stripped == data:
            return path, mime
        out = os.path.join(workdir, "cleaned." + _EXT[mime])
        with open(out, "wb") as f:
            f.write(stripped)
        return out, mime
    icc = im.info.get("icc_profile")
    extra: dict[str, Any] = {"icc_profile": icc} if icc else {}
    if fmt == "JPEG":
        img = frame.copy() if frame.mode in ("RGB", "L", "CMYK") else frame.convert("RGB")
        img.info = {}  # Pillow would write the XMP it read back into the copy
        out = os.path.join(workdir, "cleaned.jpg")
        img.save(out, "JPEG", quality=config.original_quality, optimize=True, **extra)
        return out, "image/jpeg"
    transparency = frame.info.get("transparency")
    if transparency is not None and frame.mode in ("P", "L", "RGB"):
        extra["transparency"] = transparency
    img = frame.copy() if frame.mode in ("RGB", "RGBA", "L", "LA", "P", "I", "I;16") else frame.convert("RGBA")
    img.info = {}
    if fmt == "WEBP":
        out = os.path.join(workdir, "cleaned.webp")
        extra.pop("transparency", None)
        img.save(out, "WEBP", quality=config.original_quality, **extra)
        return out, "image/webp"
    out = os.path.join(workdir, "cleaned.png")
    img.save(out, "PNG", optimize=False, **extra)
    if fmt in ("BMP", "TIFF"):
        notes.append(f"{fmt} re-encoded as PNG")
    return out, "image/png"


def _has_alpha(im: Any) -> bool:
    return im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)


def _save_variant(frame: Any, max_px: int, quality: int, name: str, config: MediaConfig, workdir: str) -> Variant:
    from PIL import Image

    img = frame.copy()
    img.thumbnail((max_px, max_px), Image.Resampling.LANCZOS)
    alpha = _has_alpha(img)
    img = img.convert("RGBA" if alpha else "RGB")
    img.info = {}  # no EXIF/XMP carried into the copies
    if config.variant_format == "webp":
        out, mime = os.path.join(workdir, f"{name}.webp"), "image/webp"
        img.save(out, "WEBP", quality=quality, method=4)
    elif alpha:
        out, mime = os.path.join(workdir, f"{name}.png"), "image/png"
        img.save(out, "PNG", optimize=True)
    else:
        out, mime = os.path.join(workdir, f"{name}.jpg"), "image/jpeg"
        img.save(out, "JPEG", quality=quality, optimize=True, progressive=True)
    return Variant(path=out, mime=mime, width=img.width, height=img.height)


def _blurhash(frame: Any, components: int) -> str:
    """A blurhash of a 32-pixel downscale (cheap whatever the image size); alpha over white."""
    from PIL import Image

    small = frame.copy()
    small.thumbnail((32, 32), Image.Resampling.BILINEAR)
    if _has_alpha(small):
        rgba = small.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        small = Image.alpha_composite(bg, rgba)
    small = small.convert("RGB")
    short = max(1, min(components, 3))
    x, y = (components, short) if small.width >= small.height else (short, components)
    try:
        return _encode_blurhash(small, x, y)
    except Exception:  # noqa: BLE001 - a placeholder is optional
        return ""


def _encode_blurhash(rgb: Any, x: int, y: int) -> str:
    """blurhash-python's C encoder fed the RGB bytes directly (its ``encode`` goes through a
    Python list and an API Pillow deprecates); its public ``encode`` if that layout changes."""
    import blurhash

    try:
        from blurhash._functions import ffi, lib
    except ImportError:  # pragma: no cover - another packaging of the library
        return blurhash.encode(rgb, x, y)
    pixels = ffi.from_buffer("uint8_t[]", rgb.tobytes())
    dest = ffi.new("char[]", 2 + 4 + (9 * 9 - 1) * 2 + 1)
    result = lib.create_hash_from_pixels(x, y, rgb.width, rgb.height, pixels, rgb.width * 3, dest)
    if result == ffi.NULL:
        raise ValueError("bad blurhash components")
    return ffi.string(result).decode()


# -- lossless metadata removal, per container


def strip_jpeg(data: bytes) -> bytes:
    """A JPEG without APP1 (EXIF, XMP), APP13 (IPTC) and COM segments; JFIF, ICC and Adobe kept.
    The compressed image data is copied byte for byte."""
    if not data.startswith(b"\xff\xd8"):
        raise ValueError("not a JPEG")
    out = bytearray(b"\xff\xd8")
    i = 2
    while i < len(data):
        if data[i] != 0xFF:
            raise ValueError("bad JPEG marker")
        marker = data[i + 1] if i + 1 < len(data) else 0
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan: the rest is image data
            out += data[i:]
            return bytes(out)
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += data[i : i + 2]
            i += 2
            continue
        if i + 4 > len(data):
            raise ValueError("truncated JPEG")
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        end = i + 2 + length
        if length < 2 or end > len(data):
            raise ValueError("truncated JPEG segment")
        if not (marker in (0xE1, 0xED, 0xFE) or 0xE3 <= marker <= 0xEC or marker == 0xEF):
            out += data[i:end]
        i = end
    raise ValueError("JPEG without image data")


_PNG_DROP = {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"}


def strip_png(data: bytes) -> bytes:
    """A PNG (or APNG) without its text chunks (XMP lives in iTXt), eXIf and tIME."""
    sig = b"\x89PNG\r\n\x1a\n"
    if not data.startswith(sig):
        raise ValueError("not a PNG")
    out = bytearray(sig)
    i = len(sig)
    while i + 8 <= len(data):
        (length,) = struct.unpack(">I", data[i : i + 4])
        ctype = data[i + 4 : i + 8]
        end = i + 12 + length
        if end > len(data):
            raise ValueError("truncated PNG chunk")
        if ctype not in _PNG_DROP:
            out += data[i:end]
        i = end
        if ctype == b"IEND":
            return bytes(out)
    raise ValueError("PNG without IEND")


def strip_gif(data: bytes) -> bytes:
    """A GIF without comment extensions and application extensions other than the looping ones
    (XMP is an application extension); every frame and its timing is kept."""
    if data[:6] not in (b"GIF87a", b"GIF89a") or len(data) < 13:
        raise ValueError("not a GIF")
    flags = data[10]
    i = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    out = bytearray(data[:i])

    def sub_blocks(j: int) -> int:
        while True:
            if j >= len(data):
                raise ValueError("truncated GIF")
            n = data[j]
            j += 1 + n
            if n == 0:
                return j

    while i < len(data):
        b = data[i]
        if b == 0x3B:
            out += b"\x3b"
            return bytes(out)
        if b == 0x2C:  # image descriptor (+ local colour table) + LZW data
            if i + 10 > len(data):
                raise ValueError("truncated GIF")
            lflags = data[i + 9]
            j = i + 10 + (3 * (2 << (lflags & 7)) if lflags & 0x80 else 0) + 1
            end = sub_blocks(j)
            out += data[i:end]
            i = end
        elif b == 0x21:
            label = data[i + 1] if i + 1 < len(data) else 0
            end = sub_blocks(i + 2)
            keep = label in (0xF9, 0x01)  # graphic control, plain text
            if label == 0xFF:
                app = data[i + 3 : i + 14]
                keep = app in (b"NETSCAPE2.0", b"ANIMEXTS1.0")
            if keep:
                out += data[i:end]
            i = end
        else:
            raise ValueError("bad GIF block")
    out += b"\x3b"  # a GIF without its trailer: end it
    return bytes(out)


def strip_webp(data: bytes) -> bytes:
    """A WebP without EXIF and XMP chunks (VP8X flags updated); frames kept."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise ValueError("not a WebP")
    chunks = bytearray()
    i = 12
    while i + 8 <= len(data):
        ctype = data[i : i + 4]
        (length,) = struct.unpack("<I", data[i + 4 : i + 8])
        end = i + 8 + length + (length & 1)
        if i + 8 + length > len(data):
            raise ValueError("truncated WebP chunk")
        chunk = bytearray(data[i:end])
        if ctype == b"VP8X" and length >= 1:
            chunk[8] &= ~(0x08 | 0x04) & 0xFF  # EXIF and XMP flags
        if ctype not in (b"EXIF", b"XMP "):
            chunks += chunk
        i = end
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WEBP" + bytes(chunks)


# -- audio and video


def find_tool(setting: str) -> str:
    """The path of ffmpeg/ffprobe per the config ("" off; a bare name looked up in PATH)."""
    if not setting:
        return ""
    if os.sep in setting:
        return setting if os.access(setting, os.X_OK) else ""
    return shutil.which(setting) or ""


def run_tool(argv: list[str], timeout: float, limit: int = MAX_TOOL_OUTPUT) -> tuple[int, bytes, bytes]:
    """Run a binary (no shell) with a timeout, keeping at most ``limit`` bytes of stdout and of
    stderr; a run that times out or says more is killed (return code -9 / its own)."""
    proc = subprocess.Popen(  # noqa: S603 - argv list, no shell
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, close_fds=True
    )
    bufs = (bytearray(), bytearray())

    def pump(stream: Any, buf: bytearray) -> None:
        while chunk := stream.read1(65536):
            room = limit - len(buf)
            if room <= 0:
                proc.kill()
                continue
            buf += chunk[:room]

    threads = [
        threading.Thread(target=pump, args=(s, b), daemon=True)
        for s, b in zip((proc.stdout, proc.stderr), bufs, strict=True)
    ]
    for t in threads:
        t.start()
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        code = -9 if code >= 0 else code
    for t in threads:
        t.join(5)
    return code, bytes(bufs[0]), bytes(bufs[1])


def _input_args(path: str, mime: str) -> list[str]:
    return ["-protocol_whitelist", "file", "-f", _DEMUXER[mime], "-i", "file:" + os.path.abspath(path)]


def probe(path: str, mime: str, ffprobe: str, timeout: float) -> dict[str, Any] | None:
    """ffprobe's description of the file's format and streams, or None if it cannot read it."""
    code, out, _ = run_tool(
        [ffprobe, "-v", "error", "-print_format", "json", "-show_format", "-show_streams", *_input_args(path, mime)],
        timeout,
    )
    if code != 0:
        return None
    try:
        info = json.loads(out)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


def last_timestamp(path: str, mime: str, ffprobe: str, timeout: float) -> float | None:
    """The end of the first stream's last packet: the duration of a file whose header has none.
    Reads packet times only (no decoding); a file with more packets than the output bound holds
    (hours of audio) gets None."""
    code, out, _ = run_tool(
        [
            ffprobe,
            "-v",
            "error",
            "-select_streams",
            "0",
            "-show_entries",
            "packet=pts_time,duration_time",
            "-of",
            "csv=p=0",
            *_input_args(path, mime),
        ],  # fmt: skip
        timeout,
    )
    if code != 0:
        return None
    end = None
    for line in out.decode("ascii", "replace").splitlines():
        parts = [_float(p) for p in line.split(",")]
        if parts and parts[0] is not None:
            finish = parts[0] + (parts[1] if len(parts) > 1 and parts[1] is not None else 0.0)
            end = finish if end is None else max(end, finish)
    return end


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if f >= 0 and f == f and f != float("inf") else None


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(_float(abs(float(side["rotation"]))) or 0) % 360
    return int(_float((stream.get("tags") or {}).get("rotate")) or 0) % 360


def _analyse_av(path: str, mime: str, declared: str, config: MediaConfig, workdir: str) -> MediaResult:
    kind = "video" if mime.startswith("video/") else "audio"
    result = MediaResult(mime=mime, kind=kind, cleaned_path=path)
    ffprobe = find_tool(config.ffprobe)
    ffmpeg = find_tool(config.ffmpeg)
    info = None
    if not ffprobe:
        why = "is off in the config" if not config.ffprobe else "is not installed"
        result.notes.append(f"ffprobe {why}: no duration or size read from the file")
        if kind == "video" and declared.lower().startswith("audio/"):
            result.kind, result.mime = "audio", _audio_mime(mime)
    else:
        info = probe(path, mime, ffprobe, config.tool_timeout)
        if info is None:
            return MediaResult(
                mime="application/octet-stream",
                kind="file",
                cleaned_path=path,
                notes=["ffprobe could not read it as audio or video"],
            )
        streams = [s for s in info.get("streams") or [] if isinstance(s, dict)]
        videos = [
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ]
        audios = [s for s in streams if s.get("codec_type") == "audio"]
        if videos:
            result.kind = "video"
            if mime.startswith("audio/"):
                result.mime = {"audio/mp4": "video/mp4", "audio/webm": "video/webm", "audio/ogg": "video/ogg"}.get(
                    mime, mime
                )
            v = videos[0]
            w, h = int(_float(v.get("width")) or 0), int(_float(v.get("height")) or 0)
            if _rotation(v) in (90, 270):
                w, h = h, w
            result.width, result.height = w, h
        elif audios:
            result.kind, result.mime = "audio", _audio_mime(mime)
        else:
            return MediaResult(
                mime="application/octet-stream", kind="file", cleaned_path=path, notes=["no audio or video stream"]
            )
        duration = _float((info.get("format") or {}).get("duration"))
        if duration is None:
            durations = [_float(s.get("duration")) for s in videos + audios]
            duration = max((d for d in durations if d is not None), default=None)
        if duration is None:  # a stream written as it was recorded (MediaRecorder's WebM) says none
            duration = last_timestamp(path, mime, ffprobe, config.tool_timeout)
        result.duration = round(duration, 3) if duration is not None else None
    if result.kind == "video":
        if not ffmpeg:
            why = "is off in the config" if not config.ffmpeg else "is not installed"
            result.notes.append(f"ffmpeg {why}: no poster frame")
        else:
            _poster(path, mime, result, ffmpeg, config, workdir)
            if config.strip_video_metadata and mime in _REMUX:
                _remux_without_metadata(path, mime, result, ffmpeg, config, workdir)
    return result


def _audio_mime(mime: str) -> str:
    return {"video/webm": "audio/webm", "video/x-matroska": "audio/webm", "video/mp4": "audio/mp4",
            "video/3gpp": "audio/3gpp", "video/ogg": "audio/ogg"}.get(mime, mime)  # fmt: skip


def _poster(path: str, mime: str, result: MediaResult, ffmpeg: str, config: MediaConfig, workdir: str) -> None:
    """A JPEG frame (at 10% of the video, at most 1 s in) as the poster, and a thumbnail of it."""
    from PIL import Image

    at = min(1.0, (result.duration or 0) * 0.1)
    out = os.path.join(workdir, "poster.jpg")
    px = config.reduced_max_px
    code, _, err = run_tool(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-ss",
            f"{at:.3f}",
            *_input_args(path, mime),
            "-frames:v",
            "1",
            "-an",
            "-sn",
            "-dn",
            "-vf",
            f"scale='min({px},iw)':'min({px},ih)':force_original_aspect_ratio=decrease",
            "-q:v",
            "3",
            "-f",
            "image2",
            "-c:v",
            "mjpeg",
            out,
        ],  # fmt: skip
        config.tool_timeout,
        64 * 1024,
    )
    if code != 0 or not os.path.exists(out) or os.path.getsize(out) == 0:
        result.notes.append("ffmpeg could not extract a poster frame: " + err.decode("utf-8", "replace")[-200:])
        return
    try:
        with Image.open(out, formats=["JPEG"]) as im:
            im.load()
            result.variants["poster"] = Variant(out, "image/jpeg", im.width, im.height)
            if not result.width:
                result.width, result.height = im.size
            result.variants["thumb"] = _save_variant(
                im, config.thumb_max_px, config.thumb_quality, "thumb", config, workdir
            )
            result.blurhash = _blurhash(im, config.blurhash_components)
    except Exception as e:  # noqa: BLE001
        result.notes.append(f"the poster frame is unreadable: {e}")


def _remux_without_metadata(
    path: str, mime: str, result: MediaResult, ffmpeg: str, config: MediaConfig, workdir: str
) -> None:
    """Copy the streams into a new container without global/stream metadata (phones put the GPS
    position there); on failure the original is kept and a note says so."""
    out = os.path.join(workdir, "cleaned." + _EXT[mime])
    extra = ["-movflags", "+faststart"] if _REMUX[mime] in ("mp4", "mov") else []
    code, _, err = run_tool(
        [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-y",
            *_input_args(path, mime),
            "-map",
            "0:v",
            "-map",
            "0:a?",
            "-c",
            "copy",
            "-map_metadata",
            "-1",
            "-map_chapters",
            "-1",
            "-fflags",
            "+bitexact",
            *extra,
            "-f",
            _REMUX[mime],
            out,
        ],  # fmt: skip
        config.tool_timeout,
        64 * 1024,
    )
    if code == 0 and os.path.exists(out) and os.path.getsize(out) > 0:
        result.cleaned_path = out
    else:
        result.notes.append("video metadata could not be removed: " + err.decode("utf-8", "replace")[-200:])


__all__ = ["MediaConfig", "MediaRejected", "MediaResult", "Variant", "analyse", "sniff"]
