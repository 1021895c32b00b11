"""POST /upload/ through nginx: what is accepted, what is refused, and that a refusal
leaves nothing behind (no row, no file, no temp file)."""

from __future__ import annotations

import re

import httpx
import pytest

from server.config import Config
from tests.images import make_image, pad_png_to
from tests.support import BOTH_STORES, Browser, Stack, stored_files

# Everything here stores or refuses to store files: once per store (local folder, S3).
pytestmark = BOTH_STORES

FIVE_MB = Config.from_env({}).max_upload_bytes


def assert_nothing_stored(site: Stack) -> None:
    assert site.rows() == 0
    assert site.files() == set()


@pytest.mark.parametrize(
    ("name", "fmt", "ext"),
    [
        ("photo.jpg", "JPEG", ".jpg"),
        ("photo.JPEG", "JPEG", ".jpg"),
        ("diagram.png", "PNG", ".png"),
        ("anim.GIF", "GIF", ".gif"),
    ],
)
def test_upload_returns_the_image_object_and_nginx_serves_the_file(
    site: Stack, browser: Browser, name: str, fmt: str, ext: str
) -> None:
    data = make_image(fmt, (40, 30))
    response = browser.upload(name, data)
    assert response.status_code == 201, response.text
    image = response.json()
    assert set(image) >= {
        "id", "filename", "original_name", "size", "size_kb", "uploaded_at", "url",
        "width", "height", "format",
    }  # fmt: skip
    assert re.fullmatch(r"[0-9a-f]{32}" + re.escape(ext), image["filename"])
    assert image["original_name"] == name
    assert image["size"] == len(data)
    assert image["size_kb"] == round(len(data) / 1024, 1)
    assert (image["width"], image["height"], image["format"]) == (40, 30, fmt)
    assert re.search(r"T\d\d:\d\d:\d\d.*\+00:00$", image["uploaded_at"])
    assert image["url"] == f"{site.url}/images/{image['filename']}"

    served = httpx.get(image["url"])
    assert served.status_code == 200
    assert served.content == data
    assert served.headers["content-type"] == f"image/{'jpeg' if fmt == 'JPEG' else fmt.lower()}"
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "immutable" in served.headers["cache-control"]
    assert site.files() == stored_files(image["filename"])


def test_a_png_named_jpg_is_stored_under_its_true_extension(browser: Browser) -> None:
    response = browser.upload("actually-png.jpg", make_image("PNG"))
    assert response.status_code == 201
    assert response.json()["filename"].endswith(".png")
    assert response.json()["format"] == "PNG"


def test_the_link_honours_the_host_the_visitor_used(browser: Browser) -> None:
    response = browser.upload("a.png", make_image(), headers={"Host": "pics.example.org:8443"})
    assert response.status_code == 201
    assert response.json()["url"].startswith("http://pics.example.org:8443/images/")


def test_browser_form_upload_answers_with_a_page_holding_the_link(browser: Browser) -> None:
    response = browser.upload("cat.png", make_image(), accept="text/html")
    assert response.status_code == 201
    assert response.headers["content-type"].startswith("text/html")
    filename = next(iter(browser.get("/images/", headers={"Accept": "application/json"}).json()
                         ["images"]))["filename"]  # fmt: skip
    assert f"/images/{filename}" in response.text
    assert 'data-copy-from="direct-link"' in response.text


def test_original_name_is_data_never_a_path_and_is_escaped(site: Stack, browser: Browser) -> None:
    response = browser.upload("../..\\etc/<img src=x onerror=alert(1)>.png", make_image())
    assert response.status_code == 201
    image = response.json()
    assert image["original_name"] == "<img src=x onerror=alert(1)>.png"
    for page in (browser.get("/images/").text, browser.get(f"/view/{image['id']}").text):
        assert "&lt;img src=x onerror=alert(1)&gt;.png" in page
        assert "<img src=x" not in page
    assert site.files() == stored_files(image["filename"])


# The full hostile corpus is in tests/test_hostile_uploads.py; these pin the messages.
REJECTIONS = [
    ("empty file", "empty.png", b"", 400, "The file is empty."),
    ("not an image", "notes.png", b"hello, I am text" * 10, 415, "not a valid JPEG, PNG or GIF"),
    ("wrong extension", "image.webp", make_image("PNG"), 415, ".jpg, .jpeg, .png and .gif"),
]


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_bad_uploads_get_a_clear_error_and_nothing_is_written(
    site: Stack, browser: Browser, name: str, data: bytes, status: int, message: str
) -> None:
    response = browser.upload(name, data)
    assert response.status_code == status
    assert message in response.json()["error"]
    assert_nothing_stored(site)


def test_over_five_megabytes_is_refused_by_the_app(site: Stack, browser: Browser) -> None:
    data = pad_png_to(make_image("PNG", (64, 64)), FIVE_MB + 1)
    response = browser.upload("big.png", data)
    assert response.status_code == 413
    assert "limit is 5 MB" in response.json()["error"]
    assert_nothing_stored(site)


def test_far_too_large_bodies_are_stopped_by_nginx(site: Stack, browser: Browser) -> None:
    response = browser.upload("huge.png", b"\0" * (7 * 1024 * 1024))
    assert response.status_code == 413
    assert "error" in response.json()
    html = browser.upload("huge.png", b"\0" * (7 * 1024 * 1024), accept="text/html")
    assert html.status_code == 413
    assert "<html" in html.text.lower()
    assert_nothing_stored(site)


def test_upload_without_the_xsrf_token_is_refused(site: Stack) -> None:
    response = httpx.post(
        f"{site.url}/upload/",
        files={"file": ("a.png", make_image(), "image/png")},
        headers={"Accept": "application/json"},
    )
    assert response.status_code == 403
    assert "Reload the page" in response.json()["error"]
    assert_nothing_stored(site)
