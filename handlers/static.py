"""`/static/` as the app serves it (nginx serves it first in every deployment; the app's copy
answers only requests nginx passes on, like `/static/../README.md`): Tornado's static file
handler with the site's error pages and security headers instead of Tornado's bare ones."""

from __future__ import annotations

import tornado.web

from handlers.base import BaseHandler


class StaticFiles(BaseHandler, tornado.web.StaticFileHandler):
    """BaseHandler first, so its write_error and headers win; StaticFileHandler serves."""

    async def prepare(self) -> None:
        """Files need no owner cookie or session look-up."""

    head = tornado.web.StaticFileHandler.head  # headers only, without reading the file
