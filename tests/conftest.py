"""Fixtures shared by every test: a private Dovecot, the sample corpus, the shared/ folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers.dovecot import Dovecot, dovecot_binary
from tests.servers.postgres import Postgres, postgres_bindir
from tests.servers.radicale import Radicale, radicale_available
from tests.stores import POSTGRES, SQLITE, JournalStore

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def shared_dir(*parts: str) -> Path:
    """A folder under ../shared; skips when it is absent, but only outside CI."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if IN_CI:
            pytest.fail(f"{path} is missing; CI must have ../shared beside the clone")
        pytest.skip(f"{path} is not here (tests that need ../shared run in CI)")
    return path


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    if dovecot_binary() is None:
        if IN_CI:
            pytest.fail("dovecot is not installed: the test command installs dovecot-imapd and dovecot-pop3d")
        pytest.skip("dovecot is not installed (apt-get install dovecot-imapd dovecot-pop3d)")
    server = Dovecot()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def radicale() -> Iterator[Radicale]:
    """A private Radicale (CalDAV, CardDAV) over TLS on a free loopback port."""
    if not radicale_available():
        if IN_CI:
            pytest.fail("radicale is not installed: it is in the test extra (pip install -e .[test])")
        pytest.skip("radicale is not installed (pip install radicale)")
    server = Radicale()
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL on a free loopback port (the shared journal of distributed batches)."""
    if postgres_bindir() is None:
        if IN_CI:
            pytest.fail("PostgreSQL is not installed: the test command installs postgresql")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    server = Postgres().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture(params=[SQLITE, POSTGRES])
def journal_store(request: pytest.FixtureRequest, tmp_path: Path) -> JournalStore:
    """Each journal store in turn: a SQLite file, then a PostgreSQL database of this test's own."""
    if request.param == SQLITE:
        return JournalStore(SQLITE, tmp_path)
    return JournalStore(POSTGRES, tmp_path, request.getfixturevalue("postgres").new_database())
