"""Which page numbers the gallery's pagination shows: the first, the last, and the pages near
the current one, with gaps (None) between. templates/_pagination.html draws them; after live
changes gallery.js takes that nav from the server again, so the window is decided here only."""

from __future__ import annotations

# Up to this many pages are all shown; beyond it, 1 … p-1 p p+1 … N (seven slots at most).
ALL_PAGES_UP_TO = 7


def page_window(page: int, pages: int) -> list[int | None]:
    """Page numbers to link, None where a gap (…) goes."""
    if pages <= ALL_PAGES_UP_TO:
        return list(range(1, pages + 1))
    if page <= 4:
        low, high = 2, 5
    elif page >= pages - 3:
        low, high = pages - 4, pages - 1
    else:
        low, high = page - 1, page + 1
    window: list[int | None] = [1]
    if low > 2:
        window.append(None)
    window.extend(range(low, high + 1))
    if high < pages - 1:
        window.append(None)
    window.append(pages)
    return window
