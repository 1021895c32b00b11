"""Smoke test of a running site through its front door, as a visitor's browser uses it.

    python scripts/smoke.py BASE_URL            # e.g. http://localhost:8080
    python scripts/smoke.py BASE_URL --has ID   # image ID is in the gallery and served

The first form walks the home page, a static file (gzipped, and its bytes must match the
`?v=` hash the backend put in the page), an upload with the XSRF cookie, the direct link, the
gallery JSON, a WebSocket `image.created`, and a delete (with its `image.deleted`); then it
uploads one more image, keeps it, and prints its id on stdout (for a backup and restore to
bring back). One file shared by the Compose emulation tier (tests/test_compose_emulation.py)
and the Docker workflow (.github/workflows/compose.yml). Needs only requirements.txt
(tornado). Exit status 0 means every step passed; otherwise the failing step is on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import re
import struct
import sys
import uuid
import zlib
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest, HTTPResponse
from tornado.websocket import WebSocketClientConnection, websocket_connect

TIMEOUT = 30.0


class SmokeFailed(AssertionError):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeFailed(what)


def tiny_png(seed: int) -> bytes:
    """A valid 8x8 RGB PNG of one colour, built with the standard library alone."""
    colour = bytes(((seed * 67) % 256, (seed * 131) % 256, (seed * 29) % 256))
    rows = b"".join(b"\x00" + colour * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


class Visitor:
    """One browser: its cookies (XSRF token, owner) travel with every request."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.cookies: dict[str, str] = {}
        self.client = AsyncHTTPClient()

    async def fetch(self, path: str, method: str = "GET", **kwargs: Any) -> HTTPResponse:
        headers = dict(kwargs.pop("headers", {}))
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        request = HTTPRequest(
            self.base + path,
            method=method,
            headers=headers,
            request_timeout=TIMEOUT,
            follow_redirects=False,
            **kwargs,
        )
        try:
            response = await self.client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError) as exc:
            raise SmokeFailed(f"{method} {path}: {exc}") from exc
        for header in response.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response

    async def upload(self, data: bytes, name: str) -> dict[str, Any]:
        boundary = uuid.uuid4().hex
        body = (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        response = await self.fetch(
            "/upload/",
            "POST",
            body=body,
            headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "X-XSRFToken": self.cookies.get("_xsrf", ""),
                "Accept": "application/json",
            },
        )
        check(response.code == 201, f"upload: status {response.code}: {response.body[:300]!r}")
        return json.loads(response.body)

    async def gallery_ids(self) -> list[int]:
        response = await self.fetch("/images/", headers={"Accept": "application/json"})
        check(response.code == 200, f"gallery JSON: status {response.code}")
        return [image["id"] for image in json.loads(response.body)["images"]]

    async def live(self) -> WebSocketClientConnection:
        parts = urlsplit(self.base)
        scheme = "wss" if parts.scheme == "https" else "ws"
        request = HTTPRequest(
            f"{scheme}://{parts.netloc}/ws",
            headers={"Origin": self.base},
            request_timeout=TIMEOUT,
        )
        return await websocket_connect(request)


async def next_message(socket: WebSocketClientConnection, kind: str) -> dict[str, Any]:
    """The next message of type `kind` (others, e.g. `hello`, are skipped)."""
    while True:
        raw = await asyncio.wait_for(socket.read_message(), TIMEOUT)
        check(raw is not None, f"the WebSocket closed while waiting for {kind}")
        message = json.loads(raw)
        if message.get("type") == kind:
            return message


async def walk(base_url: str) -> int:
    visitor = Visitor(base_url)

    home = await visitor.fetch("/")
    check(home.code == 200, f"home page: status {home.code}")
    check("_xsrf" in visitor.cookies, "the home page set no _xsrf cookie")
    page = home.body.decode()
    found = re.search(r'/static/([^"?]+\.css)\?v=([0-9a-f]+)', page)
    check(found is not None, "the home page links no versioned stylesheet")
    assert found is not None
    css = await visitor.fetch(
        f"/static/{found[1]}?v={found[2]}",
        headers={"Accept-Encoding": "gzip"},
        decompress_response=False,
    )
    check(css.code == 200, f"/static/{found[1]}: status {css.code}")
    # Text is compressed (nginx/nginx.conf), images are not.
    check(css.headers.get("Content-Encoding") == "gzip", f"/static/{found[1]} is not gzipped")
    css_bytes = gzip.decompress(css.body)
    # nginx serves static files itself: they must be the bytes the backend hashed (SHA-512
    # since Tornado 6.6, MD5 before).
    digests = {hashlib.sha512(css_bytes).hexdigest(), hashlib.md5(css_bytes).hexdigest()}
    check(
        found[2] in digests,
        f"/static/{found[1]} served by nginx differs from the file the backend hashed",
    )

    socket = await visitor.live()
    try:
        await next_message(socket, "hello")
        png = tiny_png(1)
        image = await visitor.upload(png, "smoke.png")
        created = await next_message(socket, "image.created")
        check(created["image"]["id"] == image["id"], "image.created names another image")

        direct = await visitor.fetch(urlsplit(image["url"]).path)
        check(direct.code == 200, f"direct link: status {direct.code}")
        check(direct.body == png, "the direct link serves other bytes than were uploaded")
        check(direct.headers.get("Content-Type") == "image/png", "direct link: not image/png")
        check(image["id"] in await visitor.gallery_ids(), "the gallery JSON lacks the upload")

        deleted = await visitor.fetch(
            f"/delete/{image['id']}",
            "DELETE",
            headers={"X-XSRFToken": visitor.cookies["_xsrf"], "Accept": "application/json"},
        )
        check(deleted.code == 204, f"delete: status {deleted.code}: {deleted.body[:200]!r}")
        gone = await next_message(socket, "image.deleted")
        check(gone["id"] == image["id"], "image.deleted names another image")
        check(image["id"] not in await visitor.gallery_ids(), "the deleted image is listed")
        after = await visitor.fetch(urlsplit(image["url"]).path)
        check(after.code == 404, f"direct link after delete: status {after.code}")
    finally:
        socket.close()

    kept = await visitor.upload(tiny_png(2), "kept.png")
    return int(kept["id"])


async def has_image(base_url: str, image_id: int) -> None:
    visitor = Visitor(base_url)
    response = await visitor.fetch("/images/", headers={"Accept": "application/json"})
    check(response.code == 200, f"gallery JSON: status {response.code}")
    listed = {i["id"]: i for i in json.loads(response.body)["images"]}
    check(image_id in listed, f"image {image_id} is not in the gallery")
    direct = await visitor.fetch(urlsplit(listed[image_id]["url"]).path)
    check(direct.code == 200, f"image {image_id}'s direct link: status {direct.code}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the site, e.g. http://localhost:8080")
    parser.add_argument("--has", type=int, metavar="ID", help="only check that image ID is served")
    args = parser.parse_args(argv)
    try:
        if args.has is not None:
            asyncio.run(has_image(args.base_url, args.has))
            print(f"smoke: image {args.has} is in the gallery and served", file=sys.stderr)
        else:
            kept = asyncio.run(walk(args.base_url))
            print(kept)
            print(f"smoke: all steps passed; image {kept} kept", file=sys.stderr)
    except (SmokeFailed, TimeoutError) as exc:
        print(f"smoke: FAILED: {exc or type(exc).__name__}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
