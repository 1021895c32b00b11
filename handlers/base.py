"""BaseHandler: services from settings, the viewer, content negotiation, and the one error
funnel that maps domain errors to HTTP statuses and renders them (HTML or JSON)."""

from __future__ import annotations

import functools
import secrets
from datetime import UTC, datetime
from typing import Any

import tornado.locale
import tornado.web
from loguru import logger
from tornado.escape import json_encode
from tornado.httputil import HTTPServerRequest

from server.access import AccessPolicy, owner_hash_of
from server.errors import (
    ImageHostingError,
    InvalidPage,
    InvalidUpload,
    NotAllowed,
    NotAuthenticated,
    NotFound,
    ServiceUnavailable,
    UnsupportedImage,
    UploadTooLarge,
)
from server.events import EventHub
from server.gallery import Gallery
from server.models import Image, Viewer

OWNER_COOKIE = "owner"
OWNER_COOKIE_DAYS = 3650
ADMIN_COOKIE = "admin"
ADMIN_COOKIE_DAYS = 1
LANG_COOKIE = "lang"
_LOCALE_FOR_LANG = {"en": "en_US", "ru": "ru"}

# Every string the browser scripts show; the page hands them over already translated.
JS_MESSAGES = (
    "Copied!",
    "Press Ctrl+C to copy",
    "Link copied to the clipboard.",
    "Deleting…",
    "Delete",
    "Delete {name}? This cannot be undone.",
    "this image",
    "live",
    "reconnecting…",
    "connecting…",
    "Images: {count}",
    "First page",
    "Previous page",
    "Next page",
    "Last page",
    "New image: {name}",
    "An image was deleted.",
    "Could not refresh the gallery: {error}",
    "Uploaded ({size})",
    "Only .jpg, .jpeg, .png and .gif files are accepted.",
    "The file is empty.",
    "The file is {size} MB; the limit is 5 MB.",
    "The upload failed: the connection was lost.",
    "The server answered {status}.",
    "Copy",
)

# Pages load scripts, styles and images from this site only; nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# Order matters: the first matching class wins (subclasses before their bases).
_STATUS_FOR_ERROR: tuple[tuple[type[ImageHostingError], int], ...] = (
    (InvalidUpload, 400),
    (InvalidPage, 400),
    (UploadTooLarge, 413),
    (UnsupportedImage, 415),
    (NotFound, 404),
    (NotAuthenticated, 401),
    (NotAllowed, 403),
    (ServiceUnavailable, 503),
)

# What a person sees for errors Tornado raises itself (bad XSRF token, wrong method, ...).
_MESSAGE_FOR_STATUS = {
    400: "The request could not be understood.",
    401: NotAuthenticated.default_message,
    403: "This action is not allowed.",
    404: "Nothing is here.",
    405: "This address does not accept that kind of request.",
    413: "The upload is larger than the 5 MB limit.",
    415: "The file is not a JPEG, PNG or GIF image.",
    503: ServiceUnavailable.default_message,
}
_TITLE_FOR_STATUS = {
    400: "Bad request",
    401: "Not signed in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    413: "Too large",
    415: "Unsupported file",
    500: "Server error",
    503: "Temporarily unavailable",
}
_DEFAULT_TITLE = "Error"
_XSRF_MESSAGE = "Your form expired or came from another site. Reload the page and try again."


def public_base_url(request: HTTPServerRequest) -> str:
    """How the visitor reaches the site; the scheme honours X-Forwarded-Proto (xheaders),
    the host the Host header nginx forwards (or X-Forwarded-Host when a proxy set it)."""
    forwarded_host = request.headers.get("X-Forwarded-Host", "").split(",")[0].strip()
    return f"{request.protocol}://{forwarded_host or request.host}"


def image_json(image: Image, base_url: str, can_delete: bool) -> dict[str, Any]:
    """The image object of the API, plus whether this caller may delete it."""
    return {**image.to_public_dict(base_url), "can_delete": can_delete}


def viewer_of(handler: tornado.web.RequestHandler) -> Viewer:
    """Who is asking: an API token holder (Authorization header), else the owner and admin
    cookies. A wrong or disabled token raises NotAuthenticated instead of falling back."""
    access: AccessPolicy = handler.settings["access"]
    authorization = handler.request.headers.get("Authorization")
    if authorization is not None:
        return access.token_viewer(authorization)
    token = handler.get_signed_cookie(OWNER_COOKIE, max_age_days=OWNER_COOKIE_DAYS)
    admin = handler.get_signed_cookie(ADMIN_COOKIE, max_age_days=ADMIN_COOKIE_DAYS)
    return Viewer(
        owner_hash=owner_hash_of(token.decode()) if token else None,
        is_admin=access.is_admin_marker(admin.decode() if admin else None),
    )


def format_kb(size: int, lang: str = "en") -> str:
    """Size in KB the way the language writes numbers (1,234.5 KB / 1 234,5 КБ)."""
    text = f"{size / 1024:,.1f}"
    if lang == "ru":
        return text.replace(",", "\u00a0").replace(".", ",") + "\u00a0КБ"
    return f"{text} KB"


def format_datetime(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.cache
def _js_messages(locale: tornado.locale.Locale) -> str:
    """The scripts' messages in one language, as JSON (made once per language)."""
    # json_encode escapes "</", so the block can never close its <script> early.
    return json_encode({m: locale.translate(m) for m in JS_MESSAGES})


class BaseHandler(tornado.web.RequestHandler):
    _viewer: Viewer | None = None

    def prepare(self) -> None:
        # Every visitor gets an owner identity on their first page view, so a tab opened
        # before their first upload already knows which live tiles it may delete.
        if self.request.method == "GET" and "Authorization" not in self.request.headers:
            self.ensure_owner_hash()

    @property
    def access(self) -> AccessPolicy:
        return self.settings["access"]

    def get_user_locale(self) -> tornado.locale.Locale | None:
        """The switcher's cookie wins; otherwise Tornado reads Accept-Language."""
        lang = self.get_cookie(LANG_COOKIE)
        if lang in _LOCALE_FOR_LANG:
            return tornado.locale.get(_LOCALE_FOR_LANG[lang])
        return None

    @property
    def lang(self) -> str:
        return self.locale.code.split("_")[0]

    def check_xsrf_cookie(self) -> None:
        """API clients prove themselves with the bearer token instead of the XSRF cookie."""
        if "Authorization" in self.request.headers:
            viewer_of(self)  # raises NotAuthenticated unless the token is right
            return
        super().check_xsrf_cookie()

    def set_cookie(self, name: str, value: str | bytes, **kwargs: Any) -> None:  # type: ignore[override]
        """Every cookie: HttpOnly, SameSite=Lax, and Secure whenever the site is on HTTPS."""
        kwargs.setdefault("httponly", True)
        kwargs.setdefault("samesite", "Lax")
        if self.request.protocol == "https":
            kwargs["secure"] = True
        super().set_cookie(name, value, **kwargs)

    @property
    def gallery(self) -> Gallery:
        return self.settings["gallery"]

    @property
    def hub(self) -> EventHub:
        return self.settings["hub"]

    @property
    def viewer(self) -> Viewer:
        # Worked out once per request: each look verifies signed cookies (HMAC).
        if self._viewer is None:
            self._viewer = viewer_of(self)
        return self._viewer

    def ensure_owner_hash(self) -> str:
        """The caller's owner identity, issuing a fresh signed cookie on first use."""
        viewer = self.viewer
        if viewer.owner_hash is not None:
            return viewer.owner_hash
        token = secrets.token_urlsafe(32)
        self.set_signed_cookie(OWNER_COOKIE, token, expires_days=OWNER_COOKIE_DAYS)
        self._viewer = Viewer(owner_hash=owner_hash_of(token), is_admin=viewer.is_admin)
        return self._viewer.owner_hash

    @property
    def base_url(self) -> str:
        return public_base_url(self.request)

    def image_json(self, image: Image, viewer: Viewer | None = None) -> dict[str, Any]:
        return image_json(image, self.base_url, (viewer or self.viewer).can_delete(image))

    def wants_json(self) -> bool:
        accept = self.request.headers.get("Accept", "")
        return "application/json" in accept and "text/html" not in accept

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(
            lang=self.lang,
            format_kb=lambda size: format_kb(size, self.lang),
            js_messages=_js_messages(self.locale),
            format_datetime=format_datetime,
            xsrf_value=self.xsrf_token.decode(),
            admin_enabled=self.access.admin_enabled,
            is_admin=self._viewer_or_anonymous().is_admin,
        )
        return namespace

    def _viewer_or_anonymous(self) -> Viewer:
        """For rendering (e.g. an error page about a bad token): never raises."""
        try:
            return self.viewer
        except NotAuthenticated:
            return Viewer()

    def set_default_headers(self) -> None:
        self.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Referrer-Policy", "same-origin")

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, ImageHostingError):
            logger.info(
                "{} {} -> {}: {}",
                self.request.method,
                self.request.uri,
                typ.__name__,
                value,
            )
        else:
            super().log_exception(typ, value, tb)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        """The one place errors become responses; tracebacks never reach the client."""
        error = kwargs.get("exc_info", (None, None, None))[1]
        translate = self.locale.translate
        message = translate(
            _MESSAGE_FOR_STATUS.get(status_code, "Something went wrong on our side.")
        )
        if isinstance(error, ImageHostingError):
            status_code = next(s for cls, s in _STATUS_FOR_ERROR if isinstance(error, cls))
            message = error.render(translate)
        elif isinstance(error, tornado.web.HTTPError) and "xsrf" in (error.log_message or ""):
            message = translate(_XSRF_MESSAGE)
        self.set_status(status_code)
        if status_code == 401 and "Authorization" in self.request.headers:
            self.set_header("WWW-Authenticate", 'Bearer realm="ImageHosting"')
        if self.wants_json():
            self.finish({"error": message})
            return
        try:
            self.render(
                "error.html",
                status=status_code,
                title=translate(_TITLE_FOR_STATUS.get(status_code, _DEFAULT_TITLE)),
                message=message,
            )
        except Exception:
            logger.exception("error page failed to render")
            self.set_header("Content-Type", "text/plain; charset=UTF-8")
            self.finish(message)
