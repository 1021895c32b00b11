"""Where image files live: one `ImageStore` interface (server/storage/base.py) with two
implementations, a local folder (STORAGE=local, the default) and an S3-compatible bucket
(STORAGE=s3). `make_store` picks one from the config; nothing above it knows which runs."""

from __future__ import annotations

import asyncio

from loguru import logger

from server.config import Config
from server.errors import ServiceUnavailable
from server.storage.base import Entry, ImageStore, new_filename
from server.storage.local import TEMP_PREFIX, LocalImageStore

__all__ = [
    "TEMP_PREFIX",
    "Entry",
    "ImageStore",
    "LocalImageStore",
    "make_store",
    "new_filename",
    "usable_store",
]


def make_store(config: Config) -> ImageStore:
    if config.storage == "s3":
        from server.storage.s3 import S3ImageStore  # boto3 is only imported when used

        return S3ImageStore.from_config(config)
    return LocalImageStore(config.images_dir)


async def usable_store(config: Config, command: str) -> ImageStore | None:
    """The configured store for a command (`check`, `thumbnails`); None, after saying so in
    the log, when it does not exist or cannot be reached."""
    store = make_store(config)
    try:
        usable = await asyncio.to_thread(store.usable)
    except ServiceUnavailable:
        usable = False
    if not usable:
        logger.error("{}: the images store {} does not exist", command, store.location)
        return None
    return store
