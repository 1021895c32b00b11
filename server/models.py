"""Plain data passed between the layers (stdlib only)."""

from __future__ import annotations

import hmac
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from server.formats import THUMB_SIDE, thumb_name

PER_PAGE = 12
# Where nginx serves the images folder (its `location ~ "^/images/…"`); object storage would
# give Image.url and Image.thumb_url another base.
IMAGES_URL_PATH = "/images/"


@dataclass(frozen=True, slots=True)
class Image:
    """One stored image, as its database row describes it."""

    id: int
    filename: str
    original_name: str
    size: int
    width: int
    height: int
    format: str
    owner_hash: str
    uploaded_at: datetime
    thumb_width: int | None = None  # None: no thumbnail yet (the gallery shows the original)
    thumb_height: int | None = None

    @property
    def size_kb(self) -> float:
        return round(self.size / 1024, 1)

    @property
    def has_thumbnail(self) -> bool:
        return self.thumb_width is not None and self.thumb_height is not None

    def url(self, base: str = "") -> str:
        """The image file's address: a path on the site, or absolute with the site's `base`
        (how the visitor sees it, e.g. `https://img.example.org`) for links to share."""
        return f"{base}{IMAGES_URL_PATH}{self.filename}"

    def thumb_url(self, density: int = 1, base: str = "") -> str:
        """The 1x or 2x thumbnail's address, e.g. `/images/thumbs/<hex>-320.webp`."""
        return f"{base}{IMAGES_URL_PATH}{thumb_name(self.filename, THUMB_SIDE * density)}"

    def to_public_dict(self, base_url: str) -> dict[str, Any]:
        """The image object of the JSON API; `base_url` is how the visitor sees the site."""
        return {
            "id": self.id,
            "filename": self.filename,
            "original_name": self.original_name,
            "size": self.size,
            "size_kb": self.size_kb,
            "uploaded_at": self.uploaded_at.isoformat(),
            "url": self.url(base_url),
            "width": self.width,
            "height": self.height,
            "format": self.format,
            **self._thumbnail_dict(base_url),
        }

    def _thumbnail_dict(self, base_url: str) -> dict[str, Any]:
        if not self.has_thumbnail:
            return dict.fromkeys(("thumb_url", "thumb_2x_url", "thumb_width", "thumb_height"))
        return {
            "thumb_url": self.thumb_url(1, base_url),
            "thumb_2x_url": self.thumb_url(2, base_url),
            "thumb_width": self.thumb_width,
            "thumb_height": self.thumb_height,
        }


@dataclass(frozen=True, slots=True)
class Written:
    """A committed write (upload, delete, thumbnails recorded) and its gallery version
    (migration 004): whoever made it must be shown pages at least that new."""

    image: Image
    version: int


@dataclass(frozen=True, slots=True)
class NewImage:
    """What the upload path knows before the row exists."""

    filename: str
    original_name: str
    size: int
    width: int
    height: int
    format: str
    owner_hash: str
    thumb_width: int | None = None
    thumb_height: int | None = None


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """One encoded WebP thumbnail of an upload."""

    side: int  # the long side it was made for (a member of THUMB_SIDES)
    width: int
    height: int
    data: bytes


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What decoding an upload told us."""

    format: str  # one of server.formats.FORMATS
    extension: str  # its stored extension
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class IncomingFile:
    """One file part of a multipart upload, as the client sent it."""

    name: str
    body: bytes


@dataclass(frozen=True, slots=True)
class GalleryPage:
    page: int
    pages: int
    per_page: int
    total: int
    images: list[Image]
    # What the web layer made of this page (its bodies, per kind of viewer), kept exactly as
    # long as the page is: a page server.pagecache keeps is one object shared by every
    # request until the next event forgets it, and its renderings go with it.
    renderings: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is asking: the hash of their owner cookie (if any) and whether they are an admin."""

    owner_hash: str | None = None
    is_admin: bool = False

    def can_delete(self, image: Image) -> bool:
        if self.is_admin:
            return True
        return self.owner_hash is not None and hmac.compare_digest(
            self.owner_hash, image.owner_hash
        )


@dataclass(frozen=True, slots=True)
class ImageEvent:
    """A change announced by PostgreSQL to every backend process.

    kind is "image.created" or "image.updated" (its thumbnails arrived; with `image`), or
    "image.deleted" (with `image_id`);
    "resync" tells clients that events may have been missed.
    """

    kind: str
    total: int | None = None
    image: Image | None = None
    image_id: int | None = None
    version: int | None = None  # the write's version (migration 004); None for resync

    @classmethod
    def from_json(cls, payload: str) -> ImageEvent:
        """From the NOTIFY payload the write's own statement makes (server/repository.py):
        {"type", "total", "image" (the row, its columns named as Image's fields) or "id",
        "version"}, a few hundred bytes, well under PostgreSQL's 8000-byte cap."""
        data = json.loads(payload)
        image = None
        if data.get("image") is not None:
            fields = dict(data["image"])
            fields["uploaded_at"] = datetime.fromisoformat(fields["uploaded_at"])
            image = Image(**fields)
        return cls(
            kind=data["type"],
            total=data.get("total"),
            image=image,
            image_id=data.get("id"),
            version=data.get("version"),
        )
