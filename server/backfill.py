"""`python -m server thumbnails`: make the thumbnails that images lack — uploads from before
thumbnails existed, or whose thumbnail files went missing — and record them in the database.

Safe while the site runs: rows are walked by id in batches, each image's thumbnails are
written atomically before its row says they exist, and an image deleted meanwhile loses the
thumbnails just made for it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass

import psycopg
from loguru import logger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from server import repository
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.errors import ServiceUnavailable
from server.models import Image
from server.storage import ImageStore, usable_store
from server.thumbnails import make_thumbnails

BATCH = 500

# Exit codes of `python -m server thumbnails`.
EXIT_DONE = 0
EXIT_INCOMPLETE = 1
EXIT_CANNOT_RUN = 2


@dataclass
class BackfillResult:
    checked: int = 0  # rows looked at
    made: int = 0  # images that got their thumbnails
    missing_files: int = 0  # rows whose image file is not on disk (see `python -m server check`)
    failed: int = 0  # images Pillow could not thumbnail

    @property
    def complete(self) -> bool:
        return self.missing_files == 0 and self.failed == 0


def _lacking_thumbnails(store: ImageStore, images: list[Image]) -> list[Image]:
    """The images whose row or files say a thumbnail is missing (blocking: stats files)."""
    return [
        image
        for image in images
        if not image.has_thumbnail or not store.has_thumbnails(image.filename)
    ]


async def _thumbnail_one(
    pool: AsyncConnectionPool, store: ImageStore, image: Image, result: BackfillResult
) -> None:
    try:
        data = await asyncio.to_thread(store.read, image.filename)
    except FileNotFoundError:
        result.missing_files += 1
        logger.warning("thumbnails: image {} has no file {}", image.id, image.filename)
        return
    try:
        thumbnails = await asyncio.to_thread(make_thumbnails, data)
    except Exception:  # one bad file must not stop the rest
        result.failed += 1
        logger.exception("thumbnails: could not thumbnail image {} ({})", image.id, image.filename)
        return
    await asyncio.to_thread(store.write_thumbnails, image.filename, thumbnails)
    first = thumbnails[0]
    if await repository.set_thumbnail(pool, image.id, first.width, first.height) is not None:
        result.made += 1
    else:  # deleted while we worked: its thumbnails must not outlive it
        await asyncio.to_thread(store.delete_thumbnails, image.filename)


async def backfill(
    pool: AsyncConnectionPool, store: ImageStore, *, workers: int | None = None
) -> BackfillResult:
    """Thumbnail every image that lacks them, `workers` at a time (Pillow releases the GIL,
    so threads use every core)."""
    result = BackfillResult()
    limit = asyncio.Semaphore(workers or os.cpu_count() or 2)

    async def one(image: Image) -> None:
        async with limit:
            await _thumbnail_one(pool, store, image, result)

    after = 0
    while batch := await repository.images_after(pool, after, BATCH):
        after = batch[-1].id
        result.checked += len(batch)
        await asyncio.gather(
            *(one(image) for image in await asyncio.to_thread(_lacking_thumbnails, store, batch))
        )
        if result.checked % (BATCH * 20) == 0:
            logger.info("thumbnails: {} images checked, {} made", result.checked, result.made)
    return result


async def run_backfill(config: Config) -> int:
    """`python -m server thumbnails`: the exit code says whether every image has them now."""
    store = await usable_store(config, "thumbnails")
    if store is None:
        return EXIT_CANNOT_RUN
    pool = make_pool(config)
    try:
        await open_pool(pool, attempts=3)
        await migrate(pool)
        result = await backfill(pool, store)
    except (psycopg.OperationalError, PoolTimeout, ServiceUnavailable) as exc:
        logger.error("thumbnails: cannot reach the database: {}", exc)
        return EXIT_CANNOT_RUN
    finally:
        await pool.close()
    logger.info(
        "thumbnails: {} images checked, {} made, {} without a file, {} failed",
        result.checked,
        result.made,
        result.missing_files,
        result.failed,
    )
    return EXIT_DONE if result.complete else EXIT_INCOMPLETE
