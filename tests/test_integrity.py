"""server.integrity and fault injection: the images folder and the database drift apart (a file
vanishes, a file or temp file is left over, the database restarts) and the app copes: pages
still render, the reconciliation reports it, `check --repair` fixes it and live galleries hear."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool
from websockets.asyncio.client import connect

from server import integrity, repository
from server.formats import THUMB_SIDES, THUMBS_DIR
from server.gallery import Gallery
from server.models import IncomingFile, Thumbnail
from server.storage import TEMP_PREFIX, LocalImageStore
from tests.backup_fixtures import REPO, script_env
from tests.images import make_image
from tests.support import (
    Browser,
    PostgresServer,
    Stack,
    start_backend,
    stop_backend,
    wait_until_healthy,
)

OWNER = "d" * 64
AN_HOUR_AGO = time.time() - 3600


def server_check(database_url: str, images_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "server", "check", *args],
        cwd=REPO,
        env=script_env(DATABASE_URL=database_url, IMAGES_DIR=str(images_dir)),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def old_file(path: Path, data: bytes) -> Path:
    """A file that looks an hour old: past any upload that could still be in flight."""
    path.write_bytes(data)
    os.utime(path, (AN_HOUR_AGO, AN_HOUR_AGO))
    return path


async def upload(gallery: Gallery, name: str = "a.png") -> tuple[int, str]:
    image = (await gallery.upload([IncomingFile(name, make_image())], OWNER)).image
    await gallery.settle()
    return image.id, image.filename


# -- through the running stack --------------------------------------------------------------


async def test_a_vanished_file_is_reported_and_repair_tells_live_galleries(
    site: Stack, browser: Browser
) -> None:
    images = [
        (await asyncio.to_thread(browser.upload, f"{n}.png", make_image())).json() for n in range(3)
    ]
    lost = images[1]
    (site.images_dir / lost["filename"]).unlink()

    # The site does not break: the gallery (HTML and JSON) and the image's page still render.
    gallery_page = await asyncio.to_thread(browser.get, "/images/")
    assert gallery_page.status_code == 200
    assert f'href="/view/{lost["id"]}"' in gallery_page.text
    listing = await asyncio.to_thread(
        browser.get, "/images/", headers={"Accept": "application/json"}
    )
    assert listing.json()["total"] == 3
    assert (await asyncio.to_thread(browser.get, f"/view/{lost['id']}")).status_code == 200
    assert (await asyncio.to_thread(browser.get, f"/images/{lost['filename']}")).status_code == 404

    report = await asyncio.to_thread(server_check, site.database_url, site.images_dir)
    assert report.returncode == integrity.EXIT_PROBLEMS
    assert f"id {lost['id']} ({lost['filename']})" in report.stderr
    assert site.rows() == 3  # a check alone changes nothing

    ws_url = site.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, origin=site.url) as ws:  # type: ignore[arg-type]
        assert json.loads(await ws.recv())["type"] == "hello"
        repaired = await asyncio.to_thread(
            server_check, site.database_url, site.images_dir, "--repair"
        )
        assert repaired.returncode == integrity.EXIT_CONSISTENT, repaired.stderr
        async with asyncio.timeout(5):
            assert json.loads(await ws.recv()) == {
                "type": "image.deleted",
                "id": lost["id"],
                "total": 2,
            }
    assert "integrity: 2 rows and 2 files agree" in repaired.stderr
    assert site.rows() == 2
    again = await asyncio.to_thread(server_check, site.database_url, site.images_dir)
    assert again.returncode == integrity.EXIT_CONSISTENT


def test_deleting_an_image_whose_file_is_gone_removes_the_row(
    site: Stack, browser: Browser
) -> None:
    image = browser.upload("a.png", make_image()).json()
    (site.images_dir / image["filename"]).unlink()
    assert browser.remove(image["id"]).status_code == 204
    assert site.rows() == 0
    assert browser.get(f"/view/{image['id']}").status_code == 404


# -- the reconciliation itself --------------------------------------------------------------


async def test_the_check_finds_each_kind_of_drift_and_ignores_what_may_be_in_flight(
    gallery: Gallery,
    pool: AsyncConnectionPool,
    store: LocalImageStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(integrity, "BATCH", 2)  # every path through more than one batch
    kept_id, kept = await upload(gallery)
    lost_id, lost = await upload(gallery)
    await upload(gallery)
    store.path(lost).unlink()
    orphan = old_file(store.root / store.new_filename(".png"), make_image()).name
    # An upload between writing its file and inserting its row looks just like an orphan.
    (store.root / store.new_filename(".jpg")).write_bytes(make_image("JPEG"))
    stale_temp = old_file(store.root / f"{TEMP_PREFIX}0123abcd", b"half")
    (store.root / f"{TEMP_PREFIX}fresh").write_bytes(b"being written")
    (store.root / "README.txt").write_text("not ours")
    (store.root / "lost+found").mkdir()
    thumbs = store.root / THUMBS_DIR
    thumbs.mkdir(exist_ok=True)
    orphan_thumb = old_file(thumbs / f"{'e' * 32}-320.webp", b"RIFF").name
    (thumbs / f"{'a' * 32}-320.webp").write_bytes(b"RIFF")  # an upload in flight, again
    (thumbs / "notes.txt").write_text("not ours either")

    report = await integrity.reconcile(pool, store)
    assert report.rows_without_file.sample == [f"id {lost_id} ({lost})"]
    assert report.files_without_row.sample == [orphan]
    assert report.thumbnails_without_row.sample == [f"thumbs/{orphan_thumb}"]
    assert report.temp_files.sample == [stale_temp.name]
    # Reported, never deleted; other folders are not looked into.
    assert sorted(report.other_entries.sample) == ["README.txt", "thumbs/notes.txt"]
    assert (report.rows, report.files, report.problems) == (3, 4, 4)
    assert f"({kept})" not in report.rows_without_file.describe() and kept_id != lost_id
    assert not any(f.repaired for f in (report.rows_without_file, report.files_without_row))


async def test_repair_fixes_the_drift_and_announces_deleted_rows(
    gallery: Gallery, pool: AsyncConnectionPool, store: LocalImageStore, unit_database_url: str
) -> None:
    _, kept = await upload(gallery)
    lost_id, lost = await upload(gallery)
    store.path(lost).unlink()
    store.write_thumbnails(lost, [Thumbnail(side, 8, 6, b"RIFF") for side in THUMB_SIDES])
    old_file(store.root / store.new_filename(".gif"), make_image("GIF"))
    old_file(store.root / THUMBS_DIR / f"{'e' * 32}-640.webp", b"RIFF")
    old_file(store.root / f"{TEMP_PREFIX}deadbeef", b"half")
    (store.root / "README.txt").write_text("not ours")

    async with await psycopg.AsyncConnection.connect(unit_database_url, autocommit=True) as conn:
        await conn.execute(f"LISTEN {repository.EVENTS_CHANNEL}")
        report = await integrity.reconcile(pool, store, repair=True)
        async with asyncio.timeout(5):
            notify = await anext(conn.notifies())
    event = json.loads(notify.payload)
    assert isinstance(event.pop("version"), int)  # the write's version, as for every write
    assert event == {"type": "image.deleted", "total": 1, "id": lost_id}
    found = (
        report.rows_without_file,
        report.files_without_row,
        report.thumbnails_without_row,
        report.temp_files,
    )
    assert [(f.count, f.repaired) for f in found] == [(1, 1)] * 4
    assert sorted(p.name for p in store.root.iterdir()) == sorted([kept, "README.txt", "thumbs"])
    kept_stem = kept.partition(".")[0]  # the lost image's thumbnails went with its row
    assert all(p.name.startswith(kept_stem) for p in (store.root / THUMBS_DIR).iterdir())
    assert (await integrity.reconcile(pool, store)).consistent


async def test_repair_leaves_rows_alone_when_the_folder_has_no_images_at_all(
    gallery: Gallery, pool: AsyncConnectionPool, store: LocalImageStore
) -> None:
    for n in range(3):
        await upload(gallery, f"{n}.png")
    for path in store.root.iterdir():  # as if IMAGES_DIR pointed at an empty, new volume
        if path.is_file():
            path.unlink()
    report = await integrity.reconcile(pool, store, repair=True)
    assert (report.rows_without_file.count, report.rows_without_file.repaired) == (3, 0)
    assert report.refused is not None and "IMAGES_DIR" in report.refused
    assert await repository.count_images(pool) == 3


def test_check_says_when_it_cannot_check(unit_database_url: str, tmp_path: Path) -> None:
    unreachable = server_check("postgresql://postgres@127.0.0.1:9/none", tmp_path)
    assert unreachable.returncode == integrity.EXIT_CANNOT_CHECK
    assert "cannot reach the database" in unreachable.stderr
    missing = server_check(unit_database_url, tmp_path / "nowhere")
    assert missing.returncode == integrity.EXIT_CANNOT_CHECK
    assert "does not exist" in missing.stderr


async def test_the_app_reports_drift_in_the_background_of_its_start(
    gallery: Gallery, store: LocalImageStore, unit_database_url: str
) -> None:
    lost_id, lost = await upload(gallery)
    store.path(lost).unlink()
    process, url = await start_backend(unit_database_url, store.root)
    assert process.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(30):
            while "check --repair" not in (line := (await process.stderr.readline()).decode()):
                assert line, "the backend exited:\n" + "".join(log)
                log.append(line)
        await wait_until_healthy(url)
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/images/")).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 15) == 0
    finally:
        await stop_backend(process)
    text = "".join(log)
    assert f"1 image row(s) have no file in {store.root}: id {lost_id} ({lost})" in text
    assert "Traceback" not in text + (await process.stderr.read()).decode()
    # A report, not a repair.
    assert not store.path(lost).exists() and await repository.count_images(gallery.pool) == 1


# -- the database goes away -----------------------------------------------------------------


async def test_the_pool_recovers_by_itself_after_the_database_restarts(
    gallery: Gallery, pool: AsyncConnectionPool, postgres: PostgresServer, unit_database_url: str
) -> None:
    await upload(gallery, "before.png")
    await asyncio.to_thread(postgres.restart, str(conninfo_to_dict(unit_database_url)["dbname"]))
    # The very next upload works: no retry, no reopening the pool; broken connections are
    # noticed when checked out and replaced.
    image = (await gallery.upload([IncomingFile("after.png", make_image())], OWNER)).image
    assert await repository.get_image(pool, image.id) == image
    assert gallery.store.path(image.filename).exists()
    await gallery.check_health()
