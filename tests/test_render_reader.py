"""Issue 13 items 7, 8 and 11, what a reader sees: summary paragraphs apart in the plain
text; highlights linked to their Featured entries; a PDF marker; the language's words;
the optional brand colour and logo, whose colour keeps WCAG AA contrast."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from composer.model import Entry, Issue, Link, Paragraph, Section, Text
from composer.readers import read_issue
from composer.render import UNSUBSCRIBE_PLACEHOLDER, render, theme
from composer.render.text import inline_html, inline_text, is_pdf
from composer.render.words import TABLES, UnknownLanguage, Words, language_problem, words_for
from tests.test_render import Tags

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDERS = ROOT / "tests" / "fixtures" / "render" / "2025-07-placeholders.rst"


class Variant:
    """The real settings with a few values changed (language, brand...)."""

    def __init__(self, base, **changes) -> None:
        self._base, self._changes = base, changes

    def __getattr__(self, name):
        if name in self._changes:
            return self._changes[name]
        return getattr(self._base, name)


def para(*inlines) -> Paragraph:
    return Paragraph(tuple(Text(i) if isinstance(i, str) else i for i in inlines))


def entry(title: str, url: str, *summary: str) -> Entry:
    return Entry(title, url, tuple(para(s) for s in summary))


# -- item 7: paragraphs ----------------------------------------------------------------------


def test_two_paragraph_summary_keeps_a_blank_line_between_them_in_text(settings) -> None:
    text = render(read_issue(PLACEHOLDERS).issue, settings).text
    assert "<%asm_preferences_raw_url%> tags.\n\nA second paragraph, with" in text
    issue = Issue(
        "N: July, 2025",
        "2025-07",
        sections=(
            Section("News", (entry("T", "https://example.com/t", "One para.", "Two para."),)),
        ),
    )
    text = render(issue, settings).text
    assert "https://example.com/t\nOne para.\n\nTwo para.\n\n" in text


# -- item 8: highlights -> Featured entries ----------------------------------------------------


def test_each_highlight_links_to_its_featured_entry(may_issue, settings) -> None:
    html = render(may_issue, settings).html
    tags = Tags(html)
    featured = next(s for s in may_issue.sections if s.title == "Featured").entries
    assert len(may_issue.highlights) == len(featured) == 6
    for n, (highlight, target) in enumerate(zip(may_issue.highlights, featured, strict=True), 1):
        # the whole highlight is the link
        link = re.search(rf'<li[^>]*><a href="#featured-{n}"[^>]*>(.*?)</a></li>', html, re.S)
        assert link and " ".join(link[1].split()) == " ".join(highlight.plain.split())
        # and the id is on that entry's heading, exactly once
        assert [a["id"] for t, a in tags.tags if a.get("id") == f"featured-{n}"] == [
            f"featured-{n}"
        ]
        heading = re.search(rf'<h3 id="featured-{n}"[^>]*><a href="([^"]+)"', html)
        assert heading and heading[1] == target.url


def test_plain_text_numbers_highlights_and_their_entries(may_issue, settings) -> None:
    text = render(may_issue, settings).text
    assert "  * A novel sparse attention module which achieves the theoretical\n" in text
    assert "    maximum possible speedup. [1]\n" in text
    assert "\n[1] Generalized Neighborhood Attention: Multi-dimensional Sparse\n" in text
    assert "\n[6] Mastering diverse control tasks through world models\n" in text
    assert "[7]" not in text


def test_a_highlight_with_its_own_link_gets_a_separate_jump_and_extra_ones_none(settings):
    issue = Issue(
        "N: July, 2025",
        "2025-07",
        highlights=(
            para("See ", Link("the code", "https://example.com/code"), " for it."),
            para("Plain second."),
            para("A third highlight with no Featured entry."),
        ),
        sections=(
            Section(
                "Featured", (entry("A", "https://e.com/a", "x"), entry("B", "https://e.com/b"))
            ),
            # A section whose slug takes the anchor the first entry would get.
            Section("Featured 1", (entry("C", "https://e.com/c", "y"),)),
        ),
    )
    rendered = render(issue, settings)
    html = rendered.html
    assert re.search(
        r'<li[^>]*>See <a href="https://example.com/code"[^>]*>the code</a> for it\. '
        r'<a href="#featured-1-2"[^>]*>Read more\xa0↓</a></li>',
        html,
    ), html
    assert re.search(r'<li[^>]*><a href="#featured-2"[^>]*>Plain second\.</a></li>', html)
    assert re.search(r"<li[^>]*>A third highlight with no Featured entry\.</li>", html)
    assert '<h2 id="featured-1"' in html  # the section keeps its own anchor
    assert '<h3 id="featured-1-2"' in html and '<h3 id="featured-2"' in html
    assert "<a><a" not in html and not re.search(r"<a [^>]*>[^<]*<a ", html)
    text = rendered.text
    assert "  * See the code <https://example.com/code> for it. [1]\n" in text
    assert "  * Plain second. [2]\n" in text
    assert "  * A third highlight with no Featured entry.\n" in text
    assert "\n[1] A\n" in text and "\n[2] B\n" in text and "\nC\n" in text


# -- item 8: PDF marker -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, pdf",
    [
        ("https://arxiv.org/pdf/2504.16922", True),
        ("https://www.arxiv.org/pdf/2504.02732v2", True),
        ("https://export.arxiv.org/pdf/2504.02732", True),
        ("https://example.com/paper.PDF", True),
        ("https://example.com/paper.pdf?download=1#page=2", True),
        ("http://example.com/a/b.pdf", True),
        ("https://arxiv.org/abs/2504.16922", False),
        ("https://example.com/pdf/viewer", False),
        ("https://notarxiv.org/pdf/1", False),
        ("https://example.com/?file=x.pdf", False),
        ("javascript:alert(1)//x.pdf", False),
        ("mailto:a@example.com?subject=x.pdf", False),
        ("https://[bad/x.pdf", False),
    ],
)
def test_is_pdf(url: str, pdf: bool) -> None:
    assert is_pdf(url) is pdf


def test_pdf_marker_in_html_and_text(may_issue, settings) -> None:
    rendered = render(may_issue, settings)
    assert re.search(
        r'<a href="https://arxiv.org/pdf/2504.16922"[^>]*>Generalized Neighborhood Attention: '
        r"Multi-dimensional Sparse Attention at the Speed of Light</a>\xa0"
        r'<span class="pdf"[^>]*>PDF</span></h3>',
        rendered.html,
    )
    # not on a link that is no PDF
    assert re.search(r"world models</a></h3>", rendered.html), "the Nature article is an HTML page"
    pdf_links = sum(is_pdf(e.url) for e in may_issue.entries)
    assert rendered.html.count('<span class="pdf"') == pdf_links
    assert len(re.findall(r"(?:^| )\(PDF\)$", rendered.text, re.M)) == pdf_links
    paragraph = para("Read ", Link("the paper", "https://e.com/x.pdf"), " now.")
    assert str(inline_html(paragraph, "PDF")) == (
        'Read <a href="https://e.com/x.pdf">the paper</a>&nbsp;<span class="pdf">PDF</span> now.'
    )
    assert inline_text(paragraph, "PDF") == "Read the paper <https://e.com/x.pdf> (PDF) now."
    assert inline_text(paragraph) == "Read the paper <https://e.com/x.pdf> now."


# -- item 11: language --------------------------------------------------------------------------


def test_language_sets_lang_and_every_fixed_word(nov_issue, settings) -> None:
    rendered = render(nov_issue, Variant(settings, language="de-AT"))
    html, text = rendered.html, rendered.text
    assert html.startswith('<!doctype html>\n<html lang="de-AT"')
    words = TABLES["de"]
    assert f">{words.view_in_browser}</a>" in html
    assert f">{words.unsubscribe}</a>" in html
    assert f"<strong>{words.in_this_issue}:</strong>" in html
    assert "Sie erhalten diese E-Mail, weil Sie The CoVar Zeitgeist abonniert haben." in html
    assert ">November 2024</p>" in html  # the month under the title
    assert ">1. Oktober 2024</h3>" in html  # a seminar date
    assert "\n1. Oktober 2024\n~~~~~~~~~~~~~~~\n" in text
    assert f"\n{words.unsubscribe}: %%UNSUBSCRIBE_URL%%\n" in text
    assert f"{words.view_in_browser}: https://zeitgeist.covar.com/2024/11/\n" in text
    for english in ("View in browser", "Unsubscribe", "In this issue", "October", "You are"):
        assert english not in html and english not in text, english


def test_french_dates_and_default_english(nov_issue, settings) -> None:
    fr = render(nov_issue, Variant(settings, language="fr"))
    assert ">1 octobre 2024</h3>" in fr.html and ">novembre 2024</p>" in fr.html
    en = render(nov_issue, settings)
    assert en.html.startswith('<!doctype html>\n<html lang="en"')
    assert ">October 1, 2024</h3>" in en.html and ">November, 2024</p>" in en.html


def test_unknown_or_malformed_language_is_a_clear_error(nov_issue, settings) -> None:
    with pytest.raises(UnknownLanguage) as err:
        render(nov_issue, Variant(settings, language="pt-BR"))
    assert str(err.value) == (
        "the email's fixed words are not translated into 'pt-BR': known languages are de, "
        "en, fr (add one in composer/render/words.py)"
    )
    assert language_problem("en_US") == (
        "'en_US' is not a language tag: use a BCP 47 tag such as en, de or fr-CA "
        "(translated: de, en, fr)"
    )
    for bad in ("", "e", "english-language", "en-", 'en"><script>', 42, None):
        assert language_problem(bad).endswith("(translated: de, en, fr)"), bad
    for good in ("en", "EN", "de-AT", "fr-CA", "en-Latn-US"):
        assert language_problem(good) == "", good
    assert words_for("DE-de") is TABLES["de"]


def test_every_table_is_whole() -> None:
    for language, words in TABLES.items():
        assert isinstance(words, Words)
        assert len(words.months) == 12 and len(set(words.months)) == 12, language
        for value in (words.view_in_browser, words.unsubscribe, words.in_this_issue, words.pdf):
            assert value.strip(), language
        assert "{name}" in words.subscribed, language
        assert words.month_label("2025-05") and words.date_label("2024-10-01"), language
        assert words.date_label("not a date") == "not a date"


# -- item 8: brand ------------------------------------------------------------------------------


def test_brand_colour_and_logo_in_the_email(nov_issue, settings) -> None:
    brand = theme.Brand(
        color="#2f6fb5", logo_url="https://covar.com/logo.png", logo_alt="CoVar", logo_width=96
    )
    html = render(nov_issue, Variant(settings, brand=brand)).html
    tags = Tags(html)
    [img] = [a for t, a in tags.tags if t == "img"]
    assert img["src"] == "https://covar.com/logo.png" and img["alt"] == "CoVar"
    assert img["width"] == "96"
    assert "border-top:4px solid #2f6fb5" in html
    h1 = re.search(r"<h1 style=\"([^\"]*)\"", html)
    assert h1 and "color:#2f6fb5" in h1[1]
    dark = html.split("@media (prefers-color-scheme: dark)", 1)[1].split("</style>", 1)[0]
    assert ".tx h1, .tx h2 { color: #2f6fb5 !important; }" in dark
    # no brand: none of it
    plain = render(nov_issue, settings).html
    assert "<img" not in plain and "border-top:4px" not in plain


def test_logo_alt_defaults_to_the_newsletters_name(nov_issue, settings) -> None:
    brand = theme.Brand(logo_url="https://covar.com/logo.png")
    html = render(nov_issue, Variant(settings, brand=brand)).html
    [img] = [a for t, a in Tags(html).tags if t == "img"]
    assert img["alt"] == "The CoVar Zeitgeist" and img["width"] == str(theme.LOGO_WIDTH_PX)


def test_brand_colour_contrast_is_checked_in_both_schemes() -> None:
    assert theme.brand_colour_problem("#2f6fb5") == ""
    assert theme.brand_colour_problem("#E07A10") == ""
    assert theme.brand_colour_problem("#0a58a8") == (
        "#0a58a8 has a contrast of 2.44:1 with the dark-mode card #171b21; WCAG AA needs "
        "3:1 for the title and headings it colours: pick a lighter colour (it must keep "
        "3:1 with #ffffff and #171b21)"
    )
    assert theme.brand_colour_problem("#FfD") == (
        "#ffffdd has a contrast of 1.01:1 with the light-mode card #ffffff; WCAG AA needs "
        "3:1 for the title and headings it colours: pick a darker colour (it must keep "
        "3:1 with #ffffff and #171b21)"
    )
    assert theme.brand_colour_problem("red") == (
        "'red' is not a colour: write it as #rrggbb, e.g. #2f6fb5"
    )
    for bad in ("#12345", "#ggg", "", None, 123, "#1234567", "url(x)"):
        assert theme.brand_colour_problem(bad).endswith("write it as #rrggbb, e.g. #2f6fb5")
    # every colour that passes really has 3:1 on both cards
    for value in range(0, 0x1000000, 0x0F0F0F):
        colour = f"#{value:06x}"
        ok = not theme.brand_colour_problem(colour)
        both = min(
            theme.contrast(colour, theme.LIGHT["card"]), theme.contrast(colour, theme.DARK["card"])
        )
        assert ok == (both >= 3.0), colour


def test_logo_settings_are_checked() -> None:
    assert theme.logo_url_problem("https://covar.com/logo.png") == ""
    assert theme.logo_url_problem("https://cdn.covar.com:8443/a/logo.png?v=2#x") == ""
    assert theme.logo_url_problem("http://covar.com/logo.png") == (
        "'http://covar.com/logo.png' is not an https:// URL: email clients block images over "
        "http, and the email carries no image data itself"
    )
    for bad in (
        "data:image/png;base64,xx",
        "javascript:alert(1)",
        "https://a b/",
        "//x/y.png",
        'https://x.com/"onerror="alert(1)',
        "https://x.com/<script>",
        "https://user:pw@x.com/l.png",
        "https://x.com/l\n.png",
        "https:///l.png",
    ):
        assert "is not an https:// URL" in theme.logo_url_problem(bad), bad
    assert theme.logo_width_problem(120) == ""
    assert theme.logo_width_problem(0) == "0 is not a width in pixels from 16 to 544"
    for bad in (15, 545, True, "120", 1.5):
        assert theme.logo_width_problem(bad).endswith("is not a width in pixels from 16 to 544")


# -- the settings: newsletter.yaml `language` and `brand:` --------------------------------------


def write_settings(folder: Path, extra: str) -> Path:
    path = folder / "newsletter.yaml"
    base = (ROOT / "newsletter.yaml").read_text(encoding="utf-8")
    base = re.sub(r"(?m)^language: en\n", "", base)
    path.write_text(base + extra, encoding="utf-8")
    return path


def test_language_and_brand_from_newsletter_yaml_reach_the_email(tmp_path, nov_issue) -> None:
    from composer.settings import load_settings

    path = write_settings(
        tmp_path,
        "language: fr-CA\n"
        "brand:\n"
        "  logo_url: https://covar.com/logo.png\n"
        "  logo_width: 80\n"
        "  color: '#E07A10'\n",
    )
    settings = load_settings(path)
    assert settings.language == "fr-CA"
    assert settings.brand.color == "#e07a10" and settings.brand.logo_alt is None
    html = render(nov_issue, settings).html
    assert html.startswith('<!doctype html>\n<html lang="fr-CA"')
    assert ">Voir dans le navigateur</a>" in html and ">Se désabonner</a>" in html
    [img] = [a for t, a in Tags(html).tags if t == "img"]
    assert (img["src"], img["alt"], img["width"]) == (
        "https://covar.com/logo.png",
        "The CoVar Zeitgeist",
        "80",
    )
    assert "border-top:4px solid #e07a10" in html


def test_defaults_are_english_and_no_brand(settings) -> None:
    assert settings.language == "en"
    assert dict(settings.brand) == {
        "logo_url": None,
        "logo_alt": None,
        "logo_width": theme.LOGO_WIDTH_PX,
        "color": None,
    }
    assert (16, 544) == theme.LOGO_WIDTH_RANGE  # the range settings.py checks


def test_bad_language_and_brand_are_settings_errors_at_their_lines(tmp_path) -> None:
    from composer.errors import SettingsError
    from composer.settings import load_settings

    path = write_settings(
        tmp_path,
        "language: pt-BR\n"
        "brand:\n"
        "  color: '#0a58a8'\n"
        "  logo_url: http://covar.com/logo.png\n"
        "  logo_width: 9000\n"
        "  colour: '#fff'\n",
    )
    first = len(path.read_text(encoding="utf-8").splitlines()) - 5
    with pytest.raises(SettingsError) as err:
        load_settings(path)
    assert str(err.value).splitlines()[1:] == [
        f"  {path}:{first}: language: the email's fixed words are not translated into "
        "'pt-BR': known languages are de, en, fr (add one in composer/render/words.py)",
        f"  {path}:{first + 2}: brand.color: #0a58a8 has a contrast of 2.44:1 with the "
        "dark-mode card #171b21; WCAG AA needs 3:1 for the title and headings it colours: "
        "pick a lighter colour (it must keep 3:1 with #ffffff and #171b21)",
        f"  {path}:{first + 3}: brand.logo_url: 'http://covar.com/logo.png' is not an https:// "
        "URL: email clients block images over http, and the email carries no image data itself",
        f"  {path}:{first + 4}: brand.logo_width: expected a whole number from 16 to 544, got 9000",
        f'  {path}:{first + 5}: brand.colour: unknown key; did you mean "color"?',
    ]
    light = write_settings(tmp_path, "language: en_US\nbrand:\n  color: '#ffffdd'\n")
    with pytest.raises(SettingsError) as err:
        load_settings(light)
    assert "language: 'en_US' is not a language tag: use a BCP 47 tag such as en, de or fr-CA" in (
        str(err.value)
    )
    assert "brand.color: #ffffdd has a contrast of 1.01:1 with the light-mode card #ffffff" in (
        str(err.value)
    )


def test_the_archive_renders_again_when_language_or_brand_changes(tmp_path, settings) -> None:
    """The archive keeps issues it rendered before unless what they depend on changed: the
    email's language and brand are part of that."""
    import dataclasses

    from composer.archive import build_archive

    site = tmp_path / "site"
    first = build_archive(settings, site, jobs=1)
    assert sorted(first.rendered) == ["2024-11", "2025-05"]
    assert build_archive(settings, site, jobs=1).rendered == []
    german = dataclasses.replace(settings, language="de")
    again = build_archive(german, site, jobs=1)
    assert sorted(again.rendered) == ["2024-11", "2025-05"]
    page = (site / "2025" / "05" / "index.html").read_text(encoding="utf-8")
    assert '<html lang="de"' in page and ">Im Browser ansehen</a>" in page
    branded = Variant(german, brand=theme.Brand(color="#2f6fb5"))
    assert sorted(build_archive(branded, site, jobs=1).rendered) == ["2024-11", "2025-05"]


def test_a_highlights_number_never_stands_alone_on_a_line() -> None:
    from composer.render.text import wrap

    text = "word " * 11 + "ends here."  # the line is full with "here.": no room for [4]
    assert len("  * " + text) == 69
    assert wrap(text + " [4]", initial="  * ", subsequent="    ").endswith("\n    [4]")
    assert wrap(text, initial="  * ", subsequent="    ", tail="[4]") == (
        "  * " + "word " * 11 + "ends\n    here. [4]"
    )
    assert wrap("short", tail="[1]") == "short [1]"
    assert wrap("", tail="[1]") == "[1]"


def test_the_archive_copy_says_subscribe_in_the_newsletters_language(nov_issue, settings) -> None:
    from composer.archive.webpage import without_subscriber

    url = "https://zeitgeist.example/subscribe/"
    for language, subscribe, unsubscribe in (
        ("en", "Subscribe", "Unsubscribe"),
        ("de", "Abonnieren", "Abbestellen"),
    ):
        sent = render(nov_issue, Variant(settings, language=language))
        copy = without_subscriber(sent, url, language)
        assert f'<a href="{url}"' in copy.html
        assert f">{subscribe}</a>" in copy.html
        assert f">{unsubscribe}</a>" not in copy.html
        assert f"{subscribe}: {url}" in copy.text
        assert UNSUBSCRIBE_PLACEHOLDER not in copy.html + copy.text
