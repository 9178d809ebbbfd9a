"""A sender's view of its block of newsletter.yaml (`smtp:`, `sendgrid:`) and its secrets.

The block's types, ranges, defaults and unknown keys are checked by the one settings reader
(`composer.settings.OPTIONS`); this view hands the validated values to the sender, lets it
add the problems only it can see (a missing API key, a login without encryption), and
reports them all at once with `finish()`. The `default` a method is given applies when the
option is not written and the table has no default of its own (smtp.port depends on
smtp.security); the ranges live in the table, the arguments here are the sender's reminder.
"""

from __future__ import annotations

import os
from typing import Any

from composer.settings import Block, problems_error, read_block


class BackendOptions:
    def __init__(self, settings, block: str) -> None:
        self.settings, self.block = settings, block
        self.path = getattr(settings, "path", "newsletter.yaml")
        self.problems: list = []
        self.used: set[str] = set()
        override = (getattr(settings, "backend_options", None) or {}).get(block)
        if override is not None and not isinstance(override, Block):
            # Plain data (a test server's block): the same reader, without line numbers.
            self.values, problems = read_block(block, override, self.path)
            self.problems.extend(problems)
            return
        self.values = override if override is not None else settings.block(block)
        if not self.values.present:
            # Left out of the file but now in use: its required options are missing.
            self.problems.extend(read_block(block, None, self.path)[1])

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        value = self.values.get(key)
        return default if value is None or value == "" else value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str:
        return self._get(key, default or "")

    def integer(self, key: str, default: int | None, low: int, high: int) -> int | None:
        return self._get(key, default)

    def number(self, key: str, default: float, low: float, high: float) -> float:
        return self._get(key, default)

    def boolean(self, key: str, default: bool) -> bool:
        return self._get(key, default)

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        return self._get(key, default)

    def text_list(self, key: str, max_items: int, max_length: int = 255) -> tuple[str, ...]:
        return tuple(self._get(key, ()))

    def number_list(self, key: str, default: tuple[float, ...]) -> tuple[float, ...]:
        return tuple(self._get(key, default))

    def finish(self) -> None:
        """Raise SettingsError listing every problem of the block and the sender's own."""
        if self.problems:
            raise problems_error(self.path, self.problems)


def secret(name: str) -> str:
    """A secret from the environment (the CLI has already read .env into it)."""
    return os.environ.get(name, "").strip()
