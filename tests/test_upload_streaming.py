"""The upload body is streamed and parsed off the event loop: the XSRF rules still hold for
a token in the form body (plain HTML forms), and a refused upload still leaves nothing."""

from __future__ import annotations

from tests.images import make_image
from tests.support import Browser, Stack, stored_files


def form_post(browser: Browser, xsrf: str) -> int:
    response = browser.post(
        "/upload/",
        data={"_xsrf": xsrf},
        files={"file": ("form.png", make_image("PNG", (50, 40)), "image/png")},
        headers={"Accept": "application/json"},
    )
    return response.status_code


def test_a_plain_form_with_the_token_in_its_body_uploads(site: Stack, browser: Browser) -> None:
    assert form_post(browser, browser.xsrf) == 201
    (image,) = browser.get("/images/", headers={"Accept": "application/json"}).json()["images"]
    browser.wait_for_thumbnails(image["id"])  # made after the answer
    assert site.files() == stored_files(image["filename"])


def test_a_wrong_token_in_the_body_is_refused_and_nothing_is_stored(
    site: Stack, browser: Browser
) -> None:
    browser.xsrf  # noqa: B018 - the cookie is set; the field below does not match it
    assert form_post(browser, "2|00000000|" + "0" * 32 + "|1700000000") == 403
    assert form_post(browser, "") == 403
    assert site.rows() == 0
    assert site.files() == set()
