"""Static-ish pages: home, health check, and the 404 for every unknown address."""

from __future__ import annotations

import tornado.web

from handlers.base import BaseHandler
from server.errors import NotFound


class RedirectHandler(tornado.web.RedirectHandler):
    """Tornado's redirect, answering HEAD too (like every GET route here)."""

    head = tornado.web.RedirectHandler.get


class HomeHandler(BaseHandler):
    def get(self) -> None:
        self.render("home.html")


class HealthHandler(BaseHandler):
    def prepare(self) -> None:
        """Health checks are machines: no owner cookie for them."""

    async def get(self) -> None:
        await self.gallery.check_health()
        self.finish({"status": "ok"})

    def wants_json(self) -> bool:
        return True


class NotFoundHandler(BaseHandler):
    def prepare(self) -> None:
        raise NotFound("No page lives at this address.")


routes = [
    (r"/", HomeHandler),
    (r"/healthz", HealthHandler),
]
