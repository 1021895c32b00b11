"""`python -m server migrate-storage --to s3|local`: copy every image and thumbnail from the
other store into this one (the local folder IMAGES_DIR and the bucket S3_* are both read from
the settings, whatever STORAGE says), verifying each copy's size.

Safe to re-run and to interrupt: whatever the target already holds at the same size is left
alone, so a second run copies only what was uploaded (or failed) since the first. Nothing is
deleted from the source. README "Images in object storage" gives the switch step by step.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from loguru import logger

from server.config import Config
from server.errors import ServiceUnavailable
from server.storage import Entry, ImageStore, LocalImageStore

# Copies in flight at once: each is one read and one write, mostly waiting on the network.
PARALLEL = 8
BATCH = 500

EXIT_DONE = 0
EXIT_INCOMPLETE = 1
EXIT_CANNOT_RUN = 2


@dataclass
class MigrationResult:
    copied: int = 0
    already_there: int = 0
    failed: int = 0

    @property
    def complete(self) -> bool:
        return self.failed == 0


def _copy(source: ImageStore, target: ImageStore, name: str) -> str:
    """'copied', 'already there' or 'failed' for one image or thumbnail."""
    try:
        size = source.size(name)
        if size is None:
            return "already there"  # deleted since it was listed: nothing to copy
        if target.size(name) == size:
            return "already there"
        data = source.read(name)
        target.put(name, data)
        if target.size(name) != len(data):
            logger.error("migrate-storage: {} has the wrong size after copying", name)
            return "failed"
        return "copied"
    except (OSError, ServiceUnavailable) as exc:
        logger.error("migrate-storage: could not copy {}: {}", name, exc)
        return "failed"


def _ours(entries: Iterator[Entry]) -> Iterator[str]:
    return (entry.name for entry in entries if entry.kind in ("image", "thumbnail"))


def migrate(source: ImageStore, target: ImageStore) -> MigrationResult:
    """Copy everything `source` holds into `target` (blocking)."""
    result = MigrationResult()
    names = _ours(source.scan())
    with ThreadPoolExecutor(PARALLEL) as pool:
        while batch := list(itertools.islice(names, BATCH)):
            for outcome in pool.map(lambda name: _copy(source, target, name), batch):
                if outcome == "copied":
                    result.copied += 1
                elif outcome == "already there":
                    result.already_there += 1
                else:
                    result.failed += 1
            logger.info(
                "migrate-storage: {} copied, {} already there so far",
                result.copied,
                result.already_there,
            )
    return result


def stores(config: Config, to: str) -> tuple[ImageStore, ImageStore]:
    """(source, target) for `--to`."""
    from server.storage.s3 import S3ImageStore

    if not config.s3_endpoint_url:
        raise ValueError("migrate-storage needs S3_ENDPOINT_URL (and the S3 keys)")
    local = LocalImageStore(config.images_dir)
    bucket = S3ImageStore.from_config(config)
    return (local, bucket) if to == "s3" else (bucket, local)


def run_migration(config: Config, to: str) -> int:
    try:
        source, target = stores(config, to)
    except ValueError as exc:
        logger.error("migrate-storage: {}", exc)
        return EXIT_CANNOT_RUN
    try:
        if not source.usable():
            logger.error("migrate-storage: the source {} does not exist", source.location)
            return EXIT_CANNOT_RUN
        target.ensure()
        logger.info("migrate-storage: from {} to {}", source.location, target.location)
        result = migrate(source, target)
    except ServiceUnavailable:
        logger.error("migrate-storage: the object store cannot be reached")
        return EXIT_CANNOT_RUN
    logger.info(
        "migrate-storage: {} copied, {} already there, {} failed",
        result.copied,
        result.already_there,
        result.failed,
    )
    return EXIT_DONE if result.complete else EXIT_INCOMPLETE
