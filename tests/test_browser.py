"""The site in headless Chromium against the real stack (nginx, two backends, PostgreSQL):
upload, gallery, view, copy and delete; live updates across tabs; the upload page's
picker, drop, paste, progress and error paths."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import (
    BrowserContext,
    Locator,
    Page,
    Request,
    expect,
)

from server.config import Config
from server.formats import STORED_NAME_PATTERN
from tests.browser_helpers import (
    TIMEOUT_MS,
    assert_not_reloaded,
    delete_with_confirmation,
    drop_file,
    en_us_medium_short,
    expect_live,
    fetch_upload,
    mark_page,
    paste_file,
)
from tests.images import make_image, make_noise_jpeg
from tests.support import Stack, stored_files
from tests.test_storage_http import run_server_command

expect.set_options(timeout=TIMEOUT_MS)

PNG = "image/png"
DIRECT_LINK = rf"/images/{STORED_NAME_PATTERN}$"


@pytest.fixture
def new_context(chromium: Chromium, site: Stack) -> Iterator[Callable[[], BrowserContext]]:
    """Makes browser contexts (each one a separate visitor, with its own owner cookie); all
    are closed afterwards, and an uncaught JavaScript error on any page fails the test."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def watch(page: Page) -> None:
        page.on("pageerror", lambda error: errors.append(f"{page.url}: {error}"))

    def make() -> BrowserContext:
        context = chromium.new_context(base_url=site.url, locale="en-US", timezone_id="UTC")
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
        context.on("page", watch)
        return context

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


@pytest.fixture
def context(new_context: Callable[[], BrowserContext]) -> BrowserContext:
    return new_context()


def gallery_json(site: Stack, page: int = 1) -> dict:
    response = httpx.get(
        f"{site.url}/images/?page={page}", headers={"Accept": "application/json"}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def tile_ids(page: Page) -> list[int]:
    return [
        int(i)
        for i in page.locator("#gallery-grid .tile").evaluate_all(
            "(tiles) => tiles.map((tile) => tile.dataset.id)"
        )
    ]


def upload_item(page: Page, name: str) -> Locator:
    return page.locator("#upload-list .upload-item").filter(
        has=page.locator(".upload-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def expect_uploaded(page: Page, name: str, timeout: float = TIMEOUT_MS) -> str:
    """Waits for `name`'s item on the upload page to succeed; returns its direct link."""
    item = upload_item(page, name)
    expect(item).to_have_class(re.compile(r"\bis-done\b"), timeout=timeout)
    expect(item.locator(".upload-message")).to_have_text(re.compile(r"^Uploaded \(.+ [KM]B\)$"))
    link = item.locator('.upload-code[data-code="direct"] input')
    expect(link).to_have_value(re.compile(DIRECT_LINK))
    expect(item.locator(".upload-codes")).to_be_visible()
    return link.input_value()


def test_upload_see_the_tile_open_it_copy_the_link_and_delete_it(
    context: BrowserContext, site: Stack
) -> None:
    data = make_image("PNG", (64, 48), "orange")
    page = context.new_page()
    page.goto("/upload/")
    page.set_input_files(
        "#file", files=[{"name": "Holiday <photo>.png", "mimeType": PNG, "buffer": data}]
    )
    url = expect_uploaded(page, "Holiday <photo>.png")
    assert url.startswith(site.url + "/images/")
    assert site.rows() == 1
    wait_for_thumbnails(site)  # made after the answer
    assert site.files() == stored_files(url.rsplit("/", 1)[1])

    page.goto("/images/")
    expect_live(page)
    tile = page.locator("#gallery-grid .tile")
    expect(tile).to_have_count(1)
    expect(tile.locator(".tile-name")).to_have_text("Holiday <photo>.png")
    expect(tile.locator(".tile-size")).to_have_text(f"{len(data) / 1024:,.1f} KB")
    stamp = datetime.fromisoformat(tile.locator(".tile-time").get_attribute("datetime") or "")
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=2)
    # The caption shows the upload's date and time, in the viewer's time zone and language.
    shown = tile.locator(".tile-time").inner_text()
    assert shown.replace("\u202f", " ") == en_us_medium_short(stamp)
    # The tile shows the WebP thumbnail (64 px wide: never enlarged), served by nginx.
    stem = url.rsplit("/", 1)[1].split(".")[0]
    thumbnail = tile.locator("img")
    expect(thumbnail).to_have_attribute("src", f"/images/thumbs/{stem}-320.webp")
    expect(thumbnail).to_have_attribute(
        "srcset", f"/images/thumbs/{stem}-320.webp 1x, /images/thumbs/{stem}-640.webp 2x"
    )
    expect(thumbnail).to_have_attribute("loading", "lazy")
    expect(thumbnail).to_have_js_property("naturalWidth", 64)

    tile.locator(".tile-link").click()  # the lightbox, at the image's own address
    expect(page).to_have_url(re.compile(r"/view/\d+$"))
    page.reload()  # the same address opened directly: the full image page
    expect(page.locator(".view-title")).to_have_text("Holiday <photo>.png")
    expect(page.locator("#direct-link")).to_have_value(url)
    page.get_by_role("button", name="Copy Direct link", exact=True).click()
    copy = page.locator("#direct-link-copy")  # by id: its accessible name changes meanwhile
    expect(copy).to_have_text("Copied!")  # on the button pressed, and only for a moment
    assert page.evaluate("() => navigator.clipboard.readText()") == url
    expect(copy).to_have_text("Copy")
    image = page.request.get(url)
    assert image.status == 200
    assert image.headers["content-type"] == PNG
    assert image.body() == data

    page.goto("/images/")
    expect_live(page)
    trash = page.get_by_role("button", name="Delete Holiday <photo>.png")
    trash.click()
    page.get_by_role("button", name="Cancel").click()  # changed my mind: nothing happens
    expect(trash).to_be_focused()
    delete_with_confirmation(page, trash)
    expect(page.locator("#gallery-grid .tile")).to_have_count(0)
    expect(page.locator("#empty-state")).to_be_visible()
    expect(page.locator("#gallery-total")).to_have_text("Images: 0")
    assert site.rows() == 0
    assert site.files() == set()
    page.reload()
    expect(page.locator("#empty-state")).to_be_visible()


def test_an_upload_shows_up_in_every_open_tab_and_a_delete_disappears_from_them(
    new_context: Callable[[], BrowserContext], site: Stack
) -> None:
    context = new_context()
    uploader = context.new_page()
    uploader.goto("/upload/")
    fetch_upload(uploader, make_image("PNG", (8, 8)), "earlier.png")
    tab_a, tab_b = context.new_page(), context.new_page()
    stranger = new_context().new_page()  # another visitor: sees the tile, may not delete it
    for tab in (tab_a, tab_b, stranger):
        tab.goto("/images/")
        expect_live(tab)
        expect(tab.locator("#gallery-grid .tile")).to_have_count(1)
        mark_page(tab)

    uploader.set_input_files(
        "#file", files=[{"name": "live.png", "mimeType": PNG, "buffer": make_image()}]
    )
    filename = expect_uploaded(uploader, "live.png").rsplit("/", 1)[1]
    for tab in (tab_a, tab_b, stranger):
        tile = tab.locator("#gallery-grid .tile").first
        expect(tab.locator("#gallery-grid .tile")).to_have_count(2)
        expect(tile.locator(".tile-name")).to_have_text("live.png")
        thumb = f"/images/thumbs/{filename.split('.')[0]}"
        img = tile.locator("img")
        expect(img).to_have_attribute("src", re.compile(rf"{thumb}-320\.webp$"))
        expect(img).to_have_attribute("srcset", re.compile(rf"{thumb}-640\.webp 2x$"))
        expect(tab.locator("#gallery-total")).to_have_text("Images: 2")
    for tab in (tab_a, tab_b):
        expect(tab.locator(".tile-delete")).to_have_count(2)
    expect(stranger.locator(".tile-delete")).to_have_count(0)

    delete_with_confirmation(
        tab_b, tab_b.locator("#gallery-grid .tile").first.locator(".tile-delete")
    )
    for tab in (tab_a, tab_b, stranger):
        expect(tab.locator("#gallery-grid .tile")).to_have_count(1)
        expect(tab.locator(".tile-name")).to_have_text("earlier.png")
        expect(tab.locator("#gallery-total")).to_have_text("Images: 1")
        expect_live(tab)
        assert_not_reloaded(tab)
    assert site.rows() == 1
    assert filename not in site.files()


def test_a_first_time_visitor_can_delete_a_live_tile_of_their_own_upload(
    context: BrowserContext, site: Stack
) -> None:
    gallery, uploader = context.new_page(), context.new_page()
    gallery.goto("/images/")
    expect_live(gallery)
    uploader.goto("/upload/")
    fetch_upload(uploader, make_image(), "mine.png")
    expect(gallery.locator("#gallery-grid .tile")).to_have_count(1)
    live_buttons = gallery.locator(".tile-delete").count()  # a tile is built whole
    gallery.reload()
    expect(gallery.locator(".tile-delete")).to_have_count(1)  # the server: this browser owns it
    assert live_buttons == 1, "the live tile lacks the Delete button that a reload shows"


def test_a_live_tile_is_the_markup_a_reload_renders(context: BrowserContext, site: Stack) -> None:
    """gallery.js fills the server's own _tile.html (rendered into the <template>): a tile
    that arrived live and the same tile after a reload are the same element."""
    gallery, uploader = context.new_page(), context.new_page()
    gallery.goto("/images/")
    expect_live(gallery)
    uploader.goto("/upload/")
    image = fetch_upload(uploader, make_image("PNG", (400, 300)), "mine <b>.png")
    tile = gallery.locator("#gallery-grid .tile")
    expect(tile).to_have_count(1)
    # It arrives showing the original; image.updated brings the thumbnail a moment later.
    stem = image["filename"].split(".")[0]
    expect(tile.locator("img")).to_have_attribute("src", f"/images/thumbs/{stem}-320.webp")
    live = tile.evaluate("(tile) => tile.outerHTML")
    gallery.reload()
    expect_live(gallery)
    assert tile.evaluate("(tile) => tile.outerHTML") == live


def wait_for_thumbnails(site: Stack) -> None:
    """Until every image's thumbnails are recorded (they are written before that)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    with psycopg.connect(site.database_url, autocommit=True) as conn:
        while conn.execute("SELECT 1 FROM images WHERE thumb_width IS NULL").fetchone():
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_live_tile_shows_the_original_until_its_thumbnails_arrive(
    context: BrowserContext, site: Stack
) -> None:
    """Thumbnails are made after the upload answers, or by `python -m server thumbnails` for
    an image whose process died first: until then the tile shows the original, and the
    image.updated event switches every open gallery to the thumbnail."""
    gallery = context.new_page()
    gallery.goto("/upload/")
    image = fetch_upload(gallery, make_image("PNG", (400, 300)), "late.png")
    wait_for_thumbnails(site)
    # As if its process had died before making them: no thumbnail files, none recorded.
    for name in stored_files(image["filename"]) - {image["filename"]}:
        site.lose(name)
    with psycopg.connect(site.database_url) as conn:
        conn.execute("UPDATE images SET thumb_width = NULL, thumb_height = NULL")
    gallery.goto("/images/")
    expect_live(gallery)
    img = gallery.locator("#gallery-grid .tile img")
    expect(img).to_have_attribute("src", f"/images/{image['filename']}")
    expect(img).to_have_js_property("naturalWidth", 400)  # nginx serves the original
    # A delete question open in the tile stays open while its picture changes.
    gallery.locator(".tile-delete").click()
    expect(gallery.locator(".confirm-delete")).to_be_visible()
    done = run_server_command(site, "thumbnails")
    assert done.returncode == 0, done.stderr
    stem = image["filename"].split(".")[0]
    expect(img).to_have_attribute("src", f"/images/thumbs/{stem}-320.webp")
    expect(img).to_have_js_property("naturalWidth", 320)
    expect(gallery.locator(".confirm-delete")).to_be_visible()
    gallery.locator(".confirm-no").click()
    live = gallery.locator("#gallery-grid .tile").evaluate("(tile) => tile.outerHTML")
    gallery.reload()
    expect_live(gallery)
    assert gallery.locator("#gallery-grid .tile").evaluate("(tile) => tile.outerHTML") == live


def test_the_progress_bar_moves_during_a_throttled_upload(
    context: BrowserContext, site: Stack
) -> None:
    data = make_noise_jpeg(1_500_000)
    page = context.new_page()
    page.goto("/upload/")
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 20,
            "downloadThroughput": 1_000_000,
            "uploadThroughput": 500_000,  # bytes per second: about three seconds for this file
        },
    )
    # <progress>.value is a property, not an attribute: sample it rather than observe it.
    page.evaluate(
        """() => {
          window.__progress = [];
          setInterval(() => {
            for (const bar of document.querySelectorAll("#upload-list progress")) {
              window.__progress.push(bar.value);
            }
          }, 10);
        }"""
    )
    page.set_input_files(
        "#file", files=[{"name": "big.jpg", "mimeType": "image/jpeg", "buffer": data}]
    )
    expect_uploaded(page, "big.jpg", timeout=30_000)
    cdp.detach()
    expect(upload_item(page, "big.jpg").locator("progress")).to_have_js_property("value", 100)
    seen = page.evaluate("() => window.__progress")
    assert any(0 < value < 100 for value in seen), sorted(set(seen))
    assert seen == sorted(seen), "progress went backwards"
    assert site.rows() == 1


def test_dropped_and_pasted_images_are_uploaded(context: BrowserContext, site: Stack) -> None:
    page = context.new_page()
    page.goto("/upload/")
    dropped = make_image("GIF", (20, 20), "red")
    drop_file(page, dropped, "dropped.gif", "image/gif")
    expect_uploaded(page, "dropped.gif")
    # Clipboard images often come without a useful name: the page names them by type.
    pasted = make_image("JPEG", (30, 20), "blue")
    paste_file(page, pasted, "Screenshot", "image/jpeg")
    expect_uploaded(page, "pasted.jpg")

    images = gallery_json(site)["images"]
    assert [(i["original_name"], i["format"], i["size"]) for i in images] == [
        ("pasted.jpg", "JPEG", len(pasted)),
        ("dropped.gif", "GIF", len(dropped)),
    ]
    wait_for_thumbnails(site)  # made after the answer
    assert site.files() == {f for i in images for f in stored_files(i["filename"])}


def test_a_file_the_server_refuses_shows_the_servers_message(
    context: BrowserContext, site: Stack
) -> None:
    page = context.new_page()
    page.goto("/upload/")
    with page.expect_response("**/upload/") as answer:
        page.set_input_files(
            "#file",
            files=[{"name": "notes.png", "mimeType": PNG, "buffer": b"just some text\n" * 20}],
        )
    assert answer.value.status == 415
    message = answer.value.json()["error"]
    assert message
    item = upload_item(page, "notes.png")
    expect(item).to_have_class(re.compile(r"\bis-error\b"))
    expect(item.locator(".upload-message")).to_have_text(message)
    expect(item.locator("progress")).to_be_hidden()
    expect(item.locator(".upload-codes")).to_be_hidden()
    assert site.rows() == 0
    assert site.files() == set()


def test_files_the_page_refuses_are_never_sent(context: BrowserContext, site: Stack) -> None:
    page = context.new_page()
    page.goto("/upload/")
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request) if request.method == "POST" else None)
    page.set_input_files(
        "#file",
        files=[
            {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"},
            {
                "name": "huge.png",
                "mimeType": PNG,
                "buffer": b"\0" * (Config.from_env({}).max_upload_bytes + 1),
            },
        ],
        timeout=30_000,  # 5 MB through Playwright's pipe: slow on a loaded machine, not a bug
    )
    expect(upload_item(page, "notes.txt").locator(".upload-message")).to_have_text(
        "Only .jpg, .jpeg, .png and .gif files are accepted."
    )
    expect(upload_item(page, "huge.png").locator(".upload-message")).to_have_text(
        "The file is 5.0 MB; the limit is 5 MB."
    )
    # A good file afterwards: once it is done, any request for the refused ones would be seen.
    page.set_input_files(
        "#file", files=[{"name": "fine.png", "mimeType": PNG, "buffer": make_image()}]
    )
    expect_uploaded(page, "fine.png")
    assert len(sent) == 1, [request.url for request in sent]
    assert site.rows() == 1


def test_page_one_keeps_twelve_tiles_live_and_refills_after_a_delete(
    context: BrowserContext, site: Stack
) -> None:
    uploader = context.new_page()
    uploader.goto("/upload/")
    for n in range(12):
        fetch_upload(uploader, make_image("PNG", (10 + n, 10)), f"img-{n:02d}.png")
    page = context.new_page()
    page.goto("/images/")
    expect_live(page)
    mark_page(page)
    tiles = page.locator("#gallery-grid .tile")
    expect(tiles).to_have_count(12)
    expect(page.locator(".pagination a")).to_have_count(0)

    newest = fetch_upload(uploader, make_image("PNG", (50, 10)), "img-12.png")
    expect(tiles.first).to_have_attribute("data-id", str(newest["id"]))
    expect(tiles).to_have_count(12)
    expect(tiles.last.locator(".tile-name")).to_have_text("img-01.png")
    expect(page.locator("#gallery-total")).to_have_text("Images: 13")
    expect(page.locator("#gallery-pages")).to_have_text("2")
    expect(page.get_by_role("link", name="Next page")).to_have_attribute("href", "/images/?page=2")
    assert tile_ids(page) == [i["id"] for i in gallery_json(site)["images"]]

    delete_with_confirmation(page, tiles.nth(4).locator(".tile-delete"))
    expect(page.locator("#gallery-total")).to_have_text("Images: 12")
    expect(tiles).to_have_count(12)
    expect(tiles.last.locator(".tile-name")).to_have_text("img-00.png")  # refilled from page 2
    expect(page.locator("#gallery-pages")).to_have_text("1")
    expect(page.locator(".pagination a")).to_have_count(0)
    assert tile_ids(page) == [i["id"] for i in gallery_json(site)["images"]]
    assert "img-08.png" not in page.locator(".tile-name").all_inner_texts()
    assert_not_reloaded(page)
    assert site.rows() == 12
