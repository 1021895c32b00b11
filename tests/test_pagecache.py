"""server.pagecache through Gallery: pages are kept per process until an event, and a client
whose last write is newer than what the process has heard gets a fresh page. Two Gallery
objects on one database play two backend processes; the test delivers their events, so the
moment each one hears of a write is chosen, not raced."""

from __future__ import annotations

import asyncio

from psycopg_pool import AsyncConnectionPool

from server.config import Config
from server.gallery import Gallery
from server.models import GalleryPage, ImageEvent, IncomingFile, Viewer
from server.storage import LocalImageStore
from server.workers import ImageWorkers
from tests.images import make_image

OWNER = "d" * 64


def ids(page: GalleryPage) -> list[int]:
    return [image.id for image in page.images]


async def test_another_process_never_serves_a_writer_a_page_older_than_its_write(
    pool: AsyncConnectionPool, store: LocalImageStore, image_workers: ImageWorkers
) -> None:
    live = asyncio.Event()
    live.set()
    a, b = (Gallery.from_config(Config.from_env({}), pool, store, image_workers) for _ in "ab")
    for process in (a, b):
        process.pages.live = live
        process.pages.max_age = 600  # longer than this test: only events make it forget
    try:
        first = (await a.upload([IncomingFile("1.png", make_image())], OWNER)).image
        assert ids(await b.page(1)) == [first.id]  # read, and kept by b

        upload = await a.upload([IncomingFile("2.png", make_image())], OWNER)
        second, seen = upload.image, upload.version  # the version the answer carries
        # b has not heard of it yet: others get b's kept page (it is a cache) ...
        assert ids(await b.page(1)) == [first.id]
        # ... but the uploader, whose cookie says `seen`, gets a page read afresh.
        assert ids(await b.page(1, seen)) == [second.id, first.id]

        b.pages.deliver(ImageEvent("image.created", image=second, version=seen))
        fresh = await b.page(1)
        assert ids(fresh) == [second.id, first.id]
        assert await b.page(1, seen) is fresh  # heard of `seen`: served from the cache

        seen = await a.delete(first.id, Viewer(owner_hash=OWNER))
        assert ids(await b.page(1, seen)) == [second.id]

        # A listener that lost its connection may miss events: no cache then.
        live.clear()
        assert ids(await b.page(1)) == [second.id]
        # A resync (the listener reconnected) forgets versions: writers read afresh.
        live.set()
        b.pages.deliver(ImageEvent("resync"))
        assert b.pages.version is None
        assert ids(await b.page(1, seen)) == [second.id]

        # A change no event tells of (SQL by hand) shows once the kept page is old enough.
        assert ids(await b.page(1)) == [second.id]
        async with pool.connection() as conn:
            await conn.execute("DELETE FROM images")
        assert ids(await b.page(1)) == [second.id]
        b.pages.max_age = 0
        assert ids(await b.page(1)) == []
    finally:
        await a.settle()
        await b.settle()
