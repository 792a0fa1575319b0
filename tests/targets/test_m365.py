"""The m365:// target: one mailbox, each kind of item by the transport the plan chose. Its conformance backend
routes mail by EWS and calendars by Graph into one sandbox (one store behind both), so the suite sees a single
Target whose folders live behind two protocols."""

from __future__ import annotations

import pytest
from exchangelib.protocol import close_connections

from migrate.auth import AuthSettings, Transport
from migrate.auth.cache import TokenStore
from migrate.auth.credentials import ClientSecret
from migrate.auth.provider import TokenProvider
from migrate.errors import UsageError
from migrate.model import Folder, FolderRole, ItemKind
from migrate.preflight.endpoints import parse_m365
from migrate.sandbox import Sandbox
from migrate.sandbox.testing import check_schema_errors, strict_config
from migrate.targets import TargetFolder, TargetOptions, open_target
from migrate.targets.m365 import RoutedTarget, parse_routes
from tests.targets.cases import TargetCase
from tests.targets.test_graph import ALICE, APP, GRAPH_PERMISSIONS, SECRET, TENANT, populate

ROUTES = "mail=ews,calendars=graph,contacts=ews"


def sandbox_m365_case(request: pytest.FixtureRequest) -> TargetCase:
    factory: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    sb = populate(Sandbox(factory.mktemp("sandbox"), config=strict_config()).start(), GRAPH_PERMISSIONS)

    def finish() -> None:
        close_connections()
        sb.stop()
        check_schema_errors(sb)

    request.addfinalizer(finish)
    store = TokenStore(factory.mktemp("config"))

    def tokens(transport: Transport) -> TokenProvider:
        return TokenProvider(AuthSettings(transport=transport, tenant=TENANT, client_id=APP, authority=sb.url,
                                          credential=ClientSecret(lambda: SECRET, "$TEST"), ca_file=sb.ca_path),
                             mailbox=ALICE, store=store)

    request.node.sandbox = sb  # for tests that look at what the sandbox was asked

    def well_known(path: tuple[str, ...], folder: TargetFolder) -> bool:
        return sb.folder_path(folder.id) == "/".join(path)

    return TargetCase("sandbox-m365", f"m365://{ALICE}?ews={sb.ews_url}&graph={sb.graph_url}",
                      TargetOptions(tokens={"ews": tokens(Transport.EWS).token,
                                            "graph": tokens(Transport.GRAPH).token},
                                    ca_file=sb.ca_path, extra={"routes": ROUTES}), well_known)


def test_routes_and_urls() -> None:
    assert parse_routes(ROUTES) == {ItemKind.MAIL: Transport.EWS, ItemKind.EVENT: Transport.GRAPH,
                                    ItemKind.CONTACT: Transport.EWS}
    with pytest.raises(UsageError, match="imap cannot carry calendars"):
        parse_routes("calendars=imap")
    with pytest.raises(UsageError, match="no transport chosen"):
        open_target("m365://anna@contoso.com", TargetOptions())
    with pytest.raises(UsageError, match="no sign-in for graph"):
        open_target("m365://anna@contoso.com", TargetOptions(extra={"routes": "mail=graph"}))
    with pytest.raises(UsageError, match="not an https"):
        parse_m365("m365://anna@contoso.com?ews=http://127.0.0.1/EWS/Exchange.asmx")
    with pytest.raises(UsageError, match="unknown parameter"):
        parse_m365("m365://anna@contoso.com?endpoint=https://x")
    where = parse_m365("m365://Anna@Contoso.com")
    assert where.transport_url(Transport.IMAP) == "imaps://anna@contoso.com@outlook.office365.com:993"
    assert where.transport_url(Transport.EWS).startswith("ews://anna@contoso.com?endpoint=https://outlook.office365")
    assert parse_m365("m365://contoso.onmicrosoft.com").mailbox is None


def test_a_folder_follows_its_kind_to_its_transport(request: pytest.FixtureRequest) -> None:
    case = sandbox_m365_case(request)
    with case.open() as target:
        assert isinstance(target, RoutedTarget)
        assert target.capabilities.calendars and target.capabilities.contacts
        assert target.capabilities.concurrency <= 4
        inbox = target.ensure_folder(("Inbox",), Folder(("INBOX",), role=FolderRole.INBOX))
        calendar = target.ensure_folder(("Calendar",), Folder(("Kalender",), role=FolderRole.CALENDAR,
                                                              kind=ItemKind.EVENT))
        assert inbox.kind is ItemKind.MAIL and calendar.kind is ItemKind.EVENT
    sb: Sandbox = request.node.sandbox
    asked = [r.operation for r in sb.requests]
    assert "GetFolder" in asked  # the Inbox by EWS
    assert any(op.startswith("graph:") and "calendar" in op for op in asked), asked  # the Calendar by Graph
