"""Render an issue into what subscribers receive: the HTML body, the plain-text body,
the subject and the preheader.

    Issue model -> templates/email/email.mjml.j2 (Jinja2, autoescaped) -> MJML
        -> HTML (mjml-python) -> CSS inlined (premailer)
    Issue model -> templates/email/email.txt.j2 -> plain text, wrapped at 72 columns

`render()` is the only place that renders: `build`, `preview`, `check` (for the size)
and the senders all call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from composer.model import Issue, Section
from composer.months import month_name
from composer.render import theme
from composer.render.slots import UNSUBSCRIBE_PLACEHOLDER, new_marker, place_html, place_text
from composer.render.text import FILTERS, safe_url, tidy_text

# UNSUBSCRIBE_PLACEHOLDER: the per-recipient unsubscribe link, in both bodies, filled by
# the sender. Only ASCII letters, underscores and percent signs: quoted-printable leaves it
# as it is and it has no place to fold a header at. The same text written in an issue is
# escaped (composer/render/slots.py): only the template's own positions are ever filled.

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates" / "email"
PREHEADER_MIN, PREHEADER_MAX = 40, 90


@dataclass(frozen=True)
class Rendered:
    html: str
    text: str
    subject: str
    preheader: str
    mjml: str = field(default="", repr=False, compare=False)  # the intermediate MJML

    @property
    def html_size(self) -> int:
        """Bytes of the HTML body in UTF-8: what Gmail's clipping counts."""
        return len(self.html.encode("utf-8"))

    @property
    def text_size(self) -> int:
        return len(self.text.encode("utf-8"))


def render(issue: Issue, settings) -> Rendered:
    from composer.render.mjml import mjml_to_html

    marker = new_marker()  # the template's unsubscribe positions, until the end
    context = _context(issue, settings, marker)
    env = _environment(_templates_dir(settings))
    source = env.get_template("email.mjml.j2").render(context)
    text = tidy_text(env.get_template("email.txt.j2").render(context))
    return Rendered(
        html=place_html(mjml_to_html(source), marker),
        text=place_text(text, marker),
        subject=context["subject"],
        preheader=context["preheader"],
        mjml=place_html(source, marker),
    )


def render_mjml(issue: Issue, settings) -> str:
    """Only the MJML stage (for the benchmark and the official renderer's validation)."""
    marker = new_marker()
    source = (
        _environment(_templates_dir(settings))
        .get_template("email.mjml.j2")
        .render(_context(issue, settings, marker))
    )
    return place_html(source, marker)


def subject_of(issue: Issue, settings) -> str:
    if issue.title:
        return " ".join(issue.title.split())
    return f"{settings.name}: {month_name(issue.month)}" if issue.month else settings.name


def preheader_of(issue: Issue) -> str:
    """40-90 characters from the intro; the highlights fill in when the intro is short or
    only announces them ("... Featuring:")."""
    text = " ".join(" ".join(p.plain for p in issue.intro).split())
    if issue.highlights and (len(text) < PREHEADER_MIN or text.endswith(":")):
        joint = " " if not text or text[-1] in ".:!?" else ": "
        text = (text + joint + " ".join(issue.highlights[0].plain.split())).strip()
    if not text and issue.sections:
        text = "In this issue: " + ", ".join(s.title for s in issue.sections)
    if len(text) <= PREHEADER_MAX:
        return text
    cut = text[: PREHEADER_MAX - 1]
    if text[len(cut)] != " " and " " in cut:  # do not end on part of a word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def footer_reason(settings) -> str:
    """Why the reader gets this email: a `footer_reason` setting if Settings grows one,
    else a sentence built from the newsletter's name."""
    own = getattr(settings, "footer_reason", "")
    return own or f"You are receiving this email because you subscribed to {settings.name}."


@dataclass(frozen=True)
class SectionView:
    section: Section
    anchor: str

    @property
    def title(self) -> str:
        return self.section.title


def _sections(issue: Issue) -> list[SectionView]:
    """Sections with unique anchors (two sections may share a slug)."""
    seen: dict[str, int] = {}
    views = []
    for section in issue.sections:
        base = section.anchor
        seen[base] = seen.get(base, 0) + 1
        anchor = base if seen[base] == 1 else f"{base}-{seen[base]}"
        views.append(SectionView(section, anchor))
    return views


def _context(issue: Issue, settings, unsubscribe_marker: str) -> dict:
    month = month_name(issue.month) if issue.month else ""
    return {
        "issue": issue,
        "settings": settings,
        "sections": _sections(issue),
        "subject": subject_of(issue, settings),
        "preheader": preheader_of(issue),
        "month": month,
        "view_url": settings.issue_url(issue.month) if issue.month else settings.archive_base_url,
        "unsubscribe_url": unsubscribe_marker,
        "footer_reason": footer_reason(settings),
        "publisher_links": [
            link
            for link in issue.links
            if safe_url(link.url) and link.url.rstrip("/") != settings.publisher_url.rstrip("/")
        ],
        "light": theme.LIGHT,
        "dark": theme.DARK,
        "font": theme.FONT,
        "width": theme.WIDTH_PX,
        "body_px": theme.BODY_PX,
        "small_px": theme.SMALL_PX,
    }


def _templates_dir(settings) -> Path:
    """A newsletter may carry its own templates/email/; else the built-in ones."""
    own = Path(getattr(settings, "root", ".")) / "templates" / "email"
    return own if (own / "email.mjml.j2").is_file() else TEMPLATES_DIR


@lru_cache(maxsize=4)
def _environment(directory: Path):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        # Everything but the plain-text templates is escaped.
        autoescape=lambda name: not (name or "").endswith(".txt.j2"),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(FILTERS)
    return env


__all__ = ["Rendered", "UNSUBSCRIBE_PLACEHOLDER", "render", "render_mjml"]
