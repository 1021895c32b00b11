"""server.storage.s3 against a real SeaweedFS: the bucket made at start, keys as names,
all-or-nothing writes, deletes with thumbnails, listing, and a store that cannot be reached."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from scripts.pgcluster import free_port
from scripts.seaweed import SeaweedFS
from server.config import Config
from server.errors import ServiceUnavailable
from server.formats import thumb_name
from server.models import Thumbnail
from server.storage import Entry, make_store
from server.storage.s3 import S3ImageStore
from tests.support import Bucket, stored_files


def s3_config(seaweedfs: SeaweedFS, bucket: str) -> Config:
    env = seaweedfs.app_env() | {"S3_BUCKET": bucket}
    return Config.from_env(env)


@pytest.fixture
def store(seaweedfs: SeaweedFS) -> Iterator[S3ImageStore]:
    """An S3 store on a bucket of its own, made by the store itself."""
    store = make_store(s3_config(seaweedfs, f"test-{secrets.token_hex(4)}"))
    assert isinstance(store, S3ImageStore)
    assert not store.usable()
    store.ensure()
    yield store
    Bucket(seaweedfs, store.bucket).empty()


@pytest.fixture
def bucket(seaweedfs: SeaweedFS, store: S3ImageStore) -> Bucket:
    return Bucket(seaweedfs, store.bucket)


THUMBS = [Thumbnail(320, 32, 24, b"RIFF-small"), Thumbnail(640, 64, 48, b"RIFF-large")]


def test_the_bucket_is_made_once_and_ensure_is_idempotent(store: S3ImageStore) -> None:
    assert store.usable()
    store.ensure()  # a second backend starting later
    assert store.location == f"s3://{store.bucket} at {store.endpoint_url}"


def test_an_upload_is_the_image_and_its_thumbnails_under_their_names(
    store: S3ImageStore, bucket: Bucket
) -> None:
    name = store.new_filename(".png")
    store.write_upload(name, b"png-bytes", THUMBS)
    assert bucket.keys() == stored_files(name)
    assert store.read(name) == b"png-bytes"
    assert store.read(thumb_name(name, 640)) == b"RIFF-large"
    assert store.exists(name) and store.has_thumbnails(name)
    assert store.size(name) == len(b"png-bytes")
    head = bucket.client.head_object(Bucket=bucket.name, Key=name)
    assert head["ContentType"] == "image/png"  # nginx passes it on as is


def test_an_upload_whose_thumbnail_fails_leaves_no_object(
    store: S3ImageStore, bucket: Bucket
) -> None:
    name = store.new_filename(".jpg")
    broken = Thumbnail(640, 64, 48, None)  # type: ignore[arg-type]  # fails after the first PUTs
    with pytest.raises(TypeError):
        store.write_upload(name, b"jpeg-bytes", [THUMBS[0], broken])
    assert bucket.keys() == set()


def test_delete_takes_the_thumbnails_and_says_whether_the_image_was_there(
    store: S3ImageStore, bucket: Bucket
) -> None:
    name = store.new_filename(".gif")
    store.write_upload(name, b"gif", THUMBS)
    assert store.delete(name) is True
    assert bucket.keys() == set()
    assert store.delete(name) is False
    with pytest.raises(FileNotFoundError):
        store.read(name)


def test_the_listing_classifies_every_object(store: S3ImageStore, bucket: Bucket) -> None:
    name = store.new_filename(".png")
    store.write_upload(name, b"x", THUMBS)
    bucket.client.put_object(Bucket=bucket.name, Key="notes/readme.txt", Body=b"not ours")
    bucket.client.put_object(Bucket=bucket.name, Key=f"thumbs/{'a' * 32}-320.webp", Body=b"w")
    assert set(store.scan()) == {
        Entry("image", name),
        Entry("other", "notes/readme.txt"),
        Entry("thumbnail", f"thumbs/{'a' * 32}-320.webp"),
        Entry("thumbnail", thumb_name(name, 320)),
        Entry("thumbnail", thumb_name(name, 640)),
    }
    assert store.has_any_image()
    other = store.new_filename(".jpg")
    assert store.missing([name, other, "../etc/passwd"]) == [other, "../etc/passwd"]
    assert store.delete_thumbnail_file(f"{'a' * 32}-320.webp") is True
    assert store.delete_thumbnail_file(f"thumbs/{'a' * 32}-320.webp") is False
    assert store.modified_at(Entry("image", name)) is not None


def test_only_generated_names_are_keys(store: S3ImageStore) -> None:
    for bad in ("../x.png", "a.png", "0" * 32 + ".exe", "thumbs/../" + "0" * 32 + ".png"):
        with pytest.raises(ValueError):
            store.put(bad, b"x")


def test_an_unreachable_store_is_service_unavailable() -> None:
    store = S3ImageStore(
        endpoint_url=f"http://127.0.0.1:{free_port()}",
        bucket="images",
        access_key_id="k",
        secret_access_key="s",
        region="us-east-1",
    )
    with pytest.raises(ServiceUnavailable):
        store.write_upload(store.new_filename(".png"), b"x", THUMBS)
    with pytest.raises(ServiceUnavailable):
        store.ensure()


def test_wrong_keys_are_service_unavailable_not_a_crash(seaweedfs: SeaweedFS) -> None:
    env = seaweedfs.app_env() | {"S3_SECRET_ACCESS_KEY": "wrong"}
    store = make_store(Config.from_env(env))
    with pytest.raises(ServiceUnavailable):
        store.ensure()
