"""nginx's own security behaviour, from the shipped template in front of two stand-in
backends (plain sockets that answer what a test needs): what a backend's answer may and may
not do to the upstream group, which requests are retried, error pages and their headers for
every error nginx produces itself, requests without a Host, Retry-After, and the per-address
WebSocket cap."""

from __future__ import annotations

import os
import re
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts import nginxconf
from scripts.pgcluster import free_port
from scripts.stack import invoking_account
from tests.support import running_nginx

# nginx from the template, in front of stand-in backends.
pytestmark = pytest.mark.stack

REPO = Path(__file__).resolve().parent.parent
WS_PER_IP = 3
HEADERS = (
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
    "content-security-policy",
)


class StandIn(socketserver.ThreadingTCPServer):
    """A backend that records each request line and answers by path:
    /big   a response whose headers overflow nginx's proxy buffer (nginx: 502)
    /drop  reads the request, then closes without a word (nginx: error, may try the next)
    /ws    switches protocols and keeps the socket open until the client goes
    other  200 "ok"."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StandInHandler)
        self.requests: list[str] = []


class _StandInHandler(socketserver.StreamRequestHandler):
    server: StandIn

    def handle(self) -> None:
        line = self.rfile.readline().decode("latin-1").strip()
        length = 0
        while (header := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = header.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        self.rfile.read(length)
        if not line:
            return
        self.server.requests.append(line)
        path = line.split()[1]
        if path == "/drop":
            return
        if path == "/ws":
            self.wfile.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\n"
            )
            self.rfile.read()  # until nginx closes its side
            return
        extra = b"X-Filler: " + b"a" * 8000 + b"\r\n" if path == "/big" else b""
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n" + extra + b"\r\nok"
        )


@pytest.fixture(scope="module")
def stand_ins() -> Iterator[list[StandIn]]:
    servers = [StandIn(), StandIn()]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    yield servers
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def front(stand_ins: list[StandIn], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx from the template (as scripts/local-stack renders it) before the stand-ins."""
    runtime = tmp_path_factory.mktemp("nginx")
    images = tmp_path_factory.mktemp("images")
    port = free_port()
    main = nginxconf.write_native_config(
        runtime,
        {
            "NGINX_PORT": f"127.0.0.1:{port}",
            "BACKEND_SERVERS": nginxconf.upstream_servers(
                [("127.0.0.1", s.server_address[1]) for s in stand_ins]
            ),
            "IMAGES_DIR": str(images),
            "STATIC_DIR": str(REPO / "static"),
            "NGINX_LOGIN_RATE": "1r/m",
            "NGINX_WS_PER_IP": str(WS_PER_IP),
        },
        user=invoking_account() if os.geteuid() == 0 else None,
    )
    url = f"http://127.0.0.1:{port}"
    with running_nginx(main, url):
        yield url


def raw(url: str, request: bytes) -> bytes:
    """Send bytes exactly as given (no client library would send these requests)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_answers_a_backend_sends_never_take_it_out_of_the_rotation(front: str) -> None:
    """Failed before: with nginx's default max_fails=1, two unusable answers (one per
    backend) left no live upstream, and every request was a 502 for 10 s."""
    for _ in range(6):
        assert httpx.get(f"{front}/big").status_code == 502
    for _ in range(6):
        assert httpx.get(f"{front}/healthz").status_code == 200


def test_a_post_that_reached_a_backend_is_never_sent_again(
    front: str, stand_ins: list[StandIn]
) -> None:
    """A backend that drops the connection: a GET is tried on the other backend, a POST
    (an upload, a delete) is not: it may already have happened."""
    for server in stand_ins:
        server.requests.clear()
    assert httpx.get(f"{front}/drop").status_code == 502
    assert sum(len(s.requests) for s in stand_ins) == 2
    for server in stand_ins:
        server.requests.clear()
    assert httpx.post(f"{front}/drop", content=b"x").status_code == 502
    assert sum(len(s.requests) for s in stand_ins) == 1


def assert_site_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status
    for header in HEADERS:
        assert header in response.headers, f"{status}: no {header}"
        assert len(response.headers.get_list(header)) == 1, f"{status}: {header} twice"
    assert response.headers["content-type"].startswith("text/html")
    assert '<link rel="stylesheet" href="/static/errors/errors.css">' in response.text
    assert 'lang="ru"' in response.text  # the site's bilingual page, not nginx's own
    assert response.text.lstrip().startswith("<!DOCTYPE html>")
    assert "<!--#" not in response.text  # every server-side include ran
    for element in ("title", "h1", "h2"):  # filled in, in both languages
        assert re.search(rf"<{element}>[^<\s·][^<]*</{element}>", response.text), element


def parse(raw_response: bytes) -> httpx.Response:
    head, _, body = raw_response.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(h.split(": ", 1)) for h in lines[1:]]
    if ("Transfer-Encoding", "chunked") in headers:  # the error pages are server-side includes
        headers.remove(("Transfer-Encoding", "chunked"))
        chunks, rest = [], body
        while True:
            size, _, rest = rest.partition(b"\r\n")
            if int(size, 16) == 0:
                break
            chunks.append(rest[: int(size, 16)])
            rest = rest[int(size, 16) + 2 :]
        body = b"".join(chunks)
    return httpx.Response(int(lines[0].split()[1]), headers=headers, content=body)


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /healthz HTTP/1.0\r\n\r\n",
        b"GET /healthz HTTP/1.0\r\nHost:\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n",
        b"GET http://example.org/ HTTP/1.0\r\n\r\n",
    ],
    ids=["http/1.0 without Host", "http/1.0 empty Host", "http/1.1 empty Host", "absolute URI"],
)
def test_requests_without_a_host_get_the_site_400(front: str, request_bytes: bytes) -> None:
    """Failed before: these reached the app, which answered a bare 400 without a body or
    any security header."""
    assert_site_error(parse(raw(front, request_bytes)), 400)


def test_errors_nginx_produces_get_the_site_pages_and_headers(front: str) -> None:
    """Failed before: nginx's built-in pages, without CSP, nosniff or X-Frame-Options."""
    assert_site_error(httpx.get(f"{front}/static/no-such-file.css"), 404)
    assert_site_error(httpx.get(f"{front}/static/errors/"), 403)
    assert_site_error(httpx.post(f"{front}/static/errors/errors.css"), 405)
    assert_site_error(httpx.get(f"{front}/x?" + "a" * 9000), 414)
    for path in ("/favicon.ico", "/static/errors/errors.css"):  # files are sent whole
        for ranges in ("bytes=99999999-", "bytes=0-1", "bytes=0-1,3-4"):
            whole = httpx.get(f"{front}{path}", headers={"Range": ranges})
            assert whole.status_code == 200 and "content-range" not in whole.headers
            for header in HEADERS:
                assert len(whole.headers.get_list(header)) == 1, (path, header)
    huge_header = {"X-Huge": "b" * 20000}
    assert_site_error(httpx.get(f"{front}/", headers=huge_header), 400)
    bad = parse(raw(front, b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n"))
    assert_site_error(bad, 400)
    gzip = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
    assert_site_error(parse(raw(front, gzip)), 501)
    assert_site_error(parse(raw(front, b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")), 505)
    # (A range past a file's end, 416, keeps nginx's short body: the range filter answers it
    # past error_page's reach. Its headers are the location's, so they are there.)
    as_json = httpx.get(f"{front}/static/nothing.js", headers={"Accept": "application/json"})
    assert as_json.status_code == 404 and set(as_json.json()) == {"error"}


@pytest.mark.parametrize("path", ["/static/errors/errors.css", "/favicon.ico"])
def test_files_from_disk_carry_the_security_headers(front: str, path: str) -> None:
    """Failed before: static files had no CSP, the favicon only nosniff."""
    response = httpx.get(f"{front}{path}")
    assert response.status_code == 200
    for header in HEADERS:
        assert header in response.headers, header


def test_rate_limited_answers_say_when_to_retry(front: str) -> None:
    """Failed before: a 429 without Retry-After."""
    statuses = []
    for _ in range(8):  # NGINX_LOGIN_RATE=1r/m with a burst of 5
        response = httpx.post(f"{front}/login", headers={"Accept": "application/json"})
        statuses.append(response.status_code)
        if response.status_code == 429:
            wait = response.headers["retry-after"]
            assert int(wait) > 0
            assert f"Wait {wait} seconds" in response.json()["error"]
            break
    assert statuses[-1] == 429, statuses
    assert "retry-after" not in httpx.get(f"{front}/healthz").headers


def test_one_address_may_hold_only_so_many_live_sockets(front: str) -> None:
    """Failed before: nothing limited open WebSockets per address."""
    host, port = front.removeprefix("http://").split(":")

    def upgrade() -> tuple[socket.socket, httpx.Response]:
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(65536)
        return sock, parse(head)

    held: list[socket.socket] = []
    try:
        for _ in range(WS_PER_IP):
            sock, response = upgrade()
            held.append(sock)
            assert response.status_code == 101
        sock, refused = upgrade()
        sock.close()
        assert refused.status_code == 429
        assert refused.headers["retry-after"]
    finally:
        for sock in held:
            sock.close()
    # Closed sockets free their places.
    deadline = time.monotonic() + 10
    while True:
        sock, response = upgrade()
        sock.close()
        if response.status_code == 101:
            break
        assert time.monotonic() < deadline, "the cap did not free its places"
        time.sleep(0.1)


def test_nginx_redirects_never_repeat_the_clients_host(front: str) -> None:
    """Failed before: `Location: http://<the Host header>/static/js/`."""
    response = httpx.get(f"{front}/static/js", headers={"Host": "evil.example"})
    assert response.status_code == 301
    assert response.headers["location"] == "/static/js/"


@pytest.mark.parametrize("path", ["/upload", "/delete"])
def test_nginx_never_redirects_with_the_query_itself(front: str, path: str) -> None:
    """Failed before: nginx answered /upload?<4 KB> and /delete?<4 KB> with its own 301,
    copying the query into Location. Now the backend (here the stand-in) gets them."""
    response = httpx.get(f"{front}{path}?" + "a" * 4000, follow_redirects=False)
    assert response.status_code == 200 and response.text == "ok"


def test_every_error_page_nginx_names_exists_in_both_shapes() -> None:
    template = nginxconf.TEMPLATE_PATH.read_text()
    pages = set(re.findall(r"/_errors/(\d{3})\.\$error_page_format", template))
    assert {"400", "404", "500", "502"} <= pages
    for code in pages:
        html = (REPO / "static" / "errors" / f"{code}.html").read_text()
        # Title and text in both languages for the one page around them (_page.html).
        names = re.findall(r'<!--# set var="(\w+)" value="[^"]+" -->', html)
        assert sorted(names) == ["text", "text_ru", "title", "title_ru"], code
        assert html.rstrip().endswith('<!--# include file="_page.html" -->'), code
        # Some carry an SSI echo (413's limit), so they are JSON only once nginx served them.
        shape = (REPO / "static" / "errors" / f"{code}.json").read_text()
        assert shape.startswith('{"error": "') and shape.rstrip().endswith('"}')


def location_blocks(text: str) -> list[str]:
    """The body of every `location ... {` block (by lines: regexes hold braces too)."""
    blocks, body, depth = [], [], 0
    for line in text.splitlines():
        stripped = line.split("#", 1)[0].strip()
        if depth == 0 and stripped.startswith("location ") and stripped.endswith("{"):
            body, depth = [], 1
            continue
        if depth:
            depth += stripped.endswith("{") - (stripped == "}")
            if depth == 0:
                blocks.append("\n".join(body))
            body.append(stripped)
    return blocks


def test_every_location_with_error_pages_of_its_own_covers_refusals() -> None:
    """A location's own error_page lines replace the server's: each must still give 403 and
    404 a page (the S3 location, added alongside this file, once left 403 to nginx)."""
    checked = 0
    for template in nginxconf.TEMPLATES_DIR.glob("*.template"):
        for block in location_blocks(template.read_text()):
            codes = set()
            for directive in re.findall(r"^error_page ([^;]*);", block, re.M):
                codes |= {word for word in directive.split() if word.isdigit()}
            if codes:
                checked += 1
                assert {"403", "404"} <= codes, (template.name, sorted(codes))
    assert checked >= 3  # the two image locations from disk and the bucket's
