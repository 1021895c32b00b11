"""Who may do what: the admin password and the API token, both optional, both compared in
constant time. Pure logic; handlers/base.py turns cookies and headers into these calls."""

from __future__ import annotations

import hashlib
import hmac

from server.errors import NotAuthenticated
from server.models import Viewer


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def owner_hash_of(token: str) -> str:
    """What an image records about its uploader: never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


class AccessPolicy:
    def __init__(self, admin_password: str = "", api_token: str = "") -> None:
        self._admin = _digest(admin_password) if admin_password else None
        self._token = _digest(api_token) if api_token else None
        # Owner identity of everything uploaded with the API token (deletable with it).
        self.api_owner_hash = owner_hash_of("api-token:" + api_token) if api_token else None

    @property
    def admin_enabled(self) -> bool:
        return self._admin is not None

    def check_admin_password(self, attempt: str) -> str:
        """A session marker for the admin cookie; raises NotAuthenticated when wrong.

        The marker is derived from the password, so changing ADMIN_PASSWORD ends every
        existing admin session."""
        if self._admin is None or not hmac.compare_digest(_digest(attempt), self._admin):
            raise NotAuthenticated("That password is not right.")
        return self.admin_marker()

    def admin_marker(self) -> str:
        assert self._admin is not None
        return hashlib.sha256(b"admin-session:" + self._admin).hexdigest()[:32]

    def is_admin_marker(self, marker: str | None) -> bool:
        if self._admin is None or not marker:
            return False
        return hmac.compare_digest(marker, self.admin_marker())

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
