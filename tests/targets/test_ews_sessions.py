"""EWS targets on one mailbox in one process share what they know of its folders (migrate.targets.ews): the
folders one found, the others know without asking, each on its own connections; a folder made a moment ago
is not listed until something is written to it, by any of them; a probe (preflight) asks the server all the
same. Against the sandbox, schema checked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from migrate.plan import Connection, SignIn
from migrate.preflight.reach import token_provider
from migrate.sandbox import Sandbox
from migrate.sandbox.testing import make_sandbox_fixture
from migrate.targets import Outcome, Target, TargetOptions, open_target
from migrate.targets.ews import close_all
from tests.targets.test_ews import ALICE, APP, SECRET, _items, _populate, _provider

sandbox = make_sandbox_fixture()
FOLDER_LOOKUPS = {"GetFolder", "FindFolder", "CreateFolder"}


@pytest.fixture(autouse=True)
def no_kept_sessions() -> Iterator[None]:
    yield
    close_all()


@pytest.fixture
def tenant(sandbox: Sandbox, config_dir: Path) -> Sandbox:
    return _populate(sandbox)


def asked(sb: Sandbox, since: int) -> Counter[str]:
    return Counter(r.operation for r in sb.requests[since:])


def opened(sb: Sandbox, token: object, shared: bool = True) -> Target:
    return open_target(f"ews://{ALICE}?endpoint={sb.ews_url}",
                       TargetOptions(token=token, ca_file=sb.ca_path, shared=shared))  # type: ignore[arg-type]


def test_a_second_target_on_the_mailbox_knows_the_folders_the_first_found(tenant: Sandbox, tmp_path: Path) -> None:
    token = _provider(tenant, tmp_path / "config").token
    with opened(tenant, token) as first:
        folder = first.ensure_folder(("Inbox", "Kunder", "Åkesson & Söner"))
        with opened(tenant, token) as second:  # an upload lane beside the reader
            before = len(tenant.requests)
            assert second.ensure_folder(("Inbox", "Kunder", "Åkesson & Söner")).id == folder.id
            assert not FOLDER_LOOKUPS & set(asked(tenant, before))
            results = second.upload(folder, _items()[:3])
            assert all(r.outcome is Outcome.CREATED for r in results)
    # closed, and kept a while: verification after the run finds the folder without asking either
    with opened(tenant, token) as third:
        before = len(tenant.requests)
        assert third.ensure_folder(("Inbox", "Kunder", "Åkesson & Söner")).id == folder.id
        assert not asked(tenant, before)
        assert {m.target_id for m in third.existing(folder)} == {r.target_id for r in results}


def test_a_folder_made_now_is_listed_once_any_target_writes_to_it(tenant: Sandbox, tmp_path: Path) -> None:
    token = _provider(tenant, tmp_path / "config").token
    with opened(tenant, token) as reader, opened(tenant, token) as lane:
        made = reader.ensure_folder(("Projekt 2024",))
        before = len(tenant.requests)
        assert list(reader.existing(made)) == []
        assert "FindItem" not in asked(tenant, before)  # made a moment ago: nothing to list
        results = lane.upload(made, _items()[:2])
        before = len(tenant.requests)
        listed = {m.target_id for m in reader.existing(made)}
        assert listed == {r.target_id for r in results}  # the lane wrote to it: the reader lists it again
        assert asked(tenant, before)["FindItem"] == 1
        # a folder that was there before is listed, made by this process or not
        inbox = reader.ensure_folder(("Inbox",))
        before = len(tenant.requests)
        assert list(reader.existing(inbox)) == []
        assert asked(tenant, before)["FindItem"] == 1


def test_a_probe_asks_the_server_whatever_is_known(tenant: Sandbox, tmp_path: Path) -> None:
    token = _provider(tenant, tmp_path / "config").token
    with opened(tenant, token) as target:
        target.ensure_folder(("Inbox",))
        with opened(tenant, token, shared=False) as probe:
            before = len(tenant.requests)
            probe.ensure_folder(("Inbox",))
            assert asked(tenant, before)["GetFolder"] >= 1
        before = len(tenant.requests)
        target.ensure_folder(("Inbox",))  # the probe closing did not take the shared session's folders away
        assert not FOLDER_LOOKUPS & set(asked(tenant, before))


def test_one_token_source_per_app_mailbox_and_secret(tenant: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every target a move opens signs in through one MSAL application, which asks the authority for its
    OpenID configuration once; a changed secret is another application."""
    monkeypatch.setenv("EWS_APP_SECRET", SECRET)

    def connection() -> Connection:
        return Connection(url=f"ews://{ALICE}?endpoint={tenant.ews_url}", ca_file=str(tenant.ca_path),
                          sign_in=SignIn(tenant="contoso.example", client_id=APP, authority=tenant.url,
                                         client_secret_env="EWS_APP_SECRET", ca_file=str(tenant.ca_path)))

    from migrate.auth import Transport

    first = token_provider(connection(), Transport.EWS)
    assert token_provider(connection(), Transport.EWS) is first
    before = len(tenant.requests)
    first()
    token_provider(connection(), Transport.EWS)()
    assert asked(tenant, before)["openid-configuration"] == 1
    assert token_provider(connection(), Transport.GRAPH) is not first
    monkeypatch.setenv("EWS_APP_SECRET", SECRET + "-rotated")
    assert token_provider(connection(), Transport.EWS) is not first
