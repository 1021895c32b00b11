"""The gallery bodies kept with each cached page (handlers/gallery.py): one per kind of viewer,
never another viewer's delete buttons, language or XSRF token, and gone with the page when
a write on another process is heard. Two in-process apps on one database play two backend
processes, each with its own page cache and event listener; their caches keep pages for
longer than a test, so only events make them forget."""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from tornado.escape import xhtml_escape

from handlers.gallery import PageBody
from server import repository
from server.config import Config
from server.gallery import Gallery
from server.models import GalleryPage
from server.workers import ImageWorkers
from tests.images import make_image
from tests.support import InProcessApp, PostgresServer, in_process_app

PASSWORD = "admin password of the body cache tests"
JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
async def processes(
    postgres: PostgresServer,
    image_workers: ImageWorkers,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[tuple[InProcessApp, InProcessApp]]:
    database_url = postgres.create_database()
    images_dir = tmp_path_factory.mktemp("bodies")
    configs = [
        Config.from_env(
            {},
            database_url=database_url,
            images_dir=images_dir,
            db_pool_max=4,
            worker_name=name,
            admin_password=PASSWORD,
        )
        for name in ("a", "b")
    ]
    secret = secrets.token_urlsafe(32)  # as the database gives every process the same one
    async with (
        in_process_app(configs[0], image_workers, secret) as a,
        in_process_app(configs[1], image_workers, secret) as b,
    ):
        for app in (a, b):
            gallery_of(app).pages.max_age = 3600
        yield a, b


def gallery_of(app: InProcessApp) -> Gallery:
    return app.application.settings["gallery"]  # type: ignore[no-any-return]


async def settled(*apps: InProcessApp) -> None:
    """Every upload's thumbnails made, and every app has heard every write so far."""
    for app in apps:
        await gallery_of(app).settle()
    version = await repository.current_version(apps[0].pool)
    async with asyncio.timeout(10):
        for app in apps:
            while (gallery_of(app).pages.version or 0) < version:
                await asyncio.sleep(0.01)


async def kept_page(app: InProcessApp) -> GalleryPage:
    """Page 1 as the app's cache holds it (the object its requests share)."""
    return await gallery_of(app).page(1)


async def visitor(app: InProcessApp, **kwargs: object) -> httpx.AsyncClient:
    client = app.client(**kwargs)  # type: ignore[arg-type]
    (await client.get("/upload/")).raise_for_status()  # owner and XSRF cookies
    return client


async def upload(client: httpx.AsyncClient, name: str) -> int:
    answer = await client.post(
        "/upload/",
        files={"file": (name, make_image(), "image/png")},
        headers={"X-XSRFToken": client.cookies["_xsrf"], **JSON},
    )
    assert answer.status_code == 201, answer.text
    return int(answer.json()["id"])


def html_deletable(html: str) -> set[int]:
    return {int(n) for n in re.findall(r'data-delete="(\d+)"', html)}


def html_tiles(html: str) -> list[int]:
    return [int(n) for n in re.findall(r'<li class="tile" data-id="(\d+)"', html)]


def xsrf_in(html: str) -> str:
    found = re.search(r'<meta name="xsrf-token" content="([^"]+)">', html)
    assert found is not None
    return found.group(1)


async def deletable(client: httpx.AsyncClient, url: str = "/images/") -> tuple[set[int], set[int]]:
    """(tiles with a delete button in the HTML page, images with can_delete in the JSON)."""
    html = await client.get(url, headers=HTML)
    data = await client.get(url, headers=JSON)
    assert html.status_code == data.status_code == 200
    return html_deletable(html.text), {i["id"] for i in data.json()["images"] if i["can_delete"]}


async def test_no_viewer_gets_another_viewers_delete_buttons_or_token(
    processes: tuple[InProcessApp, InProcessApp],
) -> None:
    a, b = processes
    alice, bob, stranger, admin = [await visitor(b) for _ in range(4)]
    try:
        login = await admin.post(
            "/login",
            data={"password": PASSWORD},
            headers={"X-XSRFToken": admin.cookies["_xsrf"], **JSON},
        )
        assert login.status_code == 200
        alices = {await upload(alice, "a1.png"), await upload(alice, "a2.png")}
        bobs = {await upload(bob, "b1.png")}
        await settled(a, b)
        expected = {
            "alice": alices,
            "bob": bobs,
            "stranger": set(),
            "admin": alices | bobs,
        }
        clients = {"alice": alice, "bob": bob, "stranger": stranger, "admin": admin}
        # Every order of asking: whoever comes first makes the kept body, the others reuse
        # theirs or make their own, and each sees exactly their own buttons.
        for order in (list(clients), list(reversed(clients)), ["bob", "alice", "bob", "admin"]):
            for name in order:
                html, data = await deletable(clients[name])
                assert html == data == expected[name], (name, order)
        page = await kept_page(b)
        # The same cached page served them all: one body per kind of viewer, HTML and JSON.
        assert len(page.renderings) == 8

        # The XSRF token is each request's own: never the body's, never another viewer's.
        first = (await alice.get("/images/")).text
        again = (await alice.get("/images/")).text
        bobs_page = (await bob.get("/images/")).text
        tokens = {xsrf_in(first), xsrf_in(again), xsrf_in(bobs_page)}
        assert len(tokens) == 3 and all("xsrf" not in t for t in tokens)
        assert first.count(xsrf_in(first)) == 2  # the meta tag and the language form
        # Each page's token works for its viewer only: Bob deletes with his, not Alice's.
        (bobs_image,) = bobs
        refused = await bob.delete(
            f"/delete/{bobs_image}", headers={"X-XSRFToken": xsrf_in(first), **JSON}
        )
        assert refused.status_code == 403
        gone = await bob.delete(
            f"/delete/{bobs_image}", headers={"X-XSRFToken": xsrf_in(bobs_page), **JSON}
        )
        assert gone.status_code == 204
    finally:
        for client in (alice, bob, stranger, admin):
            await client.aclose()


async def test_no_viewer_gets_another_language_or_address(
    processes: tuple[InProcessApp, InProcessApp],
) -> None:
    a, b = processes
    # None of them wrote: they differ in nothing but their language.
    english = await visitor(b)
    russian = await visitor(b, cookies={"lang": "ru"})
    asks_russian = await visitor(b, headers={"Accept-Language": "ru-RU,ru;q=0.9"})
    try:
        async with a.client() as uploader:
            (await uploader.get("/upload/")).raise_for_status()
            await upload(uploader, "en.png")
        await settled(a, b)
        for _round in range(2):
            for client, lang, words in (
                (english, "en", "Gallery"),
                (russian, "ru", "Галерея"),
                (asks_russian, "ru", "Галерея"),
                (english, "en", "Gallery"),
            ):
                for url in ("/images/", "/images/?page=1", "/images/?page=1&from=<x>'"):
                    page = await client.get(url)
                    assert f'<html lang="{lang}">' in page.text, (lang, url)
                    assert f"<h1>{words}</h1>" in page.text
                    # The language switch comes back to this request's own address.
                    here = xhtml_escape(page.request.url.raw_path.decode())
                    assert f'name="next" value="{here}"' in page.text
                    assert PageBody.URI_HOLE not in page.text
                    assert PageBody.XSRF_HOLE not in page.text
    finally:
        for client in (english, russian, asks_russian):
            await client.aclose()


async def test_a_write_on_another_process_reaches_the_kept_bodies(
    processes: tuple[InProcessApp, InProcessApp],
) -> None:
    a, b = processes
    writer = await visitor(a)
    reader = await visitor(b)  # never writes: no `seen` cookie, always the cache's page
    try:
        await settled(a, b)
        before_html = (await reader.get("/images/")).text
        before_json = (await reader.get("/images/", headers=JSON)).json()
        kept = await kept_page(b)
        assert kept.renderings  # b keeps page 1 and the reader's bodies

        new_id = await upload(writer, "new.png")
        await settled(a, b)
        assert await kept_page(b) is not kept  # heard: the page and its bodies are gone
        html = (await reader.get("/images/")).text
        data = (await reader.get("/images/", headers=JSON)).json()
        assert html_tiles(html) == [new_id, *html_tiles(before_html)][:12]
        before_ids = [i["id"] for i in before_json["images"]]
        assert [i["id"] for i in data["images"]] == [new_id, *before_ids][:12]
        assert data["total"] == before_json["total"] + 1
        # The writer, on the other process, has the button on its own image only.
        async with b.client(cookies=writer.cookies) as writer_on_b:
            assert await deletable(writer_on_b) == ({new_id}, {new_id})

        kept = await kept_page(b)
        gone = await writer.delete(
            f"/delete/{new_id}", headers={"X-XSRFToken": writer.cookies["_xsrf"], **JSON}
        )
        assert gone.status_code == 204
        await settled(a, b)
        assert await kept_page(b) is not kept
        html = (await reader.get("/images/")).text
        data = (await reader.get("/images/", headers=JSON)).json()
        assert new_id not in html_tiles(html)
        assert html_tiles(html) == html_tiles(before_html)
        assert data["images"] == before_json["images"]
    finally:
        await writer.aclose()
        await reader.aclose()
