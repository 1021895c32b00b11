"""The pages in Chromium against the real stack: uploading from the home page (preview, the
four share codes with one copy button each, MB sizes, no useless Upload button), the
lightbox over the gallery (open, arrows across a page boundary, Esc, Back, swipe, focus,
a live delete while open), the grid at phone and desktop widths, and the pagination window."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import httpx
import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from handlers.paging import page_window
from tests.browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    TIMEOUT_MS,
    axe_violations,
    drop_file,
    fetch_upload,
)
from tests.images import make_image, make_noise_jpeg
from tests.support import Browser, Stack

expect.set_options(timeout=TIMEOUT_MS)
PNG = "image/png"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Chromium]:
    # Module scope: a live sync Playwright marks an event loop as running in this thread.
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def new_context(chromium: Chromium, site: Stack) -> Iterator[Callable[..., BrowserContext]]:
    """Browser contexts (one visitor each); an uncaught script error on any page fails."""
    contexts: list[BrowserContext] = []
    errors: list[str] = []

    def make(**options: object) -> BrowserContext:
        context = chromium.new_context(
            base_url=site.url, **{"locale": "en-US", "timezone_id": "UTC", **options}
        )
        contexts.append(context)
        context.set_default_timeout(TIMEOUT_MS)
        if options.get("java_script_enabled", True):
            context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
        context.on("page", lambda p: p.on("pageerror", lambda e: errors.append(str(e))))
        return context

    yield make
    for context in contexts:
        context.close()
    assert not errors, errors


def gallery_json(site: Stack, page: int) -> dict:
    answer = httpx.get(f"{site.url}/images/?page={page}", headers={"Accept": "application/json"})
    answer.raise_for_status()
    return answer.json()


# -- the home page is the upload place -------------------------------------------------------


def test_home_uploads_on_drop_and_offers_every_share_code(
    new_context: Callable[..., BrowserContext], site: Stack
) -> None:
    page = new_context().new_page()
    page.goto("/")
    expect(page.locator("#drop-zone")).to_be_visible()
    expect(page.get_by_role("link", name="Open the gallery")).to_have_attribute("href", "/images/")
    # Uploads start on pick, drop or paste: no Upload button that would do nothing.
    expect(page.get_by_role("button", name="Upload", exact=True)).to_have_count(0)

    photo = make_noise_jpeg(1_400_000)
    drop_file(page, photo, "big photo.jpg", "image/jpeg")
    item = page.locator(".upload-item")
    expect(item).to_have_class(re.compile(r"\bis-done\b"), timeout=30_000)
    image = gallery_json(site, 1)["images"][0]
    expect(item.locator(".upload-message")).to_have_text(
        f"Uploaded ({len(photo) / 1048576:.1f} MB)"  # MB above one MB, never "1,367.2 KB"
    )
    # The answer comes before the thumbnails exist: the preview drawn from the file itself
    # stays (no second download of the original); a thumbnail replaces it when there is one.
    preview = item.locator(".upload-thumb img")
    expect(preview).to_have_attribute("src", re.compile(r"^(blob:|.*/images/thumbs/)"))
    assert preview.evaluate("(img) => img.complete && img.naturalWidth") > 0
    expect(item.locator(".upload-view")).to_have_attribute("href", f"/view/{image['id']}")

    url = image["url"]
    expected = {
        "direct": url,
        "markdown": f"![big photo.jpg]({url})",
        "html": f'<img src="{url}" alt="big photo.jpg">',
        "bbcode": f"[img]{url}[/img]",
    }
    buttons = item.locator(".upload-code button")
    expect(buttons).to_have_count(4)
    for key, text in expected.items():
        row = item.locator(f'.upload-code[data-code="{key}"]')
        expect(row.locator("input")).to_have_value(text)
        row.locator("button").click()
        assert page.evaluate("() => navigator.clipboard.readText()") == text
        # "Copied!" on the pressed button only, and it clears after a moment.
        expect(row.locator("button")).to_have_text("Copied!")
        expect(buttons.filter(has_text="Copied!")).to_have_count(1)
    expect(buttons.filter(has_text="Copied!")).to_have_count(0)


def test_without_javascript_the_form_uploads_with_its_button(
    new_context: Callable[..., BrowserContext], site: Stack
) -> None:
    page = new_context(java_script_enabled=False).new_page()
    page.goto("/")
    page.set_input_files(
        "#file", files=[{"name": "plain.png", "mimeType": PNG, "buffer": make_image()}]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("h1")).to_have_text("Uploaded")
    assert site.rows() == 1
    # The same four share codes as everywhere else.
    for field in ("direct-link", "markdown-code", "html-code", "bbcode-code"):
        expect(page.locator(f"#{field}")).to_have_value(re.compile(r"/images/[0-9a-f]{32}\.png"))


# -- the lightbox --------------------------------------------------------------------------


def fill_two_pages(page: Page) -> list[int]:
    """Fourteen images uploaded by `page`'s visitor; their ids, newest first."""
    page.goto("/upload/")
    ids = [
        fetch_upload(page, make_image("PNG", (20 + n, 16)), f"n{n:02d}.png")["id"]
        for n in range(14)
    ]
    return ids[::-1]


def shown_id(page: Page) -> int:
    return int(page.locator("#lightbox").get_attribute("data-id") or 0)


def test_lightbox_opens_steps_across_pages_and_closes_with_esc_and_back(
    new_context: Callable[..., BrowserContext], site: Stack
) -> None:
    page = new_context().new_page()
    ids = fill_two_pages(page)
    page.goto("/images/")
    dialog = page.locator("#lightbox")
    tiles = page.locator("#gallery-grid .tile")
    expect(tiles).to_have_count(12)

    tiles.nth(11).locator(".tile-link").click()
    expect(dialog).to_be_visible()
    expect(page).to_have_url(f"{site.url}/view/{ids[11]}")  # shareable while open
    expect(dialog.locator(".lightbox-title")).to_have_text("n02.png")
    expect(dialog.locator(".lightbox-close")).to_be_focused()

    page.keyboard.press("ArrowRight")  # past the last tile of page 1: page 2's first image
    expect(page).to_have_url(f"{site.url}/view/{ids[12]}")
    assert shown_id(page) == ids[12]
    expect(page.locator("#gallery-page")).to_have_text("2")  # the grid behind followed
    expect(tiles).to_have_count(2)
    expect(page.locator('.pagination [aria-current="page"]')).to_have_text("2")
    page.keyboard.press("ArrowLeft")  # and back across the boundary
    expect(page).to_have_url(f"{site.url}/view/{ids[11]}")
    expect(page.locator("#gallery-page")).to_have_text("1")
    expect(page.locator('.pagination [aria-current="page"]')).to_have_text("1")

    # Focus stays inside the open dialog.
    for _ in range(8):
        page.keyboard.press("Tab")
        assert page.evaluate(
            "() => document.getElementById('lightbox').contains(document.activeElement)"
        )

    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/images/(\?page=1)?$"))
    expect(tiles.nth(11).locator(".tile-link")).to_be_focused()  # focus returns to the tile

    # A swipe to the left on a touch screen shows the next (older) image.
    tiles.nth(0).locator(".tile-link").click()
    expect(dialog.locator(".lightbox-title")).to_have_text("n13.png")
    page.locator(".lightbox-image").evaluate(
        """(img) => {
          const at = (x) => ({ bubbles: true, pointerType: "touch", clientX: x, clientY: 300 });
          img.dispatchEvent(new PointerEvent("pointerdown", at(300)));
          img.dispatchEvent(new PointerEvent("pointerup", at(120)));
        }"""
    )
    expect(dialog.locator(".lightbox-title")).to_have_text("n12.png")
    page.go_back()  # Back closes it: one history entry for the whole visit
    expect(dialog).to_be_hidden()
    expect(page).to_have_url(f"{site.url}/images/")
    page.go_forward()  # and Forward brings it back on the image it showed
    expect(dialog).to_be_visible()
    expect(dialog.locator(".lightbox-title")).to_have_text("n12.png")


def test_an_image_deleted_elsewhere_is_skipped_in_the_open_lightbox(
    new_context: Callable[..., BrowserContext], site: Stack
) -> None:
    page = new_context().new_page()
    ids = fill_two_pages(page)
    page.goto("/images/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.locator("#gallery-grid .tile").nth(3).locator(".tile-link").click()
    expect(page).to_have_url(f"{site.url}/view/{ids[3]}")

    page.evaluate(
        """async (id) => {
          const token = document.querySelector('meta[name="xsrf-token"]').content;
          await fetch(`/delete/${id}`, { method: "DELETE", headers: { "X-XSRFToken": token } });
        }""",
        ids[3],
    )
    # The live event moves the lightbox on to the next image; the address follows.
    expect(page).to_have_url(f"{site.url}/view/{ids[4]}")
    expect(page.locator("#lightbox .lightbox-title")).to_have_text("n09.png")
    expect(page.locator("#lightbox")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("#lightbox")).to_be_hidden()
    expect(page.locator(f'.tile[data-id="{ids[3]}"]')).to_have_count(0)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_open_lightbox_and_an_inline_confirm_pass_axe(
    new_context: Callable[..., BrowserContext], site: Stack, scheme: str
) -> None:
    # The CSP keeps injected scripts out, axe included: bypass it for the checker only.
    page = new_context(bypass_csp=True, color_scheme=scheme).new_page()
    page.goto("/upload/")
    for name in ("one.png", "two.png"):
        fetch_upload(page, make_image(), name)
    page.goto("/images/")
    page.locator(".tile-delete").first.click()
    expect(page.locator(".confirm-delete")).to_be_visible()
    assert axe_violations(page) == []
    page.locator(".confirm-no").click()
    page.locator(".tile-link").first.click()
    expect(page.locator("#lightbox")).to_be_visible()
    page.wait_for_function("() => document.querySelector('.lightbox-image').complete")
    assert axe_violations(page) == []


# -- the grid --------------------------------------------------------------------------------


@pytest.mark.parametrize(("width", "columns"), [(390, 2), (1024, 4), (1440, 6)])
def test_twelve_tiles_fill_their_rows_at_every_width(
    new_context: Callable[..., BrowserContext], site: Stack, width: int, columns: int
) -> None:
    with Browser(site.url) as client:
        for n in range(12):
            assert client.upload(f"w{n}.png", make_image("PNG", (40 + n, 20))).status_code == 201
    page = new_context(viewport={"width": width, "height": 900}).new_page()
    page.goto("/images/")
    tiles = page.locator("#gallery-grid .tile-link")
    expect(tiles).to_have_count(12)
    tops = tiles.evaluate_all(
        "(links) => links.map((a) => Math.round(a.getBoundingClientRect().top))"
    )
    per_row = [tops.count(top) for top in sorted(set(tops))]
    assert per_row == [columns] * (12 // columns), per_row
    box = tiles.first.bounding_box()
    assert box is not None and abs(box["width"] - box["height"]) <= 1  # square thumbnails
    fit = tiles.first.locator("img").evaluate("(img) => getComputedStyle(img).objectFit")
    assert fit == "cover"


def test_pagination_shows_first_last_and_nearby_pages() -> None:
    assert page_window(1, 3) == [1, 2, 3]
    assert page_window(1, 20) == [1, 2, 3, 4, 5, None, 20]
    assert page_window(10, 20) == [1, None, 9, 10, 11, None, 20]
    assert page_window(20, 20) == [1, None, 16, 17, 18, 19, 20]
    assert all(len(page_window(p, 30)) <= 7 for p in range(1, 31))
