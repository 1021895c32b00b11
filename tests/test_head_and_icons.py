"""HEAD on every GET route (uptime monitors use it), and the site's icons: /favicon.ico,
the SVG icon and the web manifest, served by nginx and linked from every page."""

from __future__ import annotations

import io
import json
import re

import httpx
import tornado.web
import tornado.websocket
from PIL import Image

from server.app import make_app
from server.config import Config
from tests.images import make_image
from tests.support import Browser, Stack

# Headers that must not differ between GET and HEAD of the same address.
_SAME_HEADERS = ("content-type", "content-length", "location", "cache-control")


def test_every_route_with_get_also_answers_head() -> None:
    # Only the route table is read: no service is reached.
    app = make_app(
        Config.from_env({}),
        gallery=None,  # type: ignore[arg-type]
        hub=None,  # type: ignore[arg-type]
        cookie_secret="x",
        image_workers=None,  # type: ignore[arg-type]
    )
    checked = 0
    for rule in app.wildcard_router.rules:
        handler = rule.target
        if not (isinstance(handler, type) and issubclass(handler, tornado.web.RequestHandler)):
            continue
        if handler.get is tornado.web.RequestHandler.get:
            continue  # no GET here, so HEAD rightly stays 405
        if issubclass(handler, tornado.web.StaticFileHandler):
            continue  # Tornado's own, with its own head()
        if issubclass(handler, tornado.websocket.WebSocketHandler):
            continue  # a GET that only upgrades
        assert handler.head is not tornado.web.RequestHandler.head, handler.__name__
        checked += 1
    assert checked >= 6


def test_head_answers_like_get_through_nginx(site: Stack, browser: Browser) -> None:
    image = browser.upload("head.png", make_image("PNG")).json()
    paths = [
        "/",
        "/upload/",
        "/upload",
        "/images/",
        "/images/?page=1",
        "/images",
        f"/view/{image['id']}",
        "/healthz",
        "/login",
        "/view/999999",
        "/no/such/page",
        "/favicon.ico",
        "/static/icons/icon.svg",
        f"/images/{image['filename']}",
    ]
    with httpx.Client(base_url=site.url, timeout=30) as client:
        for path in paths:
            got = client.get(path)
            head = client.head(path)
            assert head.status_code == got.status_code, path
            assert head.content == b"", path
            for name in _SAME_HEADERS:
                assert head.headers.get(name) == got.headers.get(name), (path, name)
        assert client.head("/delete/1").status_code == 405  # no GET there, so no HEAD


def test_icons_are_served_and_linked(site: Stack) -> None:
    with httpx.Client(base_url=site.url, timeout=30) as client:
        ico = client.get("/favicon.ico")
        assert ico.status_code == 200
        assert ico.headers["content-type"] == "image/x-icon"
        sizes = Image.open(io.BytesIO(ico.content)).info["sizes"]
        assert {(16, 16), (32, 32), (48, 48)} <= sizes

        page = client.get("/").text
        found = re.findall(r'<link rel="(icon|manifest|apple-touch-icon)" href="([^"]+)"', page)
        links = {rel: href for rel, href in found if not href.endswith(".ico")}
        assert ("icon", "/favicon.ico") in found
        assert links["icon"].startswith("/static/icons/icon.svg")
        svg = client.get(links["icon"])
        assert svg.headers["content-type"] == "image/svg+xml"
        manifest = client.get(links["manifest"])
        assert manifest.status_code == 200
        for icon in json.loads(manifest.text)["icons"]:
            answer = client.get(icon["src"])
            assert answer.status_code == 200, icon["src"]
            assert answer.headers["content-type"] == icon["type"]
            if icon["sizes"] != "any":
                side = int(icon["sizes"].split("x")[0])
                assert Image.open(io.BytesIO(answer.content)).size == (side, side)
        touch = client.get(links["apple-touch-icon"])
        assert Image.open(io.BytesIO(touch.content)).size == (180, 180)
