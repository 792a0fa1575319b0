"""The DNS cut-over checklist against a real DNS server on loopback (dnspython's wire format both ways)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.discovery.cutover import check_domain, resolver_at, spf_with_microsoft
from migrate.reporting import from_journal
from migrate.reporting.render import render_dns_text, render_html
from migrate.reporting.strings import STRINGS
from tests.reporting.journals import write_journal
from tests.servers.dns import DnsServer, Zone

# A small business on its old provider, a week before the move.
OLD: Zone = {
    ("kontoret.se.", "MX"): (3600, ["10 mx1.oldhost.se.", "20 mx2.oldhost.se."]),
    ("kontoret.se.", "TXT"): (3600, ['"v=spf1 include:_spf.oldhost.se ~all"', '"google-site-verification=abc"']),
    ("autodiscover.kontoret.se.", "A"): (3600, ["192.0.2.10"]),
    ("selector1._domainkey.kontoret.se.", "CNAME"): (3600, ["s1._domainkey.oldhost.se."]),
}
# The same domain after the cut-over, done right.
DONE: Zone = {
    ("kontoret.se.", "MX"): (300, ["0 kontoret-se.mail.protection.outlook.com."]),
    ("kontoret.se.", "TXT"): (3600, ['"v=spf1 include:spf.protection.outlook.com -all"']),
    ("autodiscover.kontoret.se.", "CNAME"): (3600, ["autodiscover.outlook.com."]),
    ("selector1._domainkey.kontoret.se.", "CNAME"):
        (3600, ["selector1-kontoret-se._domainkey.kontoret.onmicrosoft.com."]),
    ("selector2._domainkey.kontoret.se.", "CNAME"):
        (3600, ["selector2-kontoret-se._domainkey.kontoret.onmicrosoft.com."]),
    ("_dmarc.kontoret.se.", "TXT"): (3600, ['"v=DMARC1; p=quarantine; rua=mailto:dmarc@kontoret.se"']),
}


@pytest.fixture
def old() -> Iterator[DnsServer]:
    server = DnsServer(OLD).start()
    yield server
    server.stop()


@pytest.fixture
def done() -> Iterator[DnsServer]:
    server = DnsServer(DONE).start()
    yield server
    server.stop()


def verdicts(server: DnsServer, tenant: str | None = "kontoret") -> dict[str, tuple[str, str]]:
    check = check_domain("kontoret.se", resolver_at(f"127.0.0.1:{server.port}"), tenant=tenant)
    return {r.record: (r.verdict, r.advice) for r in check.records}


def test_before_the_move_every_record_says_what_to_do(old: DnsServer) -> None:
    check = check_domain("Kontoret.SE.", resolver_at(f"127.0.0.1:{old.port}"), tenant="kontoret")
    got = {r.record: r for r in check.records}
    assert got["mx"].verdict == "change" and got["mx"].advice == "advice_mx_old"
    assert got["mx"].current == ["10 mx1.oldhost.se", "20 mx2.oldhost.se"] and check.mx_ttl == 3600
    assert got["mx"].wanted == "0 kontoret-se.mail.protection.outlook.com"
    assert got["spf"].verdict == "change" and got["spf"].advice == "advice_spf_add"
    assert got["spf"].current == ["v=spf1 include:_spf.oldhost.se ~all"]  # the verification TXT is not SPF
    assert got["spf"].wanted == "v=spf1 include:spf.protection.outlook.com include:_spf.oldhost.se ~all"
    assert got["autodiscover"].verdict == "change" and got["autodiscover"].current == ["A 192.0.2.10"]
    assert got["dkim1"].verdict == "change" and got["dkim1"].advice == "advice_dkim_old"
    assert got["dkim1"].wanted == "selector1-kontoret-se._domainkey.kontoret.onmicrosoft.com"
    assert got["dkim2"].verdict == "missing"
    assert got["dmarc"].verdict == "missing" and got["dmarc"].wanted.startswith("v=DMARC1; p=none")
    assert not check.ready


def test_after_the_move_everything_is_already_right(done: DnsServer) -> None:
    assert set(verdicts(done).values()) == {("right", f"advice_{r}_right") for r in ("mx", "spf", "autodiscover",
                                                                                   "dkim", "dmarc")}
    # Without the tenant, DKIM targets under any onmicrosoft.com tenant count as Microsoft's.
    assert verdicts(done, tenant=None)["dkim1"] == ("right", "advice_dkim_right")
    # With another tenant they do not.
    assert verdicts(done, tenant="other")["dkim2"][0] == "change"


def test_two_spf_records_or_mixed_mx_are_to_change() -> None:
    server = DnsServer({
        ("kontoret.se.", "MX"): (300, ["0 kontoret-se.mail.protection.outlook.com.", "10 mx1.oldhost.se."]),
        ("kontoret.se.", "TXT"): (300, ['"v=spf1 include:spf.protection.outlook.com -all"', '"v=spf1 mx -all"']),
        ("_dmarc.kontoret.se.", "TXT"): (300, ['"v=DMARC1; p=none"']),
    }).start()
    try:
        got = verdicts(server)
    finally:
        server.stop()
    assert got["mx"] == ("change", "advice_mx_mixed")
    assert got["spf"] == ("change", "advice_spf_many")
    assert got["dmarc"] == ("right", "advice_dmarc_none")
    assert got["autodiscover"] == ("missing", "advice_autodiscover_missing")  # NXDOMAIN


def test_a_dead_server_is_unknown_not_missing() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))  # bound, never answers
    try:
        check = check_domain("kontoret.se", resolver_at(f"127.0.0.1:{sock.getsockname()[1]}"), timeout=0.5)
    finally:
        sock.close()
    assert {r.verdict for r in check.records} == {"unknown"}
    assert all(r.detail for r in check.records)


def test_spf_keeps_everything_else() -> None:
    assert spf_with_microsoft("v=spf1 ip4:192.0.2.1 -all") == \
        "v=spf1 include:spf.protection.outlook.com ip4:192.0.2.1 -all"
    assert spf_with_microsoft("v=spf1 include:spf.protection.outlook.com -all") == \
        "v=spf1 include:spf.protection.outlook.com -all"


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_checklist_text_and_report_section(old: DnsServer, lang: str) -> None:
    check = check_domain("kontoret.se", resolver_at(f"127.0.0.1:{old.port}"), tenant="kontoret")
    t = STRINGS[lang]
    text = render_dns_text([check], lang)
    assert t["dns_title"] % {"domain": "kontoret.se"} in text
    assert f"[{t['dns_change']}] {t['dns_mx']}" in text and f"[{t['dns_missing']}] {t['dns_dmarc']}" in text
    ttl = "3,600" if lang == "en" else "3\u00a0600"
    wait = "1\u00a0h 00\u00a0min" if lang == "en" else "1\u00a0tim 00\u00a0min"
    assert "1. " + t["dns_step_ttl"] % {"ttl": ttl, "wait": wait} in text  # lower the TTL first: it is 3600 s now
    assert "8. " + t["dns_step_ttl_back"] in text and "9. " not in text
    with tempfile.TemporaryDirectory() as folder:  # a real report with the checklist in it
        data = from_journal(write_journal(Path(folder) / "j.sqlite"))
    html = render_html(data, lang, [check]).replace("<wbr>", "")  # line-break chances are not text
    assert t["dns_title"] % {"domain": "kontoret.se"} in html and "kontoret-se.mail.protection.outlook.com" in html


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "160"}, stdin=subprocess.DEVNULL, timeout=60)


def test_cli_json_and_exit_codes(old: DnsServer, done: DnsServer) -> None:
    result = cli("dns-check", "kontoret.se", "--tenant", "kontoret.onmicrosoft.com", "--json",
                 "--dns-server", f"127.0.0.1:{old.port}")
    assert result.returncode == 1, result.stderr  # things to change
    (doc,) = json.loads(result.stdout)
    assert doc["version"] == 1 and doc["domain"] == "kontoret.se" and doc["tenant"] == "kontoret.onmicrosoft.com"
    assert [r["record"] for r in doc["records"]] == ["mx", "spf", "autodiscover", "dkim1", "dkim2", "dmarc"]
    ready = cli("dns-check", "kontoret.se", "--tenant", "kontoret", "--dns-server", f"127.0.0.1:{done.port}",
                "--lang", "sv")
    assert ready.returncode == 0, ready.stdout + ready.stderr
    assert "[redan rätt] Inkommande post (MX)" in ready.stdout


def test_cli_bad_input_is_one_line() -> None:
    result = cli("dns-check", "not a domain")
    assert result.returncode == 2 and "is not a domain name" in result.stderr and "Traceback" not in result.stderr
    result = cli("dns-check", "kontoret.se", "--dns-server", "127.0.0.1:99999")
    assert result.returncode == 2 and "--dns-server" in result.stderr and "Traceback" not in result.stderr
