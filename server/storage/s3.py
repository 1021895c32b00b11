"""STORAGE=s3: images and thumbnails as objects of one bucket of an S3-compatible store
(SeaweedFS, MinIO, AWS S3, R2), keyed by their names: `<32 hex>.<ext>`,
`thumbs/<32 hex>-<side>.webp`.

boto3's low-level client, called from worker threads like the local store's disk I/O: it is
thread-safe, keeps a pool of keep-alive connections, signs with SigV4, and leaves the event
loop alone (aiobotocore would also work, but would give this store an interface of its own,
unlike the local one, and pull aiohttp in beside Tornado for no gain: every call already runs
off the loop). A PUT is atomic in S3 (an object appears whole or not at all), so there are no
temp objects; an upload whose thumbnails fail takes its image back out. Any failure to reach
the store becomes `ServiceUnavailable` (a 503 with a clear message), never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from loguru import logger

from server.config import Config
from server.errors import ServiceUnavailable
from server.formats import (
    MEDIA_TYPE,
    STORED_EXTENSION,
    STORED_NAME_RE,
    THUMB_NAME_RE,
    THUMB_SIDES,
    THUMBS_DIR,
    thumb_name,
)
from server.models import Thumbnail
from server.storage.base import Entry, new_filename

_CONTENT_TYPE = {ext: MEDIA_TYPE[fmt] for fmt, ext in STORED_EXTENSION.items()} | {
    ".webp": "image/webp"
}
# HEADs in parallel when many names are checked at once (the integrity check's batches).
_PARALLEL = 16
_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
T = TypeVar("T")


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _NOT_FOUND


class S3ImageStore:
    def __init__(
        self,
        *,
        endpoint_url: str,
        bucket: str,
        access_key_id: str,
        secret_access_key: str,
        region: str,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.bucket = bucket
        self.region = region
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key_id or None,
            aws_secret_access_key=secret_access_key or None,
            region_name=region,
            config=BotoConfig(
                # Path-style URLs (endpoint/bucket/key) work with every S3-compatible store
                # and need no wildcard DNS; nginx reads objects the same way.
                s3={"addressing_style": "path"},
                # Checksums only where the API demands them: not every S3-compatible store
                # accepts the newer default (aws-chunked trailing checksums).
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=3,
                read_timeout=20,
                retries={"max_attempts": 2, "mode": "standard"},
                max_pool_connections=_PARALLEL * 2,
            ),
        )

    @classmethod
    def from_config(cls, config: Config) -> S3ImageStore:
        return cls(
            endpoint_url=config.s3_endpoint_url,
            bucket=config.s3_bucket,
            access_key_id=config.s3_access_key_id,
            secret_access_key=config.s3_secret_access_key,
            region=config.s3_region,
        )

    @property
    def location(self) -> str:
        return f"s3://{self.bucket} at {self.endpoint_url}"

    new_filename = staticmethod(new_filename)

    def _call(self, operation: Callable[..., T], **params: Any) -> T:
        """One S3 request; unreachable or refusing store -> ServiceUnavailable."""
        try:
            return operation(Bucket=self.bucket, **params)
        except ClientError as exc:
            if _missing(exc):
                raise
            logger.error("S3 {} refused: {}", operation.__name__, exc)
            raise ServiceUnavailable() from exc
        except BotoCoreError as exc:  # connection refused, timeouts, DNS...
            logger.error("S3 store {} cannot be reached: {}", self.location, exc)
            raise ServiceUnavailable() from exc

    # --- the bucket -------------------------------------------------------------------

    def ensure(self) -> None:
        """Create the bucket when it does not exist yet."""
        if self.usable():
            return
        params: dict[str, Any] = {}
        if self.region != "us-east-1":  # S3 refuses the default region spelled out
            params["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._call(self.client.create_bucket, **params)
            logger.info("created bucket {}", self.location)
        except ServiceUnavailable as exc:
            code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code")
            if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise  # another backend starting at the same moment may have made it

    def usable(self) -> bool:
        try:
            self._call(self.client.head_bucket)
        except ClientError:
            return False
        return True

    # --- writes -----------------------------------------------------------------------

    def put(self, name: str, data: bytes) -> None:
        key = self._key(name)
        extension = "." + key.rpartition(".")[2]
        self._call(
            self.client.put_object,
            Key=key,
            Body=data,
            ContentLength=len(data),
            # nginx passes the store's Content-Type on: it must be the image's own.
            ContentType=_CONTENT_TYPE[extension],
        )

    def write_upload(self, filename: str, data: bytes, thumbnails: Iterable[Thumbnail]) -> None:
        self.put(self._image_key(filename), data)
        try:
            self.write_thumbnails(filename, thumbnails)  # removes its own on failure
        except BaseException:
            self._delete_keys([filename], quietly=True)
            raise

    def write_thumbnails(self, filename: str, thumbnails: Iterable[Thumbnail]) -> None:
        try:
            for thumbnail in thumbnails:
                self.put(thumb_name(self._image_key(filename), thumbnail.side), thumbnail.data)
        except BaseException:
            self._delete_keys(self._thumb_keys(filename), quietly=True)
            raise

    # --- deletes ----------------------------------------------------------------------

    def delete(self, filename: str) -> bool:
        existed = self.exists(filename)
        self._delete_keys([filename, *self._thumb_keys(filename)])
        return existed

    def delete_thumbnails(self, filename: str) -> int:
        keys = [key for key in self._thumb_keys(filename) if self.size(key) is not None]
        self._delete_keys(keys)
        return len(keys)

    def delete_thumbnail_file(self, name: str) -> bool:
        key = name if name.startswith(f"{THUMBS_DIR}/") else f"{THUMBS_DIR}/{name}"
        if not THUMB_NAME_RE.fullmatch(key.removeprefix(f"{THUMBS_DIR}/")):
            raise ValueError(f"not a thumbnail name: {name!r}")
        if self.size(key) is None:
            return False
        self._delete_keys([key])
        return True

    def delete_temp_file(self, name: str) -> bool:
        return False  # a PUT leaves no temp objects behind

    def _delete_keys(self, keys: list[str], *, quietly: bool = False) -> None:
        """One request for up to three keys; a key already gone is not an error in S3."""
        if not keys:
            return
        try:
            result = self._call(
                self.client.delete_objects,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            if result.get("Errors"):
                logger.error("S3 delete failed: {}", result["Errors"])
                raise ServiceUnavailable()
        except ServiceUnavailable:
            if not quietly:
                raise
            # Undoing a failed upload while the store is down: the integrity check removes
            # whatever is left once it is back (an object with no row).
            logger.warning("could not remove {} after a failed upload", ", ".join(keys))

    # --- reads ------------------------------------------------------------------------

    def exists(self, filename: str) -> bool:
        return self.size(self._image_key(filename)) is not None

    def has_thumbnails(self, filename: str) -> bool:
        return all(self.size(key) is not None for key in self._thumb_keys(filename))

    def size(self, name: str) -> int | None:
        try:
            head = self._call(self.client.head_object, Key=self._key(name))
        except ClientError:
            return None
        return int(head["ContentLength"])

    def read(self, name: str) -> bytes:
        try:
            response = self._call(self.client.get_object, Key=self._key(name))
        except ClientError as exc:
            raise FileNotFoundError(name) from exc
        with response["Body"] as body:
            return body.read()

    def modified_at(self, entry: Entry) -> float | None:
        try:
            head = self._call(self.client.head_object, Key=entry.name)
        except ClientError:
            return None
        return head["LastModified"].timestamp()

    def missing(self, filenames: Iterable[str]) -> list[str]:
        names = list(filenames)
        valid = [name for name in names if STORED_NAME_RE.fullmatch(name)]
        with ThreadPoolExecutor(_PARALLEL) as pool:
            present = dict(zip(valid, pool.map(self.exists, valid), strict=True))
        return [name for name in names if not present.get(name, False)]

    def scan(self) -> Iterator[Entry]:
        """Every object of the bucket, listed a page (1,000 keys) at a time."""
        paginator = self.client.get_paginator("list_objects_v2")
        pages = iter(paginator.paginate(Bucket=self.bucket))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except BotoCoreError as exc:
                raise ServiceUnavailable() from exc
            except ClientError as exc:
                raise ServiceUnavailable() from exc
            for item in page.get("Contents", []):
                yield Entry(_kind(item["Key"]), item["Key"])

    def has_any_image(self) -> bool:
        # Images sort before "thumbs/": the first page of the top level shows one if any.
        page = self._call(self.client.list_objects_v2, Delimiter="/", MaxKeys=1000)
        return any(STORED_NAME_RE.fullmatch(item["Key"]) for item in page.get("Contents", []))

    # --- names ------------------------------------------------------------------------

    @staticmethod
    def _image_key(filename: str) -> str:
        if not STORED_NAME_RE.fullmatch(filename):
            raise ValueError(f"not a stored image name: {filename!r}")
        return filename

    def _thumb_keys(self, filename: str) -> list[str]:
        return [thumb_name(self._image_key(filename), side) for side in THUMB_SIDES]

    def _key(self, name: str) -> str:
        if _kind(name) not in ("image", "thumbnail"):
            raise ValueError(f"not an image or thumbnail name: {name!r}")
        return name


def _kind(key: str) -> str:
    if STORED_NAME_RE.fullmatch(key):
        return "image"
    if key.startswith(f"{THUMBS_DIR}/") and THUMB_NAME_RE.fullmatch(
        key.removeprefix(f"{THUMBS_DIR}/")
    ):
        return "thumbnail"
    return "other"
