"""URLs in an issue: what makes one acceptable, what tracks readers, what counts as the same."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# Query parameters added by newsletters, ad networks and mail tools to follow readers.
# They are not part of the resource: removing them never changes what the link shows.
TRACKING_PARAMS = frozenset(
    {
        "_bhlid", "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid",
        "yclid", "twclid", "ttclid", "li_fat_id", "igshid", "mc_cid", "mc_eid", "_hsenc",
        "_hsmi", "__hstc", "__hssc", "__hsfp", "hsctatracking", "mkt_tok", "oly_anon_id",
        "oly_enc_id", "vero_id", "vero_conv", "rb_clickid", "s_cid", "ss_source",
        "ref_src", "ref_url",
    }
)  # fmt: skip
TRACKING_PREFIXES = ("utm_",)

_ARXIV = re.compile(r"^(?:www\.|export\.)?arxiv\.org$", re.IGNORECASE)
_ARXIV_PATH = re.compile(
    r"^/(?:abs|pdf|html)/(?P<id>[a-z\-]*/?\d{4}\.\d{4,5}|[a-z\-]+/\d{7})"
    r"(?:v\d+)?(?:\.pdf)?/?$",
    re.IGNORECASE,
)


def is_tracking_param(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def url_problem(url: str, *, mailto: bool = False) -> str | None:
    """Why `url` cannot go into an email as a link, or None when it can.

    `mailto`: a mailto: link to one valid address is acceptable too (running text may
    give a contact address; an entry's title links to the paper itself, over http(s))."""
    if not url:
        return "the link has no URL"
    if any(c.isspace() for c in url):
        return f"URL {url!r} contains whitespace"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError on a malformed port)
    except ValueError as exc:
        return f"URL {url!r} is malformed ({exc})"
    scheme = parts.scheme.lower()
    if not scheme:
        return f"URL {url!r} is relative: links in an email need https://host/..."
    if scheme == "mailto":
        if not mailto:
            return (
                f"URL {url!r} is a mailto: link: an entry's title links to the paper or "
                "post itself, over https://"
            )
        return mailto_problem(url)
    if scheme not in ("http", "https"):
        return f"URL {url!r} uses {scheme}:, not http(s): readers' mail clients will not open it"
    host = parts.hostname or ""
    if not host or host.startswith(".") or ".." in host or not re.match(r"^[\w.\-\[\]:]+$", host):
        return f"URL {url!r} has no valid host"
    return None


_MAILTO_ADDRESS = re.compile(
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)


def mailto_problem(url: str) -> str | None:
    """Why a mailto: URL is not a link to one email address, or None when it is."""
    from urllib.parse import unquote

    address = unquote(url.split(":", 1)[1].split("?", 1)[0])
    if not _MAILTO_ADDRESS.match(address):
        return f"URL {url!r} is a mailto: link without a valid email address"
    return None


def tracking_params(url: str) -> list[str]:
    """Names of the tracking parameters in `url`'s query, in order."""
    query = urlsplit(url).query
    names = [pair.split("=", 1)[0] for pair in query.split("&") if pair]
    return [n for n in names if is_tracking_param(n)]


def strip_tracking(url: str) -> str:
    """`url` without its tracking parameters; every other character kept as written."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [p for p in parts.query.split("&") if p and not is_tracking_param(p.split("=", 1)[0])]
    return urlunsplit(parts._replace(query="&".join(kept)))


def normalize(url: str) -> str:
    """A comparison key: the same paper or page gives the same key however it was linked.

    arXiv abs/pdf/html and versions collapse to the paper id; scheme, `www.`, a trailing
    slash, tracking parameters and the fragment are ignored.
    """
    try:
        parts = urlsplit(strip_tracking(url.strip()))
    except ValueError:
        return url
    host = (parts.hostname or "").lower()
    if _ARXIV.match(host):
        match = _ARXIV_PATH.match(parts.path)
        if match:
            return f"arxiv:{match['id'].lower()}"
    host = host.removeprefix("www.")
    path = parts.path.rstrip("/")
    query = f"?{parts.query}" if parts.query else ""
    return f"{host}{path}{query}"
