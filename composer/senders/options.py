"""Reading one backend's block of newsletter.yaml (`smtp:`, `sendgrid:`) and its secrets.

Every problem names the key and the file, and all of them are reported at once; a key the
backend does not know is an error (a feature it cannot do is never silently ignored).
"""

from __future__ import annotations

import os
from typing import Any

from composer.errors import SettingsError

_MISSING = object()


class BackendOptions:
    def __init__(self, settings, block: str) -> None:
        self.settings, self.block = settings, block
        self.path = getattr(settings, "path", "newsletter.yaml")
        self.problems: list[str] = []
        raw = (getattr(settings, "backend_options", None) or {}).get(block)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problems.append(f"{block}: expected a mapping of {block} settings")
            raw = {}
        self.data: dict[str, Any] = raw
        self.used: set[str] = set()

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        value = self.data.get(key)
        return default if value is None or value == "" else value

    def _bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.block}.{key}: {message}")

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            if required:
                self._bad(key, f"missing; add it to the {self.block}: block of {self.path}")
            return default or ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            self._bad(key, f"expected text, got {type(value).__name__}")
            return default or ""
        return str(value).strip()

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self._bad(key, f"expected a whole number from {low} to {high}, got {value!r}")
            return default
        return value

    def number(self, key: str, default: float, low: float, high: float) -> float:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return default
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not (low <= value <= high)
        ):
            self._bad(key, f"expected a number from {low:g} to {high:g}, got {value!r}")
            return default
        return float(value)

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self._bad(key, f"expected true or false, got {value!r}")
            return default
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, default)
        if value not in choices:
            self._bad(key, f"{value!r} is not one of: {', '.join(choices)}")
            return default
        return value

    def text_list(self, key: str, max_items: int, max_length: int = 255) -> tuple[str, ...]:
        value = self._get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= max_length for v in value
        ):
            self._bad(key, f"expected a list of texts (at most {max_length} characters each)")
            return ()
        if len(value) > max_items:
            self._bad(key, f"at most {max_items} allowed, got {len(value)}")
        return tuple(value)

    def number_list(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        value = self._get(key, _MISSING)
        if value is _MISSING:
            return default
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 86400
            for v in value
        ):
            self._bad(key, "expected a list of seconds, e.g. [10, 60, 300]")
            return default
        return tuple(float(v) for v in value)

    def finish(self) -> None:
        """Raise SettingsError with every problem, unknown keys included."""
        for key in sorted(set(self.data) - self.used, key=str):
            known = ", ".join(sorted(self.used))
            self._bad(str(key), f"unknown key for the {self.block} backend (known: {known})")
        if self.problems:
            n = len(self.problems)
            raise SettingsError(
                f"{self.path}: {n} bad setting{'s' if n > 1 else ''}:\n"
                + "\n".join(f"  {p}" for p in self.problems)
            )


def secret(name: str) -> str:
    """A secret from the environment (the CLI has already read .env into it)."""
    return os.environ.get(name, "").strip()
