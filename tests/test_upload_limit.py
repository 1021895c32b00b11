"""MAX_UPLOAD_MB is the one upload limit: a stack started with MAX_UPLOAD_MB=1 says 1 MB
everywhere — the app's 413, nginx's own 413 (its body cap computed from the same setting),
the pages in both languages, and the upload page's own check before anything is sent."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import expect

from scripts.launch import RunningStack, running_stack
from server.config import MULTIPART_MARGIN, Config
from tests.browser_helpers import TIMEOUT_MS
from tests.images import make_image, pad_png_to
from tests.support import Browser, PostgresServer

pytestmark = pytest.mark.stack

ONE_MB = Config.from_env({"MAX_UPLOAD_MB": "1"}).max_upload_bytes


@pytest.fixture(scope="module")
def small_stack(postgres: PostgresServer) -> Iterator[RunningStack]:
    env = {"MAX_UPLOAD_MB": "1"}
    with running_stack(workers=1, database_url=postgres.create_database(), env=env) as stack:
        yield stack


def test_the_app_refuses_a_file_just_over_the_limit(small_stack: RunningStack) -> None:
    with Browser(small_stack.url) as browser:
        exactly = browser.upload("exact.png", pad_png_to(make_image("PNG"), ONE_MB))
        over = browser.upload("over.png", pad_png_to(make_image("PNG"), ONE_MB + 1))
    assert exactly.status_code == 201, exactly.text
    assert over.status_code == 413
    assert over.json() == {"error": "The file is 1.0 MB; the limit is 1 MB."}


def test_nginx_refuses_a_body_past_the_limit_and_its_margin(small_stack: RunningStack) -> None:
    body = b"\0" * (ONE_MB + MULTIPART_MARGIN + 1)
    with Browser(small_stack.url) as browser:
        as_json = browser.upload("huge.png", body)
        as_html = browser.upload("huge.png", body, accept="text/html")
    assert as_json.status_code == 413
    assert "larger than the 1 MB limit" in as_json.json()["error"]
    assert as_html.status_code == 413
    assert "larger than the 1 MB limit" in as_html.text
    assert "допустимых 1 МБ" in as_html.text
    assert "echo" not in as_html.text


@pytest.mark.parametrize(
    ("language", "texts"),
    [
        ("en", ["JPEG, PNG or GIF, up to 1 MB each.", "up to 1 MB · self-hosted"]),
        ("ru", ["JPEG, PNG или GIF, до 1 МБ каждый.", "до 1 МБ · на своём сервере"]),
    ],
)
def test_pages_say_the_limit_in_both_languages(
    small_stack: RunningStack, language: str, texts: list[str]
) -> None:
    with Browser(small_stack.url) as browser:
        page = browser.get("/upload/", headers={"Accept-Language": language}).text
        home = browser.get("/", headers={"Accept-Language": language}).text
    for text in texts:
        assert text in page
    assert f'data-max-bytes="{ONE_MB}"' in page
    assert ("Up to 1 MB per file" if language == "en" else "До 1 МБ на файл") in home


@pytest.mark.browser
def test_the_upload_page_checks_the_limit_before_sending(
    small_stack: RunningStack, chromium: Chromium
) -> None:
    context = chromium.new_context(base_url=small_stack.url, locale="en-US")
    try:
        page = context.new_page()
        page.goto("/upload/")
        sent: list[str] = []
        page.on(
            "request",
            lambda request: sent.append(request.url) if request.method == "POST" else None,
        )
        big = {"name": "big.png", "mimeType": "image/png", "buffer": b"\0" * (ONE_MB + 1)}
        page.set_input_files("#file", files=[big])
        expect(page.locator(".upload-item .upload-message")).to_have_text(
            "The file is 1.0 MB; the limit is 1 MB.", timeout=TIMEOUT_MS
        )
        assert sent == []
    finally:
        context.close()
