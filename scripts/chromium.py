"""How we start Debian's Chromium under Playwright (tests and screenshots): its path, and
flags that keep it headless and off the network it cannot reach here."""

CHROMIUM = "/usr/lib/chromium/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
