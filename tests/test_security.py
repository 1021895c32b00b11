"""Security through the real stack: the access-control matrix (owner / other browser /
admin / API token / no XSRF), headers on every route, cookies, rate limits, and location
metadata stripped from uploads."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from scripts.launch import RunningStack, running_stack
from tests.images import make_image
from tests.support import Browser, PostgresServer, Stack

# Stacks of their own (rate limits, an admin password) and the shared one.
pytestmark = pytest.mark.stack

ADMIN_PASSWORD = "correct horse battery staple"
API_TOKEN = "token-" + "x" * 40
JSON = {"Accept": "application/json"}


@pytest.fixture(scope="module")
def guarded(postgres: PostgresServer) -> Iterator[RunningStack]:
    """A stack with an admin and an API token, and nginx's default rate limits."""
    env = {"ADMIN_PASSWORD": ADMIN_PASSWORD, "API_TOKEN": API_TOKEN}
    with running_stack(workers=1, database_url=postgres.create_database(), env=env) as stack:
        yield stack


def bearer(token: str = API_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}


def token_upload(url: str, token: str = API_TOKEN, name: str = "api.png") -> httpx.Response:
    return httpx.post(f"{url}/upload/", files={"file": (name, make_image())}, headers=bearer(token))


def login(client: Browser, password: str = ADMIN_PASSWORD) -> httpx.Response:
    return client.post("/login", data={"password": password, "_xsrf": client.xsrf}, headers=JSON)


def test_access_control_matrix(guarded: RunningStack) -> None:
    with (
        Browser(guarded.url) as owner,
        Browser(guarded.url) as other,
        Browser(guarded.url) as admin,
    ):

        def fresh() -> int:
            response = owner.upload("mine.png", make_image())
            assert response.status_code == 201
            return response.json()["id"]

        # No XSRF token: refused, even for the owner.
        image = fresh()
        assert owner.delete(f"/delete/{image}", headers=JSON).status_code == 403
        # Another browser: refused.
        assert other.remove(image).status_code == 403
        # The API token holder did not upload it: refused.
        assert httpx.delete(f"{guarded.url}/delete/{image}", headers=bearer()).status_code == 403
        # A wrong token is a 401, never a fallback to cookies.
        wrong = httpx.delete(f"{guarded.url}/delete/{image}", headers=bearer("nope"))
        assert wrong.status_code == 401
        assert wrong.headers["www-authenticate"].startswith("Bearer")
        # The owner: allowed.
        assert owner.remove(image).status_code == 204

        # The admin may delete anything, once logged in.
        image = fresh()
        assert login(admin, "wrong password").status_code == 401
        assert admin.remove(image).status_code == 403
        assert login(admin).status_code == 200
        listed = admin.get("/images/", headers=JSON).json()["images"]
        assert all(i["can_delete"] for i in listed)
        assert admin.remove(image).status_code == 204
        admin.post("/logout", data={"_xsrf": admin.xsrf})
        image = fresh()
        assert admin.remove(image).status_code == 403

        # The API token uploads and deletes without any cookie or XSRF dance.
        uploaded = token_upload(guarded.url)
        assert uploaded.status_code == 201, uploaded.text
        assert uploaded.json()["can_delete"] is True
        api_image = uploaded.json()["id"]
        assert other.remove(api_image).status_code == 403
        assert owner.remove(api_image).status_code == 403
        deleted = httpx.delete(f"{guarded.url}/delete/{api_image}", headers=bearer())
        assert deleted.status_code == 204
        assert token_upload(guarded.url, token="wrong").status_code == 401


def test_without_an_admin_password_there_is_no_login(site: Stack) -> None:
    assert httpx.get(f"{site.url}/login").status_code == 404
    with Browser(site.url) as client:
        assert login(client).status_code == 404
    # ... and without API_TOKEN, bearer tokens are refused.
    refused = token_upload(site.url)
    assert refused.status_code == 401
    assert "not enabled" in refused.json()["error"]


def test_login_attempts_are_rate_limited(guarded: RunningStack) -> None:
    with Browser(guarded.url) as client:
        statuses = [login(client, "guess").status_code for _ in range(12)]
    assert statuses[0] == 401
    assert 429 in statuses
    assert set(statuses) <= {401, 429}


def test_uploads_are_rate_limited_but_thirty_at_once_pass(postgres: PostgresServer) -> None:
    with running_stack(workers=1, database_url=postgres.create_database()) as stack:
        with Browser(stack.url) as client:
            statuses = [client.upload(f"{n}.png", make_image()).status_code for n in range(30)]
            assert statuses == [201] * 30
            # Then a flood of (cheap, empty) upload requests meets the limit. The limit
            # refills over time, so the flood is fast and bounded rather than a fixed count.
            limited = None
            for _ in range(200):
                response = client.post("/upload/", headers={"X-XSRFToken": client.xsrf, **JSON})
                if response.status_code == 429:
                    limited = response
                    break
                assert response.status_code == 400
        assert limited is not None, "no 429 after 200 rapid uploads"
        assert "Too many requests" in limited.json()["error"]
        # The HTML page of the same refusal. On a loaded machine a slot may have refilled
        # since the flood (one every half second), so ask a few times, as the flood does.
        for _ in range(20):
            html = httpx.post(f"{stack.url}/upload/", headers={"Accept": "text/html"})
            if html.status_code == 429:
                break
        assert html.status_code == 429
        assert "Slow down" in html.text


SECURITY_HEADERS = ("x-content-type-options", "x-frame-options", "referrer-policy")


def route_samples(site: Stack, browser: Browser) -> dict[str, httpx.Response]:
    image = browser.upload("h.png", make_image()).json()
    css = re.search(r'href="(/static/css/[^"]+)"', browser.get("/").text)
    assert css
    return {
        "home": browser.get("/"),
        "upload page": browser.get("/upload/"),
        "upload": browser.upload("g.png", make_image()),
        "gallery": browser.get("/images/"),
        "gallery json": browser.get("/images/", headers=JSON),
        "view": browser.get(f"/view/{image['id']}"),
        "image file": browser.get(f"/images/{image['filename']}"),
        "static": browser.get(css.group(1)),
        "delete": browser.remove(image["id"]),
        "not found": browser.get("/nowhere"),
        "bad page": browser.get("/images/?page=x"),
        "too large (nginx)": browser.upload("big.png", b"\0" * (7 * 1024 * 1024)),
        "health": browser.get("/healthz"),
    }


def test_security_headers_on_every_route(site: Stack, browser: Browser) -> None:
    for name, response in route_samples(site, browser).items():
        for header in SECURITY_HEADERS:
            assert header in response.headers, f"{name}: no {header}"
        assert response.headers["x-content-type-options"] == "nosniff", name
        assert response.headers["x-frame-options"] == "DENY", name
        assert response.headers.get("server", "") == "nginx", name  # no version
        csp = response.headers.get("content-security-policy")
        if name != "static":
            assert csp, f"{name}: no Content-Security-Policy"
        if csp and "script-src" in csp:
            script_src = csp.split("script-src", 1)[1].split(";", 1)[0]
            assert "unsafe-inline" not in script_src, name


def test_cookies_are_httponly_and_samesite(site: Stack) -> None:
    response = httpx.get(f"{site.url}/upload/")
    cookies = response.headers.get_list("set-cookie")
    assert {c.split("=", 1)[0] for c in cookies} == {"owner", "_xsrf"}
    for cookie in cookies:
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert "Secure" not in cookie  # plain HTTP here; see the HTTPS test below


def test_cookies_are_secure_behind_https(solo_backend: str) -> None:
    response = httpx.get(f"{solo_backend}/upload/", headers={"X-Forwarded-Proto": "https"})
    cookies = response.headers.get_list("set-cookie")
    assert cookies and all("Secure" in c for c in cookies)


def test_a_tls_proxy_in_front_of_nginx_is_honoured(site: Stack) -> None:
    """nginx passes on the scheme a TLS-terminating proxy reports: links and cookies follow."""
    with Browser(site.url) as client:
        assert client.upload("a.png", make_image()).status_code == 201
    proxied = {"X-Forwarded-Proto": "https", "Host": "pics.example.org"}
    page = httpx.get(f"{site.url}/upload/", headers=proxied)
    assert all("Secure" in c for c in page.headers.get_list("set-cookie"))
    listed = httpx.get(f"{site.url}/images/", headers=proxied | JSON).json()
    assert listed["images"][0]["url"].startswith("https://pics.example.org/images/")


def test_there_are_no_directory_listings(site: Stack) -> None:
    for path in ("/static/", "/static/js/", "/images/thumbs/", "/_errors/"):
        response = httpx.get(site.url + path)
        assert "Index of" not in response.text
        assert response.status_code in (403, 404), path


def jpeg_with_gps() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif[0x8825] = {1: "N", 2: (55.0, 45.0, 21.0), 3: "E", 4: (37.0, 37.0, 4.0)}
    xmp = b'<x:xmpmeta><rdf:Description exif:GPSLatitude="55,45.35N"/></x:xmpmeta>'
    out = io.BytesIO()
    Image.new("RGB", (40, 30), "green").save(out, "JPEG", exif=exif.tobytes(), xmp=xmp)
    return out.getvalue()


def test_gps_location_is_stripped_and_the_rest_kept(site: Stack, browser: Browser) -> None:
    original = jpeg_with_gps()
    assert b"GPSLatitude" in original
    image = browser.upload("holiday.jpg", original).json()
    stored = httpx.get(image["url"]).content
    assert image["size"] == len(stored) < len(original)
    exif = Image.open(io.BytesIO(stored)).getexif()
    assert exif.get(0x010F) == "PhoneMaker"
    assert exif.get_ifd(0x8825) == {}
    assert b"GPSLatitude" not in stored
    assert Image.open(io.BytesIO(stored)).size == (40, 30)
