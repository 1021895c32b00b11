"""BaseHandler: the owner cookie, cookie and header policy, content negotiation, and the
one error funnel that maps domain errors to HTTP statuses and renders them (HTML or JSON).
Services and the viewer come from handlers/services.py, languages from handlers/i18n.py."""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

import tornado.locale
import tornado.web
from loguru import logger
from tornado.escape import utf8

from handlers.i18n import (
    LANG_COOKIE,
    format_datetime,
    format_size,
    js_messages,
    lang_of,
    locale_for_cookie,
)
from handlers.paging import page_window
from handlers.services import OWNER_COOKIE, OWNER_COOKIE_DAYS, ServicesMixin
from handlers.share import SHARE_FORMATS, share_codes
from server import formats
from server.access import owner_hash_of
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
from server.models import Viewer

# Pages load scripts, styles and images from this site only; nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# Looked up along the error's class hierarchy (its MRO), so a subclass gets its nearest
# ancestor's status; a domain error with no entry on its way up is a 500.
STATUS_FOR_ERROR: dict[type[ImageHostingError], int] = {
    InvalidUpload: 400,
    InvalidPage: 400,
    UploadTooLarge: 413,
    UnsupportedImage: 415,
    NotFound: 404,
    NotAuthenticated: 401,
    NotAllowed: 403,
    ServiceUnavailable: 503,
}

# What a person sees for errors Tornado raises itself (bad XSRF token, wrong method, ...).
_MESSAGE_FOR_STATUS = {
    400: "The request could not be understood.",
    401: NotAuthenticated.default_message,
    403: "This action is not allowed.",
    404: "Nothing is here.",
    405: "This address does not accept that kind of request.",
    413: "The upload is larger than the {limit} MB limit.",
    415: "The file is not a JPEG, PNG or GIF image.",
    426: "This address takes WebSocket connections only.",
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
    426: "WebSocket only",
    500: "Server error",
    503: "Temporarily unavailable",
}
_DEFAULT_TITLE = "Error"
_XSRF_MESSAGE = "Your form expired or came from another site. Reload the page and try again."


def set_security_headers(handler: tornado.web.RequestHandler) -> None:
    """On every response the app sends, errors and redirects included."""
    handler.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.set_header("X-Frame-Options", "DENY")
    handler.set_header("Referrer-Policy", "same-origin")


def status_for(error: ImageHostingError) -> int:
    """The HTTP status of a domain error: its own class's, else its nearest ancestor's."""
    for cls in type(error).__mro__:
        if cls in STATUS_FOR_ERROR:
            return STATUS_FOR_ERROR[cls]
    return 500


# The version of a client's last write (server/pagecache.py): set on upload and delete.
VERSION_COOKIE = "seen"
VERSION_HEADER = "X-Gallery-Version"


class BaseHandler(ServicesMixin, tornado.web.RequestHandler):
    async def prepare(self) -> None:
        """Subclasses that add to it `await super().prepare()` first."""
        self.check_host()
        await self.resolve_admin()
        # Every visitor gets an owner identity on their first page view, so a tab opened
        # before their first upload already knows which live tiles it may delete.
        if self.request.method == "GET" and "Authorization" not in self.request.headers:
            self.ensure_owner_hash()

    async def head(self, *args: str, **kwargs: str) -> None:
        """HEAD answers like GET (uptime monitors use it); Tornado sends no body for HEAD,
        and a handler without `get` keeps Tornado's 405."""
        result = self.get(*args, **kwargs)
        if result is not None:
            await result

    def get_user_locale(self) -> tornado.locale.Locale | None:
        """The switcher's cookie wins; otherwise Tornado reads Accept-Language."""
        return locale_for_cookie(self.get_cookie(LANG_COOKIE))

    @property
    def lang(self) -> str:
        return lang_of(self.locale)

    def check_xsrf_cookie(self) -> None:
        """API clients prove themselves with the bearer token instead of the XSRF cookie."""
        if "Authorization" in self.request.headers:
            _ = self.viewer  # raises NotAuthenticated unless the token is right
            return
        super().check_xsrf_cookie()

    def _get_raw_xsrf_token(self) -> tuple[int | None, bytes, float]:
        """The XSRF token, bound to the owner cookie: an HMAC of the owner's identity under the
        cookie secret, instead of Tornado's random value kept in the `_xsrf` cookie. Tornado
        still masks it afresh on every page and compares what a form sends with this; a
        token (and `_xsrf` cookie) minted for another browser, or planted by a neighbouring
        site, no longer matches. (Tornado has no public hook for this; the test that another
        browser's token is refused guards the override.)"""
        if not hasattr(self, "_raw_xsrf_token"):
            owner_hash = self._viewer_or_anonymous().owner_hash
            if owner_hash is None:  # no owner yet: no token can match
                token = secrets.token_bytes(16)
            else:
                secret = utf8(self.application.settings["cookie_secret"])
                token = hmac.digest(secret, b"xsrf:" + owner_hash.encode(), "sha256")[:16]
            cookie = self.get_cookie(self.settings.get("xsrf_cookie_name", "_xsrf"))
            version, in_cookie, _ = self._decode_xsrf_token(cookie) if cookie else (None,) * 3
            # The cookie is (re)issued unless it already carries this token.
            keep = in_cookie is not None and hmac.compare_digest(in_cookie, token)
            self._raw_xsrf_token = (version if keep else None, token, time.time())
        return self._raw_xsrf_token

    def set_cookie(self, name: str, value: str | bytes, **kwargs: Any) -> None:  # type: ignore[override]
        """Every cookie: HttpOnly, SameSite=Lax, and Secure whenever the site is on HTTPS."""
        kwargs.setdefault("httponly", True)
        kwargs.setdefault("samesite", "Lax")
        if self.request.protocol == "https":
            kwargs["secure"] = True
        super().set_cookie(name, value, **kwargs)

    def ensure_owner_hash(self) -> str:
        """The caller's owner identity, issuing a fresh signed cookie on first use."""
        viewer = self.viewer
        if viewer.owner_hash is not None:
            return viewer.owner_hash
        token = secrets.token_urlsafe(32)
        self.set_signed_cookie(OWNER_COOKIE, token, expires_days=OWNER_COOKIE_DAYS)
        self._viewer = Viewer(owner_hash=owner_hash_of(token), is_admin=viewer.is_admin)
        return self._viewer.owner_hash

    def remember_write(self, version: int) -> None:
        """Tell the client the version its write made (cookie, and a header for API clients):
        its next gallery page is at least that new, whichever process serves it."""
        self.set_cookie(VERSION_COOKIE, str(version))
        self.set_header(VERSION_HEADER, str(version))

    def seen_version(self) -> int | None:
        """The version of the client's last write (header or cookie), if it sent one."""
        raw = self.request.headers.get(VERSION_HEADER) or self.get_cookie(VERSION_COOKIE) or ""
        return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None

    def wants_json(self) -> bool:
        accept = self.request.headers.get("Accept", "")
        return "application/json" in accept and "text/html" not in accept

    def get_template_namespace(self) -> dict[str, Any]:
        namespace = super().get_template_namespace()
        namespace.update(
            lang=self.lang,
            format_size=lambda size: format_size(size, self.lang),
            js_messages=js_messages(self.locale),
            format_datetime=format_datetime,
            share_codes=share_codes,
            page_window=page_window,
            share_formats=SHARE_FORMATS,
            # The page's own address (the language switch comes back to it), and the XSRF
            # token, masked afresh for every page: the two things a kept gallery body leaves
            # as holes (handlers/gallery.py), so the templates read them from here only.
            current_uri=self.request.uri,
            xsrf_value=self.xsrf_token.decode(),
            admin_enabled=self.access.admin_enabled,
            is_admin=self._viewer_or_anonymous().is_admin,
            upload_limit_mb=self.gallery.upload_limit_mb,
            max_upload_bytes=self.gallery.max_upload_bytes,
            # The uploader (home and upload pages) checks names and types as the server does.
            accept_attribute=formats.accept_attribute(),
            accepted_extensions=formats.ACCEPTED_EXTENSIONS,
            extension_for_media_type=formats.extension_for_media_type(),
        )
        return namespace

    def _viewer_or_anonymous(self) -> Viewer:
        """For rendering (e.g. an error page about a bad token): never raises."""
        try:
            return self.viewer
        except NotAuthenticated:
            return Viewer()

    def set_default_headers(self) -> None:
        set_security_headers(self)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        # A domain error with no status of its own is a bug: it keeps its traceback.
        if isinstance(value, ImageHostingError) and status_for(value) != 500:
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
        ).format(limit=self.gallery.upload_limit_mb)
        # An unmapped domain error keeps Tornado's 500 and the generic message: it is a bug.
        if isinstance(error, ImageHostingError) and status_for(error) != 500:
            status_code = status_for(error)
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
