"""Characters that have no place in an issue's text: control characters pasted from a
terminal (ESC of a colour code, BEL) and Unicode noncharacters (U+FFFE, U+FDD0...).

They are invisible in an editor, cannot be carried by the email's HTML (the MJML renderer
rejects them) and mean nothing to a reader. Readers drop them, so rendering never sees
one; `check` reports each line that holds one, and `check --fix` removes them.
Tab and the line ends (LF, and CR right before LF) are text, not control characters.
"""

from __future__ import annotations

import re

# C0 controls but tab and LF; a CR not followed by LF; DEL and C1; the noncharacters.
_NONCHARACTERS = "".join(
    chr(plane * 0x10000 + low) for plane in range(17) for low in (0xFFFE, 0xFFFF)
)
# One character class scans fast; a CR is a control character only when no LF follows,
# which the slower pattern checks, and only in text that holds a CR at all.
_CLASS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufdd0-\ufdef" + _NONCHARACTERS + "]")
_WITH_CR = re.compile(_CLASS.pattern + "|\r(?!\n)")


def _pattern(text: str) -> re.Pattern:
    return _WITH_CR if "\r" in text else _CLASS


_NAMES = {
    0x00: "NUL",
    0x07: "BEL",
    0x08: "backspace",
    0x0B: "vertical tab",
    0x0C: "form feed",
    0x0D: "carriage return",
    0x1B: "ESC",
    0x7F: "DEL",
    0x85: "NEL",
}


def has_bad(text: str) -> bool:
    return _pattern(text).search(text) is not None


def remove(text: str) -> str:
    """`text` without any of them; every other character (and every line) kept."""
    pattern = _pattern(text)
    return pattern.sub("", text) if pattern.search(text) else text


def count(text: str) -> int:
    return sum(1 for _ in _pattern(text).finditer(text))


def find(text: str) -> list[tuple[int, int, str]]:
    """(line, column, description) of the first such character on each line that has one;
    lines counted at LF, columns in characters, both from 1."""
    found: list[tuple[int, int, str]] = []
    last_line = 0
    for match in _pattern(text).finditer(text):
        start = match.start()
        line = text.count("\n", 0, start) + 1
        if line == last_line:
            continue
        last_line = line
        column = start - (text.rfind("\n", 0, start) + 1) + 1
        found.append((line, column, describe(match.group())))
    return found


def describe(char: str) -> str:
    code = ord(char)
    kind = "noncharacter" if code >= 0xFDD0 else "control character"
    name = _NAMES.get(code)
    return f"{kind} U+{code:04X}" + (f" ({name})" if name else "")
