"""Preflight's DNS rows (spf, dkim, dmarc, mx) against a real DNS server on 127.0.0.1.

`ZoneServer` is dnslib's server (UDP and TCP on one free port) answering from a zone
written in the test, CNAMEs followed inside it as a recursive resolver would; dnspython
asks it exactly as it would ask the system's resolver.
"""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from composer.preflight import run_preflight
from composer.preflight.config import config_of
from composer.preflight.model import ROW_IDS, Status
from composer.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
ISSUE = ROOT / "issues" / "2025-05.rst"
DNS_ROWS = ("spf", "dkim", "dmarc", "mx")
KEY = "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFC"

SENDGRID_ZONE = f"""
covar.com. 300 IN TXT "v=spf1 include:sendgrid.net ~all"
covar.com. 300 IN MX 10 mx1.covar.com.
covar.com. 300 IN MX 20 mx2.covar.com.
_dmarc.covar.com. 300 IN TXT "v=DMARC1; p=none; rua=mailto:dmarc@covar.com"
s1._domainkey.covar.com. 300 IN CNAME s1.domainkey.u1.wl.sendgrid.net.
s2._domainkey.covar.com. 300 IN CNAME s2.domainkey.u1.wl.sendgrid.net.
s1.domainkey.u1.wl.sendgrid.net. 300 IN TXT "k=rsa; t=s; p={KEY}"
s2.domainkey.u1.wl.sendgrid.net. 300 IN TXT "k=rsa; t=s; p={KEY}"
"""

SMTP_ZONE = f"""
covar.com. 300 IN TXT "v=spf1 include:_spf.covar.com -all"
covar.com. 300 IN TXT "google-site-verification=abc"
_spf.covar.com. 300 IN TXT "v=spf1 include:relay.example ~all"
relay.example. 300 IN TXT "v=spf1 ip4:192.0.2.0/24 -all"
smtp.relay.example. 300 IN A 192.0.2.10
mail._domainkey.covar.com. 300 IN TXT "v=DKIM1; k=rsa; p={KEY}"
_dmarc.covar.com. 300 IN TXT "v=DMARC1; p=quarantine; aspf=r"
covar.com. 300 IN MX 10 mx1.covar.com.
"""


class _Quiet:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


class ZoneServer:
    """A real DNS server on 127.0.0.1, UDP and TCP on one free port, serving `zone`."""

    def __init__(self, zone: str, udp_limit: int = 1232) -> None:
        from dnslib import RR

        self.records = RR.fromZone(zone) if zone.strip() else []
        self.udp_limit = udp_limit
        self.queries: list[tuple[str, str]] = []

    def resolve(self, request, handler):
        from dnslib import QTYPE, RCODE

        reply = request.reply()
        qtype = QTYPE[request.q.qtype]
        self.queries.append((str(request.q.qname), qtype))
        name, known = request.q.qname, False
        for _ in range(8):  # follow CNAMEs inside the zone, as a recursive server does
            here = [rr for rr in self.records if rr.rname == name]
            known = known or bool(here)
            cname = [rr for rr in here if QTYPE[rr.rtype] == "CNAME"]
            if cname and qtype != "CNAME":
                reply.add_answer(cname[0])
                name = cname[0].rdata.label
                continue
            for rr in here:
                if QTYPE[rr.rtype] == qtype:
                    reply.add_answer(rr)
            break
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply

    def __enter__(self) -> ZoneServer:
        from dnslib.server import DNSHandler, DNSServer

        limit = self.udp_limit

        class Handler(DNSHandler):
            def get_reply(self, data):
                # Over UDP, an answer over the limit is sent empty with TC set (and, unlike
                # dnslib's truncate(), with its question): the client asks again over TCP.
                from dnslib import DNSRecord

                reply = super().get_reply(data)
                if self.protocol == "udp" and len(reply) > limit:
                    empty = DNSRecord.parse(data).reply()
                    empty.header.tc = 1
                    reply = empty.pack()
                return reply

        for _ in range(20):
            udp = DNSServer(self, address="127.0.0.1", port=0, logger=_Quiet(), handler=Handler)
            self.port = udp.server.server_address[1]
            try:
                tcp = DNSServer(
                    self, address="127.0.0.1", port=self.port, tcp=True, logger=_Quiet(),
                    handler=Handler,
                )  # fmt: skip
            except OSError:
                udp.server.server_close()
                continue
            break
        self.servers = (udp.server, tcp.server)
        for server in self.servers:
            threading.Thread(
                target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            ).start()
        return self

    def __exit__(self, *exc) -> None:
        for server in self.servers:
            server.shutdown()
            server.server_close()

    def preflight_block(self, **extra) -> dict:
        return {"dns": {"nameserver": "127.0.0.1", "port": self.port, "timeout": 2}, **extra}


def make_settings(tmp_path: Path, backend: str, preflight: dict, **blocks):
    """A real newsletter.yaml (the project's, with these blocks), read by load_settings."""
    data = yaml.safe_load((ROOT / "newsletter.yaml").read_text())
    data["delivery"]["backend"] = backend
    data["preflight"] = preflight
    data["subscribers"]["database"] = str(tmp_path / "subscribers.db")
    for name, block in blocks.items():
        if name == "sender_address":
            data["sender"]["address"] = block
        else:
            data[name] = block
    path = tmp_path / "newsletter.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_settings(path)


@pytest.fixture(scope="module")
def staged():
    from composer.render.stage import check_and_render

    return check_and_render(ISSUE, load_settings(ROOT / "newsletter.yaml"))


def dns_rows(settings, staged) -> dict:
    report = run_preflight(
        ISSUE,
        settings,
        staged=staged,
        skip=[r for r in ROW_IDS if r not in DNS_ROWS],
    )
    return {row.id: row for row in report.rows if row.id in DNS_ROWS}


def sendgrid_rows(tmp_path, staged, zone, **preflight):
    with ZoneServer(zone) as server:
        settings = make_settings(tmp_path, "sendgrid", server.preflight_block(**preflight))
        return dns_rows(settings, staged)


def smtp_rows(tmp_path, staged, zone, smtp=None, sender_address=None, **preflight):
    smtp = smtp or {"host": "smtp.relay.example"}
    extra = {"sender_address": sender_address} if sender_address else {}
    with ZoneServer(zone) as server:
        block = server.preflight_block(**{"dkim_selectors": ["mail"], **preflight})
        settings = make_settings(tmp_path, "smtp", block, smtp=smtp, **extra)
        return dns_rows(settings, staged)


def without(zone: str, *starts: str) -> str:
    return "\n".join(line for line in zone.splitlines() if not line.startswith(starts))


# -- good zones --------------------------------------------------------------------------


def test_sendgrid_zone_passes_every_dns_row(tmp_path, staged) -> None:
    rows = sendgrid_rows(tmp_path, staged, SENDGRID_ZONE)
    assert {r.status for r in rows.values()} == {Status.PASS}
    assert rows["spf"].message == (
        "the SPF record of covar.com authorizes SendGrid: include:sendgrid.net"
    )
    assert rows["dkim"].message == (
        "DKIM keys published at covar.com for s1 (CNAME to s1.domainkey.u1.wl.sendgrid.net), "
        "s2 (CNAME to s2.domainkey.u1.wl.sendgrid.net)"
    )
    assert rows["dmarc"].message == (
        "DMARC p=none at _dmarc.covar.com, aligned with zeitgeist@covar.com (return path covar.com)"
    )
    assert rows["mx"].message == "bounces to covar.com go to mx1.covar.com (10), mx2.covar.com (20)"


def test_smtp_zone_passes_through_a_nested_include(tmp_path, staged) -> None:
    rows = smtp_rows(tmp_path, staged, SMTP_ZONE)
    assert {r.status for r in rows.values()} == {Status.PASS}, rows
    assert rows["spf"].message == (
        "the SPF record of covar.com authorizes the relay smtp.relay.example: "
        "include:relay.example (through _spf.covar.com)"
    )
    assert rows["dkim"].message == "DKIM keys published at covar.com for mail"
    assert rows["dmarc"].message == (
        "DMARC p=quarantine at _dmarc.covar.com, aligned with zeitgeist@covar.com "
        "(return path covar.com)"
    )


def test_spf_ip4_range_covering_the_relay_address_passes(tmp_path, staged) -> None:
    zone = without(SMTP_ZONE, "covar.com. 300 IN TXT") + (
        '\ncovar.com. 300 IN TXT "v=spf1 mx ip4:198.51.100.7 ip4:192.0.2.0/24 -all"'
    )
    rows = smtp_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.PASS
    assert rows["spf"].message == (
        "the SPF record of covar.com authorizes the relay smtp.relay.example: ip4:192.0.2.0/24"
    )


def test_dmarc_of_the_organizational_domain_covers_a_subdomain_sender(tmp_path, staged) -> None:
    zone = SMTP_ZONE.replace(
        'covar.com. 300 IN TXT "v=spf1', 'letters.covar.com. 300 IN TXT "v=spf1'
    )
    zone = zone.replace("mail._domainkey.covar.com.", "mail._domainkey.letters.covar.com.")
    zone += "\nletters.covar.com. 300 IN MX 10 mx1.covar.com."
    rows = smtp_rows(tmp_path, staged, zone, sender_address="news@letters.covar.com")
    assert rows["dmarc"].status is Status.PASS
    assert rows["dmarc"].message == (
        "DMARC p=quarantine at _dmarc.covar.com, aligned with news@letters.covar.com "
        "(return path letters.covar.com)"
    )


# -- each broken record ------------------------------------------------------------------


def test_no_spf_record_fails_with_the_record_to_add(tmp_path, staged) -> None:
    rows = sendgrid_rows(tmp_path, staged, without(SENDGRID_ZONE, "covar.com. 300 IN TXT"))
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message == (
        "no SPF record at covar.com: receivers cannot tell that SendGrid may send its mail"
    )
    assert rows["spf"].fix == 'add a TXT record at covar.com: "v=spf1 include:sendgrid.net ~all"'


def test_spf_without_sendgrid_fails_and_quotes_the_record(tmp_path, staged) -> None:
    zone = SENDGRID_ZONE.replace("include:sendgrid.net", "include:_spf.google.com")
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message == (
        "the SPF record of covar.com does not authorize SendGrid: "
        "v=spf1 include:_spf.google.com ~all"
    )
    assert rows["spf"].fix == "add include:sendgrid.net to it"


def test_spf_that_names_the_relay_only_to_refuse_it_fails(tmp_path, staged) -> None:
    zone = without(SMTP_ZONE, "covar.com. 300 IN TXT", "relay.example.") + (
        '\ncovar.com. 300 IN TXT "v=spf1 -include:relay.example ~ip4:192.0.2.10 -all"'
        "\nsmtp.relay.example. 300 IN A 192.0.2.10"
    )
    rows = smtp_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message.startswith(
        "the SPF record of covar.com does not authorize the relay smtp.relay.example: "
    )
    assert rows["spf"].fix == "add include:relay.example to it"


def test_two_spf_records_fail(tmp_path, staged) -> None:
    zone = SENDGRID_ZONE + '\ncovar.com. 300 IN TXT "v=spf1 include:mailgun.org ~all"'
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message == (
        "covar.com has 2 SPF records; receivers treat that as an error (RFC 7208 permerror)"
    )


def test_spf_over_ten_lookups_fails(tmp_path, staged) -> None:
    chain = "\n".join(
        f'l{i}.covar.com. 300 IN TXT "v=spf1 include:l{i + 1}.covar.com ~all"' for i in range(12)
    )
    zone = without(SENDGRID_ZONE, "covar.com. 300 IN TXT") + (
        '\ncovar.com. 300 IN TXT "v=spf1 include:l0.covar.com include:sendgrid.net ~all"\n' + chain
    )
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message == (
        "the SPF record of covar.com needs more than 10 DNS lookups; receivers give up on it "
        "(RFC 7208 permerror)"
    )


def test_spf_include_loop_ends(tmp_path, staged) -> None:
    zone = without(SENDGRID_ZONE, "covar.com. 300 IN TXT") + (
        '\ncovar.com. 300 IN TXT "v=spf1 include:a.covar.com ~all"'
        '\na.covar.com. 300 IN TXT "v=spf1 include:b.covar.com ~all"'
        '\nb.covar.com. 300 IN TXT "v=spf1 include:a.covar.com redirect=covar.com"'
    )
    started = time.monotonic()
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert time.monotonic() - started < 5
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message == (
        "the SPF record of covar.com does not authorize SendGrid: v=spf1 include:a.covar.com ~all"
    )


def test_missing_dkim_selector_fails_with_sendgrids_records(tmp_path, staged) -> None:
    zone = without(SENDGRID_ZONE, "s2.")
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["dkim"].status is Status.FAIL
    assert rows["dkim"].message == (
        "s2._domainkey.covar.com has no DKIM key (no TXT record with p=)"
    )
    assert rows["dkim"].fix == (
        "add the CNAME records SendGrid shows under Settings > Sender Authentication "
        "(s1._domainkey, s2._domainkey)"
    )


def test_dkim_cname_to_nowhere_fails(tmp_path, staged) -> None:
    zone = without(SENDGRID_ZONE, "s1.domainkey.")
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["dkim"].status is Status.FAIL
    assert rows["dkim"].message == "s1._domainkey.covar.com has no DKIM key (no TXT record with p=)"


def test_revoked_dkim_key_fails(tmp_path, staged) -> None:
    zone = SMTP_ZONE.replace(f"p={KEY}", "p=")
    rows = smtp_rows(tmp_path, staged, zone)
    assert rows["dkim"].status is Status.FAIL
    assert rows["dkim"].message == (
        "mail._domainkey.covar.com publishes an empty key (p=, a revoked key)"
    )
    assert rows["dkim"].fix == (
        "publish your relay's DKIM public key as a TXT record there, or correct "
        "preflight.dkim_selectors"
    )


def test_smtp_without_selectors_warns(tmp_path, staged) -> None:
    with ZoneServer(SMTP_ZONE) as server:
        settings = make_settings(
            tmp_path, "smtp", server.preflight_block(), smtp={"host": "smtp.relay.example"}
        )
        rows = dns_rows(settings, staged)
    assert rows["dkim"].status is Status.WARN
    assert rows["dkim"].message == (
        "no DKIM selector to check: preflight does not know which one your relay signs with"
    )


def test_no_dmarc_record_fails(tmp_path, staged) -> None:
    rows = sendgrid_rows(tmp_path, staged, without(SENDGRID_ZONE, "_dmarc."))
    assert rows["dmarc"].status is Status.FAIL
    assert rows["dmarc"].message == (
        "no DMARC record at _dmarc.covar.com: Gmail and Yahoo require one of bulk senders"
    )
    assert rows["dmarc"].fix == (
        'add a TXT record at _dmarc.covar.com: "v=DMARC1; p=none; '
        'rua=mailto:dmarc-reports@covar.com"'
    )


def test_dmarc_without_a_policy_fails(tmp_path, staged) -> None:
    zone = SENDGRID_ZONE.replace("v=DMARC1; p=none;", "v=DMARC1; p=monitor;")
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["dmarc"].status is Status.FAIL
    assert rows["dmarc"].message == (
        "the DMARC record at _dmarc.covar.com has no valid policy (p=none, quarantine or "
        "reject): v=DMARC1; p=monitor; rua=mailto:dmarc@covar.com"
    )


def test_return_path_elsewhere_does_not_align(tmp_path, staged) -> None:
    zone = SMTP_ZONE + "\nbounce-service.net. 300 IN MX 10 in.bounce-service.net."
    smtp = {"host": "smtp.relay.example", "envelope_from": "b@bounce-service.net"}
    rows = smtp_rows(tmp_path, staged, zone, smtp=smtp)
    assert rows["dmarc"].status is Status.WARN
    assert rows["dmarc"].message == (
        "DMARC p=quarantine at _dmarc.covar.com, but the return path bounce-service.net does "
        "not align with zeitgeist@covar.com (relaxed): DMARC can pass only through DKIM"
    )
    assert rows["mx"].message == "bounces to bounce-service.net go to in.bounce-service.net (10)"


def test_strict_alignment_refuses_a_subdomain_return_path(tmp_path, staged) -> None:
    zone = SMTP_ZONE.replace("aspf=r", "aspf=s") + "\nbounces.covar.com. 300 IN MX 5 mx1.covar.com."
    smtp = {"host": "smtp.relay.example", "envelope_from": "b@bounces.covar.com"}
    rows = smtp_rows(tmp_path, staged, zone, smtp=smtp)
    assert rows["dmarc"].status is Status.WARN
    assert "(strict (aspf=s))" in rows["dmarc"].message
    assert (
        rows["dmarc"].fix == "send bounces to an address at covar.com or relax the policy to aspf=r"
    )


def test_no_mx_fails(tmp_path, staged) -> None:
    rows = sendgrid_rows(tmp_path, staged, without(SENDGRID_ZONE, "covar.com. 300 IN MX"))
    assert rows["mx"].status is Status.FAIL
    assert rows["mx"].message == (
        "no MX record for covar.com: bounces to the return path have nowhere to go"
    )


def test_null_mx_fails(tmp_path, staged) -> None:
    zone = without(SENDGRID_ZONE, "covar.com. 300 IN MX") + "\ncovar.com. 300 IN MX 0 ."
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["mx"].status is Status.FAIL
    assert rows["mx"].message == (
        "covar.com publishes a null MX (RFC 7505): it accepts no mail, so bounces are lost"
    )


# -- hostile and broken servers ----------------------------------------------------------


def test_a_huge_spf_record_comes_over_tcp(tmp_path, staged) -> None:
    filler = " ".join(f"ip4:203.0.113.{i}" for i in range(200))
    strings = " ".join(f'"{filler[i : i + 250]}"' for i in range(0, len(filler), 250))
    zone = without(SENDGRID_ZONE, "covar.com. 300 IN TXT") + (
        f'\ncovar.com. 300 IN TXT "v=spf1 " {strings} " include:sendgrid.net ~all"'
    )
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.PASS, rows["spf"]


def test_binary_txt_record_is_shown_safely(tmp_path, staged) -> None:
    zone = without(SENDGRID_ZONE, "covar.com. 300 IN TXT") + (
        '\ncovar.com. 300 IN TXT "v=spf1 \\255\\000\\027[31m ~all"'
    )
    rows = sendgrid_rows(tmp_path, staged, zone)
    assert rows["spf"].status is Status.FAIL
    assert rows["spf"].message.startswith("the SPF record of covar.com does not authorize")
    assert "\x1b" not in rows["spf"].message and "\x00" not in rows["spf"].message


def test_silent_dns_server_fails_every_row_in_bounded_time(tmp_path, staged) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    port = silent.getsockname()[1]
    try:
        block = {"dns": {"nameserver": "127.0.0.1", "port": port, "timeout": 0.5}}
        settings = make_settings(tmp_path, "sendgrid", block)
        started = time.monotonic()
        rows = dns_rows(settings, staged)
        elapsed = time.monotonic() - started
    finally:
        silent.close()
    assert elapsed < 2.5  # one timeout, not one a row
    for row in rows.values():
        assert row.status is Status.FAIL
    assert rows["spf"].message == (
        f"no DNS answer for TXT covar.com within 0.5 s (nameserver 127.0.0.1:{port})"
    )
    assert rows["mx"].fix == (
        "check the network, or preflight.dns.nameserver in newsletter.yaml; --skip-preflight "
        "mx sends anyway"
    )


def test_the_outbox_skips_dns_without_asking(tmp_path, staged) -> None:
    with ZoneServer(SENDGRID_ZONE) as server:
        settings = make_settings(tmp_path, "outbox", server.preflight_block())
        rows = dns_rows(settings, staged)
        assert server.queries == []
    assert {r.status for r in rows.values()} == {Status.SKIPPED}
    assert rows["spf"].message == "the outbox backend sends nothing over the internet"


def test_preflight_block_is_read_from_newsletter_yaml(tmp_path) -> None:
    settings = make_settings(
        tmp_path,
        "sendgrid",
        {"dkim_selectors": "k1", "dns": {"nameserver": "127.0.0.1", "port": 5353}},
    )
    config = config_of(settings)
    assert config.dkim_selectors == ("k1",)
    assert (config.dns_nameserver, config.dns_port, config.dns_timeout) == ("127.0.0.1", 5353, 3.0)


def test_bad_preflight_settings_name_their_line(tmp_path) -> None:
    from composer.errors import SettingsError

    with pytest.raises(SettingsError) as caught:
        make_settings(tmp_path, "smtp", {"dns": {"port": 70000}, "bounced_wran": 3})
    text = str(caught.value)
    assert "preflight.dns.port: expected a whole number from 1 to 65535, got 70000" in text
    assert 'preflight.bounced_wran: unknown key; did you mean "bounced_warn"?' in text


def test_a_nameserver_that_is_not_an_address_fails_the_rows(tmp_path, staged) -> None:
    block = {"dns": {"nameserver": "dns.example.com; rm -rf /"}}
    rows = dns_rows(make_settings(tmp_path, "sendgrid", block), staged)
    for row in rows.values():
        assert row.status is Status.FAIL
        assert row.message == (
            "preflight.dns.nameserver: 'dns.example.com; rm -rf /' is not an IP address"
        )


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ("a..b", "a..b._domainkey.covar.com is not a valid DNS name"),
        ("s\\1x", "s\\1x._domainkey.covar.com is not a valid DNS name"),
    ],
)
def test_hostile_dkim_selectors_fail_in_one_line(tmp_path, staged, selector, message) -> None:
    rows = smtp_rows(tmp_path, staged, SMTP_ZONE, dkim_selectors=[selector])
    assert rows["dkim"].status is Status.FAIL
    assert rows["dkim"].message == message
    assert rows["spf"].status is Status.PASS  # one bad setting spoils one row


def test_an_overlong_selector_is_refused_at_its_line(tmp_path) -> None:
    from composer.errors import SettingsError

    with pytest.raises(SettingsError) as caught:
        make_settings(tmp_path, "smtp", {"dkim_selectors": ["x" * 64]})
    assert str(caught.value).endswith(
        "newsletter.yaml:14: preflight.dkim_selectors: at most 63 characters, got 64"
    )
