"""Playwright helpers for the browser tests: Chromium launch settings, and the page-side
actions a person does without a file chooser (drop, paste, an upload made by script)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from playwright.sync_api import Locator, Page, expect

from scripts.chromium import CHROMIUM, CHROMIUM_ARGS  # noqa: F401 - re-exported for the tests

# Generous: these bound waits for things that happen in well under a second.
TIMEOUT_MS = 5_000

# Builds a File from base64 bytes inside the page and puts it in a fresh DataTransfer.
_DATA_TRANSFER_JS = """
([b64, name, type]) => {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  const transfer = new DataTransfer();
  transfer.items.add(new File([bytes], name, { type }));
  return transfer;
}
"""


def _file_args(data: bytes, name: str, mime: str) -> list[str]:
    return [base64.b64encode(data).decode(), name, mime]


def drop_file(page: Page, data: bytes, name: str, mime: str) -> None:
    """What a drag from the file manager delivers: dragenter, dragover, drop on #drop-zone."""
    transfer = page.evaluate_handle(_DATA_TRANSFER_JS, _file_args(data, name, mime))
    page.evaluate(
        """(transfer) => {
          const zone = document.getElementById("drop-zone");
          for (const type of ["dragenter", "dragover", "drop"]) {
            zone.dispatchEvent(
              new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: transfer })
            );
          }
        }""",
        transfer,
    )
    transfer.dispose()


def paste_file(page: Page, data: bytes, name: str, mime: str) -> None:
    """What Ctrl+V with an image on the clipboard delivers: a paste event holding a File."""
    transfer = page.evaluate_handle(_DATA_TRANSFER_JS, _file_args(data, name, mime))
    page.evaluate(
        """(transfer) => {
          const init = { bubbles: true, cancelable: true, clipboardData: transfer };
          document.body.dispatchEvent(new ClipboardEvent("paste", init));
        }""",
        transfer,
    )
    transfer.dispose()


def fetch_upload(page: Page, data: bytes, name: str, mime: str = "image/png") -> dict[str, Any]:
    """Upload from script in `page` (same cookies, so the same owner); returns the image."""
    result = page.evaluate(
        """async ([b64, name, type]) => {
          const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
          const form = new FormData();
          form.append("file", new File([bytes], name, { type }), name);
          const token = document.querySelector('meta[name="xsrf-token"]').content;
          const response = await fetch("/upload/", {
            method: "POST",
            body: form,
            headers: { "X-XSRFToken": token, Accept: "application/json" },
          });
          return { status: response.status, body: await response.json() };
        }""",
        _file_args(data, name, mime),
    )
    assert result["status"] == 201, result
    return result["body"]


def expect_live(page: Page) -> None:
    expect(page.locator("#live-status")).to_have_text("live")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def mark_page(page: Page) -> None:
    """A marker that survives only while the document does: proves there was no reload."""
    page.evaluate("() => { window.__noReload = true; }")


def assert_not_reloaded(page: Page) -> None:
    assert page.evaluate("() => window.__noReload === true"), "the page was reloaded"


def en_us_medium_short(moment: datetime) -> str:
    """How Intl.DateTimeFormat('en-US', medium date, short time) shows `moment` in UTC."""
    moment = moment.astimezone(UTC)
    hour = moment.hour % 12 or 12
    half = "AM" if moment.hour < 12 else "PM"
    return f"{moment:%b} {moment.day}, {moment.year}, {hour}:{moment:%M} {half}"


def delete_with_confirmation(page: Page, trigger: Locator) -> None:
    """Press a Delete button, then confirm in the inline question that replaces it. (Were it
    a browser dialog, Playwright would dismiss it unanswered and nothing would be deleted.)"""
    trigger.click()
    question = page.locator(".confirm-delete")
    expect(question).to_be_visible()
    expect(question.locator(".confirm-no")).to_be_focused()  # the safe choice has the focus
    question.locator(".confirm-yes").click()


AXE = Path(__file__).resolve().parent.parent / "node_modules" / "axe-core" / "axe.min.js"


def axe_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it is now (the page's
    context must bypass the CSP, which keeps injected scripts out)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document)")
    return [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
