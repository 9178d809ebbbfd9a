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

from composer.model import DatedGroup, Entry, Issue, Paragraph, Section
from composer.months import month_name
from composer.render import theme
from composer.render.slots import UNSUBSCRIBE_PLACEHOLDER, new_marker, place_html, place_text
from composer.render.text import FILTERS, safe_url, tidy_text
from composer.render.words import DEFAULT_LANGUAGE, Words, words_for

# UNSUBSCRIBE_PLACEHOLDER: the per-recipient unsubscribe link, in both bodies, filled by
# the sender. Only ASCII letters, underscores and percent signs: quoted-printable leaves it
# as it is and it has no place to fold a header at. The same text written in an issue is
# escaped (composer/render/slots.py): only the template's own positions are ever filled.

# composer/templates: in a checkout a link to templates/, in an installed package a copy.
TEMPLATES_DIR = Path(__file__).resolve().parents[1] / "templates" / "email"
PREHEADER_MIN, PREHEADER_MAX = 40, 90
# The section the intro's highlights announce, one highlight per entry, in order (the
# `highlight-count` check in validate.py warns when the counts differ).
FEATURED_TITLE = "featured"


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


def preheader_of(issue: Issue, words: Words | None = None) -> str:
    """40-90 characters from the intro; the highlights fill in when the intro is short or
    only announces them ("... Featuring:")."""
    text = " ".join(" ".join(p.plain for p in issue.intro).split())
    if issue.highlights and (len(text) < PREHEADER_MIN or text.endswith(":")):
        joint = " " if not text or text[-1] in ".:!?" else ": "
        text = (text + joint + " ".join(issue.highlights[0].plain.split())).strip()
    if not text and issue.sections:
        label = (words or words_for(DEFAULT_LANGUAGE)).in_this_issue
        text = f"{label}: " + ", ".join(s.title for s in issue.sections)
    if len(text) <= PREHEADER_MAX:
        return text
    cut = text[: PREHEADER_MAX - 1]
    if text[len(cut)] != " " and " " in cut:  # do not end on part of a word
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.-") + "…"


def footer_reason(settings, words: Words | None = None) -> str:
    """Why the reader gets this email: a `footer_reason` setting if Settings grows one,
    else the language's sentence built from the newsletter's name."""
    own = getattr(settings, "footer_reason", "")
    return own or (words or words_for(DEFAULT_LANGUAGE)).subscribed.format(name=settings.name)


def language_of(settings) -> str:
    """The email's lang: newsletter.yaml `language` (checked there), default en."""
    return getattr(settings, "language", "") or DEFAULT_LANGUAGE


def brand_of(settings) -> theme.Brand:
    return getattr(settings, "brand", None) or theme.NO_BRAND


@dataclass(frozen=True)
class EntryView:
    entry: Entry
    anchor: str = ""  # set on a Featured entry a highlight links to
    number: int = 0  # that highlight's number, from 1 (the plain text's [1])


@dataclass(frozen=True)
class GroupView:
    group: DatedGroup
    entries: tuple[EntryView, ...]

    @property
    def date(self) -> str:
        return self.group.date


@dataclass(frozen=True)
class SectionView:
    section: Section
    anchor: str
    entries: tuple[EntryView, ...] = ()
    groups: tuple[GroupView, ...] = ()

    @property
    def title(self) -> str:
        return self.section.title


@dataclass(frozen=True)
class HighlightView:
    paragraph: Paragraph
    anchor: str = ""  # its Featured entry's anchor ("" when there is none)
    number: int = 0

    @property
    def has_links(self) -> bool:
        """A highlight with links of its own cannot be one link as a whole (no nested <a>)."""
        return bool(self.paragraph.links)


def _views(issue: Issue) -> tuple[list[SectionView], list[HighlightView]]:
    """Sections with unique anchors (two sections may share a slug), and the highlights,
    the i-th linked to the i-th entry of the Featured section by an anchor of its own."""
    used: set[str] = set()

    def unique(base: str) -> str:
        anchor, n = base, 1
        while anchor in used:
            n += 1
            anchor = f"{base}-{n}"
        used.add(anchor)
        return anchor

    anchors = [unique(section.anchor) for section in issue.sections]
    featured = next(
        (i for i, s in enumerate(issue.sections) if s.title.strip().lower() == FEATURED_TITLE),
        None,
    )
    targets: list[str] = []
    if featured is not None and issue.highlights:
        count = min(len(issue.highlights), len(issue.sections[featured].all_entries))
        targets = [unique(f"{anchors[featured]}-{n}") for n in range(1, count + 1)]
    highlights = [
        HighlightView(p, targets[i], i + 1) if i < len(targets) else HighlightView(p)
        for i, p in enumerate(issue.highlights)
    ]
    sections = []
    for index, (section, anchor) in enumerate(zip(issue.sections, anchors, strict=True)):
        numbered = iter(enumerate(targets, 1) if index == featured else ())

        def view(entry: Entry, numbered=numbered) -> EntryView:
            n, target = next(numbered, (0, ""))
            return EntryView(entry, target, n)

        entries = tuple(view(e) for e in section.entries)
        groups = tuple(GroupView(g, tuple(view(e) for e in g.entries)) for g in section.groups)
        sections.append(SectionView(section, anchor, entries, groups))
    return sections, highlights


def _context(issue: Issue, settings, unsubscribe_marker: str) -> dict:
    language = language_of(settings)
    words = words_for(language)
    sections, highlights = _views(issue)
    brand = brand_of(settings)
    return {
        "issue": issue,
        "settings": settings,
        "language": language,
        "words": words,
        "brand": brand,
        "logo_alt": brand.logo_alt or settings.name,
        "sections": sections,
        "highlights": highlights,
        "subject": subject_of(issue, settings),
        "preheader": preheader_of(issue, words),
        "month": words.month_label(issue.month) if issue.month else "",
        "view_url": settings.issue_url(issue.month) if issue.month else settings.archive_base_url,
        "unsubscribe_url": unsubscribe_marker,
        "footer_reason": footer_reason(settings, words),
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
