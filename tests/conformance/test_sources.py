"""ONE suite for every source backend: all of them must see the same mailbox the same way.

The sample mailbox is loaded into Dovecot (read over IMAP, IMAPS, POP3, POP3S and straight
from its Maildir store) and written as mbox, Maildir++, .eml and .emlx trees.
"""

from __future__ import annotations

import hashlib
import imaplib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.model import FolderRole
from migrate.samplebox import SampleFolder
from migrate.sources import Source, SourceOptions, open_source
from tests import corpus
from tests.corpus import normalise, tree_state
from tests.servers.dovecot import Dovecot

USER, PASSWORD = "kalla", "Sommar-2024!"


@dataclass
class Case:
    name: str
    url: str
    options: SourceOptions
    folders: list[SampleFolder]  # what the backend should see
    files: Path | None = None  # the tree a file source reads, to prove it unchanged


@pytest.fixture(scope="module")
def sample() -> list[SampleFolder]:
    return corpus.build()


@pytest.fixture(scope="module")
def loaded(dovecot: Dovecot, sample: list[SampleFolder]) -> Dovecot:
    corpus.load_into_dovecot(dovecot, USER, PASSWORD, sample)
    return dovecot


def _server(dovecot: Dovecot, scheme: str, insecure: bool = False) -> SourceOptions:
    return SourceOptions(secret=lambda: PASSWORD, ca_file=dovecot.ca_path, insecure=insecure)


@pytest.fixture(scope="module")
def dot_server(sample: list[SampleFolder]) -> Iterator[Dovecot]:
    """A second Dovecot whose hierarchy delimiter is '.', as Courier and many ISPs use."""
    server = Dovecot(separator=".")
    server.start()
    corpus.load_into_dovecot(server, USER, PASSWORD, sample)
    try:
        yield server
    finally:
        server.cleanup()


BACKENDS = ["imaps", "imap-starttls", "imaps-dot-delimiter", "pop3s", "pop3-stls", "maildir-dovecot",
            "mbox", "maildir", "eml", "emlx", "sample"]


@pytest.fixture(scope="module", params=BACKENDS)
def case(request: pytest.FixtureRequest, loaded: Dovecot, sample: list[SampleFolder],
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Case]:
    name: str = request.param
    d = loaded
    inbox_only = [f for f in sample if f.path == ("INBOX",)]
    user = USER
    writers: dict[str, Callable[[list[SampleFolder], Path], None]] = {
        "mbox": samplebox.write_mbox_tree, "maildir": samplebox.write_maildir,
        "eml": samplebox.write_eml_tree, "emlx": samplebox.write_emlx_tree,
    }
    if name == "imaps":
        yield Case(name, f"imaps://{user}@127.0.0.1:{d.ports['imaps']}", _server(d, "imaps"), sample)
    elif name == "imap-starttls":  # and AUTHENTICATE PLAIN instead of LOGIN
        options = _server(d, "imap")
        options.auth = "plain"
        yield Case(name, f"imap://{user}@127.0.0.1:{d.ports['imap']}", options, sample)
    elif name == "imaps-dot-delimiter":
        dot = request.getfixturevalue("dot_server")
        yield Case(name, f"imaps://{user}@127.0.0.1:{dot.ports['imaps']}", _server(dot, "imaps"), sample)
    elif name == "pop3s":
        yield Case(name, f"pop3s://{user}@127.0.0.1:{d.ports['pop3s']}", _server(d, "pop3s"), inbox_only)
    elif name == "pop3-stls":
        options = _server(d, "pop3")
        options.auth = "plain"
        yield Case(name, f"pop3://{user}@127.0.0.1:{d.ports['pop3']}", options, inbox_only)
    elif name == "maildir-dovecot":
        yield Case(name, f"maildir:{d.maildir(USER)}", SourceOptions(), sample, d.maildir(USER))
    elif name == "sample":
        yield Case(name, "sample:?messages=12&big=8000000", SourceOptions(), sample)
    else:
        root = tmp_path_factory.mktemp(name)
        writers[name](sample, root)
        yield Case(name, f"{name}:{root}", SourceOptions(), sample, root)


def _read_all(source: Source) -> dict[tuple[str, ...], list[tuple[object, bytes]]]:
    seen = {}
    for folder in source.folders():
        if not folder.selectable:
            continue
        refs = list(source.messages(folder))
        seen[folder.path] = list(source.read(folder, refs))
    return seen


def _digest(raw: bytes) -> str:
    return hashlib.sha256(normalise(raw)).hexdigest()


def test_folders_roles_and_nesting(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        folders = {f.path: f.role for f in source.folders() if f.selectable}
    assert folders == {f.path: f.role for f in case.folders}
    assert FolderRole.INBOX in folders.values()


def test_same_messages_bytes_flags_and_dates(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        caps = source.capabilities
        seen = _read_all(source)
    assert set(seen) == {f.path for f in case.folders}
    for folder in case.folders:
        got = seen[folder.path]
        assert len(got) == len(folder.messages), folder.path
        want = {_digest(m.raw): m for m in folder.messages}
        assert Counter(_digest(raw) for _, raw in got) == Counter(_digest(m.raw) for m in folder.messages)
        keys = [ref.key for ref, _ in got]  # type: ignore[attr-defined]
        assert len(set(keys)) == len(keys), "source keys must be unique within a folder"
        for ref, raw in got:
            expected = want[_digest(raw)]
            assert ref.message_id == _message_id(expected.raw)  # type: ignore[attr-defined]
            assert ref.size > 0  # type: ignore[attr-defined]
            if caps.flags:
                assert ref.flags == expected.flags, (case.name, ref)  # type: ignore[attr-defined]
            if caps.internal_dates:
                assert ref.internal_date is not None  # type: ignore[attr-defined]
                assert int(ref.internal_date.timestamp()) == int(expected.internal_date.timestamp())  # type: ignore[attr-defined]


def _message_id(raw: bytes) -> str | None:
    from migrate.sources.headers import header_block, header_facts

    return header_facts(header_block(raw)).message_id


def test_large_message_is_whole(case: Case) -> None:
    with open_source(case.url, case.options) as source:
        inbox = next(f for f in source.folders() if f.role is FolderRole.INBOX)
        refs = [r for r in source.messages(inbox) if r.message_id == "<big.1@sample.example.se>"]
        assert len(refs) == 1
        [(_, raw)] = list(source.read(inbox, refs))
    assert len(raw) > 10 * 1024 * 1024
    big = next(m for m in case.folders[0].messages if b"big.1@" in m.raw)
    assert normalise(raw) == normalise(big.raw)


def test_source_is_untouched_after_a_full_read(case: Case, loaded: Dovecot) -> None:
    before_files = tree_state(case.files) if case.files else None
    before_server = _server_state(loaded)
    with open_source(case.url, case.options) as source:
        _read_all(source)
    if case.files:
        assert tree_state(case.files) == before_files
    assert _server_state(loaded) == before_server


def _server_state(dovecot: Dovecot) -> dict[str, object]:
    """Flags, counts and sizes of every folder, read with plain imaplib (not our code)."""
    import ssl

    ctx = ssl.create_default_context(cafile=str(dovecot.ca_path))
    conn = imaplib.IMAP4_SSL("127.0.0.1", dovecot.ports["imaps"], ssl_context=ctx)
    conn.login(USER, PASSWORD)
    state: dict[str, object] = {}
    _, boxes = conn.list()
    for line in boxes:
        assert isinstance(line, bytes)
        name = line.rsplit(b' "/" ', 1)[1].decode()
        conn.select(name, readonly=True)
        _, data = conn.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
        state[name] = sorted(str(d) for d in data)
    conn.logout()
    return state
