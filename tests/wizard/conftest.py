"""Fixtures for discovery and the wizard: loopback DNS and autoconfig servers, and a Dovecot whose certificate
carries the names discovery probes (imap.example.test, pop.example.test)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dns.resolver
import pytest
import trustme

from tests.conftest import IN_CI
from tests.servers.dovecot import Dovecot, dovecot_binary
from tests.wizard.servers import AutoconfigServer, DnsServer

PROBED_NAMES = ("imap.example.test", "pop.example.test", "127.0.0.1", "localhost")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


@pytest.fixture
def autoconfig(ca: trustme.CA, tmp_path: Path) -> Iterator[AutoconfigServer]:
    server = AutoconfigServer(ca, tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def resolver_for(server: DnsServer) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = server.port
    return resolver


@pytest.fixture
def dns_server() -> Iterator[DnsServer]:
    server = DnsServer({}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def named_dovecot() -> Iterator[Dovecot]:
    """A Dovecot whose certificate (from its own CA) names the hosts a probe of example.test asks for."""
    if dovecot_binary() is None:
        if IN_CI:
            pytest.fail("dovecot is not installed: the test command installs dovecot-imapd and dovecot-pop3d")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    server = Dovecot()
    cert = server.ca.issue_cert(*PROBED_NAMES)
    cert.private_key_pem.write_to_path(str(server.root / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(server.root / "cert.pem"))
    os.chmod(server.root / "key.pem", 0o600)
    server.start()
    try:
        yield server
    finally:
        server.cleanup()
