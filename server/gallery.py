"""The use cases: upload, list a page, show, delete. Orders the steps and undoes partial work."""

from __future__ import annotations

import asyncio
import math
import unicodedata
from pathlib import PurePosixPath

from loguru import logger
from psycopg_pool import AsyncConnectionPool

from server import formats, imaging, repository
from server.config import MIB, Config
from server.errors import (
    ImageNotFound,
    InvalidPage,
    InvalidUpload,
    NotAllowed,
    PageNotFound,
    ServiceUnavailable,
    UnsupportedImage,
    UploadTooLarge,
)
from server.models import (
    PER_PAGE,
    GalleryPage,
    Image,
    IncomingFile,
    NewImage,
    Viewer,
    Written,
)
from server.pagecache import PageCache
from server.storage import ImageStore
from server.thumbnails import make_thumbnails
from server.workers import ImageWorkers

MAX_NAME_LENGTH = 255
# Thumbnail tasks that keep their upload's bytes; later ones read the stored file back.
THUMBNAIL_BACKLOG_IN_MEMORY = 32
# Bidirectional controls can make "gpj.exe" display as "exe.jpg"; drop them from names.
_BIDI_CONTROLS = {
    "\u061c",
    "\u200e",
    "\u200f",
    *map(chr, range(0x202A, 0x202F)),
    *map(chr, range(0x2066, 0x206A)),
}


def clean_original_name(raw: str) -> str:
    """The client's file name, kept only as text: no directories, controls or bidi tricks."""
    name = unicodedata.normalize("NFC", raw).replace("\\", "/")
    name = PurePosixPath(name).name if "/" in name else name
    name = "".join(
        ch for ch in name if unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS
    ).strip()
    if len(name) > MAX_NAME_LENGTH:
        _stem, dot, ext = name.rpartition(".")
        keep = ext if dot and len(ext) <= 10 else ""
        name = name[: MAX_NAME_LENGTH - len(keep) - 1].rstrip() + ("." + keep if keep else "")
    return name


# No gallery can have more pages: the row offset of the next one would not fit PostgreSQL's
# bigint. Larger numbers are "no such page" before any SQL (they used to be a 500).
MAX_PAGE = (2**63 - 1) // PER_PAGE


def parse_page_number(raw: str | None) -> int:
    if raw is None:
        return 1
    digits = raw.lstrip("0")
    if not raw.isascii() or not raw.isdigit() or not digits:
        raise InvalidPage()
    # The length first: Python refuses to convert strings of over 4300 digits.
    if len(digits) > len(str(MAX_PAGE)) or int(digits) > MAX_PAGE:
        raise PageNotFound()
    return int(digits)


class Gallery:
    @classmethod
    def from_config(
        cls, config: Config, pool: AsyncConnectionPool, store: ImageStore, workers: ImageWorkers
    ) -> Gallery:
        return cls(
            pool,
            store,
            max_upload_bytes=config.max_upload_bytes,
            max_image_pixels=config.max_image_pixels,
            image_workers=workers,
            strip_location=config.strip_location,
        )

    def __init__(
        self,
        pool: AsyncConnectionPool,
        store: ImageStore,
        *,
        max_upload_bytes: int,
        max_image_pixels: int,
        image_workers: ImageWorkers,
        strip_location: bool = True,
    ) -> None:
        self.pool = pool
        self.store = store
        self.max_upload_bytes = max_upload_bytes
        self.max_image_pixels = max_image_pixels
        self.strip_location = strip_location
        # Pillow work: in the app's image worker processes (server/workers.py).
        self._workers = image_workers
        self._thumbnailing: set[asyncio.Task[None]] = set()
        # Subscribed to the process's events by serve(); without that, every page is read.
        self.pages = PageCache()

    @property
    def upload_limit_mb(self) -> str:
        """The upload limit as the site writes it, in MB ("5", or "0.5" for a test's limit)."""
        return f"{self.max_upload_bytes / MIB:g}"

    async def upload(self, files: list[IncomingFile], owner_hash: str) -> Written:
        """Validate, store and record one image; on any failure nothing is left behind.

        Returns once the image is stored and its row committed, with the write's version
        (which the uploader's next page must be as new as); its thumbnails are made
        afterwards (`_add_thumbnails`): until they exist the gallery shows the original, and
        an `image.updated` event tells every page when they do."""
        incoming = self._single_file(files)
        name = clean_original_name(incoming.name)
        if not formats.is_accepted_name(name):
            raise UnsupportedImage(
                "Only {extensions} and {last} files are accepted.", **formats.accepted_list()
            )
        info, stripped = await self._workers.run(
            imaging.prepare_upload, incoming.body, self.max_image_pixels, self.strip_location
        )
        body = incoming.body if stripped is None else stripped
        filename = self.store.new_filename(info.extension)
        await asyncio.to_thread(self.store.write_upload, filename, body, [])
        try:
            written = await repository.insert_image(
                self.pool,
                NewImage(
                    filename=filename,
                    original_name=name,
                    size=len(body),
                    width=info.width,
                    height=info.height,
                    format=info.format,
                    owner_hash=owner_hash,
                ),
            )
        except BaseException:
            await asyncio.to_thread(self.store.delete, filename)
            raise
        image = written.image
        logger.info("stored image {} ({} bytes) as {}", image.id, image.size, filename)
        # Uploads can be answered faster than thumbnails are made: past a backlog, a waiting
        # task reads its image back from the store instead of keeping its bytes in memory.
        kept = body if len(self._thumbnailing) < THUMBNAIL_BACKLOG_IN_MEMORY else None
        task = asyncio.create_task(self._add_thumbnails(image, kept), name=f"thumbs-{image.id}")
        self._thumbnailing.add(task)
        task.add_done_callback(self._thumbnailing.discard)
        return written

    async def _add_thumbnails(self, image: Image, body: bytes | None) -> None:
        """Make, store and record an upload's thumbnails. Failing here loses nothing: the
        image stays without thumbnails (the gallery shows the original) until `python -m
        server thumbnails` makes them, as it does for a process that died before this ran."""
        try:
            async with self._workers.background_slot():
                if body is None:
                    try:
                        body = await asyncio.to_thread(self.store.read, image.filename)
                    except FileNotFoundError:  # deleted while it waited: nothing to make
                        return
                thumbs = await self._workers.run(make_thumbnails, body)
            await asyncio.to_thread(self.store.write_thumbnails, image.filename, thumbs)
            recorded = await repository.set_thumbnail(
                self.pool, image.id, thumbs[0].width, thumbs[0].height
            )
            if recorded is None:
                # Deleted while we worked: its delete removed the files that existed then,
                # and the thumbnails just written must not outlive it.
                await asyncio.to_thread(self.store.delete_thumbnails, image.filename)
        except Exception:
            logger.exception("could not make the thumbnails of image {}", image.id)

    async def settle(self, timeout: float | None = None) -> None:
        """Wait for the thumbnails in the making (at shutdown; in tests)."""
        pending = set(self._thumbnailing)
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    def _single_file(self, files: list[IncomingFile]) -> IncomingFile:
        if not files:
            raise InvalidUpload("No file was sent. Choose an image (multipart field 'file').")
        if len(files) > 1:
            raise InvalidUpload("Send one image per upload (one 'file' field).")
        incoming = files[0]
        if not incoming.body:
            raise InvalidUpload("The file is empty.")
        if len(incoming.body) > self.max_upload_bytes:
            raise UploadTooLarge(
                "The file is {size} MB; the limit is {limit} MB.",
                size=f"{len(incoming.body) / MIB:.1f}",
                limit=self.upload_limit_mb,
            )
        return incoming

    async def page(self, number: int, seen_version: int | None = None) -> GalleryPage:
        """Page `number`, as new as the client's last write (`seen_version`) or newer."""
        page = await self.pages.page(number, seen_version, lambda: self._read_page(number))
        if number > page.pages:
            raise PageNotFound(
                "This page is past the end of the gallery (pages: {pages}).", pages=page.pages
            )
        return page

    async def _read_page(self, number: int) -> GalleryPage:
        total, images = await repository.list_page(self.pool, PER_PAGE, (number - 1) * PER_PAGE)
        pages = max(1, math.ceil(total / PER_PAGE))
        return GalleryPage(number, pages, PER_PAGE, total, images)

    async def get(self, image_id: int) -> Image:
        image = await repository.get_image(self.pool, image_id)
        if image is None:
            raise ImageNotFound()
        return image

    async def neighbours(self, image_id: int) -> tuple[int | None, int | None]:
        return await repository.neighbours(self.pool, image_id)

    async def delete(self, image_id: int, viewer: Viewer) -> int:
        """Remove the row, then the file (a missing file is not an error). Returns the
        write's version (the deleter's next page must be as new as that)."""
        image = await self.get(image_id)
        if not viewer.can_delete(image):
            raise NotAllowed()
        written = await repository.delete_image(self.pool, image_id)
        if written is None:
            raise ImageNotFound()
        try:
            if not await asyncio.to_thread(self.store.delete, image.filename):
                logger.warning("image {} had no file {} in the store", image_id, image.filename)
        except ServiceUnavailable:
            # The delete happened (the row is gone and every gallery was told); what the
            # store could not remove now is an object with no row, which `check --repair`
            # removes once the store is back.
            logger.warning("image {} deleted; its files stay until the store is back", image_id)
        logger.info("deleted image {} ({})", image_id, image.filename)
        return written.version

    async def check_health(self) -> None:
        await repository.ping(self.pool)
