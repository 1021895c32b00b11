"""/ws through nginx: events reach every backend process's sockets via PostgreSQL NOTIFY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from tests.images import make_image
from tests.support import Browser, PostgresServer, Stack


def ws_url(site: Stack) -> str:
    return site.url.replace("http://", "ws://") + "/ws"


async def receive(ws: ClientConnection, kind: str, timeout: float = 1.0) -> dict[str, Any]:
    """The next message of `kind` (others, e.g. resync, are skipped) within `timeout`."""
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message["type"] == kind:
                return message


@asynccontextmanager
async def sockets_on_both_workers(
    site: Stack, cookie: str | None = None
) -> AsyncIterator[dict[str, ClientConnection]]:
    """One socket on each backend process; nginx round-robins, so a few tries suffice."""
    headers = {"Cookie": cookie} if cookie else {}
    async with AsyncExitStack() as stack:
        by_worker: dict[str, ClientConnection] = {}
        for _ in range(8):
            ws = await stack.enter_async_context(
                connect(ws_url(site), origin=site.url, additional_headers=headers)  # type: ignore[arg-type]
            )
            hello = await receive(ws, "hello")
            by_worker.setdefault(hello["worker"], ws)
            if len(by_worker) == 2:
                break
        assert sorted(by_worker) == ["worker-1", "worker-2"]
        yield by_worker


def cookie_header(browser: Browser) -> str:
    return "; ".join(f"{name}={value}" for name, value in browser.cookies.items())


async def test_uploads_and_deletes_reach_sockets_on_every_backend_within_a_second(
    site: Stack, browser: Browser
) -> None:
    async with sockets_on_both_workers(site) as sockets:
        response = await asyncio.to_thread(browser.upload, "live.png", make_image())
        assert response.status_code == 201
        image = response.json()
        for ws in sockets.values():
            created = await receive(ws, "image.created")
            assert created["total"] == 1
            assert created["image"]["id"] == image["id"]
            assert created["image"]["url"] == image["url"]
            assert created["image"]["can_delete"] is False  # these sockets have no owner cookie
            # The thumbnails are made after the answer; their arrival is an event too.
            assert created["image"]["thumb_url"] is None
            updated = await receive(ws, "image.updated")
            assert updated["image"]["id"] == image["id"]
            assert updated["image"]["thumb_url"].endswith("-320.webp")
            assert updated["image"]["can_delete"] is False

        assert (await asyncio.to_thread(browser.remove, image["id"])).status_code == 204
        for ws in sockets.values():
            assert await receive(ws, "image.deleted") == {
                "type": "image.deleted",
                "id": image["id"],
                "total": 0,
            }


async def test_per_viewer_fields_are_right_for_each_connection(
    site: Stack, browser: Browser
) -> None:
    browser.xsrf  # noqa: B018 - visiting a page issues the cookies we pass to the socket
    await asyncio.to_thread(browser.upload, "first.png", make_image())  # owner cookie set
    async with sockets_on_both_workers(site, cookie_header(browser)) as mine:
        async with sockets_on_both_workers(site) as strangers:
            await asyncio.to_thread(browser.upload, "second.png", make_image())
            for ws in mine.values():
                assert (await receive(ws, "image.created"))["image"]["can_delete"] is True
            for ws in strangers.values():
                assert (await receive(ws, "image.created"))["image"]["can_delete"] is False


async def test_cross_site_pages_cannot_subscribe(site: Stack) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(site), origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 403


async def test_events_keep_flowing_after_the_database_restarts(
    site: Stack, browser: Browser, postgres: PostgresServer
) -> None:
    dbname = str(conninfo_to_dict(site.database_url)["dbname"])
    async with sockets_on_both_workers(site) as sockets:
        await asyncio.to_thread(postgres.restart, dbname)
        for ws in sockets.values():
            # Each process's listener reconnects and tells its clients to resync.
            await receive(ws, "resync", timeout=30)
        response = await asyncio.to_thread(browser.upload, "after-restart.png", make_image())
        assert response.status_code == 201, response.text
        for ws in sockets.values():
            created = await receive(ws, "image.created")
            assert created["image"]["id"] == response.json()["id"]
