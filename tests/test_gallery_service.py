"""server.gallery: the use cases, including undoing partial work when a step fails."""

from __future__ import annotations

import pytest
from psycopg_pool import AsyncConnectionPool

from server import repository
from server.config import Config
from server.db import make_pool
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
from server.gallery import Gallery, clean_original_name, parse_page_number
from server.models import IncomingFile, Viewer
from server.storage import LocalImageStore
from server.workers import ImageWorkers
from tests.images import make_image
from tests.support import files_in, inserts_refused_for, stored_files

OWNER = "b" * 64


async def test_upload_stores_file_and_row(gallery: Gallery) -> None:
    data = make_image("JPEG")
    image = (await gallery.upload([IncomingFile("Holiday.JPG", data)], OWNER)).image
    assert image.original_name == "Holiday.JPG"
    assert gallery.store.path(image.filename).read_bytes() == data
    assert (await gallery.get(image.id)) == image
    await gallery.settle()
    assert files_in(gallery.store.root) == sorted(stored_files(image.filename))


@pytest.mark.parametrize(
    ("files", "error"),
    [
        ([], InvalidUpload),
        ([IncomingFile("a.png", b"")], InvalidUpload),
        ([IncomingFile("a.png", make_image()), IncomingFile("b.png", make_image())], InvalidUpload),
        (
            [IncomingFile("a.png", b"\x89PNG" + b"0" * Config.from_env({}).max_upload_bytes)],
            UploadTooLarge,
        ),
        ([IncomingFile("a.svg", make_image())], UnsupportedImage),
        ([IncomingFile("a.png", b"<svg/>")], UnsupportedImage),
    ],
)
async def test_rejected_uploads_leave_nothing(
    gallery: Gallery, pool: AsyncConnectionPool, files: list[IncomingFile], error: type
) -> None:
    with pytest.raises(error):
        await gallery.upload(files, OWNER)
    assert files_in(gallery.store.root) == []
    assert await repository.count_images(pool) == 0


async def test_database_down_during_upload_is_503_and_leaves_no_file(
    store: LocalImageStore, image_workers: ImageWorkers
) -> None:
    # A real pool aimed at a port where no PostgreSQL listens.
    config = Config.from_env({}, database_url="postgresql://postgres@127.0.0.1:9/none")
    dead = make_pool(config)
    dead.timeout = 1.0
    await dead.open(wait=False)
    try:
        gallery = Gallery.from_config(config, dead, store, image_workers)
        with pytest.raises(ServiceUnavailable):
            await gallery.upload([IncomingFile("a.png", make_image())], OWNER)
        assert files_in(gallery.store.root) == []
    finally:
        await dead.close()


async def test_a_failing_insert_removes_the_written_file(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    async with inserts_refused_for(pool, "f" * 64) as constraint:
        with pytest.raises(Exception, match=constraint):
            await gallery.upload([IncomingFile("a.png", make_image())], "f" * 64)
        assert files_in(gallery.store.root) == []


async def test_pages(gallery: Gallery) -> None:
    empty = await gallery.page(1)
    assert (empty.page, empty.pages, empty.total, empty.images) == (1, 1, 0, [])
    with pytest.raises(PageNotFound):
        await gallery.page(2)
    for n in range(13):
        await gallery.upload([IncomingFile(f"{n}.png", make_image())], OWNER)
    second = await gallery.page(2)
    assert (second.pages, second.total, len(second.images)) == (2, 13, 1)


async def test_delete_rules(gallery: Gallery, pool: AsyncConnectionPool) -> None:
    image = (await gallery.upload([IncomingFile("a.png", make_image())], OWNER)).image
    with pytest.raises(NotAllowed):
        await gallery.delete(image.id, Viewer(owner_hash="c" * 64))
    with pytest.raises(NotAllowed):
        await gallery.delete(image.id, Viewer())
    await gallery.delete(image.id, Viewer(owner_hash=OWNER))
    await gallery.settle()  # its thumbnails may have been in the making
    assert files_in(gallery.store.root) == []
    with pytest.raises(ImageNotFound):
        await gallery.delete(image.id, Viewer(owner_hash=OWNER))


async def test_delete_when_the_file_is_already_gone_still_removes_the_row(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    image = (await gallery.upload([IncomingFile("a.png", make_image())], OWNER)).image
    gallery.store.path(image.filename).unlink()
    await gallery.delete(image.id, Viewer(owner_hash=OWNER))
    assert await repository.get_image(pool, image.id) is None


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("photo.png", "photo.png"),
        ("../../etc/passwd.png", "passwd.png"),
        ("C:\\Users\\me\\cat.jpg", "cat.jpg"),
        ("nul\x00and\x1fcontrol.png", "nulandcontrol.png"),
        ("evil\u202egnp.exe", "evilgnp.exe"),
        ("котик 🐱.gif", "котик 🐱.gif"),
        ("e\u0301.png", "é.png"),
    ],
)
def test_original_names_are_cleaned(raw: str, clean: str) -> None:
    assert clean_original_name(raw) == clean


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = clean_original_name("x" * 1000 + ".jpeg")
    assert len(name) == 255 and name.endswith(".jpeg")


@pytest.mark.parametrize("raw", ["0", "-3", "abc", "", "²", "1.0"])
def test_page_numbers_must_be_positive_integers(raw: str) -> None:
    with pytest.raises(InvalidPage):
        parse_page_number(raw)


def test_page_number_defaults_to_one() -> None:
    assert parse_page_number(None) == 1
    assert parse_page_number("7") == 7


@pytest.mark.parametrize("raw", ["99999999999999999999", "768614336404564651", "9" * 5000])
def test_page_numbers_past_any_possible_page_are_not_found_before_sql(raw: str) -> None:
    """Failed before: the number reached PostgreSQL as an offset past bigint (a 500), or,
    past 4300 digits, Python refused to convert it (a 500 too)."""
    with pytest.raises(PageNotFound):
        parse_page_number(raw)
    assert parse_page_number("768614336404564650") == 768614336404564650
    assert parse_page_number("007") == 7
