"""Where image files live: one `ImageStore` interface (server/storage/base.py) with two
implementations, a local folder (STORAGE=local, the default) and an S3-compatible bucket
(STORAGE=s3). `make_store` picks one from the config; nothing above it knows which runs."""

from __future__ import annotations

from server.config import Config
from server.storage.base import Entry, ImageStore, new_filename
from server.storage.local import TEMP_PREFIX, LocalImageStore

__all__ = ["TEMP_PREFIX", "Entry", "ImageStore", "LocalImageStore", "make_store", "new_filename"]


def make_store(config: Config) -> ImageStore:
    if config.storage == "s3":
        from server.storage.s3 import S3ImageStore  # boto3 is only imported when used

        return S3ImageStore.from_config(config)
    return LocalImageStore(config.images_dir)
