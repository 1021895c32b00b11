"""The language switcher: POST /lang remembers the choice in the `lang` cookie (see
handlers/i18n.py for how a request's language is decided)."""

from __future__ import annotations

from urllib.parse import urlsplit

from handlers.base import BaseHandler
from handlers.i18n import LANG_COOKIE, LANGUAGES


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
