"""`make screenshots`: start a local stack, fill it with sample images, and photograph the
pages with headless Chromium into docs/screenshots/: home, upload (in progress), gallery and
image view, in English and Russian, light and dark."""

from __future__ import annotations

import colorsys
import sys
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import BrowserContext, Page, sync_playwright

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS
from scripts.launch import running_stack

OUT = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SAMPLES = [
    "sunset over the bay.jpg",
    "cat-on-keyboard.png",
    "diagram v2.png",
    "mountains.jpg",
    "снег во дворе.jpg",
    "party 🎉.gif",
    "receipt-2026-11.png",
    "forest path.jpg",
]


def sample_image(index: int, name: str, width: int = 480, height: int = 360) -> bytes:
    """A colourful gradient with circles, so the screenshots show real-looking tiles."""
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    hue = index / len(SAMPLES)
    for y in range(height):
        r, g, b = colorsys.hsv_to_rgb((hue + y / height * 0.25) % 1, 0.55, 0.95)
        draw.line([(0, y), (width, y)], fill=(int(r * 255), int(g * 255), int(b * 255)))
    for k in range(5):
        x = (60 + k * 90) * width // 480
        y = (120 + (k % 2) * 100) * height // 360
        radius = (30 + k * 6) * width // 480
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=(255, 255, 255, 90))
    out = BytesIO()
    fmt = {"jpg": "JPEG", "png": "PNG", "gif": "GIF"}[name.rsplit(".", 1)[1]]
    image.save(out, fmt)
    return out.getvalue()


def upload_samples(page: Page) -> None:
    page.goto("/upload/")
    files = [
        {"name": name, "mimeType": "application/octet-stream", "buffer": sample_image(i, name)}
        for i, name in enumerate(SAMPLES)
    ]
    page.set_input_files("#file", files=files)
    page.locator(".upload-item.is-done").nth(len(SAMPLES) - 1).wait_for()


def grainy_photo(index: int) -> bytes:
    """A sample with film grain: big enough (~200 KB) for a visible upload progress."""
    base = Image.open(BytesIO(sample_image(index, "x.png", 900, 600))).convert("RGB")
    grain = Image.effect_noise((900, 600), 40).convert("RGB")
    out = BytesIO()
    Image.blend(base, grain, 0.12).save(out, "JPEG", quality=92)
    return out.getvalue()


def upload_in_progress(context: BrowserContext, page: Page) -> None:
    """The upload page while three files are on their way (the network slowed down)."""
    page.goto("/upload/")
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    conditions = {"offline": False, "latency": 20, "downloadThroughput": 10**7}
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": 30_000})
    names = ("beach.jpg", "harbour.jpg", "old-town.jpg")
    page.set_input_files(
        "#file",
        files=[
            {"name": n, "mimeType": "image/jpeg", "buffer": grainy_photo(i + 3)}
            for i, n in enumerate(names)
        ],
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('progress')].some(p => p.value > 25 && p.value < 80)"
    )
    page.screenshot(path=OUT / f"upload-{context_tag(page)}.png")
    cdp.send("Network.emulateNetworkConditions", conditions | {"uploadThroughput": 10**8})
    page.locator(".upload-item.is-done").nth(2).wait_for()
    cdp.detach()
    # Keep the gallery shots about the samples: remove what this shot uploaded.
    page.evaluate(
        """async (names) => {
          const token = document.querySelector('meta[name="xsrf-token"]').content;
          const json = { Accept: "application/json" };
          const body = await (await fetch("/images/", { headers: json })).json();
          for (const image of body.images.filter((i) => names.includes(i.original_name))) {
            const headers = { "X-XSRFToken": token };
            await fetch(`/delete/${image.id}`, { method: "DELETE", headers });
          }
        }""",
        list(names),
    )


def context_tag(page: Page) -> str:
    return page.evaluate(
        "() => document.documentElement.lang + '-' +"
        " (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light')"
    )


def live_frames(context: BrowserContext) -> None:
    """Two frames of one gallery tab: before and after an upload made in another tab."""
    gallery, uploader = context.new_page(), context.new_page()
    gallery.set_viewport_size({"width": 1100, "height": 560})
    gallery.goto("/images/")
    gallery.locator("#live-status[data-state=live]").wait_for()
    gallery.wait_for_load_state("networkidle")
    gallery.screenshot(path=OUT / "live-1-before.png")
    uploader.goto("/upload/")
    name = "just-uploaded.png"
    uploader.set_input_files(
        "#file", files=[{"name": name, "mimeType": "image/png", "buffer": sample_image(6, name)}]
    )
    gallery.locator(".tile-name", has_text=name).wait_for()
    gallery.wait_for_load_state("networkidle")
    gallery.wait_for_function("() => [...document.images].every((i) => i.complete)")
    gallery.screenshot(path=OUT / "live-2-after.png")


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with running_stack(workers=2) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        first = True
        for locale in ("en-US", "ru-RU"):
            for scheme in ("light", "dark"):
                context = browser.new_context(
                    base_url=stack.url,
                    viewport={"width": 1100, "height": 760},
                    color_scheme=scheme,
                    locale=locale,
                    timezone_id="Europe/Moscow" if locale == "ru-RU" else "UTC",
                )
                page = context.new_page()
                if first:
                    upload_samples(page)
                    first = False
                upload_in_progress(context, page)
                tag = context_tag(page)
                for name, path in (("home", "/"), ("gallery", "/images/")):
                    page.goto(path)
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=OUT / f"{name}-{tag}.png")
                page.locator(".tile-link").nth(3).click()
                page.wait_for_load_state("networkidle")
                page.screenshot(path=OUT / f"view-{tag}.png")
                context.close()
        context = browser.new_context(base_url=stack.url, locale="en-US", timezone_id="UTC")
        live_frames(context)
        context.close()
        browser.close()
    print(f"screenshots written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
