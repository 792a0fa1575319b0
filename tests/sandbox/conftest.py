"""Fixtures for the sandbox's own tests: a started sandbox with a tenant, two mailboxes and two apps."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from exchangelib import Account, Message
from exchangelib.protocol import close_connections

from migrate.sandbox import Sandbox
from migrate.sandbox.testing import make_sandbox_factory_fixture, make_sandbox_fixture

from .helpers import (
    ALICE,
    APP_ID,
    APP_SECRET,
    BOB,
    EXTENDED,
    PUBLIC_APP_ID,
    account,
    app_credentials,
    confidential_app,
)

sandbox = make_sandbox_fixture(device_code_interval_s=1)  # msal warns when it polls sooner than that
sandbox_factory = make_sandbox_factory_fixture()


@pytest.fixture(scope="session", autouse=True)
def extended_properties() -> Iterator[None]:
    """Message.register is exchangelib's public way to add MAPI properties; undo it after the session."""
    for name, cls in EXTENDED.items():
        Message.register(name, cls)
    yield
    for name in EXTENDED:
        Message.deregister(name)


@pytest.fixture(autouse=True)
def fresh_exchangelib_protocols() -> Iterator[None]:
    # exchangelib caches protocols per endpoint and credentials; a stopped sandbox must not be reused.
    yield
    close_connections()


def populate(sb: Sandbox) -> Sandbox:
    sb.add_app(APP_ID, secret=APP_SECRET, permissions=["full_access_as_app"])
    sb.add_app(PUBLIC_APP_ID)
    sb.add_mailbox(ALICE, display_name="Alice Example")
    sb.add_mailbox(BOB)
    return sb


@pytest.fixture
def tenant(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The sandbox, populated, with exchangelib's requests trusting its CA."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sandbox.ca_path))
    return populate(sandbox)


@pytest.fixture
def alice(tenant: Sandbox) -> Account:
    """Alice's mailbox through app-only EWS with impersonation, as the migration tool will use it."""
    return account(tenant, app_credentials(confidential_app(tenant)))
