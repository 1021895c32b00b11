"""The image formats the site accepts and how their files are named on disk: the one place
these facts live. Decoding (`imaging`), names and folders (`storage`), the integrity check,
the upload page's file picker and nginx's `/images/` location all derive from here (nginx's
copy is checked against it by tests/test_nginx_conf.py)."""

from __future__ import annotations

import re

# Pillow's format name -> the extension a stored file of that format gets.
STORED_EXTENSION = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif"}
FORMATS = tuple(STORED_EXTENSION)
MEDIA_TYPE = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"}
# What an uploaded file's name may end with (any letter case): every stored extension, and
# the other spellings people use for the same formats.
ACCEPTED_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif")

# A stored image: the server's random name, NAME_HEX_DIGITS hex characters, and its
# format's extension. Nothing else in the images folder is ever served as an image.
NAME_HEX_DIGITS = 32
_STORED_EXTENSIONS = "|".join(ext.removeprefix(".") for ext in STORED_EXTENSION.values())
STORED_NAME_PATTERN = rf"[0-9a-f]{{{NAME_HEX_DIGITS}}}\.(?:{_STORED_EXTENSIONS})"
STORED_NAME_RE = re.compile(STORED_NAME_PATTERN)

# Thumbnails: WebP, this many pixels on the long side (the 1x and the 2x variant for
# srcset), stored as thumbs/<the image's hex characters>-<side>.webp.
THUMB_SIDE = 320
THUMB_SIDES = (THUMB_SIDE, 2 * THUMB_SIDE)
THUMBS_DIR = "thumbs"
# A file inside THUMBS_DIR; group 1 is the stem of the image it belongs to.
THUMB_NAME_RE = re.compile(rf"([0-9a-f]{{{NAME_HEX_DIGITS}}})-[0-9]+\.webp")


def thumb_name(filename: str, side: int) -> str:
    """The thumbnail file of a stored image, relative to the images folder."""
    return f"{THUMBS_DIR}/{filename.partition('.')[0]}-{side}.webp"


def stored_names_of_stem(stem: str) -> list[str]:
    """Every stored name an image with these hex characters could have (one per format)."""
    return [stem + extension for extension in STORED_EXTENSION.values()]


def is_accepted_name(name: str) -> bool:
    """Does an uploaded file's name end with an accepted extension?"""
    return name.lower().endswith(ACCEPTED_EXTENSIONS)


def accepted_list() -> dict[str, str]:
    """The accepted extensions for a sentence: {"extensions": ".jpg, .jpeg, .png", "last":
    ".gif"} (the sentence, in each language, joins them)."""
    return {"extensions": ", ".join(ACCEPTED_EXTENSIONS[:-1]), "last": ACCEPTED_EXTENSIONS[-1]}


def accept_attribute() -> str:
    """The file picker's `accept`: the extensions, then the media types."""
    return ",".join([*ACCEPTED_EXTENSIONS, *MEDIA_TYPE.values()])


def extension_for_media_type() -> dict[str, str]:
    """e.g. {"image/png": ".png"}: names for pasted files, which often come without one."""
    return {MEDIA_TYPE[fmt]: STORED_EXTENSION[fmt] for fmt in FORMATS}
