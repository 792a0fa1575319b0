"""Each transport tried for real, read-only: sign in with its scopes, then open the mailbox's Inbox, Calendar and
Contacts through the same target code a run uses. A refusal is turned into its reason and the admin's fix.

Nothing is created: the well-known folders exist in every Exchange mailbox, and opening one is a read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from migrate.auth.scopes import Transport
from migrate.errors import AuthError, MigrateError, TLSError, UnreachableError, UserError
from migrate.model import Folder, FolderRole, ItemKind
from migrate.preflight import fixes
from migrate.preflight.result import Finding, Status
from migrate.targets import TargetOptions, open_target

WELL_KNOWN: dict[ItemKind, tuple[tuple[str, ...], Folder]] = {
    ItemKind.MAIL: (("Inbox",), Folder(("INBOX",), role=FolderRole.INBOX)),
    ItemKind.EVENT: (("Calendar",), Folder(("Calendar",), role=FolderRole.CALENDAR, kind=ItemKind.EVENT)),
    ItemKind.CONTACT: (("Contacts",), Folder(("Contacts",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT)),
}
GRAPH_PERMISSION = {ItemKind.MAIL: "Microsoft Graph: Mail.ReadWrite",
                    ItemKind.EVENT: "Microsoft Graph: Calendars.ReadWrite",
                    ItemKind.CONTACT: "Microsoft Graph: Contacts.ReadWrite"}


@dataclass
class Reach:
    """How preflight reaches one tenant or mailbox: the URL per transport and a token source per transport."""

    target: str
    mailbox: str | None
    tenant: str
    client_id: str
    app_only: bool
    urls: dict[Transport, str]
    token_for: Callable[[Transport], Callable[[], str]]
    ca_file: Path | None = None
    insecure: bool = False
    graph_endpoint: str | None = None  # for the limits (mail tips, usage report)


def check(reach: Reach, transport: Transport, kinds: tuple[ItemKind, ...]) -> list[Finding]:
    try:
        token = reach.token_for(transport)
        token()  # sign in with this transport's scopes: a missing consent shows here
    except MigrateError as exc:
        reason, fix = _sign_in_refused(reach, transport, exc)
        return [Finding(transport, k, Status.REFUSED, reason, fix) for k in kinds]
    if reach.mailbox is None:
        return [Finding(transport, k, Status.NOT_CHECKED, "signed in; name a mailbox (m365://user@domain) to "
                        "check the mailbox itself") for k in kinds]
    found: list[Finding] = []
    refused: Finding | None = None
    try:
        with open_target(reach.urls[transport], TargetOptions(token=token, ca_file=reach.ca_file,
                                                              insecure=reach.insecure, timeout=60.0,
                                                              shared=False)) as target:
            for kind in kinds:
                if refused is not None and _mailbox_wide(refused):
                    found.append(Finding(transport, kind, Status.REFUSED, refused.reason, refused.fix))
                    continue
                path, folder = WELL_KNOWN[kind]
                try:
                    target.ensure_folder(path, folder)
                except MigrateError as exc:
                    refused = _refusal(reach, transport, kind, exc)
                    found.append(refused)
                else:
                    found.append(Finding(transport, kind, Status.WORKS))
    except MigrateError as exc:  # the target could not even be opened (a bad endpoint, no route)
        done = {f.kind for f in found}
        failed = _refusal(reach, transport, kinds[0], exc)
        found += [Finding(transport, k, Status.REFUSED, failed.reason, failed.fix) for k in kinds if k not in done]
    return found


def _mailbox_wide(finding: Finding) -> bool:
    """A refusal that holds for every folder of the mailbox (blocked, no licence), not only for one kind."""
    return finding.transport is not Transport.GRAPH or "licence" in (finding.reason or "")


def _sign_in_refused(reach: Reach, transport: Transport, exc: MigrateError) -> tuple[str, list[str]]:
    text = exc.one_line()
    if isinstance(exc, AuthError) and "consent" in exc.message:
        return (f"no admin consent for {transport.value.upper()}'s permissions",
                fixes.consent(reach.tenant, reach.client_id, transport, reach.app_only))
    return f"sign-in for {transport.value.upper()} failed: {exc.message}", [exc.hint] if exc.hint else [text]


def _refusal(reach: Reach, transport: Transport, kind: ItemKind, exc: MigrateError) -> Finding:
    mailbox = reach.mailbox or "<mailbox>"
    message = exc.message
    if isinstance(exc, (UnreachableError, TLSError)):
        return Finding(transport, kind, Status.REFUSED, message, [exc.hint] if exc.hint else [])
    if transport is Transport.EWS:
        if isinstance(exc, AuthError) and ("403" in message or "refused the token" in message):
            return Finding(transport, kind, Status.REFUSED, "EWS is blocked for this app or mailbox (HTTP 403)",
                           fixes.ews_blocked(reach.client_id, reach.mailbox))
        if isinstance(exc, AuthError):
            return Finding(transport, kind, Status.REFUSED, f"no access to {mailbox} through EWS",
                           fixes.mailbox_access(mailbox, transport, reach.app_only, reach.client_id))
        if isinstance(exc, UserError) and "no mailbox" in message:
            return Finding(transport, kind, Status.REFUSED, f"no Exchange mailbox {mailbox} (no licence?)",
                           fixes.licence(mailbox))
    if transport is Transport.IMAP and isinstance(exc, AuthError):
        return Finding(transport, kind, Status.REFUSED, f"IMAP sign-in to {mailbox} refused (IMAP disabled for "
                       "the mailbox, or no access for this app)",
                       fixes.imap_refused(mailbox, reach.client_id, reach.app_only))
    if transport is Transport.GRAPH:
        if isinstance(exc, AuthError):
            return Finding(transport, kind, Status.REFUSED, f"Graph denied access to {mailbox}'s "
                           f"{ {ItemKind.MAIL: 'mail', ItemKind.EVENT: 'calendar', ItemKind.CONTACT: 'contacts'}[kind]}"
                           " (permission missing or not consented)",
                           fixes.consent(reach.tenant, reach.client_id, transport, reach.app_only,
                                         GRAPH_PERMISSION[kind]))
        if isinstance(exc, UserError) and "no Exchange Online mailbox" in message:
            return Finding(transport, kind, Status.REFUSED, f"{mailbox} has no Exchange Online mailbox (no licence)",
                           fixes.licence(mailbox))
    return Finding(transport, kind, Status.REFUSED, exc.one_line(), [])
