"""Admin login and logout (only when ADMIN_PASSWORD is set). nginx rate-limits /login."""

from __future__ import annotations

from handlers.base import BaseHandler
from handlers.services import ADMIN_COOKIE, ADMIN_COOKIE_DAYS
from server.errors import NotAuthenticated, NotFound


class LoginHandler(BaseHandler):
    async def prepare(self) -> None:
        if not self.access.admin_enabled:
            raise NotFound("This server has no admin account.")
        await super().prepare()

    def get(self) -> None:
        self.render("login.html", error=None)

    async def post(self) -> None:
        try:
            session_id = await self.access.open_admin_session(
                self.get_body_argument("password", "")
            )
        except NotAuthenticated as exc:
            if self.wants_json():
                raise
            self.set_status(401)
            self.render("login.html", error=exc.render(self.locale.translate))
            return
        self.set_signed_cookie(ADMIN_COOKIE, session_id, expires_days=ADMIN_COOKIE_DAYS)
        if self.wants_json():
            self.finish({"admin": True})
        else:
            self.redirect("/images/")


class LogoutHandler(BaseHandler):
    async def post(self) -> None:
        """Ends the session in the database: a copy of the cookie is refused from now on."""
        session = self.get_signed_cookie(ADMIN_COOKIE, max_age_days=ADMIN_COOKIE_DAYS)
        await self.access.close_admin_session(session.decode() if session else None)
        self.clear_cookie(ADMIN_COOKIE)
        self.redirect("/")


routes = [
    (r"/login", LoginHandler),
    (r"/logout", LogoutHandler),
]
