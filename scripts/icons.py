"""Render the site's raster icons from the one drawing, static/icons/icon.svg:
static/favicon.ico (16, 32, 48 px), apple-touch-icon.png (180 px) and the web manifest's 192/512 px
PNGs. Run after changing the SVG: `.venv/bin/python -m scripts.icons`."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from playwright.sync_api import sync_playwright

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS

ICONS = Path(__file__).resolve().parent.parent / "static" / "icons"
PNG_SIZES = {"icon-512.png": 512, "icon-192.png": 192, "apple-touch-icon.png": 180}
ICO_SIZES = (16, 32, 48)


def render(svg: str, side: int) -> Image.Image:
    """The SVG drawn by Chromium at `side` px square, on a transparent background."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": side, "height": side})
            page.set_content(
                f'<body style="margin:0">{svg.replace("<svg ", f"<svg width={side} ", 1)}</body>'
            )
            png = page.locator("svg").screenshot(omit_background=True)
        finally:
            browser.close()
    return Image.open(io.BytesIO(png)).convert("RGBA")


def main() -> None:
    svg = (ICONS / "icon.svg").read_text()
    big = render(svg, 512)
    for name, side in PNG_SIZES.items():
        image = big if side == 512 else render(svg, side)
        image.save(ICONS / name, optimize=True)
    # Each ICO size drawn at its own size: crisper than scaling the 512 px one down.
    frames = [render(svg, side) for side in ICO_SIZES]
    frames[-1].save(
        ICONS.parent
        / "favicon.ico",  # at the root of static/: Tornado serves /favicon.ico from there
        sizes=[(s, s) for s in ICO_SIZES],
        append_images=frames[:-1],
    )
    print(f"wrote {', '.join([*PNG_SIZES, 'favicon.ico'])} in {ICONS}")


if __name__ == "__main__":
    main()
