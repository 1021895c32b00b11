"""Static-ish pages: home, health check, and the 404 for every unknown address."""

from __future__ import annotations

from handlers.base import BaseHandler
from server.errors import NotFound


class HomeHandler(BaseHandler):
    def get(self) -> None:
        self.render("home.html")


class HealthHandler(BaseHandler):
    async def prepare(self) -> None:
        """Health checks are machines: no owner cookie, and any Host (ALLOWED_HOSTS does not
        apply: container and load-balancer probes use an address)."""

    async def get(self) -> None:
        await self.gallery.check_health()
        self.finish({"status": "ok"})

    def wants_json(self) -> bool:
        return True


class NotFoundHandler(BaseHandler):
    async def prepare(self) -> None:
        raise NotFound("No page lives at this address.")


routes = [
    (r"/", HomeHandler),
    (r"/healthz", HealthHandler),
]
