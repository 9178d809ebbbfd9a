"""Rows about the sender domain's DNS: SPF, DKIM, DMARC, and the return path's MX.

Asked through dnspython, of the system's resolver or of `preflight.dns.nameserver`
(tests run a real DNS server on 127.0.0.1). Every lookup is bounded by
`preflight.dns_timeout`; a server that does not answer fails the row and says so.
"""

from __future__ import annotations

import ipaddress

from composer.errors import ComposerError
from composer.preflight.model import Check, failed, passed, skipped, warned

SENDGRID_SPF = "sendgrid.net"
SENDGRID_SELECTORS = ("s1", "s2")
SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4: more DNS-querying terms is a permerror
SHOWN_CHARS = 160  # of a DNS record quoted in a row
OFFLINE = "the outbox backend sends nothing over the internet"


class DnsTrouble(ComposerError):
    """A lookup that got no usable answer (timeout, SERVFAIL, a name DNS cannot hold)."""


class DnsLookup:
    """The few questions preflight asks, with bounded waits and plain answers."""

    def __init__(self, config) -> None:
        import dns.resolver

        self.timeout = config.dns_timeout
        if config.dns_nameserver:
            self.resolver = dns.resolver.Resolver(configure=False)
            if _ip(config.dns_nameserver) is None:
                raise DnsTrouble(
                    f"preflight.dns.nameserver: {_short(config.dns_nameserver)!r} is not an IP "
                    "address"
                )
            self.resolver.nameservers = [config.dns_nameserver.strip("[]")]
            self.resolver.port = config.dns_port
            self.where = f" (nameserver {config.dns_nameserver}:{config.dns_port})"
        else:
            try:
                self.resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise DnsTrouble(
                    "this machine has no DNS resolver configured (/etc/resolv.conf): set "
                    "preflight.dns.nameserver in newsletter.yaml"
                ) from None
            self.where = ""
        self.resolver.timeout = self.resolver.lifetime = config.dns_timeout
        self.resolver.cache = None
        self.unreachable: DnsTrouble | None = None

    def _answer(self, name: str, rdtype: str):
        import dns.exception
        import dns.name
        import dns.resolver

        if self.unreachable is not None:  # one silent server costs one timeout, not one a row
            raise self.unreachable
        try:
            qname = dns.name.from_text(name)
            return self.resolver.resolve(qname, rdtype, search=False, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except dns.resolver.LifetimeTimeout:
            self.unreachable = DnsTrouble(
                f"no DNS answer for {rdtype} {_short(name)} within {self.timeout:g} s{self.where}"
            )
            raise self.unreachable from None
        except dns.resolver.NoNameservers:
            raise DnsTrouble(
                f"the DNS server failed to answer {rdtype} {_short(name)}{self.where}"
            ) from None
        except dns.name.NameTooLong:
            raise DnsTrouble(f"{_short(name)} is too long for a DNS name") from None
        except (dns.name.EmptyLabel, dns.name.LabelTooLong, dns.name.BadEscape):
            raise DnsTrouble(f"{_short(name)} is not a valid DNS name") from None
        except dns.exception.DNSException as exc:
            raise DnsTrouble(
                f"DNS lookup of {rdtype} {_short(name)} failed{self.where}: {exc}"
            ) from None

    def txt(self, name: str) -> tuple[list[str], str]:
        """The TXT strings at `name` (each record's strings joined) and the name that holds
        them (different when `name` is a CNAME)."""
        answer = self._answer(name, "TXT")
        if answer is None or answer.rrset is None:
            return [], name
        texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer.rrset]
        return texts, answer.canonical_name.to_text(omit_final_dot=True)

    def mx(self, name: str) -> list[tuple[int, str]]:
        answer = self._answer(name, "MX")
        if answer is None or answer.rrset is None:
            return []
        return sorted((r.preference, r.exchange.to_text(omit_final_dot=True)) for r in answer)

    def addresses(self, host: str) -> list[str]:
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            answer = self._answer(host, rdtype)
            if answer is not None and answer.rrset is not None:
                found += [r.address for r in answer.rrset]
        return found


# -- the rows ------------------------------------------------------------------------------


def spf_row(run) -> Check:
    if run.offline:
        return skipped("spf", OFFLINE)
    domain = run.sender_domain
    if run.backend == "smtp" and not run.relay_host:
        return failed(
            "spf",
            "smtp.host is not set: there is no relay to look for in SPF",
            "set smtp.host in newsletter.yaml",
        )
    try:
        relay = _Relay.of(run)
        records = _spf_records(run.dns, domain)
        if not records:
            return failed(
                "spf",
                f"no SPF record at {domain}: receivers cannot tell that {relay.label} may "
                "send its mail",
                f'add a TXT record at {domain}: "v=spf1 {relay.mechanism} ~all"',
            )
        if len(records) > 1:
            return failed(
                "spf",
                f"{domain} has {len(records)} SPF records; receivers treat that as an error "
                "(RFC 7208 permerror)",
                "merge them into one TXT record that starts with v=spf1",
            )
        if relay.loopback:
            return warned(
                "spf",
                f"the relay {relay.host} is this machine: preflight cannot tell which address "
                f"it sends from, so cannot check it against {domain}'s SPF",
                f"make sure {domain}'s SPF ({_show(records[0])}) covers this machine's "
                "public address",
            )
        walk = _SpfWalk(run.dns, relay)
        found = walk.search(domain, records[0])
    except DnsTrouble as exc:
        return _trouble("spf", exc)
    if walk.lookups > SPF_LOOKUP_LIMIT:
        return failed(
            "spf",
            f"the SPF record of {domain} needs more than {SPF_LOOKUP_LIMIT} DNS lookups; "
            "receivers give up on it (RFC 7208 permerror)",
            "flatten it: fewer include:, a, mx and redirect= terms",
        )
    if found is None:
        return failed(
            "spf",
            f"the SPF record of {domain} does not authorize {relay.label}: {_show(records[0])}",
            f"add {relay.mechanism} to it",
        )
    term, where = (_show(part) for part in found)  # from DNS: shown printable
    via = "" if where == domain else f" (through {where})"
    return passed("spf", f"the SPF record of {domain} authorizes {relay.label}: {term}{via}")


def dkim_row(run) -> Check:
    if run.offline:
        return skipped("dkim", OFFLINE)
    domain = run.sender_domain
    selectors = run.config.dkim_selectors
    if not selectors and run.backend == "sendgrid":
        selectors = SENDGRID_SELECTORS
    if not selectors:
        return warned(
            "dkim",
            "no DKIM selector to check: preflight does not know which one your relay signs with",
            "list it in preflight.dkim_selectors in newsletter.yaml (the s= of a DKIM-Signature "
            "header your relay adds)",
        )
    found, missing, revoked = [], [], []
    try:
        for selector in selectors:
            name = f"{selector}._domainkey.{domain}"
            texts, holder = run.dns.txt(name)
            keys = [_tags(t) for t in texts if "p" in _tags(t)]
            if not keys:
                missing.append(name)
            elif not any(k["p"] for k in keys):
                revoked.append(name)
            else:
                found.append(selector + ("" if holder == name else f" (CNAME to {holder})"))
    except DnsTrouble as exc:
        return _trouble("dkim", exc)
    if missing or revoked:
        problems = [f"{n} has no DKIM key (no TXT record with p=)" for n in missing]
        problems += [f"{n} publishes an empty key (p=, a revoked key)" for n in revoked]
        if run.backend == "sendgrid":
            fix = (
                "add the CNAME records SendGrid shows under Settings > Sender Authentication "
                f"({', '.join(f'{s}._domainkey' for s in selectors)})"
            )
        else:
            fix = (
                "publish your relay's DKIM public key as a TXT record there, or correct "
                "preflight.dkim_selectors"
            )
        return failed("dkim", "; ".join(problems), fix)
    return passed("dkim", f"DKIM keys published at {domain} for {', '.join(found)}")


def dmarc_row(run) -> Check:
    if run.offline:
        return skipped("dmarc", OFFLINE)
    domain = run.sender_domain
    try:
        name, records = f"_dmarc.{domain}", _dmarc_records(run.dns, f"_dmarc.{domain}")
        if not records and organizational(domain) != domain:
            # RFC 7489 6.6.3: a subdomain without its own record uses its organization's.
            name = f"_dmarc.{organizational(domain)}"
            records = _dmarc_records(run.dns, name)
    except DnsTrouble as exc:
        return _trouble("dmarc", exc)
    if not records:
        return failed(
            "dmarc",
            f"no DMARC record at _dmarc.{domain}: Gmail and Yahoo require one of bulk senders",
            f'add a TXT record at _dmarc.{domain}: "v=DMARC1; p=none; '
            f'rua=mailto:dmarc-reports@{domain}"',
        )
    if len(records) > 1:
        return failed(
            "dmarc",
            f"{name} has {len(records)} DMARC records; receivers then ignore them all",
            "keep one TXT record that starts with v=DMARC1",
        )
    tags = _tags(records[0], ";")
    policy = tags.get("p", "").lower()
    if policy not in ("none", "quarantine", "reject"):
        return failed(
            "dmarc",
            f"the DMARC record at {name} has no valid policy (p=none, quarantine or reject): "
            f"{_show(records[0])}",
            "start it with v=DMARC1; p=none",
        )
    sender = run.settings.sender_address
    return_path = run.return_path_domain
    strict = tags.get("aspf", "r").lower() == "s"
    aligned = (
        return_path == domain if strict else organizational(return_path) == organizational(domain)
    )
    if not aligned:
        mode = "strict (aspf=s)" if strict else "relaxed"
        return warned(
            "dmarc",
            f"DMARC p={policy} at {name}, but the return path {return_path} does not align "
            f"with {sender} ({mode}): DMARC can pass only through DKIM",
            f"send bounces to an address at {domain}"
            + (" or relax the policy to aspf=r" if strict else ""),
        )
    return passed(
        "dmarc",
        f"DMARC p={policy} at {name}, aligned with {sender} (return path {return_path})",
    )


def mx_row(run) -> Check:
    if run.offline:
        return skipped("mx", OFFLINE)
    domain = run.return_path_domain
    try:
        exchanges = run.dns.mx(domain)
    except DnsTrouble as exc:
        return _trouble("mx", exc)
    if not exchanges:
        return failed(
            "mx",
            f"no MX record for {domain}: bounces to the return path have nowhere to go",
            f"add an MX record for {domain} (or send bounces to a domain that has one: "
            "smtp.envelope_from)",
        )
    if all(host in ("", ".") for _, host in exchanges):
        return failed(
            "mx",
            f"{domain} publishes a null MX (RFC 7505): it accepts no mail, so bounces are lost",
            "replace it with a real MX record, or send bounces elsewhere (smtp.envelope_from)",
        )
    shown = ", ".join(f"{host} ({pref})" for pref, host in exchanges[:3])
    more = f" and {len(exchanges) - 3} more" if len(exchanges) > 3 else ""
    return passed("mx", f"bounces to {domain} go to {shown}{more}")


# -- helpers ------------------------------------------------------------------------------


class _Relay:
    """What must appear in SPF: SendGrid, or the SMTP relay (by name, domain or address)."""

    def __init__(self, host: str, sendgrid: bool, addresses: list[str]) -> None:
        self.host, self.sendgrid, self.addresses = host, sendgrid, addresses
        self.domain = host if host.count(".") < 2 else host.split(".", 1)[1]
        self.loopback = _is_loopback(host) or any(_is_loopback(a) for a in addresses)

    @classmethod
    def of(cls, run) -> _Relay:
        if run.backend == "sendgrid":
            return cls(SENDGRID_SPF, True, [])
        host = run.relay_host.lower().rstrip(".")
        if _ip(host) is not None:
            return cls(host, False, [host])
        if host == "localhost":
            return cls(host, False, ["127.0.0.1"])
        try:
            addresses = run.dns.addresses(host) if host else []
        except DnsTrouble:
            addresses = []  # the name still counts; only ip4:/ip6: terms need addresses
        return cls(host, False, addresses)

    @property
    def label(self) -> str:
        return "SendGrid" if self.sendgrid else f"the relay {self.host}"

    @property
    def mechanism(self) -> str:
        if self.sendgrid:
            return f"include:{SENDGRID_SPF}"
        ip = _ip(self.host)
        if ip is not None:
            return f"ip{ip.version}:{self.host}"
        return f"include:{self.domain}"

    def matches_name(self, target: str) -> bool:
        target = target.lower().rstrip(".")
        if self.sendgrid:
            return target == SENDGRID_SPF or target.endswith("." + SENDGRID_SPF)
        if _ip(self.host) is not None:
            return False
        return target in (self.host, self.domain) or target.endswith("." + self.domain)

    def matches_network(self, network: str) -> bool:
        try:
            net = ipaddress.ip_network(network, strict=False)
        except ValueError:
            return False
        return any((ip := _ip(a)) is not None and ip in net for a in self.addresses)


class _SpfWalk:
    """Follows include: and redirect= (at most the RFC's 10 lookups) looking for the relay."""

    def __init__(self, lookup: DnsLookup, relay: _Relay) -> None:
        self.lookup, self.relay = lookup, relay
        self.lookups = 0
        self.seen: set[str] = set()

    def search(self, domain: str, record: str) -> tuple[str, str] | None:
        found = None
        queue = [(domain, record)]
        while queue:
            where, text = queue.pop(0)
            for term in text.split()[1:]:
                kind, _, value = term.lstrip("+-~?").partition(":")
                kind, _, redirect = kind.partition("=")
                kind = kind.lower()
                if kind in ("include", "a", "mx", "ptr", "exists", "redirect"):
                    self.lookups += 1
                target = (redirect if kind == "redirect" else value).split("/")[0]
                if found is None and self._matches(kind, term, target):
                    found = (term, where)
                if kind in ("include", "redirect") and target and target not in self.seen:
                    self.seen.add(target)
                    if self.lookups > SPF_LOOKUP_LIMIT:
                        return found
                    records = _spf_records(self.lookup, target)
                    if records:
                        queue.append((target, records[0]))
        return found

    def _matches(self, kind: str, term: str, target: str) -> bool:
        if term.startswith(("-", "~", "?")):  # fail, softfail, neutral: not an authorization
            return False
        if kind in ("ip4", "ip6"):
            return self.relay.matches_network(term.lstrip("+").partition(":")[2])
        return kind in ("include", "a", "mx", "redirect") and self.relay.matches_name(target)


def _spf_records(lookup: DnsLookup, domain: str) -> list[str]:
    texts, _ = lookup.txt(domain)
    return [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


def _dmarc_records(lookup: DnsLookup, name: str) -> list[str]:
    texts, _ = lookup.txt(name)
    return [t for t in texts if t.replace(" ", "").upper().startswith("V=DMARC1")]


def organizational(domain: str) -> str:
    """The registrable domain, approximated by its last two labels (no public suffix list:
    under co.uk and the like, set preflight.return_path_domain to say what aligns)."""
    labels = domain.lower().rstrip(".").split(".")
    return ".".join(labels[-2:])


def _tags(text: str, separator: str = ";") -> dict[str, str]:
    tags: dict[str, str] = {}
    for part in text.split(separator):
        key, eq, value = part.partition("=")
        if eq:
            tags.setdefault(key.strip().lower(), "".join(value.split()))
    return tags


def _trouble(row: str, exc: DnsTrouble) -> Check:
    return failed(
        row,
        str(exc),
        f"check the network, or preflight.dns.nameserver in newsletter.yaml; --skip-preflight "
        f"{row} sends anyway",
    )


def _ip(text: str):
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


def _is_loopback(text: str) -> bool:
    ip = _ip(text)
    return text == "localhost" or (ip is not None and ip.is_loopback)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _show(record: str) -> str:
    record = "".join(c if c.isprintable() else "?" for c in record)
    return record if len(record) <= SHOWN_CHARS else record[: SHOWN_CHARS - 3] + "..."
