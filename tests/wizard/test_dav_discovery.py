"""CalDAV/CardDAV discovery on loopback: a real Radicale served as if it were example.test, and small HTTPS
servers that record what reaches them (to prove where the password went and where it did not)."""

from __future__ import annotations

import io
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trustme
from rich.console import Console

from migrate.discovery.dav import discover_dav
from migrate.discovery.network import Network
from migrate.discovery.playbooks import Playbook, all_playbooks
from migrate.sources.base import SourceOptions, open_source
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.flow import CALENDAR_SCHEMES, Wizard, WizardOptions
from tests.servers.radicale import Radicale
from tests.wizard.test_discovery import closed_port

ADDRESS = "anna@example.test"
PASSWORD = "calendar-pw"
STEPS = frozenset({"playbook", "probe"})  # no MX lookup: tests ask no real DNS


@dataclass
class Seen:
    method: str
    path: str
    authorized: bool


@dataclass
class Recorder:
    """HTTPS on 127.0.0.1 that records every request; `redirect` answers each with a 301 to that URL, else 404."""

    ca: trustme.CA
    folder: Path
    redirect: str | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                recorder.seen.append(Seen(self.command, self.path, "Authorization" in self.headers))
                self.send_response(301 if recorder.redirect else 404)
                if recorder.redirect:
                    self.send_header("Location", recorder.redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PROPFIND = do_OPTIONS = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        chain = self.folder / f"recorder-{id(self)}.pem"
        self.ca.issue_cert("127.0.0.1", "localhost").private_key_and_cert_chain_pem.write_to_path(str(chain))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(chain))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def dav(radicale: Radicale) -> Radicale:
    if ADDRESS not in radicale.users:
        radicale.add_user(ADDRESS, PASSWORD)
        radicale.make_collection(ADDRESS, "work", "Work", calendar=True)
        radicale.make_collection(ADDRESS, "people", "People", calendar=False)
    return radicale


@pytest.fixture
def recorders(radicale: Radicale, tmp_path: Path) -> Iterator[list[Recorder]]:
    made: list[Recorder] = []
    yield made
    for recorder in made:
        recorder.stop()


def network(mapping: dict[tuple[str, int], tuple[str, int]], ca_file: Path) -> Network:
    """example.test and friends as loopback ports; a host the test did not map goes to a closed port."""
    nowhere = ("127.0.0.1", closed_port())
    return Network(address_of=lambda host, port: mapping.get((host, port), nowhere), ca_file=ca_file, steps=STEPS,
                   timeout=5)


def test_well_known_on_the_domain_finds_calendars_and_contacts_that_the_sources_open(dav: Radicale) -> None:
    net = network({("example.test", 443): ("127.0.0.1", dav.port)}, dav.ca_path)
    found = discover_dav(ADDRESS, PASSWORD, [], net)
    principal = f"https://anna%40example.test@127.0.0.1:{dav.port}/anna@example.test/"
    assert [(e.kind, e.url, e.found_by) for e in found.endpoints] == [
        ("caldav", "caldav+" + principal, ".well-known"), ("carddav", "carddav+" + principal, ".well-known")]
    assert found.reason is None
    options = SourceOptions(secret=lambda: PASSWORD, ca_file=dav.ca_path)
    with open_source(found.endpoints[0].url, options) as calendars:
        assert [f.name for f in calendars.folders()] == ["Work"]
    with open_source(found.endpoints[1].url, options) as contacts:
        assert [f.name for f in contacts.folders()] == ["People"]


def test_a_wrong_password_says_so_and_is_tried_once_per_server(dav: Radicale) -> None:
    net = network({("example.test", 443): ("127.0.0.1", dav.port)}, dav.ca_path)
    asked: list[int] = []

    def secret() -> str:
        asked.append(1)
        return "not-the-password"

    found = discover_dav(ADDRESS, secret, [], net)
    assert found.endpoints == []
    assert found.reason == (f"example.test refused the password for {ADDRESS} when asked for calendars and "
                            "contacts; check the password")
    assert asked == [1]  # asked for once, whatever the number of paths tried
    assert sum("password" in n for n in found.notes) == 1
    assert "not-the-password" not in " ".join(found.notes) + found.reason


def test_nothing_found_says_so_in_plain_words(dav: Radicale, recorders: list[Recorder], tmp_path: Path) -> None:
    empty = Recorder(trustme.CA(), tmp_path)  # a web site without DAV, under a CA we do not trust
    recorders.append(empty)
    nothing = Recorder(dav.ca, tmp_path)  # a trusted web site without DAV: 404 everywhere
    recorders.append(nothing)
    net = network({("example.test", 443): ("127.0.0.1", nothing.port),
                   ("cloud.example.test", 443): ("127.0.0.1", empty.port)}, dav.ca_path)
    found = discover_dav(ADDRESS, PASSWORD, [], net)
    assert found.endpoints == []
    assert found.reason == ("no server for calendars and contacts was found at example.test; give its address "
                            "yourself, or use .ics/.vcf files")
    assert [p.path for p in nothing.seen] == ["/.well-known/caldav", "/.well-known/carddav", "/remote.php/dav"]
    assert any("not trusted" in n for n in found.notes)
    assert empty.seen == []  # no request got through an untrusted TLS handshake


def test_a_playbook_provider_is_asked_at_its_own_servers_only(dav: Radicale, recorders: list[Recorder],
                                                              tmp_path: Path) -> None:
    domain_site = Recorder(dav.ca, tmp_path)
    recorders.append(domain_site)
    book = Playbook.model_validate({
        "name": "example-dav", "kind": "provider", "title": "Example DAV", "domains": ["example.test"],
        "summary": {"en": "test", "sv": "test"},
        "servers": {"caldav": [{"url": "https://caldav.example.test/", "source": "https://example.test/help"}],
                    "carddav": [{"url": "https://carddav.example.test/", "source": "https://example.test/help"}]}})
    net = network({("caldav.example.test", 443): ("127.0.0.1", dav.port),
                   ("carddav.example.test", 443): ("127.0.0.1", dav.port),
                   ("example.test", 443): ("127.0.0.1", domain_site.port)}, dav.ca_path)
    found = discover_dav(ADDRESS, PASSWORD, [book], net)
    assert found.playbook is book
    assert [(e.kind, e.found_by) for e in found.endpoints] == [("caldav", "playbook example-dav"),
                                                               ("carddav", "playbook example-dav")]
    assert domain_site.seen == []  # neither .well-known nor /remote.php/dav was tried


def test_google_needs_oauth_and_nothing_is_probed() -> None:
    def no_network(host: str, port: int) -> tuple[str, int]:
        raise AssertionError(f"discovery tried {host}:{port}")

    found = discover_dav("someone@gmail.com", PASSWORD, all_playbooks(),
                         Network(address_of=no_network, steps=STEPS))
    assert found.endpoints == []
    assert found.oauth_only == ["caldav", "carddav"]
    assert found.reason is not None and "OAuth" in found.reason and ".ics/.vcf" in found.reason


@pytest.mark.parametrize("elsewhere", ["https://localhost:{port}/dav/", "http://127.0.0.1:{port}/dav/"])
def test_the_password_never_follows_a_redirect_to_another_site(dav: Radicale, recorders: list[Recorder],
                                                               tmp_path: Path, elsewhere: str) -> None:
    other = Recorder(dav.ca, tmp_path)
    recorders.append(other)
    domain_site = Recorder(dav.ca, tmp_path, redirect=elsewhere.format(port=other.port))
    recorders.append(domain_site)
    net = network({("example.test", 443): ("127.0.0.1", domain_site.port)}, dav.ca_path)
    found = discover_dav(ADDRESS, PASSWORD, [], net)
    assert found.endpoints == []
    assert other.seen == []  # not even a request without the password
    assert domain_site.seen and all(s.authorized for s in domain_site.seen)  # only the address's own site
    assert any("another site" in n or "plain http" in n for n in found.notes)


def test_the_wizard_offers_what_was_found_signed_in_with_the_mail_password(
        dav: Radicale, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAIL_PW", PASSWORD)
    net = network({("example.test", 443): ("127.0.0.1", dav.port)}, dav.ca_path)
    wizard = Wizard(WizardOptions(lang="en", folder=tmp_path, network=net,
                                  console=Console(file=io.StringIO(), width=200)))
    wizard.answers.address = ADDRESS
    wizard.answers.server = SourceAnswer(url=f"imaps://{ADDRESS}@imap.example.test", password="env:MAIL_PW")
    offered = wizard.found_dav(list(CALENDAR_SCHEMES))
    principal = f"https://anna%40example.test@127.0.0.1:{dav.port}/anna@example.test/"
    assert offered == [(f"caldav+{principal}", f"Calendars from caldav+{principal}"),
                       (f"carddav+{principal}", f"Contacts from carddav+{principal}")]
