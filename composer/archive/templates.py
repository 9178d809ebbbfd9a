"""The archive's Jinja2 templates (templates/archive/, autoescaped) and static files."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from markupsafe import Markup

from composer.render.text import safe_url

TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "archive"
STATIC = "static"  # templates/archive/static/* is copied to the site's assets/


def templates_dir(settings) -> Path:
    """A newsletter may carry its own templates/archive/; else the built-in ones."""
    own = Path(getattr(settings, "root", ".")) / "templates" / "archive"
    return own if (own / "base.html.j2").is_file() else TEMPLATES_DIR


def render_template(settings, name: str, **context) -> str:
    env = _environment(templates_dir(settings))
    return env.get_template(name).render(settings=settings, **context)


def generate_template(settings, name: str, **context) -> Iterator[str]:
    """`render_template` piece by piece, for a page as large as the whole archive."""
    env = _environment(templates_dir(settings))
    return env.get_template(name).generate(settings=settings, **context)


def static_files(settings) -> list[tuple[str, bytes]]:
    """(name, bytes) of every static file, by name."""
    folder = templates_dir(settings) / STATIC
    return [(p.name, p.read_bytes()) for p in sorted(folder.iterdir()) if p.is_file()]


@lru_cache(maxsize=4)
def _environment(directory: Path):
    import jinja2

    from composer.render.text import FILTERS

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=True,  # HTML and the Atom feed alike: every value from an issue is text
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    env.filters["paragraph_html"] = paragraph_html
    env.filters["issue_html"] = _issue_html
    return env


def _issue_html(record: dict) -> str:
    from composer.archive.content import issue_html

    return issue_html(record)  # a str, not Markup: the feed's template escapes it as text


def escape_text(text: str) -> str:
    """`markupsafe.escape(text)` as a plain str, the same five characters replaced the
    same way (a test holds the two together): the feed escapes some 20,000 strings on
    every build, and a Markup object for each was a tenth of a one-issue rebuild."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&#34;")
        .replace("'", "&#39;")
    )


def paragraph_html(data) -> Markup:
    """A record's paragraph (`[[kind, text], ...]`, `["a", text, url]`) as HTML: every
    text escaped, the only markup em, strong, code and links with a safe URL: what the
    email's `inline_html` makes of the same paragraph (a test holds the two together;
    this one reads the record's data directly, as the feed needs it for every issue
    on every build)."""
    parts = []
    for node in data:
        kind, text = node[0], escape_text(node[1])
        if kind == "a":
            url = safe_url(node[2])
            parts.append(f'<a href="{escape_text(url)}">{text}</a>' if url else text)
        elif kind in _TAGS:
            parts.append(f"<{_TAGS[kind]}>{text}</{_TAGS[kind]}>")
        else:  # text (and anything else: shown as text)
            parts.append(text)
    return Markup("".join(parts))


_TAGS = {"em": "em", "strong": "strong", "code": "code"}
