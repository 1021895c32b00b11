"""The backend's own defences, in process (make_app on an unused port, a real database): no
client input reflected into headers, `next` paths that stay on the site, bounded page numbers
and ids, the site's error page for Tornado's static handler, ALLOWED_HOSTS, XSRF tokens bound
to the owner cookie, and admin sessions that logging out ends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from handlers.redirects import MAX_REDIRECT_PART, same_site_path
from handlers.services import VerifiedCookies
from server.config import Config
from server.workers import ImageWorkers
from tests.images import make_image
from tests.support import InProcessApp, PostgresServer, in_process_app

PASSWORD = "admin password for the in-process app"
JSON = {"Accept": "application/json"}
SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "x-frame-options")
LONG_QUERY = "x=" + "a" * 4500


@pytest.fixture(scope="module")
async def guarded(
    postgres: PostgresServer,
    image_workers: ImageWorkers,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[InProcessApp]:
    """An app with an admin, answering to 127.0.0.1 (its own address) and pics.example only."""
    config = Config.from_env(
        {},
        database_url=postgres.create_database(),
        images_dir=tmp_path_factory.mktemp("guarded"),
        db_pool_max=4,
        worker_name="guarded",
        admin_password=PASSWORD,
        allowed_hosts=("127.0.0.1", "pics.example"),
    )
    async with in_process_app(config, image_workers) as app:
        yield app


@pytest.fixture
async def browser(guarded: InProcessApp) -> AsyncIterator[httpx.AsyncClient]:
    """One browser: its cookies (owner, _xsrf) from a first page view."""
    async with guarded.client() as client:
        (await client.get("/")).raise_for_status()
        yield client


def token(client: httpx.AsyncClient) -> dict[str, str]:
    return {"X-XSRFToken": client.cookies["_xsrf"]}


def assert_secure(response: httpx.Response) -> None:
    for header in SECURITY_HEADERS:
        assert header in response.headers, header


# -- nothing a client sends is copied into a header without a bound ----------------------------


@pytest.mark.parametrize("path", ["/images", "/upload"])
async def test_slash_redirects_keep_short_queries_and_drop_long_ones(
    guarded: InProcessApp, path: str
) -> None:
    """Failed before: Tornado's RedirectHandler copied 4.5 KB of query into Location (past
    nginx's 4 KB header buffer: a 502 that took the backend out), without security headers."""
    async with guarded.client() as client:
        short = await client.get(f"{path}?page=2")
        long = await client.get(f"{path}?{LONG_QUERY}")
    assert short.status_code == 301 and short.headers["location"] == f"{path}/?page=2"
    assert long.status_code == 301 and long.headers["location"] == f"{path}/"
    assert_secure(long)


HOSTILE_NEXT = [
    "/\\evil.example",
    "/\\/evil.example",
    "/\\\\evil.example",
    "//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    " //evil.example",
    "https://evil.example/",
    "javascript:alert(1)",
    "/a\r\nSet-Cookie: owner=planted",
    "/a\x7f",
    "/é",
    "/" + "a" * 5000,
    "",
]


@pytest.mark.parametrize("target", HOSTILE_NEXT, ids=lambda target: repr(target)[:32])
async def test_lang_next_goes_home_unless_a_short_path_on_this_site(
    browser: httpx.AsyncClient, target: str
) -> None:
    """Failed before: CR, LF or DEL were a 500; backslashes went to evil.example in browsers;
    a long path overflowed nginx's header buffer."""
    response = await browser.post(
        "/lang", data={"lang": "en", "next": target, "_xsrf": browser.cookies["_xsrf"]}
    )
    assert response.status_code == 302
    assert response.headers["location"] == "/"
    assert_secure(response)


async def test_lang_next_returns_to_the_page_it_came_from(browser: httpx.AsyncClient) -> None:
    for target in ("/images/?page=2", "/view/12", "/upload/", "/%5Cnot-a-host"):
        response = await browser.post(
            "/lang", data={"lang": "ru", "next": target, "_xsrf": browser.cookies["_xsrf"]}
        )
        assert response.headers["location"] == target


def test_same_site_path_accepts_only_plain_paths() -> None:
    assert same_site_path("/images/?page=3#top") == "/images/?page=3#top"
    assert same_site_path("/" + "a" * (MAX_REDIRECT_PART - 1)) is not None
    assert same_site_path("/" + "a" * MAX_REDIRECT_PART) is None
    for target in HOSTILE_NEXT:
        assert same_site_path(target) is None, repr(target)


# -- numbers past anything the database can hold are a 404, never a 500 -------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/images/?page=99999999999999999999",
        "/images/?page=768614336404564651",
        "/images/?page=" + "9" * 5000,
        "/view/999999999999999999",
        "/view/9223372036854775808",
        "/view/" + "9" * 100,
    ],
)
async def test_numbers_past_any_row_are_not_found(browser: httpx.AsyncClient, path: str) -> None:
    """Failed before (the page numbers): 'bigint out of range' from PostgreSQL, a 500."""
    # A gallery with something in it: an empty one never reached the failing query.
    upload = await browser.post(
        "/upload/", files={"file": ("a.png", make_image())}, headers=token(browser) | JSON
    )
    assert upload.status_code == 201
    response = await browser.get(path, headers=JSON)
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


async def test_deleting_ids_past_any_row_is_not_found(browser: httpx.AsyncClient) -> None:
    for image_id in ("999999999999999999", "9223372036854775808"):
        response = await browser.delete(f"/delete/{image_id}", headers=token(browser) | JSON)
        assert response.status_code == 404


# -- Tornado's static handler answers with the site's error page ---------------------------------


async def raw_get(app: InProcessApp, path: str) -> httpx.Response:
    """A request line sent as written: clients resolve `..` before sending."""
    host, port = app.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines[1:]]
    return httpx.Response(int(lines[0].split()[1]), headers=headers, content=body)


@pytest.mark.parametrize(
    ("path", "status"), [("/static/../README.md", 403), ("/static/no-such.css", 404)]
)
async def test_static_errors_get_the_site_page_and_headers(
    guarded: InProcessApp, path: str, status: int
) -> None:
    """Failed before: Tornado's own bare page, without CSP, nosniff or X-Frame-Options."""
    response = await raw_get(guarded, path)
    assert response.status_code == status
    assert_secure(response)
    assert 'class="error-page"' in response.text
    assert "Every byte from a client" not in response.text  # nothing of README.md


async def test_static_files_are_still_served(guarded: InProcessApp) -> None:
    async with guarded.client() as client:
        response = await client.get("/static/errors/errors.css")
        head = await client.head("/static/errors/errors.css")
    assert response.status_code == 200 and response.content
    assert head.status_code == 200 and not head.content
    assert "set-cookie" not in response.headers


# -- ALLOWED_HOSTS -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [{"Host": "rebound.example"}, {"Host": "pics.example", "X-Forwarded-Host": "rebound.example"}],
)
async def test_other_host_names_are_refused(guarded: InProcessApp, headers: dict[str, str]) -> None:
    """Failed before: any Host was served (a DNS-rebinding page could read the site)."""
    async with guarded.client() as client:
        page = await client.get("/images/", headers=headers)
        allowed = await client.get("/images/", headers={"Host": "PICS.example:8080"})
        health = await client.get("/healthz", headers=headers)
    assert page.status_code == 400
    assert 'class="error-page"' in page.text
    assert_secure(page)
    assert allowed.status_code == 200
    assert health.status_code == 200  # probes use an address, whatever ALLOWED_HOSTS says


async def test_the_live_feed_refuses_other_host_names(guarded: InProcessApp) -> None:
    ws_url = guarded.url.replace("http://", "ws://") + "/ws"
    rebound = {"Host": "rebound.example"}
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url, origin="http://rebound.example", additional_headers=rebound):  # type: ignore[arg-type]
            pass
    assert refused.value.response.status_code == 400, refused.value.response.body
    async with connect(ws_url, origin=guarded.url) as ws:  # type: ignore[arg-type]
        assert "hello" in await ws.recv()


HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"Upgrade": None, "Connection": None}, 400),  # a plain GET, e.g. a browser tab
        ({"Upgrade": "h2c"}, 400),
        ({"Sec-WebSocket-Key": None}, 400),
        ({"Origin": "http://evil.example"}, 403),
        ({"Sec-WebSocket-Version": "99"}, 426),
    ],
    ids=["plain GET", "other upgrade", "no key", "other origin", "unknown version"],
)
@pytest.mark.parametrize("accept", ["text/html", "application/json"])
async def test_a_refused_handshake_gets_the_site_error(
    guarded: InProcessApp, change: dict[str, str | None], status: int, accept: str
) -> None:
    """Failed before: Tornado's own one-line text answers (e.g. 'Can "Upgrade" only to
    "WebSocket".'), not the site's page or JSON."""
    headers = {**HANDSHAKE, "Origin": guarded.url, "Accept": accept} | change
    async with guarded.client() as client:
        refused = await client.get("/ws", headers={k: v for k, v in headers.items() if v})
    assert refused.status_code == status
    assert_secure(refused)
    if accept == "application/json":
        assert refused.json()["error"]
    else:
        assert 'class="error-page"' in refused.text
    if status == 426:
        assert refused.headers["sec-websocket-version"] == "7, 8, 13"


async def test_the_live_feed_closes_on_a_large_message(guarded: InProcessApp) -> None:
    """Failed before: Tornado buffered client messages of up to 10 MiB, which /ws ignores."""
    ws_url = guarded.url.replace("http://", "ws://") + "/ws"
    async with connect(ws_url, origin=guarded.url) as ws:  # type: ignore[arg-type]
        assert "hello" in await ws.recv()
        await ws.send("x" * 64 * 1024)
        async with asyncio.timeout(30):
            await ws.wait_closed()
        assert ws.close_code == 1009  # message too big


# -- XSRF tokens belong to one browser -----------------------------------------------------------


async def test_a_token_minted_for_another_browser_is_refused(guarded: InProcessApp) -> None:
    """Failed before: the token only had to match the `_xsrf` cookie, which the request
    itself carries, so a token and cookie from any other browser (or planted by a
    neighbouring site) passed."""
    async with guarded.client() as alice, guarded.client() as mallory:
        await alice.get("/")
        await mallory.get("/")
        alices_token = alice.cookies["_xsrf"]
        # Mallory's owner cookie, with Alice's token in the cookie and the header.
        mallory.cookies.set("_xsrf", alices_token)
        stolen = await mallory.post(
            "/lang", data={"lang": "ru"}, headers={"X-XSRFToken": alices_token}
        )
        assert stolen.status_code == 403
        # Alice's own token works for Alice, and a fresh page gives Mallory hers.
        own = await alice.post("/lang", data={"lang": "ru"}, headers={"X-XSRFToken": alices_token})
        assert own.status_code == 302
        mallory.cookies.delete("_xsrf")
        await mallory.get("/")
        assert mallory.cookies["_xsrf"] != alices_token
        fresh = await mallory.post("/lang", data={"lang": "ru"}, headers=token(mallory))
        assert fresh.status_code == 302


# -- a signed cookie seen before is not a way round its signature --------------------------------


def test_verified_cookies_keep_only_values_that_verified() -> None:
    checks: list[str] = []

    def verify(raw: str, answer: bytes | None) -> Callable[[], bytes | None]:
        return lambda: checks.append(raw) or answer

    cookies = VerifiedCookies(size=2, recheck_seconds=3600)
    assert cookies.decode("owner", "good", verify("good", b"token")) == b"token"
    assert cookies.decode("owner", "good", verify("good", b"other")) == b"token"  # kept
    assert cookies.decode("admin", "good", verify("good", None)) is None  # another name
    for _ in range(2):  # what did not verify is verified again every time
        assert cookies.decode("owner", "forged", verify("forged", None)) is None
    assert checks == ["good", "good", "forged", "forged"]
    cookies.decode("owner", "second", verify("second", b"2"))
    cookies.decode("owner", "third", verify("third", b"3"))  # past size: "good" forgotten
    assert cookies.decode("owner", "good", verify("good", None)) is None
    stale = VerifiedCookies(recheck_seconds=0)
    stale.decode("owner", "good", verify("good", b"token"))
    assert stale.decode("owner", "good", verify("good", None)) is None  # verified again


async def test_an_altered_owner_cookie_is_refused_after_the_real_one_was_seen(
    guarded: InProcessApp, browser: httpx.AsyncClient
) -> None:
    image = await browser.post(
        "/upload/",
        files={"file": ("mine.png", make_image(), "image/png")},
        headers=token(browser) | JSON,
    )
    assert image.status_code == 201
    owner = browser.cookies["owner"]
    for _ in range(2):  # seen, and kept as verified
        page = await browser.get("/images/", headers=JSON)
        assert [i["can_delete"] for i in page.json()["images"]][:1] == [True]
    signature = owner.rstrip('"')[-1]
    altered = (
        owner.rstrip('"')[:-1] + ("0" if signature != "0" else "1") + '"' * owner.endswith('"')
    )
    async with guarded.client(cookies={"owner": altered}) as forger:
        page = await forger.get("/images/", headers=JSON)
    assert [i["can_delete"] for i in page.json()["images"]][:1] == [False]
    # Treated as a first visit: a new owner cookie of its own.
    assert page.cookies.get("owner") not in (None, owner, altered)


# -- logging out ends the admin session on the server --------------------------------------------


async def test_an_admin_cookie_is_worthless_after_logout(
    guarded: InProcessApp, browser: httpx.AsyncClient
) -> None:
    """Failed before: the cookie stayed valid for its whole day after logout."""

    async def upload() -> int:
        response = await browser.post(
            "/upload/", files={"file": ("o.png", make_image())}, headers=token(browser) | JSON
        )
        assert response.status_code == 201
        return response.json()["id"]

    async with guarded.client() as admin, guarded.client() as copy:
        await admin.get("/login")
        login = await admin.post("/login", data={"password": PASSWORD}, headers=token(admin) | JSON)
        assert login.status_code == 200
        await copy.get("/")
        copy.cookies.set("admin", admin.cookies["admin"])  # a copy of the session cookie
        deleted = await copy.delete(f"/delete/{await upload()}", headers=token(copy) | JSON)
        assert deleted.status_code == 204
        logout = await admin.post("/logout", headers=token(admin))
        assert logout.status_code == 302
        refused = await copy.delete(f"/delete/{await upload()}", headers=token(copy) | JSON)
        assert refused.status_code == 403
        listed = (await copy.get("/images/", headers=JSON)).json()["images"]
        assert not any(image["can_delete"] for image in listed)
