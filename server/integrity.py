"""Reconcile the images folder with the database: rows whose file is missing, image files
and thumbnails with no row, leftover temp files. Reports through loguru and, asked to, repairs
what it finds. (Images that lack thumbnails are `python -m server thumbnails`' job.)

Runs report-only in the background of every start (`server.app.serve`) and on demand as
`python -m server check [--repair]`. Both sides are streamed in batches, so memory stays
small and flat however large the gallery: a million rows are never held at once.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, closing
from dataclasses import dataclass, field

import psycopg
from loguru import logger
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from server import repository
from server.config import Config
from server.db import make_pool, migrate, open_pool
from server.errors import ServiceUnavailable
from server.formats import STORED_NAME_RE, THUMB_NAME_RE, THUMBS_DIR, stored_names_of_stem
from server.storage import Entry, ImageStore, usable_store

# An upload writes its file (and thumbnails) a moment before it inserts the row, and a temp
# file lives for the length of one write. Younger files may belong to an upload in flight in
# another process: they are neither reported nor removed. Real uploads take far less.
IN_FLIGHT_SECONDS = 600.0
BATCH = 2000
# Each kind of problem keeps this many examples for the log; the counts are always exact.
SAMPLE = 20

# Exit codes of `python -m server check`.
EXIT_CONSISTENT = 0
EXIT_PROBLEMS = 1
EXIT_CANNOT_CHECK = 2


@dataclass
class Findings:
    """One kind of problem: how many, a few examples, how many were repaired."""

    count: int = 0
    sample: list[str] = field(default_factory=list)
    repaired: int = 0

    def add(self, example: str) -> None:
        self.count += 1
        if len(self.sample) < SAMPLE:
            self.sample.append(example)

    def describe(self) -> str:
        more = self.count - len(self.sample)
        return ", ".join(self.sample) + (f" and {more} more" if more else "")


@dataclass
class IntegrityReport:
    rows: int = 0
    files: int = 0
    rows_without_file: Findings = field(default_factory=Findings)  # "id 7 (<name>)"
    files_without_row: Findings = field(default_factory=Findings)
    thumbnails_without_row: Findings = field(default_factory=Findings)  # "thumbs/<name>"
    temp_files: Findings = field(default_factory=Findings)
    other_entries: Findings = field(default_factory=Findings)  # not ours: reported, left alone
    refused: str | None = None  # why rows were left alone, when they were

    @property
    def problems(self) -> int:
        return sum(
            findings.count
            for findings in (
                self.rows_without_file,
                self.files_without_row,
                self.thumbnails_without_row,
                self.temp_files,
            )
        )

    @property
    def consistent(self) -> bool:
        return self.problems == 0


async def _scan_batches(store: ImageStore) -> AsyncIterator[list[Entry]]:
    """The folder's entries in batches, each read in a worker thread."""
    with closing(store.scan()) as entries:
        while batch := await asyncio.to_thread(_take, entries, BATCH):
            yield batch


def _take(entries: Iterator[Entry], size: int) -> list[Entry]:
    return list(itertools.islice(entries, size))


async def _settled(store: ImageStore, entries: list[Entry], settled_before: float) -> list[Entry]:
    """Those of `entries` that still exist and are too old to be an upload in flight."""

    def check() -> list[Entry]:
        found = []
        for entry in entries:
            modified = store.modified_at(entry)
            if modified is not None and modified < settled_before:
                found.append(entry)
        return found

    return await asyncio.to_thread(check) if entries else []


async def _rows_against_files(
    pool: AsyncConnectionPool, store: ImageStore, report: IntegrityReport, repair: bool
) -> None:
    """Rows first, each batch's files looked up right after: an upload writes its file before
    its row, so a row seen here had its file on disk unless it was deleted since."""
    async with aclosing(repository.filename_id_batches(pool, BATCH)) as batches:
        async for batch in batches:
            report.rows += len(batch)
            ids = dict(batch)
            for name in await asyncio.to_thread(store.missing, ids):
                report.rows_without_file.add(f"id {ids[name]} ({name})")
                if repair and report.refused is None:
                    await _delete_row(pool, store, ids[name], name, report)


async def _delete_row(
    pool: AsyncConnectionPool, store: ImageStore, image_id: int, name: str, report: IntegrityReport
) -> None:
    # Through the repository, as a user's delete: every live gallery hears `image.deleted`.
    if await asyncio.to_thread(store.exists, name):
        return
    if await repository.delete_image(pool, image_id) is not None:
        report.rows_without_file.repaired += 1
        await asyncio.to_thread(store.delete, name)  # its thumbnails
        logger.info("integrity: deleted image {} (its file {} is missing)", image_id, name)


async def _files_against_rows(
    pool: AsyncConnectionPool,
    store: ImageStore,
    report: IntegrityReport,
    repair: bool,
    settled_before: float,
) -> None:
    async for batch in _scan_batches(store):
        by_kind: dict[str, list[Entry]] = {"image": [], "thumbnail": [], "temp": [], "other": []}
        for entry in batch:
            by_kind[entry.kind].append(entry)
        report.files += len(by_kind["image"])
        for entry in by_kind["other"]:
            report.other_entries.add(entry.name)

        images = by_kind["image"]
        recorded = await repository.recorded_filenames(pool, [e.name for e in images])
        unrecorded = [e for e in images if e.name not in recorded]
        for entry in await _settled(store, unrecorded, settled_before):
            report.files_without_row.add(entry.name)
            if repair:
                await _delete_file(pool, store, entry.name, report)

        thumbnails = by_kind["thumbnail"]
        owners = await _thumbnail_owners(pool, thumbnails)
        orphans = [e for e in thumbnails if _thumbnail_stem(e.name) not in owners]
        for entry in await _settled(store, orphans, settled_before):
            report.thumbnails_without_row.add(entry.name)
            if repair and not await _thumbnail_owners(pool, [entry]):
                if await asyncio.to_thread(store.delete_thumbnail_file, entry.name):
                    report.thumbnails_without_row.repaired += 1
                    logger.info("integrity: deleted {} (no row)", entry.name)

        for entry in await _settled(store, by_kind["temp"], settled_before):
            report.temp_files.add(entry.name)
            if repair and await asyncio.to_thread(store.delete_temp_file, entry.name):
                report.temp_files.repaired += 1
                logger.info("integrity: deleted leftover temp file {}", entry.name)


async def _delete_file(
    pool: AsyncConnectionPool, store: ImageStore, name: str, report: IntegrityReport
) -> None:
    if await repository.recorded_filenames(pool, [name]):
        return  # its row arrived meanwhile
    if await asyncio.to_thread(store.delete, name):
        report.files_without_row.repaired += 1
        logger.info("integrity: deleted {} (no row)", name)


def _thumbnail_stem(name: str) -> str:
    match = THUMB_NAME_RE.fullmatch(name.removeprefix(f"{THUMBS_DIR}/"))
    assert match is not None
    return match.group(1)


async def _thumbnail_owners(pool: AsyncConnectionPool, thumbnails: list[Entry]) -> set[str]:
    """The stems (32 hex characters) of these thumbnails whose image has a row."""
    if not thumbnails:
        return set()
    stems = {_thumbnail_stem(entry.name) for entry in thumbnails}
    candidates = [name for stem in stems for name in stored_names_of_stem(stem)]
    recorded = await repository.recorded_filenames(pool, candidates)
    return {name.partition(".")[0] for name in recorded if STORED_NAME_RE.fullmatch(name)}


async def reconcile(
    pool: AsyncConnectionPool, store: ImageStore, *, repair: bool = False, now: float | None = None
) -> IntegrityReport:
    """Compare the database with the folder; with `repair`, fix each problem as it is found
    (each is checked once more just before, so an image that changed meanwhile is left alone).
    """
    report = IntegrityReport()
    if repair and not await asyncio.to_thread(store.has_any_image):
        # Every file missing at once is a wrong or unmounted IMAGES_DIR far more often than
        # a real loss; deleting every row would turn a config mistake into data loss.
        report.refused = (
            f"{store.location} holds no image files at all: is IMAGES_DIR (or S3_BUCKET) "
            "right? Rows whose file "
            "is missing are left alone (restore the images, or delete the rows by hand)."
        )
    settled_before = (time.time() if now is None else now) - IN_FLIGHT_SECONDS
    await _rows_against_files(pool, store, report, repair)
    await _files_against_rows(pool, store, report, repair, settled_before)
    if report.refused and report.rows_without_file.count:
        logger.error("integrity: {}", report.refused)
    return report


def log_report(report: IntegrityReport, store: ImageStore) -> None:
    for findings, what in [
        (report.rows_without_file, f"image row(s) have no file in {store.location}"),
        (report.files_without_row, f"file(s) in {store.location} have no row"),
        (report.thumbnails_without_row, f"thumbnail(s) in {store.location} have no row"),
        (report.temp_files, f"leftover temp file(s) in {store.location}"),
    ]:
        if findings.count:
            repaired = f" ({findings.repaired} repaired)" if findings.repaired else ""
            logger.warning(
                "integrity: {} {}{}: {}", findings.count, what, repaired, findings.describe()
            )
    if report.other_entries.count:
        logger.info(
            "integrity: left alone in {} (not files the app stored): {}",
            store.location,
            report.other_entries.describe(),
        )
    if report.consistent:
        logger.info("integrity: {} rows and {} files agree", report.rows, report.files)
    else:
        logger.warning(
            "integrity: {} problem(s) among {} rows and {} files; "
            "`python -m server check --repair` fixes them",
            report.problems,
            report.rows,
            report.files,
        )


async def report_at_start(pool: AsyncConnectionPool, store: ImageStore) -> None:
    """Log the reconciliation. Meant to run as a background task: it never stops the app
    from starting or serving, and changes nothing."""
    started = time.monotonic()
    try:
        report = await reconcile(pool, store)
    except (OSError, ServiceUnavailable) as exc:
        logger.error("integrity: could not compare the images folder with the database: {}", exc)
        return
    except Exception:
        # Nobody awaits this task's result: its failures must reach the log here.
        logger.exception("integrity: the check at start failed")
        return
    log_report(report, store)
    logger.debug("integrity: checked in {:.0f} ms", (time.monotonic() - started) * 1000)


async def run_check(config: Config, *, fix: bool) -> int:
    """`python -m server check [--repair]`: the exit code says whether problems remain."""
    store = await usable_store(config, "integrity")
    if store is None:
        return EXIT_CANNOT_CHECK
    pool = make_pool(config)
    try:
        await open_pool(pool, attempts=1)
        await migrate(pool)
        report = await reconcile(pool, store, repair=fix)
        log_report(report, store)
        if fix and not report.consistent:
            report = await reconcile(pool, store)  # what is left after the repair
            log_report(report, store)
    except (psycopg.OperationalError, PoolTimeout, ServiceUnavailable) as exc:
        logger.error("integrity: cannot reach the database: {}", exc)
        return EXIT_CANNOT_CHECK
    finally:
        await pool.close()
    return EXIT_CONSISTENT if report.consistent else EXIT_PROBLEMS
