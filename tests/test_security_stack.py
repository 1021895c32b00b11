"""Attacks through the whole stack (nginx, two backends, PostgreSQL) and a real browser: the
oversized-redirect flood that used to take the site down, and open redirects as Chromium
itself resolves them."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from playwright.sync_api import Browser as Chromium
from playwright.sync_api import Route

from handlers.redirects import same_site_path
from tests.support import Browser, Stack

FLOOD = 20
FILLER = "a" * 4500  # past nginx's 4 KB buffer for a backend's response headers


def test_oversized_redirects_leave_every_backend_answering(site: Stack) -> None:
    """Failed before: each of these made nginx answer "upstream sent too big header" and count
    a failure against the backend; after a few, every request was a 502 for 10 s."""
    with Browser(site.url) as client:
        token = client.xsrf
        for n in range(FLOOD):
            redirect = client.get(f"/images?x={FILLER}{n}", follow_redirects=False)
            assert redirect.status_code == 301
            assert len(redirect.headers["location"]) < 1024
            switch = client.post(
                "/lang", data={"lang": "en", "next": f"/images/?x={FILLER}", "_xsrf": token}
            )
            assert switch.status_code == 302
        for _ in range(10):
            assert client.get("/healthz").status_code == 200
            assert client.get("/images/").status_code == 200


OPEN_REDIRECTS = [
    "/\\evil.example",
    "/\\/evil.example",
    "/\\\\evil.example",
    "//evil.example",
    "/\t/evil.example",
    "https://evil.example/",
    "/%2F%2Fevil.example",
]


def test_the_language_switch_never_leaves_the_site(site: Stack, chromium: Chromium) -> None:
    """Failed before: `/\\evil.example` came back as `Location: /\\evil.example`, which
    Chromium follows to http://evil.example/. Every other address is blocked here, and the
    test asserts none was even asked for."""
    context = chromium.new_context()
    left: list[str] = []

    def block(route: Route) -> None:
        left.append(route.request.url)
        route.abort()

    context.route(re.compile(r"^(?!" + re.escape(site.url) + r")"), block)
    page = context.new_page()
    try:
        for target in OPEN_REDIRECTS:
            page.goto(f"{site.url}/upload/")
            page.locator('input[name="next"]').evaluate(
                "(input, v) => { input.value = v; }", target
            )
            with page.expect_navigation():
                page.locator('button[name="lang"][value="en"]').click()
            assert page.url.startswith(site.url + "/"), (target, page.url)
        assert left == []
    finally:
        context.close()


def test_every_path_the_server_accepts_stays_on_the_site_in_chromium(
    site: Stack, chromium: Chromium
) -> None:
    """The unit rules checked against the browser's own URL parser: whatever
    `same_site_path` accepts, Chromium resolves to this origin."""
    corpus = [
        *OPEN_REDIRECTS,
        "/images/?page=2",
        "/./evil.example",
        "/.//evil.example",
        "/..//evil.example",
        "/%5C%5Cevil.example",
        "/@evil.example",
        "/:evil.example",
        "/?//evil.example",
        "/#//evil.example",
        "/ /evil.example",
        "/\u3000/evil.example",
        "/\x00/evil.example",
        "/\uff0f/evil.example",
        "\\\\evil.example",
    ]
    accepted = [target for target in corpus if same_site_path(target) is not None]
    assert "/images/?page=2" in accepted and "/\\evil.example" not in accepted
    page = chromium.new_page()
    try:
        page.goto(f"{site.url}/upload/")
        origins = page.evaluate(
            "(targets) => targets.map((t) => new URL(t, location.href).origin)", accepted
        )
    finally:
        page.close()
    here = "{0.scheme}://{0.netloc}".format(urlsplit(site.url))
    assert origins == [here] * len(accepted), dict(zip(accepted, origins, strict=True))


def test_the_slashless_upload_address_is_redirected_by_the_app(site: Stack) -> None:
    """Failed before: nginx answered /upload?<query> itself, copying the query into Location;
    now the app's redirect answers, with a short Location and the site's headers."""
    response = httpx.get(f"{site.url}/upload?{FILLER}", follow_redirects=False)
    assert response.status_code == 301
    assert response.headers["location"] == "/upload/"
    assert "content-security-policy" in response.headers
