"""Who may do what: the admin password and the API token, both optional, both compared in
constant time, and admin sessions (kept in the database, so logging out ends them on every
backend). handlers/base.py turns cookies and headers into these calls."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from psycopg_pool import AsyncConnectionPool

from server import repository
from server.errors import NotAuthenticated
from server.models import Viewer

# How long an admin session lasts; the admin cookie expires with it.
ADMIN_SESSION_DAYS = 1


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def owner_hash_of(token: str) -> str:
    """What an image records about its uploader: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _session_key(session_id: str) -> str:
    """What the database keeps of an admin session id: never the id itself."""
    return hashlib.sha256(b"admin-session-id:" + session_id.encode()).hexdigest()


class AccessPolicy:
    def __init__(
        self,
        admin_password: str = "",
        api_token: str = "",
        *,
        sessions_pool: AsyncConnectionPool | None = None,
    ) -> None:
        """`sessions_pool` holds the admin sessions: required with an admin password."""
        if admin_password and sessions_pool is None:
            raise ValueError("an admin password needs a database for its sessions")
        self._pool = sessions_pool
        self._admin = _digest(admin_password) if admin_password else None
        self._token = _digest(api_token) if api_token else None
        # Owner identity of everything uploaded with the API token (deletable with it).
        self.api_owner_hash = owner_hash_of("api-token:" + api_token) if api_token else None

    @property
    def admin_enabled(self) -> bool:
        return self._admin is not None

    def _password_tag(self) -> str:
        """Names the current password without revealing it: a new password ends old sessions."""
        assert self._admin is not None
        return hashlib.sha256(b"admin-session:" + self._admin).hexdigest()[:32]

    async def open_admin_session(self, attempt: str) -> str:
        """A new session id for the admin cookie; raises NotAuthenticated when wrong."""
        if self._admin is None or not hmac.compare_digest(_digest(attempt), self._admin):
            raise NotAuthenticated("That password is not right.")
        session_id = secrets.token_urlsafe(32)
        assert self._pool is not None
        await repository.insert_admin_session(
            self._pool, _session_key(session_id), self._password_tag(), ADMIN_SESSION_DAYS * 86400
        )
        return session_id

    async def is_admin_session(self, session_id: str | None) -> bool:
        if self._admin is None or self._pool is None or not session_id:
            return False
        return await repository.admin_session_exists(
            self._pool, _session_key(session_id), self._password_tag()
        )

    async def close_admin_session(self, session_id: str | None) -> None:
        if self._pool is not None and session_id:
            await repository.delete_admin_session(self._pool, _session_key(session_id))

    def token_viewer(self, authorization: str) -> Viewer:
        """The viewer for an `Authorization: Bearer …` header; wrong or disabled → raises."""
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not credential.strip():
            raise NotAuthenticated("Use 'Authorization: Bearer <API_TOKEN>'.")
        if self._token is None:
            raise NotAuthenticated("API tokens are not enabled on this server.")
        if not hmac.compare_digest(_digest(credential.strip()), self._token):
            raise NotAuthenticated("The API token is not valid.")
        return Viewer(owner_hash=self.api_owner_hash)
