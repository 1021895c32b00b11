"""Reconcile the images folder with the database: rows whose file is missing, image files
and thumbnails with no row, leftover temp files. Reports through loguru; `repair` fixes what
it found. (Images that lack thumbnails are `python -m server thumbnails`' job.)

Runs report-only at every start (`server.app.serve`) and on demand as
`python -m server check [--repair]`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import psycopg
from loguru import logger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from server import repository
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.errors import ServiceUnavailable
from server.storage import THUMB_FILE_RE, THUMBS_DIR, ImageStore

# An upload writes its file a moment before it inserts the row, and a temp file lives for the
# length of one write. Younger entries may belong to an upload in flight in another process:
# they are neither reported nor removed. Any real upload finishes in far less than this.
IN_FLIGHT_SECONDS = 600.0
# Past this many entries of one kind, the log shows the first few and a count.
_LOG_AT_MOST = 20

# Exit codes of `python -m server check`.
EXIT_CONSISTENT = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_CHECK = 2


@dataclass
class IntegrityReport:
    rows: int = 0
    files: int = 0
    rows_without_file: dict[str, int] = field(default_factory=dict)  # filename -> id
    files_without_row: list[str] = field(default_factory=list)
    thumbnails_without_row: list[str] = field(default_factory=list)  # names in THUMBS_DIR
    temp_files: list[str] = field(default_factory=list)
    other_entries: list[str] = field(default_factory=list)  # not ours: reported, left alone

    @property
    def problems(self) -> int:
        return (
            len(self.rows_without_file)
            + len(self.files_without_row)
            + len(self.thumbnails_without_row)
            + len(self.temp_files)
        )

    @property
    def consistent(self) -> bool:
        return self.problems == 0


@dataclass
class RepairResult:
    rows_deleted: int = 0
    files_deleted: int = 0
    thumbnails_deleted: int = 0
    temp_files_deleted: int = 0
    refused: str | None = None  # why rows were left alone, when they were


async def inspect(
    pool: AsyncConnectionPool, store: ImageStore, *, now: float | None = None
) -> IntegrityReport:
    """Compare rows and files. Rows are read before the folder is listed: an upload writes its
    file before its row, so a row seen here always had its file on disk by the listing."""
    recorded = await repository.filename_ids(pool)
    inventory = await asyncio.to_thread(store.inventory)
    settled_before = (time.time() if now is None else now) - IN_FLIGHT_SECONDS
    recorded_stems = {name.partition(".")[0] for name in recorded}
    return IntegrityReport(
        rows=len(recorded),
        files=len(inventory.images),
        rows_without_file={
            name: image_id
            for name, image_id in sorted(recorded.items(), key=lambda item: item[1])
            if name not in inventory.images
        },
        files_without_row=sorted(
            name
            for name, mtime in inventory.images.items()
            if name not in recorded and mtime < settled_before
        ),
        thumbnails_without_row=sorted(
            name
            for name, mtime in inventory.thumbnails.items()
            if _thumbnail_stem(name) not in recorded_stems and mtime < settled_before
        ),
        temp_files=sorted(
            name for name, mtime in inventory.temp_files.items() if mtime < settled_before
        ),
        other_entries=inventory.other,
    )


def _thumbnail_stem(name: str) -> str:
    match = THUMB_FILE_RE.fullmatch(name)
    assert match is not None
    return match.group(1)


def _sample(items: list[str]) -> str:
    shown = ", ".join(items[:_LOG_AT_MOST])
    return shown + (f" and {len(items) - _LOG_AT_MOST} more" if len(items) > _LOG_AT_MOST else "")


def log_report(report: IntegrityReport, store: ImageStore) -> None:
    if report.rows_without_file:
        logger.warning(
            "integrity: {} image row(s) have no file in {}: {}",
            len(report.rows_without_file),
            store.root,
            _sample([f"id {i} ({name})" for name, i in report.rows_without_file.items()]),
        )
    if report.files_without_row:
        logger.warning(
            "integrity: {} file(s) in {} have no row: {}",
            len(report.files_without_row),
            store.root,
            _sample(report.files_without_row),
        )
    if report.thumbnails_without_row:
        logger.warning(
            "integrity: {} thumbnail(s) in {} have no row: {}",
            len(report.thumbnails_without_row),
            store.root / THUMBS_DIR,
            _sample(report.thumbnails_without_row),
        )
    if report.temp_files:
        logger.warning(
            "integrity: {} leftover temp file(s) in {}: {}",
            len(report.temp_files),
            store.root,
            _sample(report.temp_files),
        )
    if report.other_entries:
        logger.info(
            "integrity: left alone in {} (not image files): {}",
            store.root,
            _sample(report.other_entries),
        )
    if report.consistent:
        logger.info("integrity: {} rows and {} files agree", report.rows, report.files)
    else:
        logger.warning(
            "integrity: {} problem(s); `python -m server check --repair` fixes them",
            report.problems,
        )


async def repair(
    pool: AsyncConnectionPool, store: ImageStore, report: IntegrityReport
) -> RepairResult:
    """Delete rows whose file is missing (through the repository, so every live gallery hears
    `image.deleted`), image files and thumbnails with no row, and leftover temp files. Each is
    checked again just before it goes, so an image that changed meanwhile is left alone."""
    result = RepairResult()
    if report.rows_without_file and report.files == 0:
        # Every file missing at once is a wrong or unmounted IMAGES_DIR far more often than
        # a real loss; deleting every row would turn a config mistake into data loss.
        result.refused = (
            f"{store.root} holds no image files at all, yet {report.rows} rows exist: is "
            "IMAGES_DIR right? Rows left alone (restore the images, or delete them by hand)."
        )
        logger.error("integrity: {}", result.refused)
    else:
        for name, image_id in report.rows_without_file.items():
            if await asyncio.to_thread(store.exists, name):
                continue
            if await repository.delete_image(pool, image_id) is not None:
                result.rows_deleted += 1
                result.thumbnails_deleted += await asyncio.to_thread(store.delete_thumbnails, name)
                logger.info("integrity: deleted image {} (its file {} is missing)", image_id, name)
    for name in report.files_without_row:
        if await repository.filename_is_recorded(pool, name):
            continue
        if await asyncio.to_thread(store.delete, name):
            result.files_deleted += 1
            result.thumbnails_deleted += await asyncio.to_thread(store.delete_thumbnails, name)
            logger.info("integrity: deleted {} (no row)", name)
    if report.thumbnails_without_row:
        # Thumbnails are named after their image's stem; rows are looked at once more.
        recorded_stems = {n.partition(".")[0] for n in await repository.filename_ids(pool)}
        for name in report.thumbnails_without_row:
            if _thumbnail_stem(name) in recorded_stems:
                continue
            if await asyncio.to_thread(store.delete_thumbnail_file, name):
                result.thumbnails_deleted += 1
                logger.info("integrity: deleted {}/{} (no row)", THUMBS_DIR, name)
    for name in report.temp_files:
        if await asyncio.to_thread(store.delete_temp_file, name):
            result.temp_files_deleted += 1
            logger.info("integrity: deleted leftover temp file {}", name)
    return result


async def report_at_start(pool: AsyncConnectionPool, store: ImageStore) -> None:
    """Log the reconciliation; never stops the app from starting."""
    started = time.monotonic()
    try:
        report = await inspect(pool, store)
    except (OSError, ServiceUnavailable) as exc:
        logger.error("integrity: could not compare the images folder with the database: {}", exc)
        return
    log_report(report, store)
    logger.debug("integrity: checked in {:.0f} ms", (time.monotonic() - started) * 1000)


async def run_check(config: Config, *, fix: bool) -> int:
    """`python -m server check [--repair]`: the exit code says whether problems remain."""
    store = ImageStore(config.images_dir)
    if not config.images_dir.is_dir():
        logger.error("integrity: the images folder {} does not exist", config.images_dir)
        return EXIT_CANNOT_CHECK
    pool = make_pool(config)
    try:
        try:
            await open_pool(pool, attempts=1)
            await migrate(pool)
            report = await inspect(pool, store)
            log_report(report, store)
            if fix and not report.consistent:
                result = await repair(pool, store, report)
                logger.info(
                    "integrity: repaired: {} row(s), {} file(s), {} thumbnail(s),"
                    " {} temp file(s) deleted",
                    result.rows_deleted,
                    result.files_deleted,
                    result.thumbnails_deleted,
                    result.temp_files_deleted,
                )
                report = await inspect(pool, store)
                log_report(report, store)
        except (psycopg.OperationalError, PoolTimeout, ServiceUnavailable) as exc:
            logger.error("integrity: cannot reach the database: {}", exc)
            return EXIT_CANNOT_CHECK
    finally:
        await pool.close()
    return EXIT_CONSISTENT if report.consistent else EXIT_PROBLEMS
