"""`/ws`: pushes image.created / image.updated / image.deleted / resync events to one browser
tab."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from loguru import logger
from tornado.web import HTTPError
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from handlers.base import BaseHandler
from handlers.services import image_json
from server.errors import NotAuthenticated
from server.models import ImageEvent

# A client this many messages behind is too slow to keep: drop it; it resyncs on reconnect.
MAX_PENDING_MESSAGES = 64


@lru_cache(maxsize=256)
def encode_event(event: ImageEvent, base_url: str, can_delete: bool) -> str:
    """The JSON text one kind of viewer receives; memoised, since hundreds of sockets in a
    process share a handful of variants (site address x may-delete) of each event."""
    message: dict[str, Any] = {"type": event.kind}
    if event.kind in ("image.created", "image.updated") and event.image is not None:
        message["image"] = image_json(event.image, base_url, can_delete)
    elif event.kind == "image.deleted":
        message["id"] = event.image_id
    if event.total is not None:
        message["total"] = event.total
    return json.dumps(message, ensure_ascii=False)


class LiveSocketHandler(BaseHandler, WebSocketHandler):
    """One connection. Cross-site pages can't subscribe (Tornado's origin check). A refused
    handshake gets the site's error page or JSON, like any other error (BaseHandler)."""

    _base_url: str
    _pending: int

    async def prepare(self) -> None:
        # Not BaseHandler's: a socket needs no owner cookie of its own (the page set it).
        self.check_host()  # a DNS-rebinding page must not read the feed
        await self.resolve_admin()

    async def get(self, *args: Any, **kwargs: Any) -> None:
        """Tornado's checks, made first so that a refusal goes through `write_error`
        (Tornado's own answers them with a bare line of text)."""
        headers = self.request.headers
        upgrade = headers.get("Upgrade", "").lower() == "websocket"
        connection = "upgrade" in headers.get("Connection", "").lower().replace(" ", "").split(",")
        if not (upgrade and connection and headers.get("Sec-WebSocket-Key")):
            raise HTTPError(400, "not a WebSocket handshake")
        # Tornado 6.6's own same-origin test (Origin against Host, Sec-Fetch-Site), as its
        # get() makes it; it returns why the request is cross-origin, or None.
        refused = self._check_cross_origin(self.check_origin)
        if refused is not None:
            raise HTTPError(403, "cross-origin WebSocket: %s", refused)
        if headers.get("Sec-WebSocket-Version") not in ("7", "8", "13"):
            raise HTTPError(426, "unsupported WebSocket version")
        await super().get(*args, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 426:  # the versions a client may try (RFC 6455, 4.4)
            self.set_header("Sec-WebSocket-Version", "7, 8, 13")
        super().write_error(status_code, **kwargs)

    def open(self, *args: Any, **kwargs: Any) -> None:
        try:
            _ = self.viewer  # worked out once, for every event this socket receives
        except NotAuthenticated:
            self.close(1008, "invalid API token")
            return
        self._base_url = self.base_url
        self._pending = 0
        self.hub.subscribe(self)
        self._send(json.dumps({"type": "hello", "worker": self.worker_name}))

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say; ignore anything they send."""

    def on_close(self) -> None:
        self.hub.unsubscribe(self)

    def deliver(self, event: ImageEvent) -> None:
        can_delete = event.image is not None and self.viewer.can_delete(event.image)
        self._send(encode_event(event, self._base_url, can_delete))

    def close_going_away(self) -> None:
        self.close(1001, "server shutting down")

    def _send(self, message: str) -> None:
        """Queue without awaiting: one slow client must never hold up the others."""
        if self._pending >= MAX_PENDING_MESSAGES:
            logger.info(
                "dropping a WebSocket client that fell {} messages behind",
                self._pending,
            )
            self.hub.unsubscribe(self)
            self.close(1013, "too slow; reconnect and resync")
            return
        try:
            future = self.write_message(message)
        except WebSocketClosedError:
            self.hub.unsubscribe(self)
            return
        self._pending += 1
        future.add_done_callback(self._written)

    def _written(self, future: Any) -> None:
        self._pending -= 1
        if not future.cancelled() and future.exception() is not None:
            self.hub.unsubscribe(self)


routes = [(r"/ws", LiveSocketHandler)]
