"""The ways to share an image: its direct link and the Markdown, HTML and BBCode that embed
it. One definition for the image page, the upload results and the lightbox (the image JSON
carries them as `codes`)."""

from __future__ import annotations

from tornado.escape import xhtml_escape

# key -> label, in the order pages show them (labels are translated where rendered).
SHARE_FORMATS = {
    "direct": "Direct link",
    "markdown": "Markdown",
    "html": "HTML",
    "bbcode": "BBCode",
}


def share_codes(name: str, url: str) -> dict[str, str]:
    """Each format's text for the image `name` at `url` (absolute, as the visitor sees it)."""
    return {
        "direct": url,
        # "]" would end Markdown's alt text early.
        "markdown": f"![{name.replace(']', chr(92) + ']')}]({url})",
        "html": f'<img src="{url}" alt="{xhtml_escape(name)}">',
        "bbcode": f"[img]{url}[/img]",
    }
