"""The hostile corpus (tests/hostile.py) through nginx: every refusal is a clear 4xx that
writes nothing and leaves the server up; every accepted file is served only as an image."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.hostile import ACCEPTED, BOUNDARY, PNG, REFUSED, Case, multipart
from tests.support import BOTH_STORES, Browser, Stack

# Everything here stores or refuses to store files: once per store (local folder, S3).
pytestmark = BOTH_STORES


def post_raw(browser: Browser, body: bytes, content_type: str) -> httpx.Response:
    return browser.post(
        "/upload/",
        content=body,
        headers={
            "X-XSRFToken": browser.xsrf,
            "Accept": "application/json",
            "Content-Type": content_type,
        },
    )


def upload(browser: Browser, case: Case) -> httpx.Response:
    return post_raw(
        browser, multipart(case.name, case.data), f"multipart/form-data; boundary={BOUNDARY}"
    )


def assert_untouched(site: Stack) -> None:
    assert site.rows() == 0
    assert site.files() == set()  # no image, no thumbnail, no temp file
    assert httpx.get(f"{site.url}/healthz").status_code == 200  # still up


@pytest.mark.parametrize("case", REFUSED, ids=[c.id for c in REFUSED])
def test_refused_uploads_get_a_clear_error_and_write_nothing(
    site: Stack, browser: Browser, case: Case
) -> None:
    response = upload(browser, case)
    assert response.status_code == case.status, response.text
    message = response.json()["error"]
    assert message and "Traceback" not in message
    assert_untouched(site)


@pytest.mark.parametrize("case", ACCEPTED, ids=[c.id for c in ACCEPTED])
def test_accepted_uploads_are_only_ever_served_as_images(
    site: Stack, browser: Browser, case: Case
) -> None:
    response = upload(browser, case)
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["original_name"] == case.kept_name
    served = httpx.get(image["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] in ("image/jpeg", "image/png", "image/gif")
    assert served.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in served.headers["content-security-policy"]
    assert site.files() >= {image["filename"]}
    # The name is shown as text, never markup.
    page = browser.get(f"/view/{image['id']}").text
    assert "<img src=x" not in page


def test_no_file_field(site: Stack, browser: Browser) -> None:
    body = multipart("a.png", PNG, field="image")
    response = post_raw(browser, body, f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400
    assert_untouched(site)


def test_two_file_fields(site: Stack, browser: Browser) -> None:
    one = multipart("a.png", PNG).rsplit(f"--{BOUNDARY}--".encode(), 1)[0]
    body = one + multipart("b.png", PNG)
    response = post_raw(browser, body, f"multipart/form-data; boundary={BOUNDARY}")
    assert response.status_code == 400
    assert "one image per upload" in response.json()["error"]
    assert_untouched(site)


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data; boundary=not-the-one-used",
        "multipart/form-data",
        "application/octet-stream",
        "text/plain",
    ],
)
def test_wrong_or_missing_multipart_boundary(
    site: Stack, browser: Browser, content_type: str
) -> None:
    response = post_raw(browser, multipart("a.png", PNG), content_type)
    assert response.status_code == 400
    assert response.json()["error"]
    assert_untouched(site)


def test_a_body_that_stops_mid_upload_changes_nothing(site: Stack, browser: Browser) -> None:
    body = multipart("a.png", PNG * 50)
    parts = urlsplit(site.url)
    cookie = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    head = (
        f"POST /upload/ HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
        f"Content-Length: {len(body)}\r\nX-XSRFToken: {browser.xsrf}\r\nCookie: {cookie}\r\n"
        "Accept: application/json\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head + body[: len(body) // 2])
    assert_untouched(site)
    # The server goes on serving, including a good upload right after.
    good = upload(browser, ACCEPTED[1])
    assert good.status_code == 201
