"""`/ws`: pushes image.created / image.updated / image.deleted / resync events to one browser
tab."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from loguru import logger
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from handlers.base import set_security_headers
from handlers.services import ServicesMixin, image_json
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


class LiveSocketHandler(ServicesMixin, WebSocketHandler):
    """One connection. Tornado's origin check stays on: cross-site pages can't subscribe."""

    _base_url: str
    _pending: int

    async def prepare(self) -> None:
        self.check_host()  # a DNS-rebinding page must not read the feed
        await self.resolve_admin()

    def set_default_headers(self) -> None:
        set_security_headers(self)  # the handshake's refusals (403, 400) carry them too

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
