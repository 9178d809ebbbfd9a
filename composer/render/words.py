"""The email's fixed words, per language: the one place to translate.

Everything a reader sees that the editor did not write (the links around the issue, the
footer's sentence, the PDF marker, month and date names) comes from the table of the
newsletter's `language` (newsletter.yaml, default en). A regional tag (`de-AT`) uses its
language's table (`de`) and stays as it is in the email's `lang`. To add a language,
add one `Words(...)` to `TABLES`; tests/test_render_words.py checks every table is whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from composer.errors import ComposerError

DEFAULT_LANGUAGE = "en"
# BCP 47, the part an email's lang needs: a 2-3 letter language, then optional subtags
# (script, region, variant) of 2-8 letters or digits. "en", "de-AT", "zh-Hant-TW".
LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")


class UnknownLanguage(ComposerError):
    """A language the email's fixed words are not translated into."""


@dataclass(frozen=True)
class Words:
    view_in_browser: str
    unsubscribe: str
    subscribe: str  # the archive's copy: where the personal unsubscribe link was
    in_this_issue: str
    pdf: str  # the marker after a link to a PDF
    more: str  # after a highlight with links of its own: the link to its Featured entry
    subscribed: str  # the footer's reason; {name} is the newsletter's name
    months: tuple[str, ...]  # January .. December
    month_format: str  # {month} {year}: the month under the title
    date_format: str  # {month} {day} {year}: a date heading ("Presented on")

    def month_label(self, iso_month: str) -> str:
        """'2025-05' -> 'May, 2025' (en), 'Mai 2025' (de)."""
        year, month = iso_month.split("-")
        return self.month_format.format(month=self.months[int(month) - 1], year=year)

    def date_label(self, iso_date: str) -> str:
        """'2024-10-01' -> 'October 1, 2024' (en); anything else as it is."""
        match = re.match(r"^(\d{4})-(\d{2})-(\d{2})$", iso_date or "")
        if not match or not 1 <= int(match[2]) <= 12:
            return iso_date
        return self.date_format.format(
            month=self.months[int(match[2]) - 1], day=int(match[3]), year=match[1]
        )


TABLES: dict[str, Words] = {
    "en": Words(
        view_in_browser="View in browser",
        unsubscribe="Unsubscribe",
        subscribe="Subscribe",
        in_this_issue="In this issue",
        pdf="PDF",
        more="Read more",
        subscribed="You are receiving this email because you subscribed to {name}.",
        months=(
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ),
        month_format="{month}, {year}",
        date_format="{month} {day}, {year}",
    ),
    "de": Words(
        view_in_browser="Im Browser ansehen",
        unsubscribe="Abbestellen",
        subscribe="Abonnieren",
        in_this_issue="In dieser Ausgabe",
        pdf="PDF",
        more="Weiterlesen",
        subscribed="Sie erhalten diese E-Mail, weil Sie {name} abonniert haben.",
        months=(
            "Januar",
            "Februar",
            "März",
            "April",
            "Mai",
            "Juni",
            "Juli",
            "August",
            "September",
            "Oktober",
            "November",
            "Dezember",
        ),
        month_format="{month} {year}",
        date_format="{day}. {month} {year}",
    ),
    "fr": Words(
        view_in_browser="Voir dans le navigateur",
        unsubscribe="Se désabonner",
        subscribe="S’abonner",
        in_this_issue="Dans ce numéro",
        pdf="PDF",
        more="Lire la suite",
        subscribed="Vous recevez cet e-mail parce que vous êtes abonné·e à {name}.",
        months=(
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ),
        month_format="{month} {year}",
        date_format="{day} {month} {year}",
    ),
}


def language_problem(tag: object) -> str:
    """Why `tag` cannot be the email's language ("" when it can): for the settings
    reader, which reports it at its line."""
    if not isinstance(tag, str) or not LANGUAGE_TAG.match(tag):
        return (
            f"{tag!r} is not a language tag: use a BCP 47 tag such as en, de or fr-CA "
            f"(translated: {', '.join(sorted(TABLES))})"
        )
    primary = tag.split("-", 1)[0].lower()
    if primary not in TABLES:
        return (
            f"the email's fixed words are not translated into {tag!r}: known languages "
            f"are {', '.join(sorted(TABLES))} (add one in composer/render/words.py)"
        )
    return ""


def words_for(tag: str) -> Words:
    """The table of a language tag; UnknownLanguage (with the known ones) otherwise."""
    problem = language_problem(tag)
    if problem:
        raise UnknownLanguage(problem)
    return TABLES[tag.split("-", 1)[0].lower()]
