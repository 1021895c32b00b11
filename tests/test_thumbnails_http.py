"""Thumbnails over real HTTP: made right after an upload, served by nginx like the originals,
shown by the gallery (1x/2x, lazy, sized), gone with their image; a page of photos stays light."""

from __future__ import annotations

import re
from io import BytesIO

import httpx
from PIL import Image

from tests.images import make_image, make_photo
from tests.support import BOTH_STORES, Browser, Stack, stored_files

# Everything here stores or refuses to store files: once per store (local folder, S3).
pytestmark = BOTH_STORES

JSON = {"Accept": "application/json"}
# 12 photos on a gallery page may cost at most this many bytes of images.
PAGE_IMAGE_BUDGET = 400 * 1024


def test_an_upload_has_thumbnails_that_nginx_serves_as_immutable_webp(
    site: Stack, browser: Browser
) -> None:
    response = browser.upload("holiday.jpg", make_photo(1600, 1000))
    assert response.status_code == 201, response.text
    # The answer comes before the thumbnails (the helper waited for them afterwards).
    assert response.json()["thumb_url"] is None
    image = browser.wait_for_thumbnails(response.json()["id"])
    stem = image["filename"].split(".")[0]
    assert image["thumb_url"] == f"{site.url}/images/thumbs/{stem}-320.webp"
    assert image["thumb_2x_url"] == f"{site.url}/images/thumbs/{stem}-640.webp"
    assert (image["thumb_width"], image["thumb_height"]) == (320, 200)
    assert site.files() == stored_files(image["filename"])

    for url, size in ((image["thumb_url"], (320, 200)), (image["thumb_2x_url"], (640, 400))):
        served = httpx.get(url)
        assert served.status_code == 200
        assert served.headers["content-type"] == "image/webp"
        assert served.headers["x-content-type-options"] == "nosniff"
        assert "immutable" in served.headers["cache-control"]
        assert "sandbox" in served.headers["content-security-policy"]
        with Image.open(BytesIO(served.content)) as img:
            assert (img.format, img.size) == ("WEBP", size)
    # The gallery's JSON carries the same fields.
    listed = browser.get("/images/", headers=JSON).json()["images"][0]
    assert listed["thumb_url"] == image["thumb_url"]


def test_only_generated_thumbnail_names_are_served(site: Stack, browser: Browser) -> None:
    image = browser.upload("a.png", make_image("PNG", (500, 400))).json()
    stem = image["filename"].split(".")[0]
    assert httpx.get(f"{site.url}/images/thumbs/{stem}-320.webp").status_code == 200
    for path in (
        f"/images/thumbs/{stem}-100.webp",
        f"/images/thumbs/{stem.upper()}-320.webp",
        f"/images/thumbs/{stem}-320.png",
        f"/images/thumbs/{'0' * 32}-320.webp",
        "/images/thumbs/",
    ):
        assert httpx.get(site.url + path).status_code == 404, path


def test_deleting_an_image_deletes_its_thumbnails(site: Stack, browser: Browser) -> None:
    image = browser.wait_for_thumbnails(
        browser.upload("a.gif", make_image("GIF", (600, 300))).json()["id"]
    )
    assert browser.remove(image["id"]).status_code == 204
    assert site.files() == set()
    assert httpx.get(image["thumb_url"]).status_code == 404
    assert httpx.get(image["thumb_2x_url"]).status_code == 404


def test_the_gallery_tile_shows_the_sized_lazy_thumbnail_and_links_the_original(
    browser: Browser,
) -> None:
    image = browser.upload("wide.png", make_image("PNG", (1000, 250))).json()
    html = browser.get("/images/").text
    stem = image["filename"].split(".")[0]
    tag = re.search(r'<img src="/images/thumbs/[^>]+>', html)
    assert tag, html
    assert f'src="/images/thumbs/{stem}-320.webp"' in tag.group(0)
    assert (
        f'srcset="/images/thumbs/{stem}-320.webp 1x, /images/thumbs/{stem}-640.webp 2x"'
        in tag.group(0)
    )
    assert 'width="320" height="80"' in tag.group(0)
    assert 'loading="lazy"' in tag.group(0)
    assert f'href="/view/{image["id"]}"' in html
    view = browser.get(f"/view/{image['id']}").text
    assert f'src="/images/{image["filename"]}"' in view  # the full image stays on its page


def page_image_bytes(site: Stack, html: str, density: int) -> tuple[int, int]:
    """(bytes, count) of the tile images a browser at this pixel density fetches."""
    urls = []
    for tag in re.findall(r'<li class="tile" data-id=.*?<img ([^>]+)>', html, re.S):
        srcset = re.search(r'srcset="([^"]+)"', tag)
        src = re.search(r'src="([^"]+)"', tag)
        assert src and srcset
        candidates = dict(reversed(c.split()) for c in srcset.group(1).split(", "))
        urls.append(candidates.get(f"{density}x", src.group(1)))
    return sum(len(httpx.get(site.url + url).content) for url in urls), len(urls)


def test_a_page_of_twelve_photos_transfers_at_most_400_kb_of_images(
    site: Stack, browser: Browser
) -> None:
    originals = 0
    for n in range(12):
        data = make_photo(2000, 1500, seed=n)
        originals += len(data)
        assert browser.upload(f"photo-{n}.jpg", data).status_code == 201
    html = browser.get("/images/").text
    for density in (1, 2):
        total, count = page_image_bytes(site, html, density)
        assert count == 12
        assert total <= PAGE_IMAGE_BUDGET, (density, total)
        assert total < originals / 10
