"""newsletter.yaml: the newsletter's settings, read by ONE reader from one schema table.

Every block and option is one line of `OPTIONS` below: its dotted key, its type, its default
and a line of help. The reader walks PyYAML's node tree (as `readers/yaml.py` does), so each
problem is reported at its line, `newsletter.yaml:LINE: block.key: message`; it collects every
problem (unknown keys with a did-you-mean, duplicate keys, wrong types, values out of range)
and then fails once, with the count.

Adding a block (say `service:`) is one line per option:

    Option("service.port", Int(1, 65535), 8025, "Port `newsletter serve` listens on."),

and the block is read as `settings.block("service").port` (or `settings.service.port`).
A block whose options are all optional may be left out of the file; then its defaults apply.
Blocks listed in `OPTIONAL_BLOCKS` may be left out even when they have required options:
those are required only once the block is present or used (the smtp: block, for example,
is checked by the SMTP sender when delivery.backend is smtp).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from composer.errors import SettingsError

DEFAULT_PATH = Path("newsletter.yaml")
BACKENDS = ("outbox", "smtp", "sendgrid")
DATABASE_VARIABLE = "NEWSLETTER_DATABASE"

# Limits far above any real newsletter.yaml (a few dozen lines): a crafted file (billion
# laughs through aliases, deep nesting, a device instead of a file) fails fast and small.
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 20_000
MAX_DEPTH = 32

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_OR_TAB = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# One bare addr-spec: no display name, no list, no quoting (a header value that cannot
# carry a second address or a header of its own).
_EMAIL = re.compile(r'^[^@\s,;<>()\[\]\\":]+@[^@\s,;<>()\[\]\\":]+\.[^@\s,;<>()\[\]\\":.]+$')
_URL = re.compile(r"^https?://[^\s/?#@]+(/\S*)?$")
_POSTGRES = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class Invalid(Exception):
    """A value does not fit its option's type; the message says what was expected."""


class SecretFound(Invalid):
    """A value that looks like a secret: always reported as such, never shown."""


def _shown(value: Any) -> str:
    """How a wrong value is named in a message: short, one line, never a whole mapping."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing"
    text = repr(mask_secrets(value) if isinstance(value, str) else value)
    return text if len(text) <= 80 else text[:77] + "...'"


# What a secret pasted into newsletter.yaml (a committed file) looks like; named, never shown.
_SECRETS = (
    (re.compile(r"SG\.[\w-]{10,}\.[\w-]{10,}"), "a SendGrid API key (SENDGRID_API_KEY)"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (re.compile(r"://[^/@\s:]*:[^@/\s]+@"), "a URL with a password"),
)


def _secret_in(text: str) -> str | None:
    return next((what for pattern, what in _SECRETS if pattern.search(text)), None)


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (true/false)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    return type(value).__name__


# --- option types: each turns a YAML value into a Python value or raises Invalid ----------


class OptionType:
    """The type of one option (mkdocs' config_options, in small)."""

    lone_item_ok = False  # lists only: a single value stands for a one-item list

    def read(self, value: Any) -> Any:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(OptionType):
    max_length: int = 500

    def read(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise Invalid(f"expected text, got {_type_name(value)}")
        text = str(value).strip()
        secret = _secret_in(text)
        if secret:
            raise SecretFound(
                f"looks like {secret}; secrets never go in newsletter.yaml: put it in the "
                "environment or .env (see .env.example)"
            )
        if _CONTROL.search(text):
            raise Invalid(f"{_shown(text)} contains a control character (a line break?)")
        if len(text) > self.max_length:
            raise Invalid(f"at most {self.max_length} characters, got {len(text)}")
        return text


@dataclass(frozen=True)
class Email(OptionType):
    """Exactly one bare address (`reply_to: "a,b@covar.com"` is two, and refused)."""

    def read(self, value: Any) -> str:
        text = Text(254).read(value)
        if _EMAIL.match(text):
            return text
        if re.search(r"[,;]", text) or text.count("@") > 1:
            raise Invalid(f"{_shown(text)}: one email address only, not a list")
        if "<" in text or '"' in text:
            raise Invalid(f"{_shown(text)}: write the bare address (name@example.com), no name")
        raise Invalid(f"{_shown(text)} is not an email address")


@dataclass(frozen=True)
class Url(OptionType):
    """An absolute http(s) URL (the archive, the publisher...)."""

    def read(self, value: Any) -> str:
        text = Text(2000).read(value)
        if not _URL.match(text):
            raise Invalid(f"{_shown(text)} is not an absolute http(s) URL")
        return text


@dataclass(frozen=True)
class FilePath(OptionType):
    """A file or folder, relative to newsletter.yaml's folder (kept as written here)."""

    def read(self, value: Any) -> str:
        text = Text(1000).read(value)
        if not text:
            raise Invalid("expected a path, got an empty text")
        return text


@dataclass(frozen=True)
class Int(OptionType):
    low: int
    high: int

    def read(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid(
                f"expected a whole number from {self.low} to {self.high}, got {_shown(value)}"
            )
        if not self.low <= value <= self.high:
            raise Invalid(f"expected a whole number from {self.low} to {self.high}, got {value!r}")
        return value


@dataclass(frozen=True)
class Number(OptionType):
    low: float
    high: float

    def read(self, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not self.low <= value <= self.high
        ):
            raise Invalid(
                f"expected a number from {self.low:g} to {self.high:g}, got {_shown(value)}"
            )
        return float(value)


@dataclass(frozen=True)
class Bool(OptionType):
    def read(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid(f"expected true or false, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Choice(OptionType):
    choices: tuple[str, ...]

    def read(self, value: Any) -> str:
        text = Text(100).read(value)
        if text not in self.choices:
            raise Invalid(f"{_shown(text)} is not one of: {', '.join(self.choices)}")
        return text


@dataclass(frozen=True)
class ListOf(OptionType):
    """A list of `item` values; `message` replaces the item's own when set."""

    item: OptionType
    max_items: int = 100
    lone_item_ok: bool = False
    message: str = ""

    def read(self, value: Any) -> tuple:  # items are read one by one by the reader
        raise NotImplementedError


@dataclass(frozen=True)
class MappingOf(OptionType):
    """A mapping whose keys the user chooses (words of a language...), values of one type."""

    value: OptionType
    max_items: int = 200

    def read(self, value: Any) -> dict:  # read entry by entry by the reader
        raise NotImplementedError


@dataclass(frozen=True)
class Checked(OptionType):
    """A text that `problem` checks ("" when it is fine, else what is wrong), then
    `normalize` tidies: for values whose rules live with what uses them (the email's
    language and brand colour: composer/render/words.py and theme.py)."""

    problem: Callable[[str], str]
    normalize: Callable[[str], str] = str

    def read(self, value: Any) -> str:
        text = Text(2000).read(value)
        problem = self.problem(text)
        if problem:
            raise Invalid(problem)
        return self.normalize(text)


# The email's rules, imported when a value is checked (commands that never read these
# options do not import the renderer).
def _language_problem(text: str) -> str:
    from composer.render.words import language_problem

    return language_problem(text)


def _colour_problem(text: str) -> str:
    from composer.render.theme import brand_colour_problem

    return brand_colour_problem(text)


def _colour(text: str) -> str:
    from composer.render.theme import normalize_colour

    return normalize_colour(text)


def _logo_url_problem(text: str) -> str:
    from composer.render.theme import logo_url_problem

    return logo_url_problem(text)


@dataclass(frozen=True)
class Database(OptionType):
    """An SQLite file path, or a postgresql:// URL. The file must stay free of secrets:
    a URL with a password belongs in NEWSLETTER_DATABASE (environment or .env)."""

    password_allowed: bool = False

    def read(self, value: Any) -> DatabaseLocation:
        text = str(value).strip() if isinstance(value, str) else Text(2000).read(value)
        shown = mask_secrets(text)
        if _CONTROL_OR_TAB.search(text):
            raise Invalid(f"{_shown(shown)} contains a control character (a line break?)")
        if not text:
            raise Invalid("expected a file path or a postgresql:// URL, got an empty text")
        if _POSTGRES.match(text):
            if _has_password(text) and not self.password_allowed:
                raise Invalid(
                    f"{_shown(shown)}: a password does not belong in newsletter.yaml; put the "
                    f"URL in {DATABASE_VARIABLE} (environment or .env, see .env.example)"
                )
            if len(text) > 2000:
                raise Invalid(f"at most 2000 characters, got {len(text)}")
            return DatabaseLocation("postgresql", None, text)
        if _SCHEME.match(text):
            raise Invalid(f"{_shown(shown)} is neither a file path nor a postgresql:// URL")
        if len(text) > 1000:
            raise Invalid(f"at most 1000 characters, got {len(text)}")
        return DatabaseLocation("sqlite", Path(text), "")


def _has_password(url: str) -> bool:
    userinfo = url.split("://", 1)[1].split("/", 1)[0].rpartition("@")
    return (userinfo[1] == "@" and ":" in userinfo[0]) or bool(
        re.search(r"[?&]password=", url, re.IGNORECASE)
    )


def mask_secrets(text: str) -> str:
    """`text` with any password of a URL in it replaced by ***."""
    text = re.sub(r"(://[^/@:\s]*:)[^@/\s]*@", r"\1***@", text)
    return re.sub(r"([?&]password=)[^&\s]*", r"\1***", text, flags=re.IGNORECASE)


@dataclass(frozen=True)
class DatabaseLocation:
    """Where the subscribers live. `url` may hold a password: never print it, print `shown`."""

    kind: str  # "sqlite" | "postgresql"
    path: Path | None  # the SQLite file (relative to newsletter.yaml's folder once loaded)
    url: str = field(default="", repr=False)

    @property
    def shown(self) -> str:
        return str(self.path) if self.kind == "sqlite" else mask_secrets(self.url)

    def __str__(self) -> str:
        return self.shown


# --- the schema table ----------------------------------------------------------------------

REQUIRED = object()  # the default of an option that must be written


@dataclass(frozen=True)
class Option:
    key: str  # dotted: "delivery.backend"
    type: OptionType
    default: Any = None  # REQUIRED: must be set; None: absent means "not set"
    help: str = ""

    @property
    def block(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


_DEFAULT_DATABASE = DatabaseLocation("sqlite", Path("subscribers/subscribers.db"))
_SECONDS = ListOf(Number(0, 86400), 20, message="expected a list of seconds, e.g. [10, 60, 300]")

# fmt: off
_TEXTS = ListOf(Text(255), 9, lone_item_ok=True,
                message="expected a list of texts (at most 255 characters each)")
OPTIONS: tuple[Option, ...] = (
    # Option(dotted key, type, default (REQUIRED: must be written), help)
    Option("name", Text(200), REQUIRED, "The newsletter's name (From name, titles)."),
    Option("publisher.name", Text(200), REQUIRED, "Who publishes it."),
    Option("publisher.url", Url(), REQUIRED, "The publisher's site."),
    Option("sender.name", Text(200), REQUIRED, "The From name."),
    Option("sender.address", Email(), REQUIRED, "The From address (one address)."),
    Option("reply_to", Email(), None, "Where replies go (one address); default sender.address."),
    Option("postal_address", Text(500), REQUIRED, "The postal address in every footer."),
    Option("archive.base_url", Url(), REQUIRED, "Where the web archive is published."),
    Option("archive.subscribe_url", Url(), None,
           "The sign-up page; default the list service's /subscribe/ (service.base_url)."),
    Option("issues_dir", FilePath(), "issues", "The folder of issue files."),
    Option("subscribers.database", Database(), _DEFAULT_DATABASE,
           "SQLite file or postgresql:// URL without password; NEWSLETTER_DATABASE wins."),
    Option("subscribers.default_list", Text(64), "zeitgeist", "The list used without --list."),
    Option("delivery.backend", Choice(BACKENDS), "outbox", "outbox | smtp | sendgrid"),
    Option("delivery.outbox_dir", FilePath(), "outbox", "Where the outbox writes .eml files."),
    Option("test_recipients", ListOf(Email(), 50), (), "Who send-test sends to by default."),
    Option("language", Checked(_language_problem), "en",
           "The email's lang and fixed words (BCP 47: en, de, fr-CA; composer/render/words.py)."),
    Option("brand.logo_url", Checked(_logo_url_problem), None, "https:// URL of a logo."),
    Option("brand.logo_alt", Text(200), None, "The logo's alt text; default: the name."),
    # 16 to theme.LOGO_WIDTH_RANGE's 544: the card's text column
    Option("brand.logo_width", Int(16, 544), 120, "The logo's width in pixels."),
    Option("brand.color", Checked(_colour_problem, _colour), None,
           "#rrggbb for the title, headings and top bar; 3:1 with the card in both schemes."),
    # smtp: used when delivery.backend is smtp (login: SMTP_USERNAME / SMTP_PASSWORD)
    Option("smtp.host", Text(255), REQUIRED, "The relay's host name."),
    Option("smtp.security", Choice(("starttls", "tls", "none")), "starttls",
           "starttls | tls (implicit TLS) | none"),
    Option("smtp.port", Int(1, 65535), None, "Default 587 (starttls), 465 (tls), 25 (none)."),
    Option("smtp.connections", Int(1, 64), 4, "Parallel connections to the relay."),
    Option("smtp.timeout", Number(1, 600), 30.0, "Seconds to wait for the relay."),
    Option("smtp.ca_file", FilePath(), None, "A CA bundle to trust (a private relay)."),
    Option("smtp.local_hostname", Text(255), None, "The name sent in EHLO."),
    Option("smtp.envelope_from", Email(), None, "The envelope sender; default sender.address."),
    Option("smtp.retry_delays", _SECONDS, None, "Seconds between retries of a temporary failure."),
    Option("smtp.verp", Bool(), False,
           "Envelope sender bounces+ID-MAC@domain per recipient: a bounce names its subscriber."),
    # sendgrid: used when delivery.backend is sendgrid (key: SENDGRID_API_KEY)
    Option("sendgrid.unsubscribe_group", Int(1, 2**31 - 1), None, "The unsubscribe group id."),
    Option("sendgrid.categories", _TEXTS, (), "Categories for SendGrid's statistics."),
    Option("sendgrid.sandbox", Bool(), False, "true: SendGrid checks but delivers nothing."),
    Option("sendgrid.batch_size", Int(1, 1000), None, "Recipients per request (default 1000)."),
    Option("sendgrid.timeout", Number(1, 600), 30.0, "Seconds to wait for the API."),
    Option("sendgrid.max_attempts", Int(1, 20), 6, "Tries of one request (429, 5xx, network)."),
    Option("sendgrid.max_rate_limit_wait", Number(0, 3600), 300.0, "Longest 429 wait, seconds."),
    Option("sendgrid.base_url", Url(), None, "The API's address (a test server)."),
    Option("sendgrid.webhook_public_key", Text(400), None,
           "The Event Webhook's verification key (base64, from SendGrid's Mail Settings)."),
    # preflight: what `newsletter preflight` and the start of `dispatch` check
    Option("preflight.dkim_selectors", ListOf(Text(63), 20, lone_item_ok=True), (),
           "DKIM selectors under the sender domain (default for SendGrid: s1, s2)."),
    Option("preflight.dns.nameserver", Text(255), None, "The DNS server's IP (default: system's)."),
    Option("preflight.dns.port", Int(1, 65535), 53, "Its port."),
    Option("preflight.dns.timeout", Number(0.1, 60), 3.0, "Seconds to wait for a DNS answer."),
    Option("preflight.service_url", Url(), None,
           "Where the probe reaches the list service, if not at its public address."),
    Option("preflight.http_timeout", Number(0.1, 120), 5.0, "Seconds to wait for the service."),
    Option("preflight.return_path_domain", Text(253), None,
           "Where bounces go, if not the sender's (or smtp.envelope_from's) domain."),
    Option("preflight.bounced_warn", Number(0, 100), 2.0, "Percent of bounced members: warn."),
    Option("preflight.bounced_fail", Number(0, 100), 5.0, "Percent of bounced members: fail."),
    Option("preflight.complained_warn", Number(0, 100), 0.1, "Percent who complained: warn."),
    Option("preflight.complained_fail", Number(0, 100), 0.3, "Percent who complained: fail."),
    Option("preflight.sync_max_age_hours", Number(0, 8760), 48.0,
           "A suppression or bounce sync older than this is a warning."),
    # service: the list service, `newsletter serve` (composer/service; its defaults live in
    # composer/service/config.py ServiceSettings, so None here means "the default there")
    Option("service.base_url", Url(), None,
           "Where the reverse proxy serves `newsletter serve`; default archive.base_url."),
    Option("service.host", Text(255), None, "Address to listen on; default 127.0.0.1."),
    Option("service.port", Int(1, 65535), None, "Port to listen on; default 8080."),
    Option("service.threads", Int(1, 64), None, "Request threads; default 16."),
    Option("service.proxy_hops", Int(0, 5), None,
           "Reverse proxies in front (X-Forwarded-For hops to trust); default 1."),
    Option("service.consent_text", Text(1000), None,
           "The sign-up form's consent sentence ({name}: the newsletter's name)."),
    Option("service.consent_version", Text(64), None,
           "Change it with consent_text: kept with every consent; default 1."),
    Option("service.pending_expiry_days", Number(0.01, 365), None,
           "Unconfirmed sign-ups are removed after this; default 7."),
    Option("service.record_ip", Bool(), None, "Keep the IP address with consent; default false."),
    Option("service.record_user_agent", Bool(), None,
           "Keep the browser's user agent with consent; default false."),
    Option("service.subscribe_per_ip_per_hour", Int(0, 1_000_000), None,
           "Sign-ups per IP address per hour (0: no limit); default 10."),
    Option("service.subscribe_per_address_per_hour", Int(0, 1000), None,
           "Sign-ups per email address per hour (0: no limit); default 3."),
    Option("service.sync_suppressions_every_minutes", Number(0, 10080), None,
           "SendGrid suppression sync in `serve` (sendgrid backend; 0: never); default 60."),
    Option("service.inbound_every_minutes", Number(0, 10080), None,
           "`inbound` in `serve` (with an inbound: block; 0: never); default 15."),
    Option("service.stale_after_hours", Number(0, 8760), None,
           "`dispatch` refuses when a configured sync is older (--yes-stale); default 24."),
    # inbound: the return-path mailbox `newsletter inbound` reads (composer/inbound)
    Option("inbound.maildir", FilePath(), None, "A Maildir the return path is delivered to."),
    Option("inbound.mbox", FilePath(), None, "An mbox file the return path is delivered to."),
    Option("inbound.imap.host", Text(255), None,
           "IMAP server (TLS) of the return-path mailbox; login IMAP_USERNAME, IMAP_PASSWORD."),
    Option("inbound.imap.port", Int(1, 65535), 993, "Its port (implicit TLS)."),
    Option("inbound.imap.folder", Text(255), "INBOX", "The folder bounces arrive in."),
    Option("inbound.imap.ca_file", FilePath(), None, "A CA bundle to trust (a private server)."),
    Option("inbound.imap.timeout", Number(1, 600), 30.0, "Seconds to wait for the server."),
    Option("inbound.processed_folder", Text(255), "Processed",
           "Where handled messages are moved (unrecognized ones stay where they are)."),
    Option("inbound.soft_bounce_limit", Int(1, 100), 3,
           "Mailings in a row that soft-bounce before a subscriber counts as bounced."),
)
# fmt: on

# Blocks that may be absent although they hold required options: their required options
# are checked when the block is written or used (its sender asks for it).
OPTIONAL_BLOCKS = frozenset({"smtp", "sendgrid"})


def _blocks(options: tuple[Option, ...]) -> dict[str, list[Option]]:
    """Block name -> its options, and each parent block -> its sub-blocks (as options)."""
    blocks: dict[str, list[Option]] = {"": []}
    for option in options:
        blocks.setdefault(option.block, []).append(option)
        parts = option.block.split(".") if option.block else []
        for i in range(len(parts)):
            blocks.setdefault(".".join(parts[:i]), [])
    return blocks


# --- the values read ----------------------------------------------------------------------


class Block(Mapping):
    """The validated values of one block: `block.port`, `block["port"]`, `block.line("port")`.

    Every option of the table is there (its default when not written); `written` tells
    which ones the file sets.
    """

    def __init__(
        self,
        name: str,
        values: dict[str, Any],
        lines: dict[str, int] | None = None,
        present: bool = False,
        line: int | None = None,
    ) -> None:
        self._name, self._values, self._lines = name, dict(values), dict(lines or {})
        self.present, self.block_line = present, line
        self.written = frozenset(self._lines)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"{self._name or 'settings'} has no option {name!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def line(self, key: str) -> int | None:
        """The line of newsletter.yaml where `key` is written (None: not written)."""
        return self._lines.get(key)

    def __repr__(self) -> str:
        return f"Block({self._name!r}, {sorted(self.written)})"


@dataclass(frozen=True)
class Problem:
    key: str
    message: str
    line: int | None = None
    file: str | None = None  # None: not about a line of the file (an environment variable)

    def __str__(self) -> str:
        if self.file is None:
            return f"{self.key}: {self.message}"
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}"


def problems_error(path: Path | str, problems: list[Problem] | list[str]) -> SettingsError:
    """One SettingsError listing every problem, with the count."""
    n = len(problems)
    return SettingsError(
        f"{path}: {n} bad setting{'s' if n != 1 else ''}:\n" + "\n".join(f"  {p}" for p in problems)
    )


# --- the reader ----------------------------------------------------------------------------


class _Tree:
    """A YAML value with its line: scalars as Python values, lists and mappings of _Tree.

    Built from PyYAML nodes (lines known) or from plain Python data (tests, overrides).
    """

    __slots__ = ("key_lines", "line", "value")

    def __init__(self, value: Any, line: int | None, key_lines: dict[str, int] | None = None):
        self.value, self.line, self.key_lines = value, line, key_lines or {}


_UNREADABLE = object()  # a value whose problem is already reported


class _TooBig(Exception):
    pass


class _NodeConverter:
    """PyYAML node tree -> _Tree, with a node budget (aliases make a small file a huge
    tree) and a depth limit; duplicate and non-text keys are problems at their line."""

    def __init__(self, file: str, problems: list[Problem]) -> None:
        import yaml

        self.yaml, self.file, self.problems = yaml, file, problems
        self.constructor = yaml.constructor.SafeConstructor()
        self.budget = MAX_NODES

    def convert(self, node, where: str, depth: int = 0) -> _Tree:
        yaml = self.yaml
        self.budget -= 1
        if self.budget < 0 or depth > MAX_DEPTH:
            raise _TooBig(node.start_mark.line + 1)
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            out: dict[str, _Tree] = {}
            key_lines: dict[str, int] = {}
            for key_node, value_node in node.value:
                key_line = key_node.start_mark.line + 1
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                    message = (
                        "merge keys (<<) are not supported; write the keys out"
                        if isinstance(key_node, yaml.ScalarNode)
                        else "keys must be plain text"
                    )
                    self.problems.append(Problem(where or "settings", message, key_line, self.file))
                    continue
                key = str(key_node.value)
                dotted = f"{where}.{key}" if where else key
                if key in out:
                    self.problems.append(
                        Problem(
                            dotted,
                            f"written twice (also at line {key_lines[key]}); keep one",
                            key_line,
                            self.file,
                        )
                    )
                    continue
                key_lines[key] = key_line
                out[key] = self.convert(value_node, dotted, depth + 1)
            return _Tree(out, line, key_lines)
        if isinstance(node, yaml.SequenceNode):
            return _Tree([self.convert(item, where, depth + 1) for item in node.value], line)
        try:
            value = self.constructor.construct_object(node)
        except yaml.YAMLError:
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            self.problems.append(
                Problem(where or "settings", f"unsupported YAML tag {tag}", line, self.file)
            )
            value = _UNREADABLE
        return _Tree(value, line)


def _plain_tree(value: Any) -> _Tree:
    if isinstance(value, dict):
        return _Tree({str(k): _plain_tree(v) for k, v in value.items()}, None)
    if isinstance(value, (list, tuple)):
        return _Tree([_plain_tree(v) for v in value], None)
    return _Tree(value, None)


class _Reader:
    """Reads a _Tree against the schema table, collecting every problem."""

    def __init__(self, options: tuple[Option, ...], file: str | None, path: Path | str) -> None:
        self.blocks = _blocks(options)
        self.file, self.path = file, path
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str, line: int | None) -> None:
        self.problems.append(Problem(key, message, line, self.file))

    def read_block(
        self, name: str, tree: _Tree | None, key_line: int | None, used: bool = False
    ) -> dict[str, Block]:
        """Read block `name` (and its sub-blocks); returns every block read, by name."""
        present = tree is not None and tree.value is not None
        if present and not isinstance(tree.value, dict):
            self.problem(
                name, f"expected a mapping of {name} settings, got {_shown(tree.value)}", key_line
            )
            present = False
            wrong = True  # reported once: its options are not "missing" on top
        else:
            wrong = tree is not None and tree.value is _UNREADABLE
        entries: dict[str, _Tree] = tree.value if present else {}
        key_lines = tree.key_lines if present else {}
        must = not wrong and (
            present
            or used
            or (name not in OPTIONAL_BLOCKS and name.split(".")[0] not in OPTIONAL_BLOCKS)
        )
        values: dict[str, Any] = {}
        lines: dict[str, int] = {}
        out: dict[str, Block] = {}
        known: list[str] = []
        for option in self.blocks.get(name, []):
            known.append(option.name)
            sub = entries.get(option.name)
            line = key_lines.get(option.name)
            if sub is not None and sub.value is _UNREADABLE:  # already reported
                values[option.name] = None if option.default is REQUIRED else option.default
                continue
            if sub is None or sub.value is None or sub.value == "":
                if option.required and must:
                    place = (
                        f"the {name}: block of {self.path}"
                        if name in OPTIONAL_BLOCKS
                        else str(self.path)
                    )
                    self.problem(option.key, f"missing; add it to {place}", line or key_line)
                default = None if option.default is REQUIRED else option.default
                values[option.name] = default
                continue
            try:
                values[option.name] = self.read_value(option.key, option.type, sub)
                lines[option.name] = line or sub.line
            except Invalid as bad:
                self.problem(
                    option.key,
                    str(bad),
                    sub.line if not isinstance(sub.value, (dict, list)) else line,
                )
                values[option.name] = None if option.default is REQUIRED else option.default
        prefix = f"{name}." if name else ""
        for child in sorted({b for b in self.blocks if b and b.rpartition(".")[0] == name}):
            short = child.rpartition(".")[2]
            known.append(short)
            out.update(self.read_block(child, entries.get(short), key_lines.get(short)))
            values.setdefault(short, out[child])
        for key in entries:
            if key not in known:
                self.problem(f"{prefix}{key}", _unknown(key, known), key_lines.get(key))
        out[name] = Block(name, values, lines, present, key_line)
        return out

    def read_value(self, key: str, kind: OptionType, tree: _Tree) -> Any:
        if isinstance(kind, ListOf):
            items = tree.value
            if kind.lone_item_ok and not isinstance(items, (list, dict)):
                items = [tree]
            if not isinstance(items, list):
                raise Invalid(kind.message or f"expected a list, got {_shown(items)}")
            if len(items) > kind.max_items:
                raise Invalid(f"at most {kind.max_items} allowed, got {len(items)}")
            out = []
            for item in items:
                if item.value is _UNREADABLE:
                    continue
                try:
                    if isinstance(item.value, (list, dict)):
                        raise Invalid(f"expected one value per item, got {_shown(item.value)}")
                    out.append(kind.item.read(item.value))
                except SecretFound as bad:
                    self.problem(key, str(bad), item.line)
                except Invalid as bad:
                    if kind.message:
                        raise Invalid(kind.message) from None
                    self.problem(key, str(bad), item.line)
            return tuple(out)
        if isinstance(kind, MappingOf):
            if not isinstance(tree.value, dict):
                raise Invalid(f"expected a mapping, got {_shown(tree.value)}")
            if len(tree.value) > kind.max_items:
                raise Invalid(f"at most {kind.max_items} entries, got {len(tree.value)}")
            read = {}
            for name, sub in tree.value.items():
                if sub.value is _UNREADABLE:
                    continue
                try:
                    if isinstance(sub.value, (list, dict)):
                        raise Invalid(f"expected one value, got {_shown(sub.value)}")
                    read[name] = kind.value.read(sub.value)
                except Invalid as bad:
                    self.problem(f"{key}.{name}", str(bad), tree.key_lines.get(name))
            return read
        return kind.read(tree.value)


def _unknown(key: str, known: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    hint = f'did you mean "{close[0]}"?' if close else f"known keys: {', '.join(sorted(known))}"
    return f"unknown key; {hint}"


def read_block(
    name: str, raw: Any, path: Path | str = DEFAULT_PATH, options: tuple[Option, ...] = OPTIONS
) -> tuple[Block, list[Problem]]:
    """Validate one block given as plain data (an override such as a test server's smtp:
    block): the same reader, without line numbers. Required options are required."""
    reader = _Reader(options, None, path)
    tree = None if raw is None else _plain_tree(raw)
    blocks = reader.read_block(name, tree, None, used=True)
    return blocks[name], reader.problems


# --- Settings ------------------------------------------------------------------------------


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
    database: DatabaseLocation
    default_list: str
    backend: str
    outbox_dir: Path
    test_recipients: tuple[str, ...] = ()
    language: str = "en"  # the email's lang; its words: composer/render/words.py
    # Plain-data blocks that replace the file's (tests point a sender at a test server this
    # way); each is validated by the same reader when asked for (see block()).
    backend_options: dict[str, Any] = field(default_factory=dict, compare=False)
    path: Path = DEFAULT_PATH
    root: Path = Path(".")
    blocks: Mapping[str, Block] = field(default_factory=dict, compare=False, repr=False)

    @property
    def sender_domain(self) -> str:
        """The sender's domain: Message-IDs and List-Ids are minted on it."""
        return self.sender_address.rsplit("@", 1)[-1].lower()

    @property
    def subscribers_database(self) -> Path:
        """The SQLite file of the subscriber store."""
        if self.database.kind != "sqlite" or self.database.path is None:
            raise SettingsError(
                f"subscribers.database: {self.database.shown}: this version stores subscribers "
                "in SQLite only; set subscribers.database (or NEWSLETTER_DATABASE) to a file path"
            )
        return self.database.path

    def issue_url(self, month: str) -> str:
        """Where the archive publishes an issue: the email's "View in browser" link."""
        year, mon = month.split("-")
        return f"{self.archive_base_url.rstrip('/')}/{year}/{mon}/"

    def block(self, name: str) -> Block:
        """The validated values of block `name` (defaults when the file leaves it out).

        An override in backend_options is validated now; SettingsError lists its problems.
        """
        if name in self.backend_options and not isinstance(self.backend_options[name], Block):
            values, problems = read_block(name, self.backend_options[name], self.path)
            if problems:
                raise problems_error(self.path, problems)
            return values
        if name in self.backend_options:
            return self.backend_options[name]
        if name in self.blocks:
            return self.blocks[name]
        raise KeyError(f"no block {name!r} in the settings table")

    def __getattr__(self, name: str) -> Block:
        # Only reached for names that are not fields: `settings.smtp` is block("smtp").
        if name.startswith("_"):
            raise AttributeError(name)
        blocks = self.__dict__.get("blocks") or {}
        if name in blocks:
            return self.block(name)
        raise AttributeError(f"'Settings' object has no attribute {name!r}")


def load_settings(path: Path | str = DEFAULT_PATH) -> Settings:
    """Read and validate newsletter.yaml; every problem names its line and key."""
    path = Path(path)
    text = _read_text(path)
    import yaml

    try:
        root_node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SettingsError(
            f"{where}: not valid YAML: {getattr(exc, 'problem', None) or exc}"
        ) from None
    except RecursionError:
        raise SettingsError(f"{path}: nested too deeply (over {MAX_DEPTH} levels)") from None
    if root_node is None or not isinstance(root_node, yaml.MappingNode):
        raise SettingsError(f"{path}: expected a mapping of settings at the top level")

    problems: list[Problem] = []
    try:
        tree = _NodeConverter(str(path), problems).convert(root_node, "")
    except _TooBig as too_big:
        raise SettingsError(
            f"{path}:{too_big.args[0]}: too large: over {MAX_NODES} values or {MAX_DEPTH} "
            "levels (aliases that expand?)"
        ) from None
    reader = _Reader(OPTIONS, str(path), path)
    reader.problems = problems
    blocks = reader.read_block("", tree, None)
    database = _database_override(blocks["subscribers"], problems)
    if problems:
        problems.sort(key=lambda p: (p.file is None, p.line or 0))
        raise problems_error(path, problems)
    return _settings(blocks, database, path)


def _read_text(path: Path) -> str:
    """The file's text: a regular file, at most MAX_FILE_BYTES, UTF-8."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SettingsError(
            f"{path}: settings file not found; run commands from the newsletter's folder "
            "or pass --config PATH"
        ) from None
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc.strerror}") from None
    import stat

    if not stat.S_ISREG(info.st_mode):
        raise SettingsError(f"{path}: not a regular file; pass the newsletter.yaml file")
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read settings: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise SettingsError(
            f"{path}: too large for a settings file (over {MAX_FILE_BYTES // 1024} KB)"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SettingsError(f"{path}:{line}: not UTF-8 text; save the file as UTF-8") from None


def _database_override(block: Block, problems: list[Problem]) -> DatabaseLocation | None:
    """NEWSLETTER_DATABASE wins over subscribers.database (it may carry a password)."""
    raw = os.environ.get(DATABASE_VARIABLE, "")
    if not raw.strip():
        return block.database
    try:
        return Database(password_allowed=True).read(raw)
    except Invalid as bad:
        problems.append(Problem(f"{DATABASE_VARIABLE} (environment or .env)", str(bad)))
        return None


def _settings(blocks: dict[str, Block], database: DatabaseLocation, path: Path) -> Settings:
    top = blocks[""]
    root = path.resolve().parent
    if database.kind == "sqlite":
        database = DatabaseLocation("sqlite", root / database.path)
    return Settings(
        name=top.name,
        publisher_name=top.publisher.name,
        publisher_url=top.publisher.url,
        sender_name=top.sender.name,
        sender_address=top.sender.address,
        reply_to=top.reply_to or top.sender.address,
        postal_address=top.postal_address,
        archive_base_url=top.archive.base_url,
        # The sign-up form is the list service's (`newsletter serve`) /subscribe/ page.
        subscribe_url=top.archive.subscribe_url
        or f"{(top.service.base_url or top.archive.base_url).rstrip('/')}/subscribe/",
        issues_dir=root / top.issues_dir,
        database=database,
        default_list=top.subscribers.default_list,
        backend=top.delivery.backend,
        outbox_dir=root / top.delivery.outbox_dir,
        test_recipients=tuple(top.test_recipients),
        language=top.language,
        path=path,
        root=root,
        blocks={name: block for name, block in blocks.items() if name},
    )
