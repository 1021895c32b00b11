"""Redirects that carry client input: the trailing-slash redirects (/images → /images/) and
the `next` path of forms. Whatever a client sends, the Location header stays short (a long
one once overflowed nginx's buffer for backend headers: a 502 for everybody) and stays on
this site (no open redirect, however a browser reads backslashes or control characters)."""

from __future__ import annotations

from urllib.parse import urlsplit

from handlers.base import BaseHandler

# Longest `next` path or redirected query string kept; anything longer is dropped.
MAX_REDIRECT_PART = 512


def same_site_path(target: str) -> str | None:
    """`target` if every browser resolves it to a path on this site, else None.

    Printable ASCII only: browsers silently drop tabs and newlines from URLs and read `\\`
    as `/`, so `/\\evil.com` or `/<TAB>/evil.com` would leave the site as `//evil.com`."""
    if not 0 < len(target) <= MAX_REDIRECT_PART or not target.startswith("/"):
        return None
    if target.startswith("//") or "\\" in target or not all("!" <= ch <= "~" for ch in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


class AddSlashHandler(BaseHandler):
    """`/images` → `/images/`, keeping a short query string (`?page=2`) and dropping a long
    one. Tornado's RedirectHandler copied any query into the Location header."""

    def initialize(self, url: str) -> None:
        self._url = url

    def get(self) -> None:
        query = self.request.query
        keep = query and len(query) <= MAX_REDIRECT_PART and same_site_path("/?" + query)
        self.redirect(f"{self._url}?{query}" if keep else self._url, permanent=True)
