"""Sign-in tests run the real msal against the sandbox's authority, with the config folder in tmp_path."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from migrate.auth import AuthSettings, DeviceCodePrompt, Transport
from migrate.auth.credentials import ClientCredential
from migrate.sandbox import Sandbox
from migrate.sandbox.testing import make_sandbox_fixture

PUBLIC_APP = "0f1e2d3c-public-app"
CONFIDENTIAL_APP = "0a0b0c0d-confidential-app"
APP_SECRET = "Zq8~very-secret-client-value"
ALICE = "alice@contoso.example"
TENANT = "contoso.example"

sandbox = make_sandbox_fixture(device_code_interval_s=1)  # msal warns when it polls sooner than that


@pytest.fixture
def tenant(sandbox: Sandbox) -> Sandbox:
    sandbox.add_app(PUBLIC_APP)
    sandbox.add_app(CONFIDENTIAL_APP, secret=APP_SECRET, permissions=["full_access_as_app"])
    sandbox.add_mailbox(ALICE)
    return sandbox


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the token cache goes for this test; the keyring stays out of tests."""
    path = tmp_path / "config"
    monkeypatch.setenv("O365M_CONFIG_DIR", str(path))
    monkeypatch.setenv("O365M_TOKEN_CACHE", "plaintext")
    return path


def settings(sb: Sandbox, transport: Transport = Transport.EWS, client_id: str = PUBLIC_APP,
             tenant: str = TENANT, credential: ClientCredential | None = None,
             ca: bool = True) -> AuthSettings:
    return AuthSettings(transport=transport, tenant=tenant, client_id=client_id, authority=sb.url,
                        credential=credential, ca_file=sb.ca_path if ca else None)


Approve = Callable[..., tuple[Callable[[DeviceCodePrompt], None], list[DeviceCodePrompt]]]


@pytest.fixture
def approve(tenant: Sandbox) -> Iterator[Approve]:
    """The person's part of the device flow: another thread signs in while msal polls.

    `approve(user)` gives the callback for TokenProvider.login and the list of prompts it was shown.
    """
    timers: list[threading.Timer] = []

    def make(user: str = ALICE) -> tuple[Callable[[DeviceCodePrompt], None], list[DeviceCodePrompt]]:
        shown: list[DeviceCodePrompt] = []

        def on_code(prompt: DeviceCodePrompt) -> None:
            shown.append(prompt)
            timer = threading.Timer(0.3, tenant.approve_device_code, (prompt.user_code, user))
            timers.append(timer)
            timer.start()

        return on_code, shown

    yield make
    for timer in timers:  # a sign-in that failed early leaves its approval pending: stop it before the sandbox
        timer.cancel()
        timer.join()


def accepted(sb: Sandbox, token: str) -> int:
    """HTTP status of the sandbox's userinfo endpoint for this token (200: valid user token, 401: refused)."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sb.ca_path)
    return int(session.get(f"{sb.url}/v1.0/me", headers={"Authorization": f"Bearer {token}"}).status_code)


def token_requests(sb: Sandbox) -> list[str]:
    """Tokens the sandbox issued (refusals, such as "authorization pending", are logged as token-error)."""
    return [r.operation for r in sb.requests if r.operation.startswith("token:")]


def cached_secrets(cache_file: Path) -> set[str]:
    """Every token value in the msal cache file (the only place allowed to hold them)."""
    if not cache_file.exists() or not cache_file.read_text():
        return set()
    found: set[str] = set()
    for entries in json.loads(cache_file.read_text()).values():
        for entry in entries.values():
            if entry.get("secret"):
                found.add(entry["secret"])
    return found
