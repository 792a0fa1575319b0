"""Where an address's calendars and contacts live, for the wizard to offer as `caldav+https://` and
`carddav+https://` sources.

In the order a person would look: the provider's playbook (by domain, then by MX), and only when no
playbook names CalDAV/CardDAV servers, RFC 6764's `https://<domain>/.well-known/caldav` and
`/.well-known/carddav`, then Nextcloud's and ownCloud's `/remote.php/dav` on the domain and on
`cloud.<domain>`. Each candidate is checked with read-only PROPFINDs through the sources' own
WebDAV client (current-user-principal, then the calendar and address book home sets), so what is
offered is what `migrate.sources.dav` will open.

The password goes only to the candidate's own site: the WebDAV client refuses a redirect to
another site or to plain http before anything is sent there. A host that refused the password is
not asked again, so a wrong password is tried once per server, not once per path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Literal
from urllib.parse import quote, urlsplit

import httpx

from migrate.discovery.discover import split_address
from migrate.discovery.mx import mx_hosts
from migrate.discovery.network import Network
from migrate.discovery.playbooks import DavServer, Playbook, by_domain, by_mx
from migrate.errors import AuthError, MigrateError, UserError
from migrate.sources.base import SourceOptions
from migrate.sources.webdav import CALDAV, CARDDAV, DAV, DavClient

DavKind = Literal["caldav", "carddav"]
KINDS: tuple[DavKind, ...] = ("caldav", "carddav")
HOME_SETS = {"caldav": (CALDAV, "calendar-home-set"), "carddav": (CARDDAV, "addressbook-home-set")}
WHAT = {"caldav": "calendars", "carddav": "contacts"}
PRINCIPAL_PROPS = [(DAV, "current-user-principal"), (CALDAV, "calendar-home-set"), (CARDDAV, "addressbook-home-set")]


@dataclass(frozen=True)
class DavEndpoint:
    kind: DavKind
    url: str  # caldav+https://user@host/principal/, as migrate.sources.dav opens it
    found_by: str  # "playbook fastmail", ".well-known", "/remote.php/dav"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""


@dataclass(frozen=True)
class Candidate:
    url: str  # https://host/path, before Network.address_of
    kinds: tuple[DavKind, ...]
    found_by: str


@dataclass
class DavDiscovery:
    address: str
    playbook: Playbook | None = None
    endpoints: list[DavEndpoint] = field(default_factory=list)
    oauth_only: list[DavKind] = field(default_factory=list)  # kinds the provider serves only to OAuth
    reason: str | None = None  # in plain words, when a kind was not found (or only with OAuth)
    notes: list[str] = field(default_factory=list)  # what each candidate answered

    def best(self, kind: DavKind) -> DavEndpoint | None:
        return next((e for e in self.endpoints if e.kind == kind), None)

    def missing(self) -> list[DavKind]:
        return [k for k in KINDS if self.best(k) is None]


def well_known_candidates(domain: str) -> list[Candidate]:
    """RFC 6764 section 5, then the path Nextcloud and ownCloud serve both protocols on."""
    return [Candidate(f"https://{domain}/.well-known/caldav", ("caldav",), ".well-known"),
            Candidate(f"https://{domain}/.well-known/carddav", ("carddav",), ".well-known"),
            Candidate(f"https://{domain}/remote.php/dav", KINDS, "/remote.php/dav"),
            Candidate(f"https://cloud.{domain}/remote.php/dav", KINDS, "/remote.php/dav")]


def playbook_candidates(book: Playbook) -> tuple[list[Candidate], list[DavKind]]:
    """The playbook's servers that take a password, and the kinds it serves only to OAuth."""
    found: list[Candidate] = []
    oauth: list[DavKind] = []
    for kind in KINDS:
        servers: list[DavServer] = getattr(book.servers, kind)
        if servers and all(s.auth == "oauth" for s in servers):
            oauth.append(kind)
        found += [Candidate(s.url, (kind,), f"playbook {book.name}") for s in servers if s.auth == "password"]
    return found, oauth


def discover_dav(address: str, secret: str | Callable[[], str], books: list[Playbook],
                 network: Network | None = None, user: str | None = None) -> DavDiscovery:
    """The CalDAV and CardDAV endpoints of `address`, each checked with the password.

    `secret` is the password or a callable that gives it (asked for at most once); `user` is the
    login name, the whole address unless given. Network failures become notes and a reason, never
    an exception: the wizard goes on with files or without calendars.
    """
    network = network or Network()
    _, domain = split_address(address)
    found = DavDiscovery(address=address)
    if "playbook" in network.steps:
        found.playbook = by_domain(domain, books)
    if found.playbook is None and "mx" in network.steps:
        hosts, _ = mx_hosts(domain, network)
        found.playbook = by_mx(hosts, books)
    candidates: list[Candidate] = []
    where = domain
    if found.playbook is not None:
        candidates, found.oauth_only = playbook_candidates(found.playbook)
        where = f"{found.playbook.title}'s servers" if candidates else domain
    if not candidates and not found.oauth_only and "probe" in network.steps:
        candidates = well_known_candidates(domain)  # a playbook without DAV servers says nothing about them
    prober = Prober(user or address, _once(secret), network)
    for candidate in candidates:
        wanted = tuple(k for k in candidate.kinds if found.best(k) is None)
        if wanted:
            found.endpoints += prober.probe(candidate, wanted, found.notes)
    found.reason = _reason(found, where, prober)
    return found


def _once(secret: str | Callable[[], str]) -> Callable[[], str]:
    if isinstance(secret, str):
        value = secret
        return lambda: value
    return cache(secret)


class Prober:
    """Checks candidates with the sources' WebDAV client; remembers the hosts that refused the password."""

    def __init__(self, user: str, secret: Callable[[], str], network: Network) -> None:
        self.user = user
        self.network = network
        self.options = SourceOptions(secret=secret, ca_file=network.ca_file, timeout=network.timeout)
        self.refused: list[str] = []  # hosts, as the candidates name them

    def reached(self, url: str) -> str:
        """The candidate's URL with its host and port as Network.address_of says (loopback in tests)."""
        parts = urlsplit(url)
        host, port = self.network.address_of(parts.hostname or "", parts.port or 443)
        netloc = f"[{host}]" if ":" in host else host
        netloc += "" if port == 443 else f":{port}"
        return parts._replace(netloc=netloc).geturl()

    def probe(self, candidate: Candidate, kinds: tuple[DavKind, ...], notes: list[str]) -> list[DavEndpoint]:
        host = urlsplit(candidate.url).hostname or ""
        if host in self.refused:
            return []
        start = self.reached(candidate.url)
        client = DavClient(start, self.user, self.options)
        landed: list[str] = [start]
        client.http.event_hooks = {**client.http.event_hooks,
                                   "response": [lambda response: landed.append(str(response.url))]}
        try:
            homes = self._homes(client, urlsplit(start).path or "/", landed)
        except AuthError:
            self.refused.append(host)
            notes.append(f"{candidate.url}: the password for {self.user} was refused")
            return []
        except UserError as exc:  # 403, 404, 405: no DAV at this path
            notes.append(f"{candidate.url}: {_status(exc)}")
            return []
        except MigrateError as exc:  # unreachable, untrusted TLS, a redirect elsewhere, not WebDAV
            notes.append(f"{candidate.url}: {exc.message}")
            return []
        finally:
            client.close()
        principal, served = homes
        where = urlsplit(str(httpx.URL(landed[-1]).join(principal)))
        netloc = f"{quote(self.user, safe='')}@{where.netloc.rpartition('@')[2]}"
        made = [DavEndpoint(k, f"{k}+{where.scheme}://{netloc}{where.path or '/'}", candidate.found_by)
                for k in kinds if k in served]
        if not made:
            notes.append(f"{candidate.url}: signed in, but it serves no {' or '.join(WHAT[k] for k in kinds)}")
        return made

    @staticmethod
    def _homes(client: DavClient, path: str, landed: list[str]) -> tuple[str, set[DavKind]]:
        """The user's principal and the kinds that have a home set there (RFC 5397, RFC 4791 6.2.1, RFC 6352 7.1.1)."""
        here = client.propfind(path, PRINCIPAL_PROPS)
        if not here:
            raise UserError(f"{client.host} gave an empty answer")
        principal = here[0].href_in(DAV, "current-user-principal") or here[0].href
        found = client.propfind(str(httpx.URL(landed[-1]).join(principal)), PRINCIPAL_PROPS)
        served = {k for k, (ns, name) in HOME_SETS.items() if found and found[0].href_in(ns, name)}
        return principal, served  # type: ignore[return-value]


def _status(exc: UserError) -> str:
    words = exc.message.rsplit(" answered ", 1)
    return f"answered {words[1]}" if len(words) == 2 else exc.message


def _reason(found: DavDiscovery, where: str, prober: Prober) -> str | None:
    """Why a kind is missing, in one sentence a person can act on."""
    missing = found.missing()
    if not missing:
        return None
    what = " and ".join(WHAT[k] for k in missing)
    book = found.playbook
    if found.oauth_only and set(missing) <= set(found.oauth_only) and book is not None:
        return (f"{book.title} gives out {what} over CalDAV/CardDAV only with an OAuth sign-in, which these "
                f"sources do not do yet; export them as .ics/.vcf files and choose files instead")
    if prober.refused:
        advice = "an app password" if book is not None and "app-password" in book.auth.methods else "the password"
        return (f"{', '.join(prober.refused)} refused the password for {prober.user} when asked for {what}; "
                f"check {advice}")
    return f"no server for {what} was found at {where}; give its address yourself, or use .ics/.vcf files"
