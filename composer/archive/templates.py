"""The archive's Jinja2 templates (templates/archive/, autoescaped) and static files."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "archive"
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
    return env


def paragraph_html(data) -> str:
    """A record's paragraph (`[[kind, text], ...]`) as HTML: each text escaped by the
    email's own `inline_html`, the only markup its em, strong, code and safe links."""
    from composer.archive.record import paragraph_inlines
    from composer.render.text import inline_html

    return inline_html(paragraph_inlines(data))
