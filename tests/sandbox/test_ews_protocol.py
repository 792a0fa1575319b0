"""EWS at the wire level: captured exchangelib requests replayed, auth and impersonation answers, schema faults."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from lxml import etree

from migrate.sandbox import Sandbox
from migrate.sandbox.soap import E_NS, M_NS, SOAP_NS, T_NS
from migrate.sandbox.testing import require_schema_dir, strict_config

from .conftest import populate
from .helpers import ALICE, BOB, EWS_APP_SCOPE, confidential_app, device_sign_in, msal_session, public_app

NS = {"s": SOAP_NS, "m": M_NS, "t": T_NS, "e": E_NS}
# Captures that name folders by distinguished id only, so they replay against any fresh mailbox of alice's.
REPLAYABLE = ["001-GetFolder-root", "002-GetFolder-msgfolderroot", "003-GetFolder-inbox", "004-GetFolder-calendar",
              "005-GetFolder-contacts", "006-FindFolder-deep-msgfolderroot",
              "007-GetFolder-all-wellknown-folder-cache", "008-FindFolder-deep-root", "010-CreateFolder-under-inbox",
              "013-CreateItem-CalendarItems-recurring-allday", "014-CreateItem-Contact", "s01-ConvertId-version-guess"]


def captures() -> Path:
    return require_schema_dir().parent / "ews-captures"


def app_token(sandbox: Sandbox) -> str:
    token: str = confidential_app(sandbox).acquire_token_for_client(scopes=EWS_APP_SCOPE)["access_token"]
    return token


def post(sandbox: Sandbox, body: bytes, token: str | None) -> requests.Response:
    headers = {"Content-Type": "text/xml; charset=utf-8"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return msal_session(sandbox).post(sandbox.ews_url, data=body, headers=headers)


def outcomes(xml: bytes) -> list[tuple[str, str]]:
    root = etree.fromstring(xml)
    return [(msg.get("ResponseClass", ""), msg.findtext("m:ResponseCode", namespaces=NS) or "")
            for msg in root.iterfind(".//m:ResponseMessages/*", NS)]


def envelope(body: str, header: str = "") -> bytes:
    return (f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_NS}" xmlns:m="{M_NS}" '
            f'xmlns:t="{T_NS}"><s:Header><t:RequestServerVersion Version="Exchange2016"/>{header}</s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>").encode()


def impersonate(address: str) -> str:
    return (f"<t:ExchangeImpersonation><t:ConnectingSID><t:PrimarySmtpAddress>{address}</t:PrimarySmtpAddress>"
            "</t:ConnectingSID></t:ExchangeImpersonation>")


GET_INBOX = ('<m:GetFolder><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape><m:FolderIds>'
             '<t:DistinguishedFolderId Id="inbox"/></m:FolderIds></m:GetFolder>')


def fault_code(response: requests.Response) -> str | None:
    return etree.fromstring(response.content).findtext(".//detail/e:ResponseCode", namespaces=NS)


@pytest.mark.parametrize("name", REPLAYABLE)
def test_captured_requests_get_the_captured_answers(tenant: Sandbox, name: str) -> None:
    request = (captures() / f"{name}.request.xml").read_bytes()
    expected = (captures() / f"{name}.response.xml").read_bytes()
    response = post(tenant, request, app_token(tenant))
    assert response.status_code == 200, response.text
    assert outcomes(response.content) == outcomes(expected)
    names = etree.fromstring(response.content).xpath("//t:Folders/*/t:DisplayName/text()", namespaces=NS)
    assert sorted(names) == sorted(etree.fromstring(expected).xpath("//t:Folders/*/t:DisplayName/text()",
                                                                    namespaces=NS))
    booleans = etree.fromstring(response.content).xpath(
        "//*[starts-with(local-name(), 'Is') or starts-with(local-name(), 'Has')]/text()"
        " | //@IncludesLastItemInRange")
    assert set(booleans) <= {"true", "false"}  # exchangelib reads back only these spellings


def test_find_folder_pages(tenant: Sandbox) -> None:
    body = ('<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>'
            '<m:IndexedPageFolderView MaxEntriesReturned="5" Offset="{}" BasePoint="Beginning"/><m:ParentFolderIds>'
            '<t:DistinguishedFolderId Id="root"/></m:ParentFolderIds></m:FindFolder>')
    token, seen, offset = app_token(tenant), [], 0
    while True:
        root = etree.fromstring(post(tenant, envelope(body.format(offset), impersonate(ALICE)), token).content)
        page = root.find(".//m:RootFolder", NS)
        assert page is not None and page.get("TotalItemsInView") == "12"
        seen += page.xpath("t:Folders/*/t:FolderId/@Id", namespaces=NS)
        offset = int(page.get("IndexedPagingOffset", "0"))
        if page.get("IncludesLastItemInRange") == "true":
            break
    assert len(seen) == len(set(seen)) == 12


def test_bad_folder_ids(tenant: Sandbox) -> None:
    body = ('<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds>'
            '<t:FolderId Id="bm90LW91cnM="/><t:FolderId Id="RjAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAw"/>'
            f'<t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>{BOB}</t:EmailAddress></t:Mailbox>'
            "</t:DistinguishedFolderId></m:FolderIds></m:GetFolder>")
    response = post(tenant, envelope(body, impersonate(ALICE)), app_token(tenant))
    assert [code for _, code in outcomes(response.content)] == [
        "ErrorInvalidIdMalformed", "ErrorFolderNotFound", "ErrorAccessDenied"]


def test_authentication_answers(tenant: Sandbox) -> None:
    assert post(tenant, envelope(GET_INBOX, impersonate(ALICE)), None).status_code == 401
    unknown = post(tenant, envelope(GET_INBOX, impersonate(ALICE)), "not-a-token")
    assert unknown.status_code == 401 and "Bearer" in unknown.headers["WWW-Authenticate"]
    assert "close" not in unknown.headers.get("Connection", "")  # exchangelib would read it as "busy"
    tenant.add_app("no-ews-app", secret="s", permissions=[])
    weak = confidential_app(tenant, client_id="no-ews-app", secret="s").acquire_token_for_client(scopes=EWS_APP_SCOPE)
    assert post(tenant, envelope(GET_INBOX, impersonate(ALICE)), weak["access_token"]).status_code == 401


def test_impersonation_rules(tenant: Sandbox) -> None:
    app = app_token(tenant)
    missing = post(tenant, envelope(GET_INBOX), app)
    assert missing.status_code == 500 and fault_code(missing) == "ErrorInvalidExchangeImpersonationHeaderData"
    nobody = post(tenant, envelope(GET_INBOX, impersonate("nobody@contoso.example")), app)
    assert fault_code(nobody) == "ErrorNonExistentMailbox"
    user = device_sign_in(tenant, public_app(tenant), ALICE)["access_token"]
    assert outcomes(post(tenant, envelope(GET_INBOX), user).content) == [("Success", "NoError")]
    other = post(tenant, envelope(GET_INBOX, impersonate(BOB)), user)
    assert fault_code(other) == "ErrorImpersonateUserDenied"


def test_invalid_request_gets_schema_fault_and_is_recorded(tmp_path: Path) -> None:
    # Not the checking fixture: this sandbox is meant to see a violation.
    sandbox = populate(Sandbox(tmp_path, config=strict_config()).start())
    try:
        bad = GET_INBOX.replace("<t:BaseShape>Default</t:BaseShape>", "<t:BaseShape>Everything</t:BaseShape>")
        response = post(sandbox, envelope(bad, impersonate(ALICE)), app_token(sandbox))
        assert response.status_code == 500 and fault_code(response) == "ErrorSchemaValidation"
        xml = etree.fromstring(response.content)
        assert xml.findtext(".//t:LineNumber", namespaces=NS) == "1"
        assert "Everything" in (xml.findtext(".//t:Violation", namespaces=NS) or "")
        broken = post(sandbox, b"<s:Envelope", app_token(sandbox))
        assert fault_code(broken) == "ErrorSchemaValidation"
        assert len(sandbox.schema_errors) == 2
    finally:
        sandbox.stop()
