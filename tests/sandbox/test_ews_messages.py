"""Mail through the real exchangelib: folders, import with MAPI properties, read-back, dedupe, faults."""

from __future__ import annotations

import base64
import datetime as dt
import email
import email.policy

import pytest
from exchangelib import Account, FaultTolerance, Folder, Message
from exchangelib.errors import (
    ErrorFolderExists,
    ErrorMessageSizeExceeded,
    ErrorServerBusy,
    MalformedResponseError,
    UnauthorizedError,
)

from migrate.sandbox import Fault, Sandbox

from .helpers import (
    ALICE,
    APP_ID,
    account,
    app_credentials,
    confidential_app,
    device_sign_in,
    message,
    public_app,
    user_credentials,
)

RECEIVED = dt.datetime(2023, 5, 17, 8, 30, tzinfo=dt.UTC)


def raw_message(n: int, subject: str = "Grüße", extra: bytes = b"") -> bytes:
    encoded = base64.b64encode(subject.encode()).decode()
    return (
        f"From: Bob <bob@example.org>\nTo: alice@contoso.example\nSubject: =?utf-8?b?{encoded}?=\n"
        f"Message-ID: <msg-{n}@example.org>\nDate: Wed, 17 May 2023 08:30:00 +0000\nMIME-Version: 1.0\n"
        "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n".encode()
        + extra + f"Hallo {n} – ünïcödé\n".encode()
    )


def plain(n: int, subject: str = "hello") -> bytes:
    return (f"From: bob@example.org\nTo: alice@contoso.example\nSubject: {subject} {n}\n"
            f"Message-ID: <plain-{n}@example.org>\nDate: Wed, 17 May 2023 08:30:00 +0000\n\nbody {n}\n").encode()


def import_folder(acct: Account, *path: str) -> Folder:
    folder = acct.inbox
    for name in path:
        child = Folder(parent=folder, name=name)
        child.save()
        folder = child
    return folder


def test_folder_cache_and_nested_non_ascii_folders(tenant: Sandbox, alice: Account) -> None:
    assert alice.inbox.name == "Inbox"
    top = alice.root / "Top of Information Store"
    assert (top / "Inbox").id == alice.inbox.id
    target = import_folder(alice, "Import 2024", "Überweisungen – 日本語 ✓")
    alice.root.refresh()
    assert (alice.inbox / "Import 2024" / "Überweisungen – 日本語 ✓").id == target.id
    with pytest.raises(ErrorFolderExists):
        Folder(parent=alice.inbox, name="import 2024").save()
    # The folder cache asks for 53 distinguished folders; the ones a mailbox lacks are per-item errors.
    first_get = next(r for r in tenant.requests if r.operation == "GetFolder")
    assert first_get.status == 200


def test_import_reads_back_as_received_mail(tenant: Sandbox, alice: Account) -> None:
    folder = import_folder(alice, "Import")
    raws = [raw_message(1), raw_message(2)]
    results = alice.bulk_create(folder, [message(raws[0], is_read=True, received=RECEIVED),
                                         message(raws[1], is_read=False, received=RECEIVED)])
    assert all(not isinstance(r, Exception) for r in results), results
    assert [m for _, m in tenant.received_mime(ALICE)] == raws  # bytes exactly as sent

    items = {i.message_id: i for i in folder.all().only(
        "message_id", "is_draft", "is_read", "datetime_received", "datetime_sent", "subject", "mime_content",
        "pr_message_flags", "pr_delivery_time", "size")}
    first, second = items["<msg-1@example.org>"], items["<msg-2@example.org>"]
    assert first.is_draft is False and second.is_draft is False
    assert first.is_read is True and second.is_read is False
    assert first.datetime_received == RECEIVED and first.datetime_sent == RECEIVED
    assert first.subject == "Grüße"
    assert first.mime_content == raws[0]
    assert first.pr_message_flags == 1 and second.pr_message_flags == 0
    assert first.pr_delivery_time == RECEIVED
    assert first.size == len(raws[0])

    assert folder.filter(message_id="<msg-2@example.org>").exists()
    assert not folder.filter(message_id="<nope@example.org>").exists()
    finds = [r for r in tenant.requests if r.operation == "FindItem"]
    assert len(finds) == 3  # .all() once, .exists() once each: no GetItem for exists()


def test_without_message_flags_exchange_makes_a_draft(alice: Account) -> None:
    created = alice.bulk_create(alice.drafts, [Message(mime_content=plain(1), is_read=True)])
    (item,) = alice.fetch([created[0]], only_fields=["is_draft", "datetime_received"])
    assert item.is_draft is True
    unsent = alice.bulk_create(alice.inbox, [message(plain(2), flags=1 | 8)])
    (item,) = alice.fetch([unsent[0]], only_fields=["is_draft"])
    assert item.is_draft is True


def test_restrictions_paging_and_order(alice: Account) -> None:
    folder = import_folder(alice, "Paging")
    alice.bulk_create(folder, [message(plain(n), received=RECEIVED + dt.timedelta(days=n)) for n in range(7)])
    subjects = [i.subject for i in folder.all().order_by("-datetime_received").only("subject")]
    assert subjects == [f"hello {n}" for n in reversed(range(7))]
    page = folder.all().order_by("datetime_received").only("subject")
    page.page_size = 2  # exchangelib pages FindItem with IndexedPageItemView
    assert [i.subject for i in page] == [f"hello {n}" for n in range(7)]
    assert folder.filter(subject="HELLO 3").count() == 1  # Exchange compares strings without case
    assert folder.filter(subject__contains="llo 5").count() == 1
    either = folder.filter(message_id__in=["<plain-1@example.org>", "<plain-2@example.org>"])
    assert either.count() == 2
    since = folder.filter(datetime_received__gte=RECEIVED + dt.timedelta(days=5), is_read=True)
    assert since.count() == 2


def test_rebuild_mime_returns_equivalent_not_equal_bytes(sandbox_factory: object,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import populate

    sb = populate(sandbox_factory(rebuild_mime=True))  # type: ignore[operator]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sb.ca_path))
    acct = account(sb, app_credentials(confidential_app(sb)))
    raw = raw_message(7)
    (created,) = acct.bulk_create(acct.inbox, [message(raw, received=RECEIVED)])
    (item,) = acct.fetch([created], only_fields=["mime_content", "message_id", "subject"])
    assert item.mime_content != raw
    assert sb.received_mime(ALICE) == [("Inbox", raw)]  # the sandbox kept what it was given
    got = email.message_from_bytes(item.mime_content, policy=email.policy.default)
    sent = email.message_from_bytes(raw, policy=email.policy.default)
    assert got["Message-ID"] == sent["Message-ID"] and got["Subject"] == sent["Subject"]
    assert got.get_content().replace("\r\n", "\n") == sent.get_content()  # Exchange answers with CRLF
    assert item.message_id == "<msg-7@example.org>"


def test_too_large_fails_per_item_without_sinking_the_batch(sandbox_factory: object,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from .conftest import populate

    sb = populate(sandbox_factory(max_message_bytes=2000))  # type: ignore[operator]
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sb.ca_path))
    acct = account(sb, app_credentials(confidential_app(sb)))
    big = plain(2, subject="x" * 3000)
    results = acct.bulk_create(acct.inbox, [message(plain(1)), message(big), message(plain(3))])
    assert not isinstance(results[0], Exception) and not isinstance(results[2], Exception)
    assert isinstance(results[1], ErrorMessageSizeExceeded)
    assert [i.subject for i in sb.items(ALICE, "Inbox")] == ["hello 3", "hello 1"]


def test_item_busy_with_fail_fast_raises_and_keeps_the_others(tenant: Sandbox, alice: Account) -> None:
    tenant.inject(Fault.item_busy(item_index=1, back_off_ms=50))
    with pytest.raises(ErrorServerBusy):
        alice.bulk_create(alice.inbox, [message(plain(n)) for n in range(3)])
    # Exchange stored the items around the busy one: a retry must dedupe by Message-ID first.
    assert sorted(i.subject or "" for i in tenant.items(ALICE, "Inbox")) == ["hello 0", "hello 2"]


def test_server_busy_fault_carries_back_off(tenant: Sandbox, alice: Account) -> None:
    alice.inbox.refresh()
    tenant.inject(Fault.server_busy(back_off_ms=1500))
    with pytest.raises(ErrorServerBusy) as raised:
        alice.inbox.refresh()
    assert raised.value.back_off == 1.5


def test_fault_tolerance_waits_and_succeeds(tenant: Sandbox) -> None:
    acct = account(tenant, app_credentials(confidential_app(tenant)), retry_policy=FaultTolerance(max_wait=30))
    tenant.inject(Fault.server_busy(back_off_ms=100, operation="CreateItem"),
                  Fault.http_503(retry_after_s=1, operation="CreateItem"))
    results = acct.bulk_create(acct.inbox, [message(plain(1))])
    assert not isinstance(results[0], Exception)
    statuses = [r.status for r in tenant.requests if r.path.lower().endswith("exchange.asmx")]
    assert 500 in statuses and 503 in statuses


def test_expired_token_is_401_and_refresh_recovers(tenant: Sandbox) -> None:
    app = public_app(tenant)
    credentials = user_credentials(app, device_sign_in(tenant, app, ALICE))
    acct = account(tenant, credentials, impersonate=False)
    assert acct.inbox.name == "Inbox"
    tenant.expire_tokens(ALICE)
    with pytest.raises(UnauthorizedError):
        acct.inbox.refresh()
    credentials.refresh(session=None)  # what exchangelib calls when requests-oauthlib sees an expired token
    fresh = account(tenant, credentials, impersonate=False)
    assert fresh.inbox.name == "Inbox"


def test_injected_401(tenant: Sandbox, alice: Account) -> None:
    alice.inbox.refresh()
    tenant.inject(Fault.http_401())
    with pytest.raises(UnauthorizedError):
        alice.inbox.refresh()


def test_unknown_mailbox_and_blocked_ews(tenant: Sandbox) -> None:
    from exchangelib.errors import ErrorNonExistentMailbox

    app = confidential_app(tenant)
    with pytest.raises(ErrorNonExistentMailbox):
        _ = account(tenant, app_credentials(app), address="nobody@contoso.example").inbox
    tenant.set_ews_blocked(True)
    with pytest.raises(MalformedResponseError, match="Code: 403"):
        _ = account(tenant, app_credentials(app)).inbox
    tenant.set_ews_blocked(True, allowed_app_ids=[APP_ID])
    assert account(tenant, app_credentials(app)).inbox.name == "Inbox"


def test_8bit_headers_and_corpus_do_not_crash(alice: Account, tenant: Sandbox) -> None:
    raw = (b"From: J\xf6rg <j@example.org>\nSubject: Gr\xfc\xdfe \xff\x00 caf\xc3\xa9\nMessage-ID: <8bit@x>\n"
           b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhi\n--b\n"
           b"Content-Type: application/pdf; name=\"r\xe9sum\xe9.pdf\"\nContent-Disposition: attachment\n\n"
           b"%PDF\n--b--\n")
    (created,) = alice.bulk_create(alice.inbox, [message(raw)])
    (item,) = alice.fetch([created], only_fields=["subject", "has_attachments", "attachments", "sender"])
    assert item.subject.startswith("Grüße")  # 8-bit bytes read as Windows-1252, never a crash
    assert item.has_attachments is True
    assert [a.name for a in item.attachments] == ["résumé.pdf"]
    assert not [r for r in tenant.requests if r.operation == "crash"]
