"""The EWS target against the sandbox: real msal (via migrate.auth) and real exchangelib, schema validation on."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from exchangelib import Account
from exchangelib.protocol import close_connections

from migrate import samplebox
from migrate.auth import AuthSettings, Transport
from migrate.auth.cache import TokenStore
from migrate.auth.credentials import ClientSecret
from migrate.auth.provider import TokenProvider
from migrate.errors import AuthError, TLSError, UnreachableError, UsageError, UserError
from migrate.sandbox import Fault, Sandbox
from migrate.sandbox.testing import (
    check_schema_errors,
    make_sandbox_factory_fixture,
    make_sandbox_fixture,
    strict_config,
)
from migrate.sources.headers import header_block, header_facts
from migrate.targets import Failure, Outcome, Target, TargetFolder, TargetOptions, UploadItem, open_target
from migrate.targets.ews import EwsTarget, to_crlf
from tests.sandbox import helpers
from tests.targets.cases import TargetCase

APP = "0a0b0c0d-ews-target-app"
SECRET = "Zq8~ews-target-secret"
ALICE = "alice@contoso.example"
TENANT = "contoso.example"

sandbox = make_sandbox_fixture()
sandbox_factory = make_sandbox_factory_fixture()


@pytest.fixture(autouse=True)
def fresh_exchangelib_protocols() -> Iterator[None]:
    yield
    close_connections()


def _populate(sb: Sandbox) -> Sandbox:
    sb.add_app(APP, secret=SECRET, permissions=["full_access_as_app"])
    sb.add_mailbox(ALICE)
    return sb


@pytest.fixture
def tenant(sandbox: Sandbox) -> Sandbox:
    return _populate(sandbox)


def _provider(sb: Sandbox, config_dir: Path, mailbox: str = ALICE) -> TokenProvider:
    settings = AuthSettings(transport=Transport.EWS, tenant=TENANT, client_id=APP, authority=sb.url,
                            credential=ClientSecret(lambda: SECRET, "$TEST"), ca_file=sb.ca_path)
    return TokenProvider(settings, mailbox=mailbox, store=TokenStore(config_dir))


def _open(sb: Sandbox, config_dir: Path, mailbox: str = ALICE, **extra: str) -> Target:
    url = f"ews://{mailbox}?endpoint={sb.ews_url}"
    return open_target(url, TargetOptions(token=_provider(sb, config_dir, mailbox).token, ca_file=sb.ca_path,
                                          extra=extra))


def _items() -> list[UploadItem]:
    folders = samplebox.build(4)
    out = []
    for n, message in enumerate(m for f in folders for m in f.messages):
        mid = header_facts(header_block(message.raw)).message_id
        out.append(UploadItem(f"k{n}", message.raw, message.flags, message.internal_date, message_id=mid))
    return out


def _reader(sb: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Account:
    """exchangelib as a third party reads the mailbox (app-only, impersonation)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sb.ca_path))
    return helpers.account(sb, helpers.app_credentials(helpers.confidential_app(sb, APP, SECRET)))


def sandbox_ews_case(request: pytest.FixtureRequest) -> TargetCase:
    """The conformance suite's EWS backend: a fresh sandbox (schema validation on) per test, app-only sign-in."""
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    sb = _populate(Sandbox(factory.mktemp("sandbox"), config=strict_config()).start())

    def finish() -> None:
        close_connections()
        sb.stop()
        check_schema_errors(sb)

    request.addfinalizer(finish)
    provider = _provider(sb, factory.mktemp("config"))

    def well_known(path: tuple[str, ...], folder: TargetFolder) -> bool:
        return sb.folder_path(folder.id) == "/".join(path)

    return TargetCase("sandbox-ews", f"ews://{ALICE}?endpoint={sb.ews_url}",
                      TargetOptions(token=provider.token, ca_file=sb.ca_path), well_known)


def test_url_and_options() -> None:
    with pytest.raises(UsageError, match="OAuth"):
        open_target("ews://alice@contoso.example", TargetOptions())
    with pytest.raises(UsageError, match="mailbox"):
        open_target("ews://contoso.example", TargetOptions(token=lambda: "t"))
    target = open_target("ews://alice@contoso.example?max_mb=1&impersonate=1", TargetOptions(token=lambda: "t"))
    assert isinstance(target, EwsTarget)
    assert target.where.endpoint == "https://outlook.office365.com/EWS/Exchange.asmx"
    assert target.capabilities.max_message_bytes == 1024 * 1024 and not target.capabilities.keeps_raw_bytes
    assert target.where.impersonate is True


def test_upload_into_nested_swedish_folders_reads_back_as_received(
        tenant: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    items = _items()
    path = ("Inbox", "Kunder", "Åkesson & Söner")
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(path)
        assert target.ensure_folder(path).id == folder.id
        results = target.upload(folder, items)
        assert [r.key for r in results] == [i.key for i in items]
        assert all(r.outcome is Outcome.CREATED for r in results), results
        held = {m.target_id: m for m in target.existing(folder)}
        assert set(held) == {r.target_id for r in results}
        for item, result in zip(items, results, strict=True):
            there = held[result.target_id]  # type: ignore[index]
            assert there.message_id == item.message_id
            assert ("\\Seen" in there.flags) == ("\\Seen" in item.flags)
            assert ("\\Flagged" in there.flags) == ("\\Flagged" in item.flags)
            assert item.received is not None and there.received == item.received
        with_id = [i for i in items if i.message_id]
        found = target.find(folder, [i.message_id for i in with_id if i.message_id])
        assert sum(len(v) for v in found.values()) == len(with_id)
    # the sandbox got exactly the bytes we sent, CRLF-normalised
    assert [mime for _, mime in tenant.received_mime(ALICE)] == [to_crlf(i.raw) for i in items]
    assert {p for p, _ in tenant.received_mime(ALICE)} == {"/".join(path)}
    # read through exchangelib as another client would
    account = _reader(tenant, monkeypatch)
    ews_folder = account.inbox / "Kunder" / "Åkesson & Söner"
    got = list(ews_folder.all().only("message_id", "is_read", "is_draft", "datetime_received"))
    assert len(got) == len(items)
    # the sample holds a Message-ID twice on purpose: compare as multisets
    assert Counter((m.message_id, m.is_read, m.datetime_received) for m in got) == Counter(
        (i.message_id, "\\Seen" in i.flags, i.received) for i in items)
    assert all(m.is_draft is False for m in got)


@pytest.mark.parametrize("name", ["Inbox", "Sent Items", "Drafts", "Deleted Items", "Junk Email", "Archive"])
def test_well_known_folders(tenant: Sandbox, config_dir: Path, name: str) -> None:
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder((name,))
        assert target.ensure_folder((name,)).id == folder.id
        child = target.ensure_folder((name, "Kunder"))
        assert child.id != folder.id
        [result] = target.upload(child, _items()[:1])
        assert result.outcome is Outcome.CREATED
    [(where, _)] = tenant.received_mime(ALICE)
    assert where == f"{name}/Kunder"


def test_too_large_fails_alone_without_being_sent(tenant: Sandbox, config_dir: Path) -> None:
    items = [i for i in _items() if len(i.raw) < 4000][:3]
    big = UploadItem("big", items[0].raw + b"x" * 6000, frozenset(), None)
    batch = [items[0], big, items[1], items[2]]
    with _open(tenant, config_dir, max_message_bytes="5000") as target:
        folder = target.ensure_folder(("Gränser",))
        results = target.upload(folder, batch)
        assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED, Outcome.CREATED]
        assert results[1].failure is Failure.TOO_LARGE and results[1].reason
        assert len(list(target.existing(folder))) == 3
    assert len(tenant.received_mime(ALICE)) == 3


def test_server_side_size_limit_is_too_large_per_item(sandbox_factory: object, config_dir: Path) -> None:
    sb = _populate(sandbox_factory(max_message_bytes=4000))  # type: ignore[operator]
    items = _items()[:3]
    big = UploadItem("big", items[0].raw + b"y" * 5000, frozenset(), None)
    with _open(sb, config_dir) as target:  # our own limit is the default 35 MB: the server refuses
        folder = target.ensure_folder(("Stora",))
        results = target.upload(folder, [items[0], big, items[1]])
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED]
    assert results[1].failure is Failure.TOO_LARGE


def test_busy_item_is_retry_and_a_rerun_after_find_duplicates_nothing(tenant: Sandbox, config_dir: Path) -> None:
    items = [i for i in _items() if i.message_id][:4]
    tenant.inject(Fault.item_busy(item_index=2, back_off_ms=2500))
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(("Inbox", "Omförsök"))
        results = target.upload(folder, items)
        retry = [i for i, r in zip(items, results, strict=True) if r.outcome is Outcome.FAILED]
        # exchangelib raises a per-item ErrorServerBusy for the whole chunk and drops the item's
        # BackOffMilliseconds (it puts its own RETRY_WAIT in): every item is RETRY with a wait
        assert retry and all(r.failure is Failure.RETRY and r.retry_after and r.retry_after > 0
                             for r in results if r.outcome is Outcome.FAILED)
        found = target.find(folder, [i.message_id for i in retry if i.message_id])
        again = [i for i in retry if i.message_id not in found]
        assert all(r.outcome is Outcome.CREATED for r in target.upload(folder, again))
        held = list(target.existing(folder))
    assert sorted(m.message_id or "" for m in held) == sorted(i.message_id or "" for i in items)


def test_whole_request_busy_is_retry_for_every_item(tenant: Sandbox, config_dir: Path) -> None:
    items = _items()[:3]
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(("Upptagen",))
        tenant.inject(Fault.server_busy(back_off_ms=1200, operation="CreateItem"))
        results = target.upload(folder, items)
        assert all(r.failure is Failure.RETRY and r.retry_after == 1.2 for r in results), results
        assert list(target.existing(folder)) == []


def test_rejected_item_fails_alone(tenant: Sandbox, config_dir: Path) -> None:
    items = _items()[:3]
    tenant.inject(Fault.item_error("ErrorMimeContentConversionFailed", item_index=1))
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(("Trasig",))
        results = target.upload(folder, items)
    assert [r.outcome for r in results] == [Outcome.CREATED, Outcome.FAILED, Outcome.CREATED]
    assert results[1].failure is Failure.REJECTED


def test_a_full_mailbox_is_fatal_and_stops_the_run(tenant: Sandbox, config_dir: Path, tmp_path: Path) -> None:
    """ErrorQuotaExceeded: no later message can fit either, so the engine stops rather than fail them all."""
    from tests.targets.fakes import MemorySource, message
    from tests.targets.runs import plan_for, run

    tenant.inject(Fault.item_error("ErrorQuotaExceeded", item_index=1))
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(("Fullt",))
        results = target.upload(folder, _items()[:3])
    assert results[1].outcome is Outcome.FAILED and results[1].failure is Failure.FATAL
    tenant.inject(Fault.item_error("ErrorQuotaExceeded", item_index=0))
    source = MemorySource({("INBOX",): [message(n) for n in range(5)]})
    result = run(plan_for(source, f"ews://{ALICE}?endpoint={tenant.ews_url}"), lambda: source,
                 lambda: _open(tenant, config_dir), tmp_path / "journal.sqlite")
    assert result.stopped and "quota" in result.stopped.lower()
    assert int(result.exit_code) == 1


def test_rebuilt_mime_still_verifies_by_properties(sandbox_factory: object, config_dir: Path) -> None:
    sb = _populate(sandbox_factory(rebuild_mime=True))  # type: ignore[operator]
    items = [i for i in _items() if i.message_id][:5]
    with _open(sb, config_dir) as target:
        folder = target.ensure_folder(("Kontroll",))
        results = target.upload(folder, items)
        held = {m.target_id: m for m in target.existing(folder)}
        for item, result in zip(items, results, strict=True):
            assert result.target_id is not None
            there = held[result.target_id]
            assert there.message_id == item.message_id and there.received == item.received
            back = target.read_back(folder, result.target_id)
            assert header_facts(header_block(back)).message_id == item.message_id
            assert abs(there.size - len(item.raw)) < len(item.raw) * 0.2 + 2000


def test_401_renews_the_token_once(tenant: Sandbox, config_dir: Path) -> None:
    with _open(tenant, config_dir) as target:
        folder = target.ensure_folder(("Nyckel",))
        tenant.inject(Fault.http_401(operation="CreateItem"))
        [result] = target.upload(folder, _items()[:1])
        assert result.outcome is Outcome.CREATED


def test_refused_token_is_an_auth_error_without_the_token(tenant: Sandbox, config_dir: Path) -> None:
    token = "not-a-real-token-value-123"
    target = open_target(f"ews://{ALICE}?endpoint={tenant.ews_url}",
                         TargetOptions(token=lambda: token, ca_file=tenant.ca_path))
    with pytest.raises(AuthError) as caught:
        target.ensure_folder(("X",))
    assert token not in caught.value.one_line()
    target.close()


def test_blocked_ews_names_the_other_transports(tenant: Sandbox, config_dir: Path) -> None:
    tenant.set_ews_blocked(True)
    with _open(tenant, config_dir) as target, pytest.raises(AuthError) as caught:
        target.ensure_folder(("X",))
    assert "IMAP" in caught.value.one_line() and "Graph" in caught.value.one_line()


def test_unknown_mailbox_is_a_user_error(tenant: Sandbox, config_dir: Path) -> None:
    with _open(tenant, config_dir, mailbox="nobody@contoso.example") as target, \
            pytest.raises(UserError, match=r"nobody@contoso\.example"):
        target.ensure_folder(("X",))


def test_unreachable_endpoint(tenant: Sandbox, config_dir: Path) -> None:
    provider = _provider(tenant, config_dir)
    url = f"ews://{ALICE}?endpoint=https://127.0.0.1:1/EWS/Exchange.asmx"
    with open_target(url, TargetOptions(token=provider.token, ca_file=tenant.ca_path, timeout=5)) as target, \
            pytest.raises(UnreachableError):
        target.ensure_folder(("X",))


def test_access_type_follows_the_token_or_the_url() -> None:
    from exchangelib import DELEGATE, IMPERSONATION

    delegated = open_target("ews://alice@contoso.example", TargetOptions(token=lambda: "t"))
    forced = open_target("ews://alice@contoso.example?impersonate=1", TargetOptions(token=lambda: "t"))
    assert isinstance(delegated, EwsTarget) and isinstance(forced, EwsTarget)
    assert delegated._access == DELEGATE and forced._access == IMPERSONATION


def test_no_token_in_debug_logs(tenant: Sandbox, config_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    provider = _provider(tenant, config_dir)
    caplog.set_level(logging.DEBUG)
    with open_target(f"ews://{ALICE}?endpoint={tenant.ews_url}",
                     TargetOptions(token=provider.token, ca_file=tenant.ca_path)) as target:
        folder = target.ensure_folder(("Loggar",))
        tenant.inject(Fault.http_401(operation="CreateItem"))
        assert target.upload(folder, _items()[:2])[0].outcome is Outcome.CREATED
    token = provider.token()
    assert caplog.records and token not in caplog.text


def test_untrusted_certificate_is_a_tls_error(tenant: Sandbox, config_dir: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    provider = _provider(tenant, config_dir)
    # localhost, not 127.0.0.1: another test may have trusted the sandbox's CA for that origin in this process
    endpoint = tenant.ews_url.replace("127.0.0.1", "localhost")
    with open_target(f"ews://{ALICE}?endpoint={endpoint}", TargetOptions(token=provider.token)) as target, \
            pytest.raises(TLSError):
        target.ensure_folder(("X",))


def test_every_eml_of_the_corpus_goes_through_ews(tenant: Sandbox, config_dir: Path, tmp_path: Path) -> None:
    """All of ../shared/corpus/eml into the sandbox: each arrives once, with exactly the bytes sent, not a draft."""
    from collections import Counter

    from migrate.sources import open_source
    from tests.conftest import shared_dir
    from tests.corpus import normalise
    from tests.targets.runs import plan_for, run

    root = shared_dir("corpus", "eml")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() == ".eml")
    with open_source(f"eml:{root}") as src:
        plan = plan_for(src, f"ews://{ALICE}?endpoint={tenant.ews_url}")
    result = run(plan, lambda: open_source(f"eml:{root}"), lambda: _open(tenant, config_dir),
                 tmp_path / "journal.sqlite")
    assert result.failures == [], result.failures[:3]
    assert result.total("created") == len(files)
    got = Counter(normalise(mime) for _, mime in tenant.received_mime(ALICE))
    assert got == Counter(normalise(p.read_bytes()) for p in files)
    for folder in {f for f, _ in tenant.received_mime(ALICE)}:
        assert not any(item.is_draft for item in tenant.items(ALICE, folder))
    # Exchange rebuilds MIME, so a message is known again by its Message-ID, or without one by its
    # received time; one with neither cannot be told from a new one (the journal of a run knows it).
    # In two files a broken header line comes before the Message-ID, and the server stops reading
    # headers there, so it never learns that ID.
    broken_before_id = {"mikel-mail/plain_emails__raw_email_incorrect_header.eml",
                        "stalwart-mail-parser/malformed-019.eml"}
    with open_source(f"eml:{root}") as src:
        unknowable = sum(1 for f in src.folders() for r in src.messages(f)
                         if (not r.message_id and (r.internal_date or r.date) is None) or r.key in broken_before_id)
    # A new journal, so that only what the target holds can tell.
    again = run(plan, lambda: open_source(f"eml:{root}"), lambda: _open(tenant, config_dir),
                tmp_path / "other.sqlite")
    assert (again.total("created"), again.total("skipped")) == (unknowable, len(files) - unknowable)
