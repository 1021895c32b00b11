"""`make screenshots`: start a local stack, fill it with sample images, and photograph the
pages with headless Chromium into docs/screenshots/ (light and dark themes)."""

from __future__ import annotations

import colorsys
import sys
from io import BytesIO
from pathlib import Path

from PIL import Image, ImageDraw
from playwright.sync_api import Page, sync_playwright

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


def sample_image(index: int, name: str) -> bytes:
    """A colourful gradient with circles, so the screenshots show real-looking tiles."""
    width, height = 480, 360
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    hue = index / len(SAMPLES)
    for y in range(height):
        r, g, b = colorsys.hsv_to_rgb((hue + y / height * 0.25) % 1, 0.55, 0.95)
        draw.line([(0, y), (width, y)], fill=(int(r * 255), int(g * 255), int(b * 255)))
    for k in range(5):
        x, y, radius = 60 + k * 90, 120 + (k % 2) * 100, 30 + k * 6
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


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    with running_stack(workers=2) as stack, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        for scheme in ("light", "dark"):
            context = browser.new_context(
                base_url=stack.url,
                viewport={"width": 1200, "height": 820},
                color_scheme=scheme,
                locale="en-US",
                timezone_id="UTC",
            )
            page = context.new_page()
            if scheme == "light":
                upload_samples(page)
                page.screenshot(path=OUT / "upload.png")
            suffix = "" if scheme == "light" else "-dark"
            page.goto("/")
            page.screenshot(path=OUT / f"home{suffix}.png")
            page.goto("/images/")
            page.locator("#live-status[data-state=live]").wait_for()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=OUT / f"gallery{suffix}.png")
            page.locator(".tile-link").first.click()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=OUT / f"view{suffix}.png")
            context.close()
        browser.close()
    print(f"screenshots written to {OUT}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
