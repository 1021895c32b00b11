"""Pure, synchronous Pillow work: decide what an upload really is. Call it off the event loop."""

from __future__ import annotations

import zlib
from io import BytesIO

from PIL import Image, ImageFile

from server.errors import ImageTooManyPixels, UnsupportedImage
from server.formats import FORMATS, STORED_EXTENSION
from server.models import ImageInfo

# An animation may hold this many times the single-image pixel limit across its frames
# (a viewer's browser decodes them all).
ANIMATION_PIXEL_FACTOR = 4

# Pillow's own bomb check warns, then raises at twice its limit, through a process-wide
# setting. We check the configured limit explicitly right after reading the header
# (before any pixel is decoded), so Pillow's global check is switched off.
Image.MAX_IMAGE_PIXELS = None
ImageFile.LOAD_TRUNCATED_IMAGES = False


def identify(data: bytes, max_pixels: int) -> ImageInfo:
    """Decode `data` fully and return its real format and size.

    Raises UnsupportedImage for anything that is not a complete, valid JPEG/PNG/GIF and
    ImageTooManyPixels for images whose dimensions exceed `max_pixels`.
    """
    try:
        with Image.open(BytesIO(data), formats=FORMATS) as img:
            fmt = img.format or ""
            width, height = img.size
            if width < 1 or height < 1:
                raise UnsupportedImage("The image has no pixels.")
            if width * height > max_pixels:
                raise ImageTooManyPixels(
                    "The image is {width}×{height} pixels; the limit is {limit} megapixels.",
                    width=width,
                    height=height,
                    limit=f"{max_pixels / 1_000_000:g}",
                )
            # verify() checks structure and checksums but decodes nothing;
            # a second open + load() decodes the pixels and catches truncation.
            img.verify()
        with Image.open(BytesIO(data), formats=(fmt,)) as img:
            if fmt == "JPEG":
                # libjpeg still reads every byte of the scan at 1/8 scale (so truncation
                # is caught) but skips most of the work of producing full-size pixels.
                img.draft("RGB", (max(1, width // 8), max(1, height // 8)))
            img.load()
            frames = getattr(img, "n_frames", 1)
        if width * height * frames > max_pixels * ANIMATION_PIXEL_FACTOR:
            raise ImageTooManyPixels(
                "The animation has {frames} frames of {width}×{height} pixels; that is too "
                "many pixels to show safely.",
                frames=frames,
                width=width,
                height=height,
            )
    except (UnsupportedImage, ImageTooManyPixels):
        raise
    except Exception as exc:  # Pillow raises many types on hostile input; all mean "not valid"
        raise UnsupportedImage(
            "The file is not a valid JPEG, PNG or GIF image (it may be damaged or another format)."
        ) from exc
    if fmt not in STORED_EXTENSION:
        raise UnsupportedImage()
    return ImageInfo(format=fmt, extension=STORED_EXTENSION[fmt], width=width, height=height)


# --- location privacy -------------------------------------------------------------------
# Photos from phones carry where they were taken. Without re-encoding a single pixel, we
# drop the GPS block from EXIF and every XMP packet (which can repeat the location); the
# rest of the metadata (camera, orientation, colour profile) stays.

_GPS_IFD = 0x8825
_XMP_PREFIXES = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DROPPED_TEXT_KEYS = (b"XML:com.adobe.xmp", b"Raw profile type exif", b"Raw profile type APP1")


def _exif_without_gps(tiff: bytes) -> bytes | None:
    """TIFF-structured EXIF without its GPS block; None when there is no GPS to remove,
    b"" when the EXIF cannot be parsed (then it goes entirely: privacy first)."""
    exif = Image.Exif()
    try:
        exif.load(tiff)
        if _GPS_IFD not in exif:
            return None
        del exif[_GPS_IFD]
        return exif.tobytes()[len(b"Exif\x00\x00") :]
    except Exception:  # hostile metadata: drop it rather than keep a location we can't see
        return b""


def _jpeg_without_location(data: bytes) -> bytes:
    out = [data[:2]]
    pos, changed = 2, False
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            out.append(b"\xff")
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan / end of image: the rest is pixels
            break
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment = data[pos : pos + 2 + length]
        payload = segment[4:]
        pos += 2 + length
        if marker == 0xE1 and payload.startswith(_XMP_PREFIXES):
            changed = True
            continue
        if marker == 0xE1 and payload.startswith(b"Exif\x00\x00"):
            tiff = _exif_without_gps(payload[6:])
            if tiff is not None:
                changed = True
                if not tiff:
                    continue
                body = b"Exif\x00\x00" + tiff
                segment = b"\xff\xe1" + (len(body) + 2).to_bytes(2, "big") + body
        out.append(segment)
    out.append(data[pos:])
    return b"".join(out) if changed else data


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = zlib.crc32(kind + body) & 0xFFFFFFFF
    return len(body).to_bytes(4, "big") + kind + body + crc.to_bytes(4, "big")


def _png_without_location(data: bytes) -> bytes:
    out = [_PNG_SIGNATURE]
    pos, changed = len(_PNG_SIGNATURE), False
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        chunk = data[pos : pos + 12 + length]
        pos += 12 + length
        if kind in (b"iTXt", b"tEXt", b"zTXt") and body.split(b"\x00", 1)[0] in (
            _PNG_DROPPED_TEXT_KEYS
        ):
            changed = True
            continue
        if kind == b"eXIf":
            tiff = _exif_without_gps(body)
            if tiff is not None:
                changed = True
                if not tiff:
                    continue
                chunk = _png_chunk(b"eXIf", tiff)
        out.append(chunk)
        if kind == b"IEND":
            break
    out.append(data[pos:])
    return b"".join(out) if changed else data


def strip_location(data: bytes, fmt: str) -> bytes:
    """`data` without GPS location metadata; the same bytes when there was none.

    GIF has no standard place for a location, so GIFs are returned unchanged."""
    if fmt == "JPEG" and data.startswith(b"\xff\xd8"):
        return _jpeg_without_location(data)
    if fmt == "PNG" and data.startswith(_PNG_SIGNATURE):
        return _png_without_location(data)
    return data


def prepare_upload(data: bytes, max_pixels: int, strip: bool) -> tuple[ImageInfo, bytes | None]:
    """An upload's whole check in one call (one trip to an image worker process): verify it,
    and strip its location when `strip`. The bytes to store come back only when stripping
    changed them (None: store `data` as sent), so the common case copies nothing back."""
    info = identify(data, max_pixels)
    if strip:
        stripped = strip_location(data, info.format)
        if stripped is not data:
            return info, stripped
    return info, None
