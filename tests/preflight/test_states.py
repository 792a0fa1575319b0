"""Preflight against each tenant state: every transport blocked or allowed, each permission missing, no
licence, a quota too small; the choice it makes and the admin fix it names, through the real msal, exchangelib,
httpx and imapclient."""

from __future__ import annotations

from migrate.auth.scopes import Transport
from migrate.migration import preflight_target
from migrate.model import ItemKind
from migrate.preflight import Preflight, Status, parse_transports
from tests.preflight.conftest import ALICE, CLIENT, EVERYTHING, Tenant

MAIL, EVENT, CONTACT = ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT
GB = 1024 ** 3


def check(tenant: Tenant, **kw: object) -> Preflight:
    result = preflight_target(tenant.connection(), (MAIL, EVENT, CONTACT), **kw)  # type: ignore[arg-type]
    assert result is not None
    return result


def status(result: Preflight, transport: Transport, kind: ItemKind) -> Status:
    found = result.finding(transport, kind)
    assert found is not None
    return found.status


def fixes(result: Preflight, transport: Transport) -> str:
    return "\n".join(line for f in result.findings if f.transport is transport for line in f.fix)


def test_everything_allowed_prefers_imap_for_mail_and_ews_for_the_rest_and_reads_the_limits(tenant: Tenant) -> None:
    result = check(tenant, source_bytes=10 * 1024 ** 2, source_largest=2 * 1024 ** 2)
    assert {(f.transport, f.kind): f.status for f in result.findings} == {
        (Transport.EWS, MAIL): Status.WORKS, (Transport.EWS, EVENT): Status.WORKS,
        (Transport.EWS, CONTACT): Status.WORKS, (Transport.IMAP, MAIL): Status.WORKS,
        (Transport.GRAPH, MAIL): Status.WORKS, (Transport.GRAPH, EVENT): Status.WORKS,
        (Transport.GRAPH, CONTACT): Status.WORKS}
    assert result.choice == {MAIL: Transport.IMAP, EVENT: Transport.EWS, CONTACT: Transport.EWS}
    assert result.limits.max_message_bytes == 36 * 1024 ** 2  # MaxReceiveSize from the mail tips
    assert result.limits.quota_bytes == 50 * GB and result.limits.used_bytes == 0  # from the usage report
    assert result.ok and not result.problems
    assert tenant.sandbox.items(ALICE, "Inbox") == []  # preflight created nothing


def test_ews_blocked_by_the_tenant_moves_calendars_to_graph_and_names_the_allow_list(tenant: Tenant) -> None:
    tenant.sandbox.set_ews_blocked(True)
    blocked = check(tenant)
    assert status(blocked, Transport.EWS, MAIL) is Status.REFUSED
    assert f'EwsAllowedAppIDs @{{Add="{CLIENT}"}}' in fixes(blocked, Transport.EWS)
    assert blocked.choice == {MAIL: Transport.IMAP, EVENT: Transport.GRAPH, CONTACT: Transport.GRAPH}
    assert blocked.ok
    tenant.sandbox.set_ews_blocked(True, allowed_app_ids=[CLIENT])  # the admin ran the fix
    assert status(check(tenant), Transport.EWS, EVENT) is Status.WORKS


def test_ews_off_for_the_mailbox_names_set_casmailbox(tenant: Tenant) -> None:
    tenant.sandbox.set_mailbox_policy(ALICE, ews_enabled=False)
    result = check(tenant)
    assert status(result, Transport.EWS, CONTACT) is Status.REFUSED
    assert f"Set-CASMailbox -Identity {ALICE} -EwsEnabled $true" in fixes(result, Transport.EWS)
    assert result.choice[CONTACT] is Transport.GRAPH


def test_imap_disabled_for_the_mailbox_sends_mail_by_ews_and_names_the_command(tenant: Tenant) -> None:
    tenant.sandbox.set_mailbox_policy(ALICE, imap_enabled=False)
    result = check(tenant)
    assert status(result, Transport.IMAP, MAIL) is Status.REFUSED
    assert f"Set-CASMailbox -Identity {ALICE} -ImapEnabled $true" in fixes(result, Transport.IMAP)
    assert result.choice[MAIL] is Transport.EWS
    tenant.sandbox.set_ews_blocked(True)
    assert check(tenant).choice[MAIL] is Transport.GRAPH  # the last resort: Graph's JSON route


def test_a_missing_graph_permission_is_named_per_kind(tenant: Tenant) -> None:
    tenant.permit([p for p in EVERYTHING if p != "Calendars.ReadWrite"])
    tenant.sandbox.set_ews_blocked(True)
    result = check(tenant)
    assert status(result, Transport.GRAPH, MAIL) is Status.WORKS
    assert status(result, Transport.GRAPH, CONTACT) is Status.WORKS
    calendar = result.finding(Transport.GRAPH, EVENT)
    assert calendar is not None and calendar.status is Status.REFUSED
    assert any("Calendars.ReadWrite (Application)" in line and "Grant admin consent" in line for line in calendar.fix)
    assert result.choice[EVENT] is None
    [problem] = result.problems
    assert "calendars" in problem.what and not problem.blocking  # mail still moves; calendars are left out
    assert result.ok


def test_no_app_permission_for_ews_is_a_refusal_with_the_permission_to_grant(tenant: Tenant) -> None:
    tenant.permit([p for p in EVERYTHING if p != "full_access_as_app"])
    result = check(tenant)
    assert status(result, Transport.EWS, MAIL) is Status.REFUSED
    assert result.choice == {MAIL: Transport.IMAP, EVENT: Transport.GRAPH, CONTACT: Transport.GRAPH}


def test_nothing_can_carry_mail_is_blocking(tenant: Tenant) -> None:
    tenant.permit(["Reports.Read.All"])
    result = check(tenant)
    assert result.choice[MAIL] is None
    assert not result.ok
    assert any(p.blocking and p.what.startswith("no transport can carry mail") for p in result.problems)


def test_an_unlicensed_user_is_named_with_the_licence_step(tenant: Tenant) -> None:
    tenant.sandbox.set_mailbox_policy(ALICE, licensed=False)
    result = check(tenant)
    assert status(result, Transport.GRAPH, MAIL) is Status.REFUSED
    assert status(result, Transport.IMAP, MAIL) is Status.REFUSED
    assert "Licenses and apps" in fixes(result, Transport.GRAPH)


def test_a_quota_too_small_for_the_source_stops_the_move_with_the_command(tenant: Tenant) -> None:
    tenant.sandbox.set_mailbox_policy(ALICE, quota_bytes=1 * GB)
    assert check(tenant, source_bytes=GB // 2).ok
    result = check(tenant, source_bytes=2 * GB)
    assert not result.ok
    [problem] = [p for p in result.problems if p.blocking]
    assert "2.00 GB" in problem.what and "1.00 GB free" in problem.what
    assert any(f"Set-Mailbox -Identity {ALICE} -ProhibitSendReceiveQuota" in line for line in problem.fix)


def test_a_message_over_max_receive_size_is_a_warning(tenant: Tenant) -> None:
    tenant.sandbox.set_mailbox_policy(ALICE, max_receive_bytes=10 * 1024 ** 2)
    result = check(tenant, source_largest=20 * 1024 ** 2)
    assert result.ok
    [warning] = result.problems
    assert not warning.blocking and "-MaxReceiveSize" in warning.fix[0]


def test_without_reports_permission_the_quota_is_unknown_and_says_how_to_read_it(tenant: Tenant) -> None:
    tenant.permit([p for p in EVERYTHING if p != "Reports.Read.All"])
    result = check(tenant, source_bytes=100 * GB)
    assert result.limits.quota_bytes is None and result.ok  # not known is not a refusal
    assert any("Reports.Read.All" in line for line in result.limits.fix)


def test_transport_override_is_checked_not_trusted(tenant: Tenant) -> None:
    result = check(tenant, chosen=parse_transports("mail=graph"))
    assert result.choice[MAIL] is Transport.GRAPH and result.ok
    tenant.sandbox.set_ews_blocked(True)
    forced = check(tenant, chosen=parse_transports("ews"))
    assert not forced.ok and forced.choice[EVENT] is Transport.EWS
    assert any("EwsAllowedAppIDs" in line for p in forced.problems for line in p.fix)


def test_a_tenant_without_a_mailbox_checks_sign_in_only(tenant: Tenant) -> None:
    result = preflight_target(tenant.connection("m365://contoso.example"))
    assert result is not None and result.mailbox is None
    assert {f.status for f in result.findings} == {Status.NOT_CHECKED}
