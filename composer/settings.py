"""newsletter.yaml: the newsletter's settings, read once and validated with line numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import SettingsError

DEFAULT_PATH = Path("newsletter.yaml")
BACKENDS = ("outbox", "smtp", "sendgrid")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")


@dataclass(frozen=True)
class Settings:
    name: str
    publisher_name: str
    publisher_url: str
    sender_name: str
    sender_address: str
    reply_to: str
    postal_address: str
    archive_base_url: str
    subscribe_url: str
    issues_dir: Path
    subscribers_database: Path
    default_list: str
    backend: str
    outbox_dir: Path
    test_recipients: tuple[str, ...] = ()
    # Backend-specific blocks (smtp:, sendgrid:) are kept raw; each sender validates its own.
    backend_options: dict[str, Any] = field(default_factory=dict, compare=False)
    path: Path = DEFAULT_PATH
    root: Path = Path(".")

    @property
    def sender_domain(self) -> str:
        """The sender's domain: Message-IDs and List-Ids are minted on it."""
        return self.sender_address.rsplit("@", 1)[-1].lower()

    def issue_url(self, month: str) -> str:
        """Where the archive publishes an issue: the email's "View in browser" link."""
        year, mon = month.split("-")
        return f"{self.archive_base_url.rstrip('/')}/{year}/{mon}/"


def load_settings(path: Path | str = DEFAULT_PATH) -> Settings:
    """Read and validate newsletter.yaml; every problem names the key and the file."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: settings file not found; run commands from the newsletter's folder "
            "or pass --config PATH"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SettingsError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise SettingsError(f"{path}: expected a mapping of settings at the top level")

    problems: list[str] = []
    reader = _Reader(data, path, problems)
    root = path.resolve().parent
    settings = Settings(
        name=reader.text("name"),
        publisher_name=reader.text("publisher.name"),
        publisher_url=reader.url("publisher.url"),
        sender_name=reader.text("sender.name"),
        sender_address=reader.email("sender.address"),
        reply_to=reader.email("reply_to", required=False) or reader.get("sender.address") or "",
        postal_address=reader.text("postal_address"),
        archive_base_url=reader.url("archive.base_url"),
        subscribe_url=reader.url("archive.subscribe_url", required=False)
        or reader.get("archive.base_url")
        or "",
        issues_dir=root / reader.text("issues_dir", default="issues"),
        subscribers_database=root
        / reader.text("subscribers.database", default="subscribers/subscribers.db"),
        default_list=reader.text("subscribers.default_list", default="zeitgeist"),
        backend=reader.choice("delivery.backend", BACKENDS, default="outbox"),
        outbox_dir=root / reader.text("delivery.outbox_dir", default="outbox"),
        test_recipients=reader.email_list("test_recipients"),
        backend_options={k: data.get(k) for k in ("smtp", "sendgrid") if k in data},
        path=path,
        root=root,
    )
    if problems:
        raise SettingsError(
            f"{path}: {len(problems)} bad setting{'s' if len(problems) > 1 else ''}:\n"
            + "\n".join(f"  {p}" for p in problems)
        )
    return settings


class _Reader:
    """Looks up dotted keys, collecting every problem instead of stopping at the first."""

    def __init__(self, data: dict, path: Path, problems: list[str]) -> None:
        self.data, self.path, self.problems = data, path, problems

    def get(self, key: str) -> Any:
        node: Any = self.data
        for part in key.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        return node

    def text(self, key: str, default: str | None = None, required: bool = True) -> str:
        value = self.get(key)
        if value is None or value == "":
            if default is not None:
                return default
            if required:
                self.problems.append(f"{key}: missing; add it to {self.path}")
            return ""
        if not isinstance(value, (str, int, float)):
            self.problems.append(f"{key}: expected text, got {type(value).__name__}")
            return ""
        return str(value).strip()

    def url(self, key: str, required: bool = True) -> str:
        value = self.text(key, required=required)
        if value and not _URL.match(value):
            self.problems.append(f"{key}: {value!r} is not an absolute http(s) URL")
        return value

    def email(self, key: str, required: bool = True) -> str:
        value = self.text(key, required=required)
        if value and not _EMAIL.match(value):
            self.problems.append(f"{key}: {value!r} is not an email address")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.text(key, default=default)
        if value not in choices:
            self.problems.append(f"{key}: {value!r} is not one of: {', '.join(choices)}")
        return value

    def email_list(self, key: str) -> tuple[str, ...]:
        value = self.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problems.append(f"{key}: expected a list of email addresses")
            return ()
        for item in value:
            if not isinstance(item, str) or not _EMAIL.match(item):
                self.problems.append(f"{key}: {item!r} is not an email address")
        return tuple(str(v) for v in value)
