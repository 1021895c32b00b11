"""Pure, synchronous Pillow work: decide what an upload really is. Call it off the event loop."""

from __future__ import annotations

from io import BytesIO

from PIL import Image, ImageFile

from server.errors import ImageTooManyPixels, UnsupportedImage
from server.models import ImageInfo

EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif"}

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
        with Image.open(BytesIO(data), formats=tuple(EXTENSIONS)) as img:
            fmt = img.format or ""
            width, height = img.size
            if width < 1 or height < 1:
                raise UnsupportedImage("The image has no pixels.")
            if width * height > max_pixels:
                raise ImageTooManyPixels(
                    f"The image is {width}×{height} pixels; the limit is "
                    f"{max_pixels / 1_000_000:g} megapixels."
                )
            # verify() checks structure and checksums but decodes nothing;
            # a second open + load() decodes the pixels and catches truncation.
            img.verify()
        with Image.open(BytesIO(data), formats=(fmt,)) as img:
            img.load()
    except (UnsupportedImage, ImageTooManyPixels):
        raise
    except Exception as exc:  # Pillow raises many types on hostile input; all mean "not valid"
        raise UnsupportedImage(
            "The file is not a valid JPEG, PNG or GIF image (it may be damaged or another format)."
        ) from exc
    if fmt not in EXTENSIONS:
        raise UnsupportedImage()
    return ImageInfo(format=fmt, extension=EXTENSIONS[fmt], width=width, height=height)
