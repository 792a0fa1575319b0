"""Discovery against loopback only: autoconfig over HTTPS, MX from a DNS server, probes of a real Dovecot."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from migrate.discovery.autoconfig import fetch_autoconfig, parse_autoconfig
from migrate.discovery.discover import discover
from migrate.discovery.mx import mx_hosts
from migrate.discovery.network import Network
from migrate.discovery.playbooks import all_playbooks
from migrate.discovery.probe import probe_one, probe_servers
from migrate.discovery.settings import ServerSetting
from tests.servers.dovecot import Dovecot
from tests.wizard.conftest import resolver_for
from tests.wizard.servers import AutoconfigServer, DnsServer, config_xml

ADDRESS = "anna@example.test"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket closes


def dovecot_map(dovecot: Dovecot) -> dict[tuple[str, int], tuple[str, int]]:
    ports = dovecot.ports
    mapping = {}
    for name in ("imap.example.test", "pop.example.test", "mail.example.test"):
        mapping.update({(name, 993): ("127.0.0.1", ports["imaps"]), (name, 143): ("127.0.0.1", ports["imap"]),
                        (name, 995): ("127.0.0.1", ports["pop3s"]), (name, 110): ("127.0.0.1", ports["pop3"])})
    return mapping


def test_autoconfig_tries_the_autoconfig_host_then_the_well_known_path(autoconfig: AutoconfigServer,
                                                                       ca_file: Path) -> None:
    autoconfig.pages["/w/example.test/.well-known/autoconfig/mail/config-v1.1.xml"] = config_xml(
        "imap.example.test", 993, username="%EMAILLOCALPART%")
    network = Network(autoconfig_bases=autoconfig.bases(), ca_file=ca_file)
    found, notes = fetch_autoconfig("example.test", ADDRESS, network)
    assert found == [ServerSetting("imap", "imap.example.test", 993, "tls", "anna",
                                   f"autoconfig {autoconfig.base}/w/example.test/.well-known/autoconfig")]
    assert [p.split("?")[0] for p in autoconfig.requests] == [
        "/d/example.test/mail/config-v1.1.xml", "/w/example.test/.well-known/autoconfig/mail/config-v1.1.xml"]
    assert "emailaddress=anna@example.test" in autoconfig.requests[0]
    assert notes == [f"{autoconfig.base}/d/example.test: HTTP 404"]
    assert found[0].url() == "imaps://anna@imap.example.test"


def test_autoconfig_over_an_untrusted_certificate_is_not_believed(autoconfig: AutoconfigServer) -> None:
    autoconfig.pages["/d/example.test/mail/config-v1.1.xml"] = config_xml("evil.example", 993)
    found, notes = fetch_autoconfig("example.test", ADDRESS, Network(autoconfig_bases=autoconfig.bases()))
    assert found == []
    assert all("not trusted" in n for n in notes)


def test_autoconfig_parsing_skips_broken_entries_and_refuses_entities() -> None:
    xml = b"""<clientConfig><emailProvider>
      <incomingServer type="pop3"><hostname>pop.example.test</hostname><port>995</port>
        <socketType>SSL</socketType><username>%EMAILADDRESS%</username>
        <authentication>OAuth2</authentication></incomingServer>
      <incomingServer type="imap"><hostname>x</hostname><port>abc</port><socketType>SSL</socketType></incomingServer>
      <incomingServer type="exchange"><hostname>ews</hostname><port>443</port><socketType>SSL</socketType>
      </incomingServer></emailProvider></clientConfig>"""
    found = parse_autoconfig(xml, ADDRESS, "test")
    assert [(s.protocol, s.host, s.port, s.oauth_only) for s in found] == [("pop", "pop.example.test", 995, True)]
    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clientConfig>&a;</clientConfig>'
    assert parse_autoconfig(bomb, ADDRESS, "test") == []


def test_mx_lookup_names_the_provider(dns_server: DnsServer) -> None:
    dns_server.zone.update({
        ("example.test.", "MX"): ["20 alt1.aspmx.l.google.com.", "10 aspmx.l.google.com."],
        ("yahoo-hosted.test.", "MX"): ["1 mx-aol.mail.gm0.yahoodns.net."],
        ("nomail.test.", "A"): ["127.0.0.1"],
    })
    network = Network(resolver=resolver_for(dns_server))
    hosts, note = mx_hosts("example.test", network)
    assert (hosts, note) == (["aspmx.l.google.com", "alt1.aspmx.l.google.com"], None)
    assert mx_hosts("nomail.test", network) == ([], "nomail.test has no MX record")
    assert mx_hosts("missing.test", network) == ([], "the domain missing.test does not exist in DNS")
    books = all_playbooks()
    found = discover("anna@example.test", books, Network(resolver=resolver_for(dns_server),
                                                         steps=frozenset({"playbook", "mx"})))
    assert found.playbook is not None and found.playbook.name == "gmail" and found.matched_by == "mx"
    assert found.best() is not None and found.best().url() == "imaps://anna%40example.test@imap.gmail.com"
    aol = discover("bo@yahoo-hosted.test", books, Network(resolver=resolver_for(dns_server),
                                                          steps=frozenset({"mx"})))
    assert aol.playbook is not None and aol.playbook.name == "aol"  # the more specific pattern wins over Yahoo's


def test_a_known_domain_needs_no_network() -> None:
    network = Network(autoconfig_bases=lambda d: pytest.fail("autoconfig asked"))  # type: ignore[arg-type,return-value]
    found = discover("kalle@icloud.com", all_playbooks(), network)
    assert found.playbook is not None and found.playbook.name == "icloud"
    assert found.servers[0].url() == "imaps://kalle@imap.mail.me.com"  # iCloud wants the name part only


def test_probe_finds_tls_and_starttls_and_reports_a_certificate_for_another_name(
        named_dovecot: Dovecot) -> None:
    mapping = dovecot_map(named_dovecot)
    network = Network(address_of=lambda h, p: mapping.get((h, p), ("127.0.0.1", closed_port())),
                      ca_file=named_dovecot.ca_path, timeout=3)
    assert probe_one("imap.example.test", "imap", 143, "starttls", network).ok
    assert probe_one("pop.example.test", "pop", 110, "starttls", network).ok
    wrong_name = probe_one("mail.example.test", "imap", 993, "tls", network)
    assert not wrong_name.ok and "another name" in wrong_name.detail
    untrusted = probe_one("imap.example.test", "imap", 993, "tls", Network(address_of=network.address_of))
    assert not untrusted.ok and "not trusted" in untrusted.detail
    not_pop = probe_one("imap.example.test", "pop", 993, "tls", network)  # an IMAP greeting on a POP probe
    assert not not_pop.ok
    found, probes = probe_servers("example.test", ADDRESS, network)
    assert [(s.protocol, s.host, s.security) for s in found] == [
        ("imap", "imap.example.test", "tls"), ("pop", "pop.example.test", "tls"),
        ("imap", "imap.example.test", "starttls"), ("pop", "pop.example.test", "starttls")]
    assert len(probes) == 8


def test_discover_falls_back_from_autoconfig_to_mx_to_probing(named_dovecot: Dovecot, dns_server: DnsServer,
                                                              autoconfig: AutoconfigServer, ca_file: Path,
                                                              tmp_path: Path) -> None:
    dns_server.zone[("example.test.", "MX")] = ["10 mx.unknown-host.test."]
    mapping = dovecot_map(named_dovecot)
    bundle = tmp_path / "cas.pem"  # both loopback servers' CAs, as a system's bundle holds many
    bundle.write_text(ca_file.read_text() + named_dovecot.ca_path.read_text())
    network = Network(autoconfig_bases=autoconfig.bases(), resolver=resolver_for(dns_server),
                      address_of=lambda h, p: mapping.get((h, p), ("127.0.0.1", closed_port())),
                      ca_file=bundle, timeout=3)
    found = discover(ADDRESS, all_playbooks(), network)
    assert found.playbook is None and found.mx == ["mx.unknown-host.test"]
    assert found.best() is not None and found.best().found_by == "probe"
    assert found.best().url() == "imaps://anna%40example.test@imap.example.test"
    assert len(autoconfig.requests) == 2 and ("example.test.", "MX") in dns_server.queries
