"""`caldav+https://user@host/...` and `carddav+https://user@host/...`: every calendar or address book
of the account, found the way RFC 6764 and RFC 4791/6352 describe.

The URL may name the server only (then `/.well-known/caldav` says where to start), the user's
principal, a home set, or one collection. From there: the current-user-principal, its
calendar-home-set (addressbook-home-set), and each collection in it that holds events (contacts).
Items are listed with PROPFIND and fetched with calendar-multiget (addressbook-multiget), a
hundred at a time, so memory stays flat in big collections. Read only: PROPFIND and REPORT.

Keys are the resource's name in its collection, with the event's identity for calendars
(`abc.ics#uid:UID`): a resource holds one event and its changed occurrences, or lone occurrences
that each become an item.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar
from urllib.parse import SplitResult, quote, urlsplit

from migrate.errors import UserError
from migrate.model import Folder, FolderRole, ItemKind, MessageRef, SourceProblem
from migrate.sources.base import Capabilities, Source, SourceOptions, register
from migrate.sources.pimfiles import unique
from migrate.sources.pimitems import card_ref, event_items, event_ref
from migrate.sources.webdav import CALDAV, CARDDAV, CS, DAV, DavClient, Resource, http_url

BATCH = 100  # resources per multiget: big enough to keep round trips few, small enough to stay flat


@dataclass(frozen=True)
class Protocol:
    """What differs between CalDAV and CardDAV: names, and what a collection holds."""

    well_known: str
    namespace: str
    home_set: str
    collection: str
    data: str
    multiget: str
    kind: ItemKind
    role: FolderRole


CALENDARS = Protocol("/.well-known/caldav", CALDAV, "calendar-home-set", "calendar", "calendar-data",
                     "c:calendar-multiget", ItemKind.EVENT, FolderRole.CALENDAR)
ADDRESS_BOOKS = Protocol("/.well-known/carddav", CARDDAV, "addressbook-home-set", "addressbook", "address-data",
                         "a:addressbook-multiget", ItemKind.CONTACT, FolderRole.CONTACTS)
COLLECTION_PROPS = [(DAV, "resourcetype"), (DAV, "displayname"), (CALDAV, "supported-calendar-component-set"),
                    (CS, "getctag"), (DAV, "sync-token")]


def _path(href: str) -> str:
    return urlsplit(href).path or "/"


def _base(folder: Folder) -> str:
    """The collection's path with one trailing '/': members' names are relative to it."""
    return _path(folder.locator).rstrip("/") + "/"


class DavSource(Source):
    capabilities: ClassVar[Capabilities] = Capabilities(flags=False, internal_dates=True, folders=True)

    def __init__(self, url: str, protocol: Protocol, options: SourceOptions) -> None:
        super().__init__()
        self.url = url
        self.protocol = protocol
        base, user = http_url(url, options.insecure)
        self.client = DavClient(base, user, options)
        self.start = _path(base)

    # --- discovery -------------------------------------------------------------------

    def _principal(self) -> tuple[str, list[Resource]]:
        """Where to look for home sets, or the collection the URL named itself."""
        p = self.protocol
        props = [(DAV, "current-user-principal"), (DAV, "resourcetype"), (p.namespace, p.home_set)]
        start = self.start
        if start == "/":
            try:
                found = self.client.propfind(p.well_known, props)
            except UserError:  # no .well-known on this server: its root then
                found = self.client.propfind("/", props)
        else:
            found = self.client.propfind(start, props)
        if not found:
            raise UserError(f"{self.url} gave no answer to PROPFIND", hint="check the path in the URL")
        here = found[0]
        if here.is_a(p.namespace, p.collection):
            return here.href, [here]
        return here.href_in(DAV, "current-user-principal") or here.href, []

    def _collections(self) -> list[Resource]:
        p = self.protocol
        principal, single = self._principal()
        if single:
            return self.client.propfind(single[0].href, COLLECTION_PROPS)
        homes = self.client.propfind(principal, [(p.namespace, p.home_set)])
        home = homes[0].href_in(p.namespace, p.home_set) if homes else None
        if home is None:
            raise UserError(f"{self.client.host} names no {p.home_set} for {self.client.user}",
                            hint="give the URL of the calendar or address book itself")
        found = self.client.propfind(home, COLLECTION_PROPS, depth="1")
        return [r for r in found if r.is_a(p.namespace, p.collection) and self._holds_events(r)]

    def _holds_events(self, collection: Resource) -> bool:
        if self.protocol.kind is not ItemKind.EVENT:
            return True
        supported = collection.props.get(f"{{{CALDAV}}}supported-calendar-component-set")
        if supported is None or len(supported) == 0:
            return True  # RFC 4791 5.2.3: no set means every component
        return any(str(comp.get("name", "")).upper() == "VEVENT" for comp in supported)

    def folders(self) -> list[Folder]:
        taken: set[str] = set()
        result = []
        for collection in self._collections():
            path = _path(collection.href)
            name = collection.text(DAV, "displayname") or path.rstrip("/").rsplit("/", 1)[-1] or path
            # iCloud keeps calendars on another host than the one signed in to: keep it then
            same_host = urlsplit(collection.href).hostname in (None, self.client.host)
            result.append(Folder((unique(name, taken),), role=self.protocol.role, kind=self.protocol.kind,
                                 locator=path if same_host else collection.href))
        return result

    # --- items -------------------------------------------------------------------------

    def _members(self, folder: Folder) -> list[str]:
        found = self.client.propfind(folder.locator, [(DAV, "getetag"), (DAV, "resourcetype")], depth="1")
        base = _base(folder)
        return sorted(_path(r.href) for r in found
                      if _path(r.href).rstrip("/") != base.rstrip("/") and not r.is_a(DAV, "collection"))

    def _fetch(self, folder: Folder, hrefs: list[str]) -> Iterator[tuple[str, bytes]]:
        p = self.protocol
        for i in range(0, len(hrefs), BATCH):
            batch = hrefs[i:i + BATCH]
            extra = "".join(f"<d:href>{quote(h, safe='/@:~!$&()*+,;=-._')}</d:href>" for h in batch).encode()
            for resource in self.client.report(folder.locator, p.multiget, [(DAV, "getetag"), (p.namespace, p.data)],
                                               extra):
                data = resource.text(p.namespace, p.data)
                if data is None:
                    self.problems.append(SourceProblem("message-gone", resource.href,
                                                       "the server gave no data for it"))
                    continue
                yield _path(resource.href), data.encode("utf-8")

    def _name(self, folder: Folder, href: str) -> str:
        base = _base(folder)
        return href[len(base):] if href.startswith(base) else href

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        for href, data in self._fetch(folder, self._members(folder)):
            name = self._name(folder, href)
            if self.protocol.kind is ItemKind.CONTACT:
                yield card_ref(name, data)
                continue
            for identity, item in event_items(data, href, self.problems):
                ref = event_ref(f"{name}#uid:{identity}", identity, item, href)
                if isinstance(ref, SourceProblem):
                    self.problems.append(ref)
                else:
                    yield ref

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        base = _base(folder)
        # The name before "#uid:" (a card's key is its name alone); names are relative to the
        # collection and may hold ':' (Radicale names cards after their urn:uuid: UID).
        names = list(dict.fromkeys(ref.key.partition("#uid:")[0] for ref in refs))
        found: dict[str, bytes] = {}
        for href, data in self._fetch(folder, [n if n.startswith("/") else base + n for n in names]):
            name = self._name(folder, href)
            if self.protocol.kind is ItemKind.CONTACT:
                found[name] = data
            else:
                for identity, item in event_items(data, href, []):
                    found[f"{name}#uid:{identity}"] = item
        for ref in refs:
            if ref.key in found:
                yield ref, found[ref.key]
            else:
                self.problems.append(SourceProblem("message-gone", folder.name,
                                                   f"{ref.key} was deleted on the server after it was listed"))

    def close(self) -> None:
        self.client.close()


@register("caldav+https", "caldav+http")
def _open_caldav(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return DavSource(url, CALENDARS, options)


@register("carddav+https", "carddav+http")
def _open_carddav(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return DavSource(url, ADDRESS_BOOKS, options)
