"""Every shipped playbook validates; a bad one is refused with its file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migrate.discovery.discover import discover
from migrate.discovery.network import Network
from migrate.discovery.playbooks import (
    SHIPPED,
    Playbook,
    all_playbooks,
    by_domain,
    by_mx,
    load_playbook,
    playbook_files,
)
from migrate.errors import UserError

REPO = Path(__file__).resolve().parents[2]
# The providers and scenarios issue 7 asks for, by file name.
REQUIRED = {"gmail", "outlook-com", "icloud", "yahoo", "aol", "gmx", "web-de", "fastmail", "zoho", "telia",
            "tele2-comhem", "bahnhof", "bredband2", "loopia", "one-com", "binero", "microsoft-365", "cpanel-host",
            "own-domain-host", "pop-isp", "pop-thunderbird", "pop-outlook-pst"}
# What a playbook without a recorded server says in its comment, so nobody mistakes the gap for an oversight.
NO_SERVERS = "No server setting is recorded"


def _comments(path: Path) -> str:
    """The playbook's comment lines: where its facts come from."""
    return "\n".join(line for line in path.read_text(encoding="utf-8").splitlines() if line.lstrip().startswith("#"))


def _settings(book: Playbook) -> list[tuple[str, str, str]]:
    """Every server setting as (kind, host or URL, source)."""
    mail = [(kind, s.host, s.source) for kind in ("imap", "pop", "smtp") for s in getattr(book.servers, kind)]
    dav = [(kind, d.url, d.source) for kind in ("caldav", "carddav") for d in getattr(book.servers, kind)]
    return mail + dav


def test_every_shipped_playbook_is_valid_and_sourced() -> None:
    files = playbook_files([REPO / "playbooks"])
    assert {p.stem for p in files} >= REQUIRED
    for path in files:
        book = load_playbook(path)
        assert all(source.startswith("https://") for _, _, source in _settings(book)), path
        assert "# " in path.read_text(encoding="utf-8").splitlines()[0], f"{path}: no comment naming its sources"
    assert SHIPPED.resolve() == (REPO / "playbooks").resolve()  # the package ships the same folder


@pytest.mark.parametrize("path", playbook_files([REPO / "playbooks"]), ids=lambda p: p.stem)
def test_every_server_setting_names_its_page_in_a_comment(path: Path) -> None:
    """Facts only: each host or URL's source page is also named in the file's comments, where a reader looks."""
    book = load_playbook(path)
    comments = _comments(path)
    for kind, where, source in _settings(book):
        assert source in comments, f"{path.name}: {kind} {where} cites {source}, which no comment names"
    if book.kind == "provider" and not (book.servers.imap or book.servers.pop):
        assert NO_SERVERS in comments and "autoconfig" in comments and "probing" in comments, (
            f"{path.name}: a provider without servers says in a comment why, and that discovery finds them")
    if not (book.servers.imap or book.servers.pop) and book.kind == "scenario" and book.name in REQUIRED - {
            "pop-thunderbird", "pop-outlook-pst", "own-domain-host"}:
        assert "No host is recorded" in comments or NO_SERVERS in comments, f"{path.name}: say why no host is named"


def test_a_setting_from_a_secondary_source_is_marked_unverified() -> None:
    """Thunderbird's ISPDB, FairEmail's list and copies of a provider's page are secondary: discovery confirms them."""
    secondary = ("github.com/thunderbird/autoconfig", "github.com/M66B/FairEmail", "wiki.brostweb.com", "esdocs.com",
                 "utf9k.net", "cli.nylas.com")
    for book in all_playbooks([REPO / "playbooks"]):
        for server in [*book.servers.imap, *book.servers.pop, *book.servers.smtp, *book.servers.caldav,
                       *book.servers.carddav]:
            if any(site in server.source for site in secondary):
                assert not server.verified, f"{book.name}: {server} comes from a secondary source"


def test_new_providers_are_found_by_domain_and_mx() -> None:
    books = all_playbooks([REPO / "playbooks"])
    expect = {"gmx.de": "gmx", "gmx.net": "gmx", "gmx.se": "gmx-com", "gmx.com": "gmx-com", "web.de": "web-de",
              "zoho.com": "zoho", "comhem.se": "tele2-comhem", "bahnhof.se": "bahnhof", "bredband2.com": "bredband2",
              "telia.com": "telia"}
    for domain, name in expect.items():
        assert (found := by_domain(domain, books)) is not None and found.name == name, domain
    assert (zoho := by_mx(["mx2.zoho.com"], books)) is not None and zoho.name == "zoho-workplace"
    # WEB.DE signs in with the name part; its settings are secondary, so discovery goes on past the playbook.
    steps = Network(steps=frozenset({"playbook"}))
    web = discover("erika.muster@web.de", books, steps)
    assert web.best("imap") is not None and web.best("imap").url() == "imaps://erika.muster@imap.web.de"  # type: ignore[union-attr]
    assert not web.best("imap").verified  # type: ignore[union-attr]
    telia = discover("anna@telia.com", books, steps)
    assert [s.host for s in telia.servers] == ["mailin.telia.com"]


def test_domains_belong_to_one_provider_only() -> None:
    seen: dict[str, str] = {}
    for book in all_playbooks():
        for domain in book.domains:
            assert domain not in seen, f"{domain} is in {seen.get(domain)} and {book.name}"
            seen[domain] = book.name
    books = all_playbooks()
    assert by_domain("Hotmail.SE", books).name == "outlook-com"  # type: ignore[union-attr]
    assert by_domain("example.com", books) is None


def test_a_broken_playbook_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "acme.yaml"
    bad.write_text("name: acme\nkind: provider\ntitle: Acme\nsummary: {en: a, sv: b}\ndomains: [acme.test]\n"
                   "servers:\n  imap:\n    - {host: imap.acme.test, port: 993, security: plain,\n"
                   "       source: 'https://acme.test/help'}\n", encoding="utf-8")
    with pytest.raises(UserError) as caught:
        load_playbook(bad)
    assert f"{bad} line 8: servers.imap.0.security" in caught.value.message
    steps = tmp_path / "steps.yaml"
    steps.write_text("name: steps\nkind: provider\ntitle: S\nsummary: {en: a, sv: b}\ndomains: [s.test]\n"
                     "auth:\n  methods: [app-password]\n", encoding="utf-8")
    with pytest.raises(UserError, match="app_password"):
        load_playbook(steps)


def test_playbooks_commands(tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True,
                              env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"}, cwd=REPO, timeout=60)

    listed = cli("playbooks", "list")
    assert listed.returncode == 0 and "gmail" in listed.stdout and "pop-thunderbird" in listed.stdout
    shown = cli("playbooks", "show", "gmail", "--lang", "sv")
    assert "imap.gmail.com:993" in shown.stdout and "tvåstegsverifiering" in shown.stdout
    assert cli("playbooks", "check").returncode == 0
    broken = tmp_path / "x.yaml"
    broken.write_text("name: x\nkind: [\n", encoding="utf-8")
    checked = cli("playbooks", "check", str(broken))
    assert checked.returncode == 3 and f"{broken} line" in checked.stderr and "Traceback" not in checked.stderr
    providers = cli("providers")
    assert providers.returncode == 0
    assert all(name in providers.stdout for name in REQUIRED), providers.stdout
    shown = cli("playbooks", "show", "web-de")
    assert "IMAP: imap.web.de:993 tls, user = localpart (unverified)" in shown.stdout
    assert "CARDDAV: https://carddav.fastmail.com/dav/ (unverified)" in cli("playbooks", "show", "fastmail").stdout
    unknown = cli("playbooks", "show", "nosuch")
    assert unknown.returncode == 3 and "playbooks list" in unknown.stderr
