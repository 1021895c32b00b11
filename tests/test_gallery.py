"""The gallery, the view page and delete, over real HTTP through nginx."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.images import make_image
from tests.support import BOTH_STORES, Browser, Stack

JSON = {"Accept": "application/json"}


def upload_many(browser: Browser, count: int) -> list[dict]:
    images = []
    for i in range(count):
        response = browser.upload(f"img-{i:02d}.png", make_image("PNG", (10 + i, 10)))
        assert response.status_code == 201, response.text
        images.append(response.json())
    return images


def test_an_empty_gallery_is_page_one_of_one_with_a_friendly_message(browser: Browser) -> None:
    assert browser.get("/images/", headers=JSON).json() == {
        "page": 1,
        "pages": 1,
        "per_page": 12,
        "total": 0,
        "images": [],
    }
    page = browser.get("/images/")
    assert page.status_code == 200
    assert "No images yet" in page.text
    assert browser.get("/images/?page=2", headers=JSON).status_code == 404


def test_25_uploads_make_pages_of_12_12_and_1_newest_first(browser: Browser) -> None:
    uploaded = upload_many(browser, 25)
    pages = [browser.get(f"/images/?page={n}", headers=JSON).json() for n in (1, 2, 3)]
    assert [len(p["images"]) for p in pages] == [12, 12, 1]
    assert all(p["pages"] == 3 and p["total"] == 25 and p["per_page"] == 12 for p in pages)
    listed = [image["id"] for p in pages for image in p["images"]]
    assert listed == [image["id"] for image in reversed(uploaded)]
    assert pages[0]["images"][0]["can_delete"] is True
    assert browser.get("/images/?page=4", headers=JSON).status_code == 404

    html = browser.get("/images/?page=3").text
    assert 'aria-current="page">3<' in html
    assert html.count('<li class="tile" data-id=') == 1
    first = uploaded[0]
    assert first["original_name"] in html
    assert f"/images/thumbs/{first['filename'].split('.')[0]}-320.webp" in html  # the tile
    assert f"/view/{first['id']}" in html
    assert f"{first['size'] / 1024:.1f} KB" in html
    assert re.search(r"<time[^>]+datetime=\"\d{4}-\d\d-\d\dT\d\d:\d\d", html)


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", "%C2%B2", "1e3"])
def test_a_page_that_is_not_a_positive_integer_is_a_400(browser: Browser, value: str) -> None:
    response = browser.get(f"/images/?page={value}", headers=JSON)
    assert response.status_code == 400
    assert response.json() == {"error": "The page number must be a positive whole number."}
    html = browser.get(f"/images/?page={value}")
    assert html.status_code == 400
    assert "positive whole number" in html.text


def test_the_view_page_shows_the_image_its_link_and_a_copy_button(browser: Browser) -> None:
    (image,) = upload_many(browser, 1)
    page = browser.get(f"/view/{image['id']}")
    assert page.status_code == 200
    assert f'value="{image["url"]}"' in page.text
    assert "data-copy-from" in page.text
    assert "data-delete" in page.text
    assert browser.get(f"/view/{image['id']}", headers=JSON).json()["url"] == image["url"]


@BOTH_STORES
def test_delete_removes_row_and_file(site: Stack, browser: Browser) -> None:
    (image,) = upload_many(browser, 1)
    assert browser.remove(image["id"]).status_code == 204
    assert site.rows() == 0
    assert site.files() == set()
    assert httpx.get(image["url"]).status_code == 404
    assert browser.get(f"/view/{image['id']}").status_code == 404
    again = browser.remove(image["id"])
    assert again.status_code == 404
    assert again.json() == {"error": "No such image. It may have been deleted."}


def test_only_the_uploader_may_delete(site: Stack, browser: Browser) -> None:
    (image,) = upload_many(browser, 1)
    with Browser(site.url) as stranger:
        listed = stranger.get("/images/", headers=JSON).json()["images"]
        assert listed[0]["can_delete"] is False
        assert "data-delete" not in stranger.get("/images/").text
        response = stranger.remove(image["id"])
        assert response.status_code == 403
        assert "Only the person who uploaded" in response.json()["error"]
    assert site.rows() == 1


def test_delete_needs_the_xsrf_token(site: Stack, browser: Browser) -> None:
    (image,) = upload_many(browser, 1)
    response = browser.delete(f"/delete/{image['id']}", headers=JSON)
    assert response.status_code == 403
    assert site.rows() == 1


def test_a_forged_owner_cookie_is_ignored(site: Stack, browser: Browser) -> None:
    (image,) = upload_many(browser, 1)
    browser.cookies.set("owner", "forged-token", domain="127.0.0.1")
    response = browser.remove(image["id"])
    assert response.status_code == 403
    assert site.rows() == 1


@pytest.mark.parametrize("path", ["/nope", "/delete/abc", "/view/99999999999999999999", "/x/"])
def test_unknown_addresses_are_404_in_html_and_json(browser: Browser, path: str) -> None:
    html = browser.get(path)
    assert html.status_code == 404
    assert html.headers["content-type"] == "text/html; charset=UTF-8"
    assert "<html" in html.text and "Traceback" not in html.text
    as_json = browser.get(path, headers=JSON)
    assert as_json.headers["content-type"] == "application/json; charset=UTF-8"
    assert as_json.json()["error"]


@BOTH_STORES
def test_unknown_image_files_are_404_from_nginx(site: Stack) -> None:
    assert httpx.get(f"{site.url}/images/{'0' * 32}.png").status_code == 404
    assert httpx.get(f"{site.url}/images/../server/app.py").status_code in (400, 404)


def test_home_page_links_to_upload_and_gallery(site: Stack) -> None:
    page = httpx.get(site.url + "/")
    assert page.status_code == 200
    assert 'href="/upload/"' in page.text and 'href="/images/"' in page.text


def test_static_assets_are_served_by_nginx(site: Stack) -> None:
    page = httpx.get(site.url + "/images/").text
    css = re.search(r'href="(/static/css/site\.css\?v=[0-9a-f]+)"', page)
    assert css
    response = httpx.get(site.url + css.group(1))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
