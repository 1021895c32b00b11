"""server.gallery and server.backfill: every upload gets its thumbnails, they go with the
image, nothing is left behind on failure, and the backfill makes the missing ones."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import pytest
from PIL import Image as PILImage
from psycopg_pool import AsyncConnectionPool

from server import repository
from server.backfill import backfill
from server.errors import UnsupportedImage
from server.formats import THUMB_SIDES, thumb_name
from server.gallery import Gallery
from server.models import IncomingFile, Viewer
from tests.images import make_image, make_photo
from tests.support import files_in, inserts_refused_for, stored_files

OWNER = "b" * 64
REPO = Path(__file__).resolve().parent.parent


async def test_an_upload_returns_first_and_its_thumbnails_follow(gallery: Gallery) -> None:
    image = (await gallery.upload([IncomingFile("photo.jpg", make_photo(1600, 1200))], OWNER)).image
    # Stored and recorded; the thumbnails are not made yet (the gallery shows the original).
    assert not image.has_thumbnail
    assert files_in(gallery.store.root) == [image.filename]
    assert await gallery.get(image.id) == image
    await gallery.settle()
    assert files_in(gallery.store.root) == sorted(stored_files(image.filename))
    for side in THUMB_SIDES:
        with PILImage.open(gallery.store.root / thumb_name(image.filename, side)) as img:
            assert img.format == "WEBP" and max(img.size) == side
    recorded = await gallery.get(image.id)
    assert (recorded.thumb_width, recorded.thumb_height) == (320, 240)
    assert (await gallery.page(1)).images == [recorded]


async def test_a_failing_insert_leaves_no_thumbnail(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    async with inserts_refused_for(pool, "f" * 64) as constraint:
        with pytest.raises(Exception, match=constraint):
            await gallery.upload([IncomingFile("a.jpg", make_photo(800, 600))], "f" * 64)
    assert files_in(gallery.store.root) == []


async def test_thumbnails_that_cannot_be_written_leave_the_image_to_the_backfill(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    # A folder where the 2x thumbnail must go: renaming it into place fails.
    name = "0" * 32 + ".png"
    gallery.store.new_filename = lambda ext: name  # type: ignore[method-assign]
    blocker = gallery.store.thumb_path(name, THUMB_SIDES[1])
    blocker.mkdir()
    image = (
        await gallery.upload([IncomingFile("a.png", make_image("PNG", (900, 700)))], OWNER)
    ).image
    await gallery.settle()
    blocker.rmdir()
    # The image is kept, shown as the original; no half set of thumbnails.
    assert files_in(gallery.store.root) == [name]
    assert not (await gallery.get(image.id)).has_thumbnail
    assert (await backfill(pool, gallery.store)).made == 1
    assert files_in(gallery.store.root) == sorted(stored_files(name))


async def test_delete_removes_the_thumbnails(gallery: Gallery) -> None:
    image = (
        await gallery.upload([IncomingFile("a.gif", make_image("GIF", (500, 400)))], OWNER)
    ).image
    await gallery.settle()
    await gallery.delete(image.id, Viewer(owner_hash=OWNER))
    assert files_in(gallery.store.root) == []


async def test_an_image_deleted_before_its_thumbnails_leaves_none_behind(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    image = (await gallery.upload([IncomingFile("a.jpg", make_photo(1200, 900))], OWNER)).image
    # The thumbnails are being made in a worker process while the image goes.
    await gallery.delete(image.id, Viewer(owner_hash=OWNER))
    await gallery.settle()
    assert files_in(gallery.store.root) == []
    assert await repository.count_images(pool) == 0


async def make_unthumbnailed(gallery: Gallery, pool: AsyncConnectionPool, count: int) -> list[int]:
    """Uploads as they were before thumbnails existed: files and rows, no thumbnails."""
    ids = []
    for n in range(count):
        image = (
            await gallery.upload([IncomingFile(f"{n}.jpg", make_photo(900, 600, n))], OWNER)
        ).image
        await gallery.settle()
        gallery.store.delete_thumbnails(image.filename)
        ids.append(image.id)
    async with pool.connection() as conn:
        await conn.execute("UPDATE images SET thumb_width = NULL, thumb_height = NULL")
    return ids


async def test_backfill_makes_missing_thumbnails_and_skips_what_it_cannot(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    ids = await make_unthumbnailed(gallery, pool, 4)
    # One row keeps its size but lost a file; one image has no file at all.
    kept = (
        await gallery.upload([IncomingFile("k.png", make_image("PNG", (700, 350)))], OWNER)
    ).image
    await gallery.settle()
    kept = await gallery.get(kept.id)
    gallery.store.thumb_path(kept.filename, THUMB_SIDES[1]).unlink()
    lost = await repository.get_image(pool, ids[0])
    assert lost is not None
    gallery.store.path(lost.filename).unlink()

    result = await backfill(pool, gallery.store, workers=2)
    assert (result.checked, result.made, result.missing_files, result.failed) == (5, 4, 1, 0)
    for image_id in [*ids[1:], kept.id]:
        image = await repository.get_image(pool, image_id)
        assert image is not None and image.has_thumbnail
        assert gallery.store.has_thumbnails(image.filename)
    assert (await repository.get_image(pool, kept.id)) == kept  # same size recorded
    again = await backfill(pool, gallery.store)
    assert (again.checked, again.made) == (5, 0)


def run_command(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", "thumbnails"],
        cwd=REPO,
        env=os.environ | {"LOG_LEVEL": "INFO"} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_the_thumbnails_command(
    pool: AsyncConnectionPool, gallery: Gallery, unit_database_url: str
) -> None:
    ids = await make_unthumbnailed(gallery, pool, 2)
    env = {"DATABASE_URL": unit_database_url, "IMAGES_DIR": str(gallery.store.root)}
    done = await asyncio.to_thread(run_command, env)
    assert done.returncode == 0, done.stderr
    assert "2 images checked, 2 made" in done.stderr
    names = files_in(gallery.store.root)
    assert len([n for n in names if n.startswith("thumbs/")]) == 2 * len(ids)
    for image_id in ids:
        image = await repository.get_image(pool, image_id)
        assert image is not None and image.has_thumbnail

    nowhere = await asyncio.to_thread(run_command, env | {"IMAGES_DIR": "/nonexistent/images"})
    assert nowhere.returncode == 2


async def test_a_refused_upload_leaves_nothing_and_the_next_one_gets_its_thumbnails(
    gallery: Gallery, pool: AsyncConnectionPool
) -> None:
    """A refused upload makes no thumbnail, and the workers go on with the next upload."""
    truncated = make_photo(900, 600)[:5000]
    with pytest.raises(UnsupportedImage):
        await gallery.upload([IncomingFile("t.jpg", truncated)], OWNER)
    image = (await gallery.upload([IncomingFile("k.jpg", make_photo(900, 600))], OWNER)).image
    await gallery.settle()
    assert files_in(gallery.store.root) == sorted(stored_files(image.filename))
    assert (await gallery.get(image.id)).has_thumbnail
    assert await repository.count_images(pool) == 1


async def test_a_rotated_photo_is_stored_as_sent_and_thumbnailed_upright(
    gallery: Gallery,
) -> None:
    exif = PILImage.Exif()
    exif[0x0112] = 6  # turn 90° clockwise to display
    out = BytesIO()
    PILImage.open(BytesIO(make_photo(1200, 800))).save(out, "JPEG", exif=exif.tobytes())
    image = (await gallery.upload([IncomingFile("r.jpg", out.getvalue())], OWNER)).image
    await gallery.settle()
    assert (image.width, image.height) == (1200, 800)
    assert gallery.store.read(image.filename) == out.getvalue()
    recorded = await gallery.get(image.id)
    assert (recorded.thumb_width, recorded.thumb_height) == (213, 320)
    with PILImage.open(gallery.store.root / thumb_name(image.filename, 640)) as img:
        assert img.size == (427, 640)


async def test_past_the_backlog_thumbnails_are_made_from_the_stored_file(
    gallery: Gallery, pool: AsyncConnectionPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Uploads answered faster than thumbnails are made do not keep their bytes in memory:
    the waiting task reads the stored image back (or finds it deleted meanwhile)."""
    monkeypatch.setattr("server.gallery.THUMBNAIL_BACKLOG_IN_MEMORY", 0)
    kept = (await gallery.upload([IncomingFile("k.jpg", make_photo(900, 600))], OWNER)).image
    gone = (await gallery.upload([IncomingFile("g.jpg", make_photo(900, 600, 1))], OWNER)).image
    await gallery.delete(gone.id, Viewer(owner_hash=OWNER))
    await gallery.settle()
    assert files_in(gallery.store.root) == sorted(stored_files(kept.filename))
    assert (await gallery.get(kept.id)).has_thumbnail
    assert await repository.count_images(pool) == 1
