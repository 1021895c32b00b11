"""What every image store offers (`ImageStore`), whichever runs: the use cases, the integrity
check, the thumbnail backfill and `migrate-storage` see only this. Names are the server's
own (`server.formats`): `<32 hex>.<ext>` and `thumbs/<32 hex>-<side>.webp`, the same as file
names in the images folder and as object keys in the bucket.

Every method blocks (disk or network): callers run them in a worker thread."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from server.formats import NAME_HEX_DIGITS
from server.models import Thumbnail


@dataclass(frozen=True, slots=True)
class Entry:
    """One file or object of a store, classified by its name alone."""

    kind: str  # "image", "thumbnail", "temp" or "other"
    name: str  # "<hex>.png", "thumbs/<hex>-320.webp", ".tmp-…"


def new_filename(extension: str) -> str:
    return secrets.token_hex(NAME_HEX_DIGITS // 2) + extension


class ImageStore(Protocol):
    @property
    def location(self) -> str:
        """Where the images are, for log lines: a folder, or s3://bucket at an endpoint."""
        ...

    def ensure(self) -> None:
        """Create the folder or bucket if missing (at start)."""

    def usable(self) -> bool:
        """Is the folder or bucket there? (Offline commands refuse to work without it.)"""
        ...

    def new_filename(self, extension: str) -> str: ...

    def write_upload(self, filename: str, data: bytes, thumbnails: Iterable[Thumbnail]) -> None:
        """The image and its thumbnails, all of them or nothing."""

    def write_thumbnails(self, filename: str, thumbnails: Iterable[Thumbnail]) -> None:
        """All of them or none."""

    def delete(self, filename: str) -> bool:
        """Remove the image and its thumbnails; False when the image was already gone."""
        ...

    def delete_thumbnails(self, filename: str) -> int: ...

    def exists(self, filename: str) -> bool: ...

    def has_thumbnails(self, filename: str) -> bool: ...

    def read(self, name: str) -> bytes:
        """An image's or thumbnail's bytes; FileNotFoundError when it is missing."""
        ...

    def put(self, name: str, data: bytes) -> None:
        """Store one image or thumbnail under its name, whole or not at all."""

    def size(self, name: str) -> int | None:
        """Its size in bytes; None when it is missing."""
        ...

    def scan(self) -> Iterator[Entry]:
        """Everything in the store, one entry at a time (listed in pages: memory stays flat)."""
        ...

    def has_any_image(self) -> bool: ...

    def missing(self, filenames: Iterable[str]) -> list[str]:
        """Those of `filenames` that have no stored image."""
        ...

    def modified_at(self, entry: Entry) -> float | None:
        """When it was last written (epoch seconds); None when it is gone."""
        ...

    def delete_thumbnail_file(self, name: str) -> bool: ...

    def delete_temp_file(self, name: str) -> bool: ...
