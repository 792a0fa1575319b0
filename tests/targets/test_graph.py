"""The Graph target against the sandbox: real msal (via migrate.auth), real httpx, every Graph JSON body checked
against Microsoft's schema (a violation fails the test), the same store EWS serves."""

from __future__ import annotations

import json
import ssl
from collections import Counter
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import httpx
import pytest
from exchangelib.protocol import close_connections

from migrate import samplebox
from migrate.auth import AuthSettings, Transport
from migrate.auth.cache import TokenStore
from migrate.auth.credentials import ClientSecret
from migrate.auth.provider import TokenProvider
from migrate.errors import UsageError
from migrate.model import Folder, FolderRole, ItemKind
from migrate.sandbox import Fault, Sandbox
from migrate.sandbox.testing import check_schema_errors, make_sandbox_factory_fixture, strict_config
from migrate.sources.headers import header_block, header_facts
from migrate.targets import Failure, Outcome, Target, TargetFolder, TargetOptions, UploadItem, open_target
from migrate.targets.graph import GraphTarget
from migrate.targets.graph_http import Send, UploadBudget, set_upload_budget
from migrate.targets.graph_pim import IDENTITY_SET
from tests.sandbox import helpers
from tests.targets.cases import TargetCase

APP = "0a0b0c0d-graph-target-app"
SECRET = "Zq8~graph-target-secret"
ALICE = "alice@contoso.example"
TENANT = "contoso.example"
GRAPH_PERMISSIONS = ["Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite", "full_access_as_app"]

sandbox_factory = make_sandbox_factory_fixture()


@pytest.fixture(autouse=True)
def fresh_exchangelib_protocols() -> Iterator[None]:
    yield
    close_connections()


def populate(sb: Sandbox, permissions: list[str] | None = None) -> Sandbox:
    sb.add_app(APP, secret=SECRET, permissions=GRAPH_PERMISSIONS if permissions is None else permissions)
    sb.add_mailbox(ALICE)
    return sb


def provider(sb: Sandbox, config_dir: Path, mailbox: str = ALICE) -> TokenProvider:
    settings = AuthSettings(transport=Transport.GRAPH, tenant=TENANT, client_id=APP, authority=sb.url,
                            credential=ClientSecret(lambda: SECRET, "$TEST"), ca_file=sb.ca_path)
    return TokenProvider(settings, mailbox=mailbox, store=TokenStore(config_dir))


def graph_url(sb: Sandbox, mailbox: str = ALICE, query: str = "") -> str:
    return f"graph://{mailbox}?endpoint={sb.graph_url}{query}"


def open_graph(sb: Sandbox, config_dir: Path, mailbox: str = ALICE, query: str = "", **extra: str) -> Target:
    return open_target(graph_url(sb, mailbox, query),
                       TargetOptions(token=provider(sb, config_dir, mailbox).token, ca_file=sb.ca_path, extra=extra))


def sandbox_graph_case(request: pytest.FixtureRequest) -> TargetCase:
    """The conformance suite's Graph backend: a fresh sandbox (schema validation on) per test, app-only sign-in."""
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    sb = populate(Sandbox(factory.mktemp("sandbox"), config=strict_config()).start())

    def finish() -> None:
        sb.stop()
        check_schema_errors(sb)

    request.addfinalizer(finish)
    tokens = provider(sb, factory.mktemp("config"))

    def well_known(path: tuple[str, ...], folder: TargetFolder) -> bool:
        return sb.folder_path(folder.id) == "/".join(path)

    return TargetCase("sandbox-graph", graph_url(sb), TargetOptions(token=tokens.token, ca_file=sb.ca_path),
                      well_known)


@pytest.fixture
def tenant(sandbox_factory: helpers.Any, tmp_path: Path) -> Sandbox:
    return populate(sandbox_factory())


def _items(folders: int = 3) -> list[UploadItem]:
    out = []
    for n, message in enumerate(m for f in samplebox.build(folders) for m in f.messages):
        mid = header_facts(header_block(message.raw)).message_id
        out.append(UploadItem(f"k{n}", message.raw, message.flags, message.internal_date, message_id=mid))
    return out


def _big_message(size: int) -> bytes:
    message = EmailMessage()
    message["From"] = "Bo Ek <bo@example.se>"
    message["To"] = ALICE
    message["Subject"] = "Ritningar"
    message["Message-ID"] = "<big-1@example.se>"
    message["Date"] = "Tue, 05 Mar 2024 10:00:00 +0100"
    message.set_content("Se bifogade ritningar.")
    message.add_attachment(bytes(range(256)) * (size // 256), maintype="application", subtype="pdf",
                           filename="ritning.pdf")
    return message.as_bytes()


def test_url_and_options() -> None:
    with pytest.raises(UsageError, match="OAuth"):
        open_target("graph://alice@contoso.example", TargetOptions())
    with pytest.raises(UsageError, match="mailbox"):
        open_target("graph://contoso.example", TargetOptions(token=lambda: "t"))
    with pytest.raises(UsageError, match="endpoint"):
        open_target("graph://a@contoso.example?endpoint=http://x/v1.0", TargetOptions(token=lambda: "t"))
    target = open_target("graph://alice@contoso.example?max_mb=1&import_mime=1", TargetOptions(token=lambda: "t"))
    assert isinstance(target, GraphTarget)
    assert target.where.endpoint == "https://graph.microsoft.com/v1.0" and target.where.import_mime
    assert target.capabilities.max_message_bytes == 1024 * 1024 and target.capabilities.calendars
    target.close()


def test_identity_property_is_the_one_the_ews_target_writes() -> None:
    from migrate.targets.ews_pim import IDENTITY_SET as EWS_SET

    assert IDENTITY_SET == EWS_SET


def test_messages_land_as_received_and_ews_sees_them(tenant: Sandbox, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    items = _items()
    with open_graph(tenant, tmp_path / "config") as target:
        folder = target.ensure_folder(("Inbox", "Kunder", "Åkesson & Söner"))
        results = target.upload(folder, items)
    assert all(r.outcome is Outcome.CREATED for r in results), results
    stored = tenant.items(ALICE, "Inbox/Kunder/Åkesson & Söner")
    assert len(stored) == len(items) and not any(s.is_draft for s in stored)
    by_id = {s.internet_message_id: s for s in stored}
    once = Counter(i.message_id for i in items)
    for item in items:
        if item.message_id and once[item.message_id] == 1:
            there = by_id[item.message_id]
            assert there.is_read == ("\\Seen" in item.flags)
            assert int(there.date_received.timestamp()) == int(item.received.timestamp())  # type: ignore[union-attr]
    # Batched: twenty messages to a request at most, never one request per message.
    posts = [r for r in tenant.requests if r.operation == "graph:POST $batch"]
    assert 0 < len(posts) <= len(items) // 20 + 1
    # The same store: a third party over EWS sees what Graph made.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tenant.ca_path))
    account = helpers.account(tenant, helpers.app_credentials(helpers.confidential_app(tenant, APP, SECRET)))
    folder_ews = account.inbox / "Kunder" / "Åkesson & Söner"
    seen = {m.message_id: m.is_read for m in folder_ews.all().only("message_id", "is_read")}
    assert {i.message_id for i in items if i.message_id} <= set(seen)


def test_an_attachment_over_3_mb_goes_by_upload_session(tenant: Sandbox, tmp_path: Path) -> None:
    raw = _big_message(5 * 1024 * 1024)
    with open_graph(tenant, tmp_path / "config") as target:
        folder = target.ensure_folder(("Inbox",))
        [result] = target.upload(folder, [UploadItem("big", raw, frozenset({"\\Seen"}), None,
                                                     message_id="<big-1@example.se>")])
        assert result.outcome is Outcome.CREATED, result
        back = target.read_back(folder, result.target_id or "")
    operations = [r.operation for r in tenant.requests]
    assert "graph:POST createUploadSession" in operations
    chunks = [r for r in tenant.requests if r.operation == "graph:PUT upload"]
    assert len(chunks) >= 2 and all(r.bytes_in < 4 * 1024 * 1024 for r in chunks)
    assert b"ritning.pdf" in back
    [stored] = [s for s in tenant.items(ALICE, "Inbox") if s.internet_message_id == "<big-1@example.se>"]
    assert not stored.is_draft and stored.size > 5 * 1024 * 1024


def test_throttling_becomes_retry_with_the_services_wait(tenant: Sandbox, tmp_path: Path) -> None:
    items = _items(1)[:3]
    tenant.inject(Fault.http_429(retry_after_s=7, operation="graph:POST $batch"))
    with open_graph(tenant, tmp_path / "config") as target:
        folder = target.ensure_folder(("Inbox",))
        results = target.upload(folder, items)
        assert all(r.failure is Failure.RETRY and r.retry_after == 7 for r in results), results
        again = target.upload(folder, items)
    assert all(r.outcome is Outcome.CREATED for r in again)


def test_a_503_on_one_event_fails_that_event_alone(tenant: Sandbox, tmp_path: Path) -> None:
    from tests.targets.test_ews_calendar import HOLIDAY, WEEKLY

    tenant.inject(Fault.http_503(retry_after_s=3, operation="graph:POST events"))
    with open_graph(tenant, tmp_path / "config") as target:
        folder = target.ensure_folder(("Calendar",), Folder(("Kalender",), role=FolderRole.CALENDAR,
                                                            kind=ItemKind.EVENT))
        first, second = target.upload(folder, [UploadItem("w", WEEKLY, frozenset(), None),
                                               UploadItem("h", HOLIDAY, frozenset(), None)])
    assert first.failure is Failure.RETRY and first.retry_after == 3
    assert second.outcome is Outcome.CREATED


def test_the_upload_budget_paces_before_the_service_would_refuse(sandbox_factory: helpers.Any,
                                                                   tmp_path: Path) -> None:
    """The sandbox counts a small budget per mailbox in a one-second window; the target, given the same
    budget, waits instead of being refused: no 429, every message created, and the pacing decisions show it."""
    items = _items(2)
    budget = 20_000
    sb = populate(sandbox_factory(throttle_enabled=True, throttle_bytes=budget, throttle_window_s=1.0))
    pacing = UploadBudget(budget, 1.0)
    set_upload_budget(sb.graph_url, ALICE, pacing)
    with open_graph(sb, tmp_path / "config") as target:
        folder = target.ensure_folder(("Inbox",))
        results = [r for start in range(0, len(items), 4) for r in target.upload(folder, items[start:start + 4])]
    assert all(r.outcome is Outcome.CREATED for r in results), [r.reason for r in results if r.reason]
    assert not [r for r in sb.requests if r.status == 429]
    assert any(d.waited > 0 for d in pacing.decisions)
    assert all(d.used_before + d.size <= budget or d.waited > 0 for d in pacing.decisions)


def test_budget_decisions_without_waiting() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    budget = UploadBudget(100, 10.0, clock=lambda: now[0], sleep=sleep)
    assert budget.take(60) == 0
    now[0] = 2.0
    assert budget.take(30) == 0
    now[0] = 3.0
    waited = budget.take(50)  # 60 + 30 + 50 > 100: wait until the first send (at 0 s) leaves the window (10 s)
    assert waited == pytest.approx(7.05)
    assert [round(d.waited, 2) for d in budget.decisions] == [0, 0, 7.05]
    assert budget.take(500) > 0  # more than the budget waits for an empty window, then goes alone
    assert budget.decisions[-1].used_before > 0


def test_a_send_counts_from_the_services_answer_and_a_refused_one_not_at_all() -> None:
    """The service counts a request when it arrives, after the client asked to send it: counting from the ask
    would free the window early and be refused at its turn (the bench saw a 429 at every window's turn)."""
    now = [0.0]
    under_way: list[Send] = []

    def sleep(seconds: float) -> None:
        now[0] += seconds
        while under_way:  # the answer comes while the next sender waits
            budget.settle(under_way.pop())

    budget = UploadBudget(100, 10.0, clock=lambda: now[0], sleep=sleep)
    first = budget.reserve(60)
    now[0] = 4.0
    budget.settle(first)  # answered at 4 s: it leaves the window at 14 s, not 10 s
    refused = budget.reserve(30)
    budget.settle(refused, counted=False)  # a 429: the service did not count it, neither do we
    assert budget.take(40) == 0  # 60 + 40 fits only because the refused 30 left the window
    now[0] = 5.0
    assert budget.take(10) == pytest.approx(9.05)  # until the first leaves: 4 + 10 - 5, and the margin
    # Bytes under way never leave the window before their answer: wait for it, then a whole window.
    now[0] = 100.0
    under_way.append(budget.reserve(80))
    waited = budget.take(30)
    assert waited == pytest.approx(UploadBudget.POLL_S + 0.05 + 10.05)


def test_fidelity_says_what_the_json_route_cannot_keep(tenant: Sandbox, tmp_path: Path) -> None:
    signed = (b"From: a@example.se\r\nTo: alice@contoso.example\r\nSubject: Signerat\r\n"
              b"Message-ID: <signed-1@example.se>\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; "
              b"boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nHej\r\n--b1\r\n"
              b"Content-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Disposition: attachment; "
              b"filename=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b1--\r\n")
    plain = _items(1)[0]
    with open_graph(tenant, tmp_path / "config") as target:
        folder = target.ensure_folder(("Inbox",))
        first, second = target.upload(folder, [UploadItem("s", signed, frozenset(), None), plain])
    assert first.outcome is Outcome.CREATED and first.fidelity is not None
    assert any(prop == "S/MIME signature" for prop, _ in first.fidelity.dropped)
    assert second.outcome is Outcome.CREATED


def test_import_mime_switch_keeps_the_mime_as_received(sandbox_factory: helpers.Any, tmp_path: Path) -> None:
    sb = populate(sandbox_factory(), permissions=[*GRAPH_PERMISSIONS, "Mail-Advanced.ReadWrite"])
    item = _items(1)[0]
    with open_graph(sb, tmp_path / "config", import_mime="1") as target:
        folder = target.ensure_folder(("Inbox",))
        [result] = target.upload(folder, [item])
    assert result.outcome is Outcome.CREATED
    [stored] = sb.items(ALICE, "Inbox")
    assert not stored.is_draft and stored.mime is not None
    assert "graph:POST importMime" in [r.operation for r in sb.requests]


def test_import_mime_without_its_permission_is_refused_per_item(tenant: Sandbox, tmp_path: Path) -> None:
    with open_graph(tenant, tmp_path / "config", import_mime="1") as target:
        folder = target.ensure_folder(("Inbox",))
        [result] = target.upload(folder, [_items(1)[0]])
    assert result.failure is Failure.REJECTED and "ErrorAccessDenied" in (result.reason or "")


def test_an_invalid_body_is_recorded_and_refused(tenant: Sandbox, tmp_path: Path) -> None:
    token = provider(tenant, tmp_path / "config").token()
    inbox = f"{tenant.graph_url}/users/{ALICE}/mailFolders/inbox/messages"
    with httpx.Client(verify=ssl.create_default_context(cafile=str(tenant.ca_path))) as client:
        answer = client.post(inbox, headers={"Authorization": f"Bearer {token}"},
                             content=json.dumps({"subject": 5, "toRecipients": [{"emailAddress": {"adress": "x"}}]}),
                             )
    assert answer.status_code == 400
    problems = tenant.schema_errors
    assert problems and any("subject" in str(p) for p in problems)
    tenant._schema_errors.clear()  # the refusal was the point of this test


def test_events_and_contacts_round_trip_with_identity(tenant: Sandbox, tmp_path: Path) -> None:
    from tests.targets.test_ews_calendar import CARD, GROUP, WEEKLY

    calendar = Folder(("Arbete",), role=FolderRole.CALENDAR, kind=ItemKind.EVENT)
    book = Folder(("Adresser",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT)
    with open_graph(tenant, tmp_path / "config") as target:
        cal = target.ensure_folder(("Calendar", "Arbete"), calendar)
        [event] = target.upload(cal, [UploadItem("e", WEEKLY, frozenset(), None, message_id="weekly-1@example.org")])
        assert event.outcome is Outcome.CREATED and event.fidelity is not None
        contacts = target.ensure_folder(("Contacts", "Adresser"), book)
        card, group = target.upload(contacts, [UploadItem("c", CARD, frozenset(), None, message_id="c-1@example.org"),
                                               UploadItem("g", GROUP, frozenset(), None)])
        assert card.outcome is Outcome.CREATED
        assert group.failure is Failure.REJECTED and "EWS" in (group.reason or "")
        assert list(target.find(cal, ["weekly-1@example.org"])) == ["weekly-1@example.org"]
        assert list(target.find(contacts, ["c-1@example.org"])) == ["c-1@example.org"]
    [stored] = tenant.items(ALICE, "Calendar/Arbete")
    assert stored.data is not None
    # EXDATE 6 March deleted, the 11 March occurrence moved to 14:00: both applied to the series.
    assert [d["original_start"] for d in stored.data["deleted_occurrences"]] == ["2024-03-06T09:00:00Z"]
    assert [m["start"] for m in stored.data["modified_occurrences"]] == ["2024-03-11T13:00:00Z"]
    [person] = tenant.items(ALICE, "Contacts/Adresser")
    assert person.data is not None and person.data["display_name"] == "Åsa Öberg"
    assert {e["value"] for e in person.data["emails"]} == {"asa@acme.se", "asa@hem.se"}
