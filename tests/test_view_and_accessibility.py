"""The image view in Chromium (copy formats, download name, arrow keys, delete) and an
axe-core accessibility check of every page, in both languages and both colour schemes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser_helpers import TIMEOUT_MS, axe_violations, delete_with_confirmation
from tests.images import make_image
from tests.support import Browser, Stack


def open_context(chromium: Chromium, site: Stack, **options: object) -> BrowserContext:
    context = chromium.new_context(
        base_url=site.url, timezone_id="UTC", **{"locale": "en-US", **options}
    )
    context.set_default_timeout(TIMEOUT_MS)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    return context


@pytest.fixture
def context(chromium: Chromium, site: Stack) -> Iterator[BrowserContext]:
    context = open_context(chromium, site)
    yield context
    context.close()


def upload_three(page: Page) -> list[dict]:
    """Three uploads from `page`'s visitor (so it owns them); oldest first."""
    page.goto("/upload/")
    images = []
    for name in ("first.png", "second [draft].png", "third.png"):
        images.append(
            page.evaluate(
                """async ([name, bytes]) => {
                  const form = new FormData();
                  form.append("file", new File([new Uint8Array(bytes)], name));
                  const token = document.querySelector('meta[name="xsrf-token"]').content;
                  const r = await fetch("/upload/", { method: "POST", body: form,
                    headers: { "X-XSRFToken": token, Accept: "application/json" } });
                  return r.json();
                }""",
                [name, list(make_image("PNG", (30, 20)))],
            )
        )
    return images


def test_copy_buttons_put_each_format_on_the_clipboard(context: BrowserContext) -> None:
    page = context.new_page()
    images = upload_three(page)
    image = images[1]
    page.goto(f"/view/{image['id']}")
    url, name = image["url"], image["original_name"]
    expected = {
        "direct-link": url,
        "markdown-code": f"![second [draft\\].png]({url})",
        "html-code": f'<img src="{url}" alt="second [draft].png">',
        "bbcode-code": f"[img]{url}[/img]",
    }
    for field, text in expected.items():
        button = page.locator(f'button[data-copy-from="{field}"]')
        button.click()
        expect(button).to_have_text("Copied!")
        assert page.evaluate("() => navigator.clipboard.readText()") == text
    download = page.get_by_role("link", name="Download")
    assert download.get_attribute("download") == name
    assert download.get_attribute("href") == f"/images/{image['filename']}"


def test_arrow_keys_move_between_images_and_delete_works_from_the_view(
    context: BrowserContext, site: Stack
) -> None:
    page = context.new_page()
    first, second, third = upload_three(page)
    page.goto(f"/view/{second['id']}")

    def press_and_arrive(key: str, image: dict) -> None:
        page.keyboard.press(key)
        expect(page).to_have_url(f"{site.url}/view/{image['id']}")
        # The URL changes before the new page's deferred module script listens for keys.
        page.wait_for_load_state("load")

    press_and_arrive("ArrowLeft", third)  # newer
    press_and_arrive("ArrowRight", second)  # older
    press_and_arrive("ArrowRight", first)
    page.locator("#direct-link").focus()
    page.keyboard.press("ArrowLeft")  # typing in a field never navigates
    expect(page).to_have_url(f"{site.url}/view/{first['id']}")

    delete_with_confirmation(page, page.get_by_role("button", name="Delete"))
    expect(page).to_have_url(f"{site.url}/images/")
    expect(page.locator("#gallery-grid .tile")).to_have_count(2)
    assert site.rows() == 2


def test_keyboard_alone_reaches_upload_and_gallery(context: BrowserContext) -> None:
    page = context.new_page()
    page.goto("/")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    targets = []
    for _ in range(6):
        page.keyboard.press("Tab")
        targets.append(page.evaluate("() => document.activeElement.getAttribute('href')"))
    assert "/upload/" in targets and "/images/" in targets


# The app's pages, its 404, and nginx's own 404 page (a server-side include).
PAGES = ["/", "/upload/", "/images/", "/view/{id}", "/nowhere", "/static/nowhere.css"]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("locale", ["en-US", "ru-RU"])
def test_every_page_passes_axe(
    chromium: Chromium, site: Stack, browser: Browser, locale: str, scheme: str
) -> None:
    image = browser.upload("a11y.png", make_image("PNG", (40, 30))).json()
    # The CSP keeps out injected scripts, axe included: bypass it for the checker only.
    context = open_context(chromium, site, locale=locale, color_scheme=scheme, bypass_csp=True)
    try:
        page = context.new_page()
        found = {}
        for path in PAGES:
            page.goto(path.format(id=image["id"]))
            page.wait_for_load_state("networkidle")
            violations = axe_violations(page)
            if violations:
                found[path] = [(v["id"], v["help"], len(v["nodes"])) for v in violations]
        assert not found, found
    finally:
        context.close()
