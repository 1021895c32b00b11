"""The language switcher: POST /lang remembers the choice in the `lang` cookie (see
handlers/i18n.py for how a request's language is decided)."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.i18n import LANG_COOKIE, LANGUAGES
from handlers.redirects import same_site_path


class LanguageHandler(BaseHandler):
    """POST /lang: remember the chosen language in a cookie, then go back where we were."""

    def post(self) -> None:
        code = self.get_body_argument("lang", "")
        if code in LANGUAGES:
            self.set_cookie(LANG_COOKIE, code, expires_days=365)
        # Back where we were, if that is a short path on this site; else the home page.
        self.redirect(same_site_path(self.get_body_argument("next", "/")) or "/")


routes = [(r"/lang", LanguageHandler)]
