"""`/ws`: pushes image.created / image.deleted / resync events to one browser tab."""

from __future__ import annotations

import json
from typing import Any

from loguru import logger
from tornado.websocket import WebSocketClosedError, WebSocketHandler

from handlers.base import image_json, public_base_url, viewer_of
from server.events import EventHub
from server.models import ImageEvent, Viewer

# A client this many messages behind is too slow to keep: drop it; it resyncs on reconnect.
MAX_PENDING_MESSAGES = 64


class LiveSocketHandler(WebSocketHandler):
    """One connection. Tornado's origin check stays on: cross-site pages can't subscribe."""

    viewer: Viewer
    base_url: str
    _pending: int

    @property
    def hub(self) -> EventHub:
        return self.settings["hub"]

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.viewer = viewer_of(self)
        self.base_url = public_base_url(self.request)
        self._pending = 0
        self.hub.subscribe(self)
        self._send({"type": "hello", "worker": self.settings["worker_name"]})

    def on_message(self, message: str | bytes) -> None:
        """Clients have nothing to say; ignore anything they send."""

    def on_close(self) -> None:
        self.hub.unsubscribe(self)

    def deliver(self, event: ImageEvent) -> None:
        message: dict[str, Any] = {"type": event.kind}
        if event.kind == "image.created" and event.image is not None:
            message["image"] = image_json(event.image, self.base_url, self.viewer)
        elif event.kind == "image.deleted":
            message["id"] = event.image_id
        if event.total is not None:
            message["total"] = event.total
        self._send(message)

    def close_going_away(self) -> None:
        self.close(1001, "server shutting down")

    def _send(self, message: dict[str, Any]) -> None:
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
            future = self.write_message(json.dumps(message, ensure_ascii=False))
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
