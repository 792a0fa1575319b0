"""One Microsoft 365 mailbox and the three ways in: `m365://` URLs and the transport URLs they stand for.

`m365://mailbox@domain` names a mailbox, not a protocol: preflight finds out which of EWS, IMAP and Graph the
tenant allows, and the plan records the choice. `m365://contoso.onmicrosoft.com` names a tenant (sign-in and
consent are checked; mailbox checks need a mailbox). Query parameters point the transports elsewhere (the local
sandbox, a rehearsal): `ews=https://host/EWS/Exchange.asmx`, `graph=https://host/v1.0`, `imap=host[:port]`;
`ews=none` (or graph=none, imap=none) leaves that transport out: not tried, never chosen (a firewall that
closes port 993, a rehearsal that must not leave this machine). `tz` and `max_mb` are passed on to the EWS and
Graph targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

from migrate.auth.scopes import Transport
from migrate.errors import UsageError
from migrate.model import ItemKind

EWS_ENDPOINT = "https://outlook.office365.com/EWS/Exchange.asmx"
GRAPH_ENDPOINT = "https://graph.microsoft.com/v1.0"
IMAP_SERVER = "outlook.office365.com:993"
EXCHANGE_URL_SCHEMES = {"ews": Transport.EWS, "graph": Transport.GRAPH, "imaps": Transport.IMAP,
                        "imap": Transport.IMAP}
# What each transport can carry into Exchange (IMAP has no calendars or address books).
CARRIES: dict[Transport, tuple[ItemKind, ...]] = {
    Transport.EWS: (ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT),
    Transport.IMAP: (ItemKind.MAIL,),
    Transport.GRAPH: (ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT),
}
_PASSED_ON = ("tz", "max_mb")


@dataclass(frozen=True)
class Microsoft365:
    url: str
    mailbox: str | None  # None: the tenant only
    domain: str
    ews: str = EWS_ENDPOINT
    graph: str = GRAPH_ENDPOINT
    imap: str = IMAP_SERVER
    passed_on: tuple[tuple[str, str], ...] = ()
    left_out: frozenset[Transport] = frozenset()

    @property
    def offered(self) -> tuple[Transport, ...]:
        return tuple(t for t in Transport if t not in self.left_out)

    def transport_url(self, transport: Transport) -> str:
        if transport in self.left_out:
            raise UsageError(f"{transport.value} is left out by {transport.value}=none in {self.url}",
                             hint="choose another transport, or drop that parameter")
        if self.mailbox is None:
            raise UsageError(f"{self.url} names a tenant, not a mailbox", hint="use m365://mailbox@domain")
        extra = "".join(f"&{k}={quote(v)}" for k, v in self.passed_on)
        if transport is Transport.EWS:
            return f"ews://{self.mailbox}?endpoint={self.ews}{extra}"
        if transport is Transport.GRAPH:
            return f"graph://{self.mailbox}?endpoint={self.graph}{extra}"
        return f"imaps://{self.mailbox}@{self.imap}"


def parse_m365(url: str) -> Microsoft365:
    parts = urlsplit(url)
    if parts.scheme.lower() != "m365":
        raise UsageError(f"{url!r} is not an m365:// URL", hint="use m365://mailbox@domain")
    if parts.password is not None:
        raise UsageError("a password inside the target URL is refused: it would be kept in shell history",
                         hint="Microsoft 365 signs in with --tenant and --client-id")
    netloc = parts.netloc
    mailbox = netloc.lower() if "@" in netloc else None
    domain = (mailbox.rpartition("@")[2] if mailbox else netloc.lower())
    if not domain or "." not in domain or (mailbox is not None and not mailbox.partition("@")[0]):
        raise UsageError(f"{url!r} names no mailbox or tenant", hint="use m365://mailbox@domain or m365://tenant")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    unknown = set(query) - {"ews", "graph", "imap", *_PASSED_ON}
    if unknown:
        raise UsageError(f"unknown parameter {sorted(unknown)[0]!r} in {url!r}",
                         hint="m365:// takes ews=URL, graph=URL, imap=host:port, tz=ZONE, max_mb=N")
    left_out = frozenset(Transport(k) for k in ("ews", "graph", "imap") if query.get(k, "").lower() == "none")
    for name in ("ews", "graph"):
        if name in query and Transport(name) not in left_out and not query[name].lower().startswith("https://"):
            raise UsageError(f"{name}={query[name]!r} in {url!r} is not an https:// URL",
                             hint="the token would travel in clear over http")
    return Microsoft365(url=url, mailbox=mailbox, domain=domain, ews=query.get("ews", EWS_ENDPOINT),
                        graph=query.get("graph", GRAPH_ENDPOINT).rstrip("/"), imap=query.get("imap", IMAP_SERVER),
                        passed_on=tuple((k, query[k]) for k in _PASSED_ON if k in query), left_out=left_out)


def transport_of(url: str) -> Transport | None:
    """The one transport an explicit Exchange target URL uses (None for m365://, which has a choice)."""
    scheme = url.partition(":")[0].lower()
    if scheme == "m365":
        return None
    return EXCHANGE_URL_SCHEMES.get(scheme)


def mailbox_of(url: str) -> str | None:
    """The mailbox an Exchange target URL names (ews://a@b, graph://a@b, imaps://a@b@host, m365://a@b)."""
    parts = urlsplit(url)
    if parts.scheme.lower() == "m365":
        return parse_m365(url).mailbox
    if parts.scheme.lower() in ("imap", "imaps"):
        return parts.username.lower() if parts.username and "@" in parts.username else None
    netloc = parts.netloc
    return netloc.lower() if "@" in netloc else None
