"""`ServicesMixin`: what every handler (pages and the WebSocket alike) reaches through
`self.settings`, typed — the services `server.app.make_app` built, who is asking, and how
they see the site. Nothing else in handlers/ reads `self.settings` by key."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import tornado.web
from tornado.httputil import HTTPServerRequest, parse_cookie, split_host_and_port

from handlers.share import share_codes
from server.access import ADMIN_SESSION_DAYS, AccessPolicy, owner_hash_of
from server.events import EventHub
from server.gallery import Gallery
from server.models import Image, Viewer
from server.workers import ImageWorkers

OWNER_COOKIE = "owner"
OWNER_COOKIE_DAYS = 3650
ADMIN_COOKIE = "admin"
ADMIN_COOKIE_DAYS = ADMIN_SESSION_DAYS


def public_base_url(request: HTTPServerRequest) -> str:
    """How the visitor reaches the site; the scheme honours X-Forwarded-Proto (xheaders),
    the host the Host header nginx forwards (or X-Forwarded-Host when a proxy set it)."""
    forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    return f"{request.protocol}://{forwarded_host or request.host}"


def image_json(image: Image, base_url: str, can_delete: bool) -> dict[str, Any]:
    """The image object of the API, with its share codes and whether this caller may
    delete it."""
    public = image.to_public_dict(base_url)
    codes = share_codes(image.original_name, public["url"])
    return {**public, "codes": codes, "can_delete": can_delete}


class RenderedTiles:
    """Each tile's HTML (and its image object's JSON) made once per image, per kind of
    viewer (language, may delete or not), not once per page; the least recently used are
    forgotten. A changed image (its thumbnails arrived) is another key: Image is a frozen
    dataclass."""

    def __init__(self, size: int = 2048) -> None:
        self._size = size
        self._made: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def get(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        try:
            self._made.move_to_end(key)
            return self._made[key]
        except KeyError:
            value = self._made[key] = make()
            if len(self._made) > self._size:
                self._made.popitem(last=False)
            return value


class VerifiedCookies:
    """Signed cookie values this process has already verified, and what they carry, so a
    returning visitor's owner cookie costs a look-up instead of an HMAC (about 10 µs, a
    thirtieth of a gallery request). Only values that verified are kept, by their exact
    text, so nothing unsigned gets in; past `size` (about 300 bytes each: under 1 MB) the
    least recently used are forgotten, and a value is verified again after
    `recheck_seconds` (so its age limit still applies, an hour late at most)."""

    def __init__(self, size: int = 2048, recheck_seconds: float = 3600.0) -> None:
        self._size = size
        self._recheck = recheck_seconds
        self._known: OrderedDict[tuple[str, str], tuple[float, bytes]] = OrderedDict()

    def decode(self, name: str, raw: str, verify: Callable[[], bytes | None]) -> bytes | None:
        """What the cookie `name` with value `raw` carries, or None when it does not verify."""
        key = (name, raw)
        now = time.monotonic()
        known = self._known.get(key)
        if known is not None and now - known[0] < self._recheck:
            self._known.move_to_end(key)
            return known[1]
        value = verify()
        if value is None:
            self._known.pop(key, None)
            return None
        self._known[key] = (now, value)
        self._known.move_to_end(key)
        if len(self._known) > self._size:
            self._known.popitem(last=False)
        return value


class ServicesMixin(tornado.web.RequestHandler):
    """Mixed into BaseHandler and the WebSocket handler (both RequestHandlers)."""

    _viewer: Viewer | None = None
    _cookie_values: dict[str, str] | None = None
    # Whether the admin cookie names an open session: a database look-up, so it is done once,
    # by `resolve_admin` in prepare(), before any handler method reads the viewer.
    _admin_session = False

    @property
    def gallery(self) -> Gallery:
        return self.settings["gallery"]

    @property
    def hub(self) -> EventHub:
        return self.settings["hub"]

    @property
    def access(self) -> AccessPolicy:
        return self.settings["access"]

    @property
    def image_workers(self) -> ImageWorkers:
        return self.settings["image_workers"]

    @property
    def rendered_tiles(self) -> RenderedTiles:
        return self.settings["rendered_tiles"]

    @property
    def verified_cookies(self) -> VerifiedCookies:
        return self.settings["verified_cookies"]

    @property
    def worker_name(self) -> str:
        return self.settings["worker_name"]

    @property
    def base_url(self) -> str:
        return public_base_url(self.request)

    def get_cookie(self, name: str, default: str | None = None) -> str | None:
        """As Tornado's, without the `http.cookies.SimpleCookie` Tornado builds of every
        cookie a request carries (17 µs, a twentieth of a gallery request): the header is
        parsed once, by the parser Tornado uses underneath, into a plain dict."""
        if self._cookie_values is None:
            header = self.request.headers.get("Cookie")
            self._cookie_values = parse_cookie(header) if header else {}
        return self._cookie_values.get(name, default)

    def check_host(self) -> None:
        """With ALLOWED_HOSTS set, a request for any other name is refused: a DNS-rebinding
        page (its own name pointed at this site's address) could otherwise read the pages
        and the live feed of a site on a private network. Both the Host header and a
        proxy's X-Forwarded-Host (which links are built from) must be allowed."""
        allowed: tuple[str, ...] = self.settings["allowed_hosts"]
        if not allowed:
            return
        forwarded = self.request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
        for host in filter(None, (self.request.host, forwarded)):
            if split_host_and_port(host.lower())[0] not in allowed:
                raise tornado.web.HTTPError(400, "host %r is not in ALLOWED_HOSTS", host)

    async def resolve_admin(self) -> None:
        """Is the signed admin cookie an open session? Logging out ends it in the database,
        so a copy of the cookie is worth nothing afterwards, on every backend."""
        if "Authorization" in self.request.headers:
            return
        cookie = self.get_signed_cookie(ADMIN_COOKIE, max_age_days=ADMIN_COOKIE_DAYS)
        if cookie is not None:
            self._admin_session = await self.access.is_admin_session(cookie.decode())
            self._viewer = None  # worked out again, with the admin flag

    @property
    def viewer(self) -> Viewer:
        """Who is asking: an API token holder (Authorization header), else the owner cookie
        (and the admin session `resolve_admin` found). A wrong or disabled token raises
        NotAuthenticated instead of falling back. Worked out once per request; the owner
        cookie's signature (an HMAC) is checked once per process (`VerifiedCookies`)."""
        if self._viewer is None:
            authorization = self.request.headers.get("Authorization")
            if authorization is not None:
                self._viewer = self.access.token_viewer(authorization)
            else:
                raw = self.get_cookie(OWNER_COOKIE)
                token = None
                if raw:
                    token = self.verified_cookies.decode(
                        OWNER_COOKIE,
                        raw,
                        lambda: self.get_signed_cookie(
                            OWNER_COOKIE, raw, max_age_days=OWNER_COOKIE_DAYS
                        ),
                    )
                self._viewer = Viewer(
                    owner_hash=owner_hash_of(token.decode()) if token else None,
                    is_admin=self._admin_session,
                )
        return self._viewer

    def image_json(self, image: Image, viewer: Viewer | None = None) -> dict[str, Any]:
        return image_json(image, self.base_url, (viewer or self.viewer).can_delete(image))
