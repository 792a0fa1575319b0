"""IMAP source: EXAMINE and BODY.PEEK only, bulk FETCH in chunks, on one lean connection (migrate.imapwire)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import ClassVar
from urllib.parse import SplitResult

from imapclient import imap_utf7

from migrate.errors import ProtocolError, TLSError, UserError
from migrate.imapwire import FolderState, Wire, WireNo, quote
from migrate.model import Folder, MessageRef
from migrate.sources import imap_kept
from migrate.sources.base import Capabilities, Source, SourceOptions, chunked, register
from migrate.sources.connect import Endpoint, endpoint, login_refused, network_errors, tls_context
from migrate.sources.headers import header_facts
from migrate.sources.roles import role_for

HEADER_FIELDS = b"MESSAGE-ID DATE SUBJECT"


def open_wire(where: Endpoint, options: SourceOptions) -> Wire:
    """The source's connection: folders, listings and bodies (migrate.imapwire says why not imapclient)."""
    with network_errors(where):
        context = tls_context(options) if where.implicit_tls or not options.insecure else None
        try:
            wire = Wire.open(where.host, where.port, where.implicit_tls, context, options.timeout,
                             starttls=not where.implicit_tls and not options.insecure)
        except WireNo:  # the answer to STARTTLS, the only command before a sign-in
            raise TLSError(f"{where.host}:{where.port} does not offer STARTTLS; the password would go in clear",
                           hint="use imaps:// (port 993), or --insecure for a server on this machine") from None
        secret = options.secret() if options.secret else ""
        try:
            if options.auth == "xoauth2":
                wire.xoauth2(where.user, secret)
            elif options.auth == "plain":
                wire.authenticate("PLAIN", f"\0{where.user}\0{secret}".encode())
            else:
                wire.login(where.user, secret)
        except WireNo as exc:
            wire.close()
            raise login_refused(where, exc.text.replace(secret, "***") if secret else exc.text) from None
        except BaseException:
            wire.close()
            raise
    return wire


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


class ImapSource(Source):
    capabilities: ClassVar[Capabilities] = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, where: Endpoint, url: str, options: SourceOptions) -> None:
        super().__init__()
        self.where = where
        self.url = url
        self.options = options
        self._wire: Wire | None = None
        self._selected: str | None = None
        self._uidvalidity: int | None = None
        self._exists = 0
        self._state: FolderState | None = None
        # Connections and listings are left for the next source on this account (imap_kept says why).
        self._account: imap_kept.Account = (where.host, where.port, where.user, where.implicit_tls,
                                            options.auth, options.insecure, str(options.ca_file or ""))
        self._listed: dict[str, tuple[FolderState, list[MessageRef]]] | None = {}  # None once a body is read
        self._signed_in_with: bytes | None = None

    def _credential(self) -> bytes:
        """The digest of this source's secret: a parked connection serves only the same secret."""
        if self._signed_in_with is None:
            self._signed_in_with = imap_kept.credential(self.options.secret() if self.options.secret else "")
        return self._signed_in_with

    def folders(self) -> list[Folder]:
        # Dovecot, Gmail and Exchange put RFC 6154 SPECIAL-USE attributes in a plain LIST;
        # for servers that do not, roles come from the folder names.
        # On the listing connection: a connection (a sign-in, a server process on Dovecot) fewer than
        # imapclient's LIST on one of its own.
        with network_errors(self.where):
            try:
                listing = self.wire.list_folders()
            except WireNo as exc:
                raise ProtocolError(f"{self.where.host} refused to list the folders: {exc.text[:200]}") from None
            except BaseException:
                self._drop_wire()  # its next answer cannot be trusted: it must not be parked
                raise
        result = []
        for entry in listing:
            name = imap_utf7.decode(entry.name)
            attributes = frozenset(_text(f) for f in entry.attributes)
            delim = _text(entry.delimiter) if entry.delimiter else ""
            path = tuple(name.split(delim)) if delim else (name,)
            if path[0].upper() == "INBOX":
                path = ("INBOX", *path[1:])
            selectable = not any(a.lower() in ("\\noselect", "\\nonexistent") for a in attributes)
            result.append(
                Folder(path, delim or "/", role_for(path, attributes), selectable, locator=name)
            )
        # INBOX first, then the server's order by name, parents before children.
        result.sort(key=lambda f: (f.path[0] != "INBOX", [p.casefold() for p in f.path]))
        return result

    @property
    def wire(self) -> Wire:
        if self._wire is None:
            self._wire = imap_kept.take_wire(self._account, self._credential()) or open_wire(self.where, self.options)
            self._selected = None
        return self._wire

    def _examine(self, folder: Folder) -> int:
        if self._selected != folder.locator:
            with network_errors(self.where):
                try:
                    self._state = self.wire.open_folder(quote(imap_utf7.encode(folder.locator)))
                    self._uidvalidity, self._exists = self._state.uidvalidity, self._state.exists
                except WireNo as exc:
                    raise UserError(
                        f"cannot open folder {folder.name!r} on {self.where.host}: {exc.text[:200]}",
                        hint="check the folder name; run inventory to list folders",
                    ) from None
                except BaseException:
                    self._drop_wire()
                    raise
            self._selected = folder.locator
        assert self._uidvalidity is not None
        return self._uidvalidity

    def _drop_wire(self) -> None:
        """Forget a connection that failed mid-command: its next answer cannot be trusted."""
        if self._wire is not None:
            self._wire.close()
        self._wire = None
        self._selected = None

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        if not folder.selectable:
            return
        uidvalidity = self._examine(folder)
        state = self._state
        assert state is not None
        kept = imap_kept.take_listing(self._account, folder.locator, state)
        if kept is not None:
            yield from kept  # listed a moment ago by an inventory, and the folder has not changed since
            return
        listed: list[MessageRef] | None = [] if self._listed is not None else None
        total = self._exists
        step = self.options.listing_chunk
        for start in range(1, total + 1, step):
            end = min(start + step - 1, total)
            # Sequence numbers stream the folder in order without a UID SEARCH first; a chunk at a
            # time keeps memory flat whatever the folder's size.
            with network_errors(self.where):
                try:
                    rows = sorted(self.wire.listing(b"%d:%d" % (start, end), HEADER_FIELDS), key=lambda x: x.seq)
                except WireNo as exc:
                    raise ProtocolError(
                        f"{self.where.host} refused to list {folder.name!r}: {exc.text[:200]}") from None
                except BaseException:
                    self._drop_wire()
                    raise
            for row in rows:
                facts = header_facts(row.header)
                ref = MessageRef(
                    key=f"{uidvalidity}:{row.uid}",
                    size=row.size,
                    flags=frozenset(f for f in row.flags if f.lower() != "\\recent"),
                    internal_date=_utc(row.internal_date),
                    message_id=facts.message_id,
                    date=facts.date,
                    subject=facts.subject,
                    header_problems=facts.problems,
                )
                if listed is not None:
                    listed.append(ref)
                    if len(listed) > imap_kept.KEPT_REFS:
                        listed = None  # too large a folder to keep: the next source lists it again
                yield ref
        if listed is not None and self._listed is not None:
            self._listed[folder.locator] = (state, listed)

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        self._listed = None  # a source that reads is moving mail, not taking an inventory: keep nothing
        uidvalidity = self._examine(folder)
        for batch in chunked(refs, self.options.fetch_bytes):
            by_uid: dict[int, MessageRef] = {}
            for ref in batch:
                validity, _, uid_text = ref.key.partition(":")
                if int(validity) != uidvalidity:
                    raise ProtocolError(
                        f"folder {folder.name!r} was rebuilt on the server (UIDVALIDITY changed)",
                        hint="plan the migration again; already moved messages are recognised",
                    )
                by_uid[int(uid_text)] = ref
            order = list(by_uid)
            early: dict[int, bytes] = {}  # bodies that came before the one due next (servers may reorder)
            due = 0
            with network_errors(self.where):
                try:
                    for uid, body in self.wire.bodies(order):
                        if uid not in by_uid:
                            continue
                        early[uid] = body
                        while due < len(order) and order[due] in early:
                            uid_due = order[due]
                            yield by_uid[uid_due], early.pop(uid_due)
                            due += 1
                except WireNo as exc:
                    raise ProtocolError(f"{self.where.host} refused to read from {folder.name!r}: "
                                        f"{exc.text[:200]}") from None
                except GeneratorExit:
                    # The consumer stopped mid-stream: the rest of the answer is still on the wire.
                    self._drop_wire()
                    raise
                except BaseException:
                    self._drop_wire()
                    raise
            if due < len(order):
                missing = by_uid[order[due]]
                raise ProtocolError(f"message {missing.key} vanished from {folder.name!r} during the read")

    def close(self) -> None:
        # Idle connections (a failed command drops its connection first) wait for the next source on
        # the account, signed in; so do the listings of a source that only listed.
        if self._listed:
            imap_kept.leave_listings(self._account, self._listed)
        self._listed = None
        if self._wire is not None:
            imap_kept.park_wire(self._account, self._credential(), self._wire)
            self._wire = None
        self._selected = None


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


@register("imap", "imaps")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return ImapSource(endpoint(parts, url, 993, 143, options), url, options)

