"""CalDAV and CardDAV against a real Radicale: discovery, the corpus, the CLI and every bad input."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from migrate.errors import AuthError, ExitCode, TLSError, UsageError, UserError
from migrate.model import ItemKind
from migrate.pim import parse_event
from migrate.pim.events import DamagedItem
from migrate.sources import SourceOptions, open_source
from tests.conftest import shared_dir
from tests.pim import sample
from tests.servers.radicale import Radicale
from tests.test_cli_inventory import run

USER, PASSWORD = "dav-user", "Höst-2025!"


@pytest.fixture(scope="module")
def server(radicale: Radicale) -> Radicale:
    radicale.add_user(USER, PASSWORD)
    assert radicale.load(USER, "arbete", "Arbete", sample.ARBETE, calendar=True)
    assert radicale.load(USER, "kunder", "Kunder", sample.KUNDER, calendar=False)
    return radicale


def _options(server: Radicale, password: str = PASSWORD) -> SourceOptions:
    return SourceOptions(secret=lambda: password, ca_file=server.ca_path)


def test_the_url_may_name_the_server_the_principal_or_one_collection(server: Radicale) -> None:
    base = f"caldav+https://{USER}@127.0.0.1:{server.port}"
    for url in (base, f"{base}/", f"{base}/{USER}/", f"{base}/{USER}/arbete/"):
        with open_source(url, _options(server)) as source:
            names = [f.name for f in source.folders()]
        assert names == ["Arbete"], url
    with open_source(f"carddav+https://{USER}@127.0.0.1:{server.port}/", _options(server)) as source:
        [book] = source.folders()
    assert book.name == "Kunder" and book.kind is ItemKind.CONTACT


def test_wrong_password_untrusted_server_and_plain_http(server: Radicale) -> None:
    url = f"caldav+https://{USER}@127.0.0.1:{server.port}/"
    with pytest.raises(AuthError), open_source(url, _options(server, "wrong")) as source:
        source.folders()
    with pytest.raises(TLSError, match="not trusted"), open_source(url, SourceOptions(secret=lambda: PASSWORD)) as s:
        s.folders()
    with pytest.raises(UserError, match="plain http"):
        open_source(f"caldav+http://{USER}@example.org/", SourceOptions(insecure=True))
    with pytest.raises(UsageError, match="password inside"):
        open_source(f"caldav+https://{USER}:secret@127.0.0.1:{server.port}/")
    with pytest.raises(UserError, match="names no user"):
        open_source(f"carddav+https://127.0.0.1:{server.port}/")


def test_the_corpus_reads_alike_from_files_and_from_caldav(radicale: Radicale) -> None:
    """Every corpus calendar Radicale accepts lists the same events over CalDAV as from the file."""
    radicale.add_user("corpus", "Corpus-1")
    corpus = shared_dir("corpus", "ics")
    loaded = 0
    for i, path in enumerate(sorted(corpus.rglob("*.ics"))):
        collection = radicale.load("corpus", f"c{i}", path.stem, path.read_bytes(), calendar=True)
        if collection is None:
            continue  # Radicale refuses some broken files; the parsers' own tests cover them
        loaded += 1
        with open_source(f"ics:{path}") as files:
            [folder] = files.folders()
            want_refs = list(files.messages(folder))
            want_zones = sum(data.count(b"BEGIN:VTIMEZONE") for _, data in files.read(folder, want_refs))
        url = f"caldav+https://corpus@127.0.0.1:{radicale.port}/corpus/c{i}/"
        with open_source(url, SourceOptions(secret=lambda: "Corpus-1", ca_file=radicale.ca_path)) as dav:
            [folder] = dav.folders()
            got_refs = list(dav.messages(folder))
            got_zones = 0
            for ref, data in dav.read(folder, got_refs):
                got_zones += data.count(b"BEGIN:VTIMEZONE")
                try:
                    parse_event(data)
                except DamagedItem:
                    pytest.fail(f"{path.name}: {ref.key} was listed but does not parse")
        # Radicale gives an event without UID one of its own; the rest keep theirs.
        assert sorted(str(r.subject) for r in got_refs) == sorted(str(r.subject) for r in want_refs), path.name
        with_uid = {r.message_id for r in want_refs if not (r.message_id or "").startswith("sha256:")}
        assert with_uid <= {r.message_id for r in got_refs}, path.name
        if got_zones == want_zones:  # Radicale drops a VTIMEZONE whose TZID holds an escaped comma
            assert sorted(r.date for r in got_refs if r.date) == sorted(r.date for r in want_refs if r.date), \
                path.name
    assert loaded > 50


def test_cli_inventory_of_caldav_and_carddav(server: Radicale, tmp_path: Path) -> None:
    out = tmp_path / "inv.json"
    result = run("inventory", f"caldav+https://{USER}@127.0.0.1:{server.port}/", "--password-env", "PW",
                 "--ca-file", str(server.ca_path), "--json", str(out), env={"PW": PASSWORD})
    assert result.returncode == 0, result.stderr
    assert "Arbete" in result.stdout and "calendar" in result.stdout and "Items" in result.stdout
    assert "no-message-id" not in result.stdout
    [folder] = json.loads(out.read_text())["folders"]
    assert (folder["name"], folder["role"], folder["kind"], folder["messages"]) == ("Arbete", "calendar", "event", 2)
    assert folder["oldest"] and datetime.fromisoformat(folder["oldest"]) <= datetime(2024, 3, 5, tzinfo=UTC)
    cards = run("inventory", f"carddav+https://{USER}@127.0.0.1:{server.port}/", "--password-env", "PW",
                "--ca-file", str(server.ca_path), env={"PW": PASSWORD})
    assert cards.returncode == 0 and "Kunder" in cards.stdout and "contacts" in cards.stdout
    bad = run("inventory", f"caldav+https://{USER}@127.0.0.1:{server.port}/", "--password-env", "PW",
              "--ca-file", str(server.ca_path), env={"PW": "wrong"})
    assert bad.returncode == ExitCode.AUTH and "refused the login" in bad.stderr + bad.stdout
    assert "Traceback" not in bad.stderr and "wrong" not in bad.stderr + bad.stdout


def test_cli_inventory_of_ics_and_vcf_files(tmp_path: Path) -> None:
    calendars = sample.write_files(tmp_path / "cal", calendars=True)
    result = run("inventory", f"ics:{calendars}")
    assert result.returncode == 0, result.stderr
    assert "Helgdagar" in result.stdout and "not-carried" in result.stdout  # the task is named
    books = sample.write_files(tmp_path / "books", calendars=False)
    result = run("inventory", f"vcf:{books}", "--json", "-")
    doc = json.loads(result.stdout)
    assert {f["name"]: f["messages"] for f in doc["folders"]} == {"Kunder": 2, "Privat": 2}
    assert not [w for w in doc["warnings"] if w["code"] == "no-message-id"]


def test_the_password_goes_only_to_the_server_named() -> None:
    from migrate.sources.webdav import _same_site

    assert _same_site("p52-caldav.icloud.com", "caldav.icloud.com")
    assert not _same_site("evil.example.org", "caldav.icloud.com")
    assert not _same_site("127.0.0.2", "127.0.0.1") and _same_site("127.0.0.1", "127.0.0.1")
