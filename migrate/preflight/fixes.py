"""What an administrator does to let a transport in: the exact Exchange Online PowerShell command or portal step.

Commands are the documented ones (learn.microsoft.com: Set-OrganizationConfig -EwsEnabled/-EwsAllowedAppIDs,
Set-CASMailbox -ImapEnabled/-EwsEnabled, Add-MailboxPermission, New-ServicePrincipal, Set-Mailbox
-ProhibitSendReceiveQuota/-MaxReceiveSize); portal paths are those of the Microsoft 365 and Entra admin centers.
"""

from __future__ import annotations

from migrate.auth.scopes import SCOPES, Transport

CONNECT = "Connect-ExchangeOnline -UserPrincipalName <admin>"


def ews_blocked(client_id: str, mailbox: str | None) -> list[str]:
    fixes = [f"{CONNECT}; Set-OrganizationConfig -EwsEnabled $true",
             f'Set-OrganizationConfig -EwsAllowedAppIDs @{{Add="{client_id}"}}  (if the tenant keeps an allow list)']
    if mailbox:
        fixes.append(f"Set-CASMailbox -Identity {mailbox} -EwsEnabled $true  (if EWS is off for this mailbox)")
    fixes.append("EWS in Exchange Online is switched off for good on 2027-04-01: prefer Graph or IMAP")
    return fixes


def imap_refused(mailbox: str, client_id: str, app_only: bool) -> list[str]:
    fixes = [f"{CONNECT}; Set-CASMailbox -Identity {mailbox} -ImapEnabled $true",
             f"Get-CASMailbox -Identity {mailbox} | Format-List ImapEnabled  (check it)"]
    if app_only:
        fixes += [f"New-ServicePrincipal -AppId {client_id} -ObjectId <the enterprise app's object id>",
                  f"Add-MailboxPermission -Identity {mailbox} -User <the service principal's id> "
                  "-AccessRights FullAccess"]
    else:
        fixes.append("an authentication policy may block IMAP: Get-AuthenticationPolicy, "
                     "AllowBasicAuthImap does not matter for OAuth, but a Conditional Access policy can")
    return fixes


def consent(tenant: str, client_id: str, transport: Transport, app_only: bool,
            permission: str | None = None) -> list[str]:
    scopes = SCOPES[transport]
    wanted = permission or (scopes.app_permissions if app_only else scopes.delegated_permissions)
    kind = "Application" if app_only else "Delegated"
    return [f"Entra admin center → App registrations → {client_id} → API permissions → Add: {wanted} ({kind}) "
            f"→ Grant admin consent for {tenant}",
            f"or open https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id} as an admin"]


def mailbox_access(mailbox: str, transport: Transport, app_only: bool, client_id: str) -> list[str]:
    if app_only:
        return [f"grant the app {SCOPES[transport].app_permissions} with admin consent",
                "or scope it with an application access policy / RBAC for Applications that includes " + mailbox]
    return [f"{CONNECT}; Add-MailboxPermission -Identity {mailbox} -User <the consultant's account> "
            "-AccessRights FullAccess -AutoMapping $false",
            "or sign in as the mailbox's own user: o365-migrate auth login"]


def licence(mailbox: str) -> list[str]:
    return [f"Microsoft 365 admin center → Users → Active users → {mailbox} → Licenses and apps: assign a licence "
            "that includes Exchange Online, then wait for the mailbox to be created (up to an hour)"]


def quota(mailbox: str, needed_gb: float) -> list[str]:
    return [f"{CONNECT}; Set-Mailbox -Identity {mailbox} -ProhibitSendReceiveQuota {needed_gb:.0f}GB "
            f"-ProhibitSendQuota {needed_gb * 0.98:.0f}GB -IssueWarningQuota {needed_gb * 0.95:.0f}GB "
            "(up to what the licence allows)",
            "or assign a licence with a larger mailbox (Exchange Online Plan 2: 100 GB), or move old mail to the "
            f"archive: Enable-Mailbox -Identity {mailbox} -Archive"]


def max_receive(mailbox: str, needed_mb: float) -> list[str]:
    size = min(150, max(36, int(needed_mb) + 1))
    return [f"{CONNECT}; Set-Mailbox -Identity {mailbox} -MaxReceiveSize {size}MB  (150 MB at most)"]


def usage_report(tenant: str, client_id: str, app_only: bool) -> list[str]:
    kind = "Application" if app_only else "Delegated, and a Reports Reader role for the user"
    return [f"Entra admin center → App registrations → {client_id} → API permissions → Add: Microsoft Graph "
            f"Reports.Read.All ({kind}) → Grant admin consent for {tenant}",
            "or read the quota in the Exchange admin center → Recipients → Mailboxes → the mailbox → "
            "Mailbox usage"]


def concealed_names() -> list[str]:
    return ["Microsoft 365 admin center → Settings → Org settings → Services → Reports: clear "
            "'Display concealed user, group, and site names in all reports'"]
