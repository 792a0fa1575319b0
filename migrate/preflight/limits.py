"""The mailbox's limits, read through Graph: the largest message it takes and whether it is full (mail tips,
Mail.Read), and its quota and size (the mailbox usage report, Reports.Read.All). Each may be out of reach; then
the note says why and how an admin lets it be read, and the move goes on without that check."""

from __future__ import annotations

import csv
import io
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx

from migrate.preflight import fixes
from migrate.preflight.result import Limits

REPORT = "/reports/getMailboxUsageDetail(period='D7')"


def read_limits(graph: str, mailbox: str, token: Callable[[], str], tenant: str, client_id: str, app_only: bool,
                ca_file: Path | None = None) -> Limits:
    limits = Limits()
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=str(ca_file)) if ca_file else True
    headers = {"Authorization": f"Bearer {token()}", "Accept": "application/json"}
    with httpx.Client(verify=verify, timeout=30.0, follow_redirects=True) as client:
        try:
            _mail_tips(client, graph, mailbox, headers, limits)
        except httpx.HTTPError as exc:
            limits.notes.append(f"mail tips could not be read ({type(exc).__name__})")
        try:
            _usage(client, graph, mailbox, headers, limits, tenant, client_id, app_only)
        except httpx.HTTPError as exc:
            limits.notes.append(f"the mailbox usage report could not be read ({type(exc).__name__})")
    return limits


def _mail_tips(client: httpx.Client, graph: str, mailbox: str, headers: dict[str, str], limits: Limits) -> None:
    answer = client.post(f"{graph}/users/{quote(mailbox)}/getMailTips", headers=headers,
                         json={"EmailAddresses": [mailbox], "MailTipsOptions": "maxMessageSize, mailboxFullStatus"})
    if answer.status_code != 200:
        limits.notes.append(f"mail tips refused (HTTP {answer.status_code}): the largest message the mailbox "
                            "takes is not known")
        return
    for tip in answer.json().get("value", []):
        if "maxMessageSize" in tip:
            limits.max_message_bytes = int(tip["maxMessageSize"])
        if "mailboxFull" in tip:
            limits.mailbox_full = bool(tip["mailboxFull"])


def _usage(client: httpx.Client, graph: str, mailbox: str, headers: dict[str, str], limits: Limits, tenant: str,
           client_id: str, app_only: bool) -> None:
    answer = client.get(f"{graph}{REPORT}", headers={**headers, "Accept": "text/csv, application/octet-stream"})
    if answer.status_code in (401, 403):
        limits.notes.append("quota not read: the app lacks Reports.Read.All (the usage report)")
        limits.fix += fixes.usage_report(tenant, client_id, app_only)
        return
    if answer.status_code != 200:
        limits.notes.append(f"quota not read: the usage report answered HTTP {answer.status_code}")
        return
    rows = csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig")))
    for row in rows:
        if (row.get("User Principal Name") or "").lower() == mailbox.lower():
            limits.used_bytes = _int(row.get("Storage Used (Byte)"))
            limits.quota_bytes = _int(row.get("Prohibit Send/Receive Quota (Byte)"))
            return
    limits.notes.append(f"quota not read: {mailbox} is not in the usage report (new mailboxes appear after a "
                        "day; or the report conceals user names)")
    limits.fix += fixes.concealed_names()


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None
