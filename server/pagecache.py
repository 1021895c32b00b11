"""Gallery pages kept in this process, forgotten on every event the process hears.

A page is served from here only while the event listener is connected, and only to a
client that has not written since: every write answer carries the write's version (a
cookie), and a client whose version is newer than the last event this process heard gets a
fresh page from the database instead. Versions are in commit order (migration 004), so
having heard version N means having heard every write up to N: what another process wrote
for this client is never missing from a page served here.

Changes made behind the app's back (a restore by hand with psql, SQL typed in) send no
event: a kept page is also forgotten after MAX_AGE_SECONDS, so they show within a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from server.models import GalleryPage, ImageEvent

# Pages past this are not kept (a deep page is seldom asked twice before the next upload).
CACHED_PAGES = 16
MAX_AGE_SECONDS = 1.0


class PageCache:
    """An `EventHub` subscriber (server.events.Subscriber)."""

    def __init__(self, max_age: float = MAX_AGE_SECONDS) -> None:
        self.max_age = max_age
        self._pages: dict[int, tuple[float, GalleryPage]] = {}  # number -> (kept at, page)
        # None: no versioned event heard since the listener (re)connected.
        self.version: int | None = None
        self._generation = 0  # counts events: a page read across one is not kept
        self.live: asyncio.Event | None = None  # the listener's "connected"; None: no cache

    def deliver(self, event: ImageEvent) -> None:
        self._pages.clear()
        self._generation += 1
        if event.version is not None:
            self.version = event.version
        elif event.kind == "resync":  # events may have been missed: versions start over
            self.version = None

    def close_going_away(self) -> None:
        self._pages.clear()

    def _usable(self, seen_version: int | None) -> bool:
        if self.live is None or not self.live.is_set():
            return False
        if seen_version is None:
            return True
        return self.version is not None and self.version >= seen_version

    async def page(
        self, number: int, seen_version: int | None, load: Callable[[], Awaitable[GalleryPage]]
    ) -> GalleryPage:
        """Page `number` from here when it is new enough for this client, else from `load`."""
        usable = self._usable(seen_version)
        now = time.monotonic()
        if usable and (kept := self._pages.get(number)) is not None:
            kept_at, cached = kept
            if now - kept_at < self.max_age:
                return cached
        generation = self._generation
        page = await load()
        if usable and number <= CACHED_PAGES and generation == self._generation:
            self._pages[number] = (now, page)
        return page
