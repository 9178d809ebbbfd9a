"""The rendered HTML's size against Gmail's clipping.

Gmail shows "[Message clipped]" and hides the rest of an HTML body over about 102 KB,
the unsubscribe footer with it. KB here is 1024 bytes of the UTF-8 HTML body, the way
Gmail is reported to count it.
"""

from __future__ import annotations

from composer.diagnostics import Diagnostic, error, warning

KB = 1024
CLIP_BYTES = 102 * KB  # over this: error
WARN_BYTES = 80 * KB  # over this: warning


def kb(size: int) -> str:
    return f"{size / KB:.1f} KB"


def size_diagnostics(issue, rendered) -> list[Diagnostic]:
    size = rendered.html_size
    if size > CLIP_BYTES:
        return [
            error(
                issue.position,
                "html-too-large",
                f"HTML body is {kb(size)} ({size} bytes); Gmail clips messages over 102 KB "
                f"({CLIP_BYTES} bytes), hiding the unsubscribe link: shorten the issue",
            )
        ]
    if size > WARN_BYTES:
        return [
            warning(
                issue.position,
                "html-large",
                f"HTML body is {kb(size)} ({size} bytes), near Gmail's 102 KB clip "
                f"({CLIP_BYTES} bytes) that hides the unsubscribe link; warned above 80 KB",
            )
        ]
    return []
