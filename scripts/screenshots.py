"""`make screenshots`: start a local stack, fill it with real photographs, and photograph the
pages with headless Chromium into docs/screenshots/: home, upload results, gallery, the
lightbox and the image page, in English and Russian, light and dark; the gallery on a phone;
two frames of a live gallery.

The photographs are scikit-image's sample data (public-domain or freely licensed photos),
taken from its wheel: `pip download --no-deps scikit-image` into a cache folder, once, and
read from the zip there (nothing is installed)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, sync_playwright

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from scripts.launch import running_stack

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "imagehosting-screenshots"
# File in the wheel's skimage/data/ -> the name it is uploaded under.
PHOTOS = {
    "chelsea.png": "chelsea the cat.png",
    "coffee.png": "coffee.png",
    "astronaut.png": "astronaut Eileen Collins.png",
    "rocket.jpg": "rocket launch.jpg",
    "hubble_deep_field.jpg": "hubble deep field.jpg",
    "motorcycle_left.png": "motorcycle.png",
    "camera.png": "cameraman.png",
    "coins.png": "old coins.png",
    "moon.png": "moon.png",
    "retina.jpg": "retina.jpg",
    "grass.png": "grass.png",
    "brick.png": "brick wall.png",
    "gravel.png": "gravel.png",
    "ihc.png": "immunohistochemistry.png",
}
# Uploaded last, so they open the gallery and the upload-results shot.
FRONT = ("coffee.png", "chelsea.png", "astronaut.png")
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}


def photo_wheel() -> Path:
    """scikit-image's wheel in the cache folder, downloaded the first time."""
    found = sorted(CACHE.glob("scikit_image-*.whl"))
    if not found:
        CACHE.mkdir(parents=True, exist_ok=True)
        print(f"downloading scikit-image's wheel (sample photos) into {CACHE}", file=sys.stderr)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
        subprocess.run([*command, "--dest", str(CACHE), "scikit-image"], check=True)
        found = sorted(CACHE.glob("scikit_image-*.whl"))
    return found[-1]


def load_photos() -> dict[str, bytes]:
    """Upload name -> bytes, in upload order (the FRONT ones last, so newest)."""
    with zipfile.ZipFile(photo_wheel()) as wheel:
        data = {name: wheel.read(f"skimage/data/{name}") for name in PHOTOS}
    order = [n for n in PHOTOS if n not in FRONT] + list(reversed(FRONT))
    return {PHOTOS[n]: data[n] for n in order}


def files(photos: dict[str, bytes], names: list[str]) -> list[dict[str, object]]:
    return [{"name": n, "mimeType": "application/octet-stream", "buffer": photos[n]} for n in names]


def upload_all(page: Page, photos: dict[str, bytes]) -> None:
    page.goto("/")
    # One at a time, so ids (and so the gallery's order) follow the list.
    for count, name in enumerate(photos, start=1):
        page.set_input_files("#file", files=files(photos, [name]))
        page.locator(".upload-item.is-done").nth(count - 1).wait_for()


def context_tag(page: Page) -> str:
    return page.evaluate(
        "() => document.documentElement.lang + '-' +"
        " (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')"
    )


def settle(page: Page) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_function("() => [...document.images].every((i) => i.complete)")


def upload_results(context: BrowserContext, page: Page, photos: dict[str, bytes]) -> None:
    """Home after a drop: one photo done (preview, codes), two on their way (slow network)."""
    page.goto("/")
    done, slow = "chelsea the cat.png", ["rocket launch.jpg", "coffee.png"]
    page.set_input_files("#file", files=files(photos, [done]))
    page.locator(".upload-item.is-done").wait_for()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 20, "downloadThroughput": 10**7}
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": 60_000})
    page.set_input_files("#file", files=files(photos, slow))
    page.wait_for_function(
        "() => [...document.querySelectorAll('progress')].some(p => p.value > 20 && p.value < 80)"
    )
    page.evaluate("() => window.scrollTo(0, 260)")
    page.screenshot(path=OUT / f"upload-{context_tag(page)}.png")
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": 10**9})
    page.locator(".upload-item.is-done").nth(2).wait_for()
    cdp.detach()
    # Keep the gallery about the samples: remove the copies this shot uploaded.
    page.evaluate(
        """async () => {
          const token = document.querySelector('meta[name="xsrf-token"]').content;
          for (const link of document.querySelectorAll(".upload-item.is-done .upload-view")) {
            const id = link.getAttribute("href").split("/").pop();
            await fetch(`/delete/${id}`, { method: "DELETE", headers: { "X-XSRFToken": token } });
          }
        }"""
    )


def pages_in(context: BrowserContext, photos: dict[str, bytes]) -> None:
    page = context.new_page()
    tag = None
    upload_results(context, page, photos)
    tag = context_tag(page)
    page.goto("/")
    settle(page)
    page.screenshot(path=OUT / f"home-{tag}.png")
    page.goto("/images/")
    settle(page)
    page.screenshot(path=OUT / f"gallery-{tag}.png")
    page.locator(".tile-link").nth(2).click()
    page.locator("#lightbox[open]").wait_for()
    page.wait_for_function("() => document.querySelector('.lightbox-image').complete")
    page.screenshot(path=OUT / f"lightbox-{tag}.png")
    page.goto(page.url)  # the same address, opened directly: the full image page
    settle(page)
    page.screenshot(path=OUT / f"view-{tag}.png")
    page.close()


def live_frames(context: BrowserContext, photos: dict[str, bytes]) -> None:
    """Two frames of one gallery tab: before and after an upload made in another tab."""
    gallery, uploader = context.new_page(), context.new_page()
    gallery.set_viewport_size({"width": 1100, "height": 560})
    gallery.goto("/images/")
    gallery.locator("#live-status[data-state=live]").wait_for()
    settle(gallery)
    gallery.screenshot(path=OUT / "live-1-before.png")
    uploader.goto("/")
    name = "rocket launch.jpg"
    uploader.set_input_files("#file", files=files(photos, [name]))
    gallery.locator(".tile-name", has_text=name).first.wait_for()
    settle(gallery)
    gallery.screenshot(path=OUT / "live-2-after.png")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    photos = load_photos()
    with running_stack(workers=2) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        setup = browser.new_context(base_url=stack.url, viewport=DESKTOP)
        upload_all(setup.new_page(), photos)
        # Every shot is taken as the visitor who uploaded (same owner cookie): tiles show the
        # Delete button, as they do for a person browsing their own uploads.
        owner = setup.storage_state()
        setup.close()
        for locale in ("en-US", "ru-RU"):
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    base_url=stack.url,
                    viewport=DESKTOP,
                    color_scheme=scheme,
                    locale=locale,
                    timezone_id="Europe/Moscow" if locale == "ru-RU" else "UTC",
                    storage_state=owner,
                )
                pages_in(context, photos)
                context.close()
        phone = browser.new_context(
            base_url=stack.url,
            viewport=PHONE,
            device_scale_factor=2,
            is_mobile=True,
            has_touch=True,
            locale="en-US",
            timezone_id="UTC",
            storage_state=owner,
        )
        page = phone.new_page()
        page.goto("/images/")
        settle(page)
        page.screenshot(path=OUT / "gallery-phone.png")
        phone.close()
        context = browser.new_context(base_url=stack.url, locale="en-US", timezone_id="UTC")
        live_frames(context, photos)
        context.close()
        browser.close()
    print(f"screenshots written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
