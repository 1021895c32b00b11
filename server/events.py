"""Live events: one dedicated LISTEN connection per process, fanned out to local subscribers.

PostgreSQL is the bus: every committed insert/delete NOTIFYs, and every backend process
hears it here, so N processes (or machines) stay in sync without another service.
"""

from __future__ import annotations

import asyncio
import random
from typing import Protocol

import psycopg
from loguru import logger

from server.models import ImageEvent
from server.repository import EVENTS_CHANNEL, listen_for_events, ping_listener


class Subscriber(Protocol):
    """A local consumer of events, e.g. one WebSocket connection."""

    def deliver(self, event: ImageEvent) -> None:
        """Take the event without blocking (queue it, never await the client)."""

    def close_going_away(self) -> None:
        """The process is shutting down: close with 1001 (going away)."""


# How long the listener waits for a notification before checking the connection is alive.
_IDLE_CHECK_SECONDS = 20.0


class EventHub:
    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._subscribers: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.add(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def publish(self, event: ImageEvent) -> None:
        """Hand the event to every local subscriber; subscribers must not block."""
        for subscriber in list(self._subscribers):
            try:
                subscriber.deliver(event)
            except Exception:
                logger.exception("event subscriber failed")

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="event-listener")

    async def stop(self) -> None:
        """Close every subscriber (they will reconnect elsewhere), then stop listening."""
        for subscriber in list(self._subscribers):
            subscriber.close_going_away()
        self._subscribers.clear()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.connected.clear()

    async def _run(self) -> None:
        delay = 0.5
        first = True
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._database_url, autocommit=True)
            except psycopg.OperationalError as exc:
                logger.warning(
                    "event listener cannot connect ({}); retrying in {:.1f}s",
                    exc,
                    delay,
                )
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 10.0)
                continue
            try:
                async with conn:
                    await listen_for_events(conn)
                    self.connected.set()
                    delay = 0.5
                    logger.info("event listener is listening on {}", EVENTS_CHANNEL)
                    if not first:
                        # Changes may have happened while we were deaf: tell clients to resync.
                        self.publish(ImageEvent("resync"))
                    first = False
                    await self._pump(conn)
            except psycopg.OperationalError as exc:
                self.connected.clear()
                logger.warning("event listener lost its connection ({}); reconnecting", exc)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, 10.0)

    async def _pump(self, conn: psycopg.AsyncConnection) -> None:
        while True:
            async for notify in conn.notifies(timeout=_IDLE_CHECK_SECONDS):
                try:
                    event = ImageEvent.from_json(notify.payload)
                except (ValueError, KeyError, TypeError):
                    logger.error("ignoring malformed event payload: {!r}", notify.payload[:200])
                    continue
                self.publish(event)
            # Quiet for a while: make sure the connection is still alive.
            await ping_listener(conn)
