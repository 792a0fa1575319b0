"""Every shipped playbook validates; a bad one is refused with its file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from migrate.discovery.playbooks import SHIPPED, all_playbooks, by_domain, load_playbook, playbook_files
from migrate.errors import UserError

REPO = Path(__file__).resolve().parents[2]


def test_every_shipped_playbook_is_valid_and_sourced() -> None:
    files = playbook_files([REPO / "playbooks"])
    assert {p.stem for p in files} >= {"gmail", "outlook-com", "icloud", "yahoo", "aol", "telia",
                                       "pop-thunderbird", "pop-outlook-pst"}
    for path in files:
        book = load_playbook(path)
        servers = [*book.servers.imap, *book.servers.pop, *book.servers.smtp]
        assert all(s.source.startswith("https://") for s in servers), path
        assert "# " in path.read_text(encoding="utf-8").splitlines()[0], f"{path}: no comment naming its sources"
    assert SHIPPED.resolve() == (REPO / "playbooks").resolve()  # the package ships the same folder


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
    assert cli("providers").returncode == 0
    unknown = cli("playbooks", "show", "nosuch")
    assert unknown.returncode == 3 and "playbooks list" in unknown.stderr
