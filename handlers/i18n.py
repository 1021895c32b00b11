"""The language switcher. English and Russian come through Tornado's locale support
(catalogs in locale/, loaded by server.app); the choice is the `lang` cookie, else the
Accept-Language header (see BaseHandler.get_user_locale)."""

from __future__ import annotations

from urllib.parse import urlsplit

from handlers.base import LANG_COOKIE, BaseHandler

LANGUAGES = {"en": "English", "ru": "Русский"}


class LanguageHandler(BaseHandler):
    """POST /lang: remember the chosen language in a cookie, then go back where we were."""

    def post(self) -> None:
        code = self.get_body_argument("lang", "")
        if code in LANGUAGES:
            self.set_cookie(LANG_COOKIE, code, expires_days=365)
        target = self.get_body_argument("next", "/")
        # Only a path on this site: never an open redirect.
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
            target = "/"
        self.redirect(target)


routes = [(r"/lang", LanguageHandler)]
