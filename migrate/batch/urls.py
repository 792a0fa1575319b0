"""From a row and the command line to the source and target URLs of one mailbox.

`--to` is either a place without a mailbox, which each row's mailbox completes, or a template:

  ews://contoso.onmicrosoft.com[?endpoint=...]  ->  ews://anna@contoso.com[?endpoint=...]
  graph://contoso.onmicrosoft.com               ->  graph://anna@contoso.com
  m365://contoso.onmicrosoft.com                ->  m365://anna@contoso.com (transport chosen by preflight)
  imaps://outlook.office365.com                 ->  imaps://anna@contoso.com@outlook.office365.com
  'imaps://{local}@mail.example.net:993'        ->  imaps://anna@mail.example.net:993

For ews:// and graph:// the URL's user@host *is* the mailbox address, so the place's host (the tenant) is
replaced by the mailbox; for IMAP the mailbox becomes the login at that host. A template may use {mailbox}
(the target address), {local} and {domain} (its parts), {email} (EmailAddress) and {user} (UserName).
`--from` for the source works the same way with the row's UserName: `imaps://mail.example.com` ->
`imaps://terry.adams*mailadmin@mail.example.com`.
"""

from __future__ import annotations

import string
from urllib.parse import quote, urlsplit, urlunsplit

from migrate.errors import UsageError

# Target kinds whose URL is scheme://mailbox-address: the tenant in a bare --to is not part of it.
ADDRESS_SCHEMES = frozenset({"ews", "graph", "m365"})  # m365: preflight picks the transport per mailbox
EXCHANGE_ONLINE_IMAP = "outlook.office365.com"
PLACEHOLDERS = frozenset({"mailbox", "local", "domain", "email", "user"})
# A login or address inside a URL's user part: '@' may stay (the host follows the last one); '/', ':',
# '?', '#', '%' and '\\' would end or change the part, so they are escaped.
_USER_SAFE = "@!$&'()*+,;=~"


def in_url(text: str) -> str:
    return quote(text, safe=_USER_SAFE)


def is_template(url: str) -> bool:
    return "{" in url


def check_template(url: str, option: str) -> None:
    """Refuse a template with a placeholder we do not fill, before any row is read."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(url) if name is not None}
    except ValueError as exc:
        raise UsageError(f"{option} {url!r} is not a valid template ({exc})",
                         hint="write placeholders as {mailbox}, {local}, {domain}, {email} or {user}") from None
    unknown = names - PLACEHOLDERS
    if unknown:
        raise UsageError(f"{option} uses unknown placeholders: {', '.join(sorted(unknown))}",
                         hint="use {mailbox}, {local}, {domain}, {email} or {user}")


def check_place(url: str, option: str) -> None:
    """A --to/--from without placeholders must leave the mailbox to the rows."""
    if is_template(url):
        check_template(url, option)
        return
    parts = urlsplit(url)
    if not parts.scheme or "://" not in url:
        raise UsageError(f"{option} {url!r} is not a URL", hint="for example ews://contoso.onmicrosoft.com, "
                         "imaps://mail.example.com or 'imaps://{user}@mail.example.com'")
    if parts.username:
        raise UsageError(f"{option} {url!r} names one mailbox, and a batch has many",
                         hint="leave the user out (each row gives it) or use a template such as {mailbox}")


def fill(url: str, mailbox: str, email: str, user: str) -> str:
    local, _, domain = mailbox.rpartition("@") if "@" in mailbox else (mailbox, "", "")
    return url.format(mailbox=in_url(mailbox), local=in_url(local), domain=in_url(domain), email=in_url(email),
                      user=in_url(user))


def target_url(to: str, mailbox: str, email: str, user: str, transport: str | None) -> str:
    """The target of one row; `transport` (ews, graph, imap) switches a bare Microsoft 365 place's kind."""
    if is_template(to):
        return fill(to, mailbox, email, user)
    parts = urlsplit(to)
    scheme = parts.scheme.lower()
    if transport:
        wanted = {"imap": "imaps"}.get(transport, transport)
        if wanted != scheme:
            # Another transport into the same tenant: that transport's own Microsoft 365 address.
            if wanted in ADDRESS_SCHEMES:
                return f"{wanted}://{in_url(mailbox)}"
            return f"{wanted}://{in_url(mailbox)}@{EXCHANGE_ONLINE_IMAP}"
    if scheme in ADDRESS_SCHEMES:
        return urlunsplit((parts.scheme, in_url(mailbox), parts.path, parts.query, ""))
    return urlunsplit((parts.scheme, f"{in_url(mailbox)}@{parts.netloc}", parts.path, parts.query, ""))


def with_user(url: str, user: str) -> str:
    """A network source URL with the row's login as its user, unless it names one already."""
    parts = urlsplit(url)
    if parts.username or not parts.netloc:
        return url
    return urlunsplit((parts.scheme, f"{in_url(user)}@{parts.netloc}", parts.path, parts.query, ""))


def tenant_of(to: str) -> str | None:
    """The tenant a bare `ews://contoso.onmicrosoft.com` names, to sign in to when --tenant is not given."""
    if is_template(to):
        return None
    parts = urlsplit(to)
    return parts.hostname if parts.scheme.lower() in ADDRESS_SCHEMES and not parts.username else None
