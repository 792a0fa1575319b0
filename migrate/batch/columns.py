"""The columns a batch CSV may have: one table drives parsing, validation messages and the command's help.

The first four are Microsoft's own IMAP migration file, taken as it is: `EmailAddress,UserName,Password`
and the optional `UserRoot` ("CSV files for IMAP migration batches",
https://learn.microsoft.com/exchange/mailbox-migration/migrating-imap-mailboxes/csv-files-for-imap-migration-batches;
earlier https://learn.microsoft.com/previous-versions/exchange-server/exchange-150/jj552926(v=exchg.150)).
There EmailAddress is the Microsoft 365 mailbox, UserName the login on the IMAP server (`hollyh`,
`contoso\\hollyh`, or an administrator's form such as Dovecot's `terry.adams*mailadmin`, Exchange's
`Domain/Admin/User`, Mirapoint's `#user@domain#admin#`) and Password its password. The IMAP server itself is
not in Microsoft's file (it is the migration endpoint): here it is `--from`, or a column of the row.
Every other column is ours and optional; a header is matched without regard to case, spaces, `-` or `_`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    help: str
    secret: bool = False  # a password: `env:VAR`, `file:PATH` or the value itself


COLUMNS: tuple[Column, ...] = (
    Column("EmailAddress", "the Microsoft 365 mailbox (Microsoft's column; required)"),
    Column("UserName", "the login on the old server, admin forms included (user*admin, Domain/Admin/User)"),
    Column("Password", "its password: the value, env:VAR or file:PATH", secret=True),
    Column("UserRoot", "with an admin login, the user's folder tree on a shared namespace (/users/terry.adams): "
                       "only folders under it move, without it in their names"),
    Column("Source", "where the mail is: a source URL (imaps://host:993, pop3s://host, mbox:PATH, "
                     "caldav+https://host/dav/...) or, with SourceKind, a path (relative to the CSV's folder)"),
    Column("SourceKind", "imap, pop3, mbox, maildir, eml, emlx, pst, ost, ics, vcf, caldav or carddav"),
    Column("Host", "the old server's host name, instead of Source"),
    Column("Port", "its port (default: the kind's TLS port)"),
    Column("Security", "tls (default), starttls, or none (only to this machine)"),
    Column("Auth", "sign-in method on the old server: auto, login, plain or xoauth2"),
    Column("TargetMailbox", "the target mailbox when it is not EmailAddress"),
    Column("TargetPassword", "a plain IMAP target's password: the value, env:VAR or file:PATH", secret=True),
    Column("Transport", "ews, graph or imap: how this mailbox goes into Microsoft 365 (default: --to's)"),
    Column("IncludeFolders", "only folders matching these globs, separated by ';'"),
    Column("ExcludeFolders", "leave out folders matching these globs, separated by ';'"),
    Column("Since", "only mail from this day (YYYY-MM-DD)"),
    Column("Until", "only mail up to this day (YYYY-MM-DD)"),
    Column("MaxMessageSize", "leave out messages larger than this many MB"),
    Column("Playbook", "a provider playbook (o365-migrate providers): its server, folders to leave out, limits"),
)
REQUIRED = ("EmailAddress",)
BY_KEY = {c.name.lower(): c for c in COLUMNS}


def header_key(text: str) -> str:
    """`Email Address`, `email_address` and `EMAILADDRESS` name the same column."""
    return "".join(ch for ch in text.strip().lower() if ch not in " _-")


def column_help() -> str:
    return "; ".join(f"{c.name}: {c.help}" for c in COLUMNS)
