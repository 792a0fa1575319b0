"""IMAP target over imapclient: any IMAP server with a password, Exchange Online with XOAUTH2.

URLs: `imaps://user@host[:993]`, or `imap://user@host[:143]` with STARTTLS (plaintext only with
`insecure`, and only to this machine). A token provider in TargetOptions means XOAUTH2;
outlook.office365.com takes nothing else.

TargetOptions.extra:
  exchange_online=1    behave as for Exchange Online (set for *outlook.office365.com*): MIME is
                       rebuilt on read, 45 MB per APPEND, \\Flagged stored again after APPEND
  max_message_bytes=N  larger messages fail as TOO_LARGE without being sent
  pipeline=0           wait for each APPEND's answer before sending the next
  throttle_wait=S      seconds to back off when throttled without a suggested time (300)

How messages go up. imapclient's `append()` goes through imaplib, which waits for the server's
"+" before each literal and then for the tagged answer (two round trips a message), and its
`multiappend()` is all or nothing. So messages go up on a second, lean connection
(migrate.imapwire): one APPEND per message, pipelined with LITERAL+ where the server offers it
(Dovecot, Exchange Online), so a batch costs one round trip and each message still gets its own
outcome and APPENDUID; without LITERAL+ each literal waits for "+". imapclient keeps the folders,
SEARCH and STORE. A connection idle for a while is checked with NOOP before a batch, and a lost
one is opened again by the next batch; the messages whose answers were lost come back as RETRY,
and the engine looks for them on the target before it sends them again.

TargetOptions.extra `pipeline=0` sends one message at a time and waits for each answer (for a
server that mishandles pipelining); `multiappend=0`, its older name, does the same.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import SplitResult, unquote

import imapclient
from imapclient import imap_utf7
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError

from migrate.crlf import to_crlf
from migrate.errors import AuthError, ProtocolError, TLSError, UnreachableError, UsageError, UserError
from migrate.imapwire import Appended, Wire, WireNo, quote
from migrate.mapping import WELL_KNOWN
from migrate.model import Folder, FolderRole
from migrate.targets.base import (
    ExistingMessage,
    Failure,
    Outcome,
    Target,
    TargetCapabilities,
    TargetFolder,
    TargetOptions,
    UploadItem,
    UploadResult,
    register,
)

log = logging.getLogger(__name__)

EXCHANGE_ONLINE_HOST = "outlook.office365.com"
EXCHANGE_ONLINE_MAX = 45 * 1024 * 1024  # APPEND is reported to stop near 45 MB (imapsync FAQ.Office365)
THROTTLE_WAIT = 300.0  # Exchange Online tells a throttled IMAP session to wait about five minutes
LISTING_CHUNK = 1000  # UIDs per FETCH: keeps the command line under Exchange's ~10,500 characters
FIND_BY_SEARCH = 50  # up to this many Message-IDs are looked up with SEARCH; more with one listing

# The only flags that go up: \Recent belongs to the server's session, \Deleted would hide mail.
KEPT_FLAGS = {f.lower(): f for f in ("\\Seen", "\\Flagged", "\\Answered", "\\Draft")}
# Exchange's well-known folders as RFC 6154 SPECIAL-USE attributes.
_ATTRIBUTE = {
    FolderRole.SENT: "\\sent",
    FolderRole.DRAFTS: "\\drafts",
    FolderRole.TRASH: "\\trash",
    FolderRole.JUNK: "\\junk",
    FolderRole.ARCHIVE: "\\archive",
}
SPECIAL_USE_FOR = {WELL_KNOWN[role].casefold(): attribute for role, attribute in _ATTRIBUTE.items()}
INBOX_NAME = WELL_KNOWN[FolderRole.INBOX].casefold()

HEADER_ITEM = b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"
LISTING_ITEMS = [b"UID", b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE", HEADER_ITEM]
IDLE_CHECK = 30.0  # seconds a connection may sit unused before a NOOP checks it before a batch
_BACKOFF = re.compile(r"backoff time:\s*(\d+)\s*milliseconds", re.IGNORECASE)
_TIMING = re.compile(r"\s*\(\d+\.\d+( \+ \d+\.\d+)* secs\)")  # Dovecot's "(0.001 + 0.000 secs)"
# Dovecot: "Character not allowed in mailbox name: '.'" (Maildir++), "Name must not have '/' characters".
_NOT_ALLOWED = re.compile(r"(?:not allowed in mailbox name: |must not have )'(.)'", re.IGNORECASE)
# What a dropped connection looks like: the server's BYE, a reset socket, a timeout, a TLS alert.
_LOST = (IMAPClientAbortError, OSError)

T = TypeVar("T")


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    implicit_tls: bool
    exchange_online: bool


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def server(parts: SplitResult, url: str, options: TargetOptions) -> Server:
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        raise UsageError(f"{url!r} names no server", hint=f"write the target as {scheme}://user@host")
    if not parts.username:
        raise UsageError(f"{url!r} names no user", hint=f"write the target as {scheme}://user@{host}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{url!r} has a bad port number", hint="use host:PORT with a number") from None
    implicit = scheme == "imaps"
    if options.insecure and not _is_loopback(host):
        raise UsageError(
            "--target-insecure (plaintext, no TLS) is allowed only to a server on this machine",
            hint=f"use imaps://...@{host} or imap:// with STARTTLS",
        )
    exchange_online = host.lower().endswith(EXCHANGE_ONLINE_HOST) or _yes(options.extra.get("exchange_online"))
    return Server(host, port or (993 if implicit else 143), unquote(parts.username), implicit, exchange_online)


def tls_context(options: TargetOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextmanager
def network_errors(where: Server) -> Iterator[None]:
    """Say what went wrong while reaching the target, in one line with the way out."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"the TLS certificate of {where.host}:{where.port} is not trusted ({exc.verify_message})",
            hint="if the target uses a private CA, pass it with --target-ca-file PATH",
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS with {where.host}:{where.port} failed ({exc.reason or exc})",
            hint="check that the port speaks TLS (993), or use imap:// with STARTTLS on 143",
        ) from None
    except socket.gaierror:
        raise UnreachableError(
            f"cannot find the server {where.host!r}", hint="check the host name in the target URL"
        ) from None
    except ConnectionRefusedError:
        raise UnreachableError(
            f"{where.host}:{where.port} refused the connection", hint="check the port, and that the server is up"
        ) from None
    except TimeoutError:
        raise UnreachableError(
            f"{where.host}:{where.port} did not answer in time", hint="check the host, port and firewall"
        ) from None
    except (ConnectionError, IMAPClientAbortError) as exc:
        raise UnreachableError(
            f"the connection to {where.host}:{where.port} was lost ({exc.__class__.__name__})",
            hint="run the command again; messages already copied are recognised",
        ) from None
    except OSError as exc:
        if exc.errno is None:
            raise
        raise UnreachableError(
            f"cannot reach {where.host}:{where.port}: {exc.strerror}", hint="check the host, port and network"
        ) from None


def _server_text(exc: BaseException | bytes | str, secrets: Iterable[str] = ()) -> str:
    """The server's words from an imaplib error, without our prefix, a secret, or a flood."""
    text = exc.decode("utf-8", "replace") if isinstance(exc, bytes) else str(exc)
    for prefix in ("append failed: ", "authenticate failed: ", "login failed: ", "create failed: "):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    text = re.sub(r"^\w+ command error: ", "", text)
    text = re.sub(r"\[b'(.*)'\]$", r"\1", text)
    if text.startswith(("b'", 'b"')):
        text = text[2:-1]
    text = _TIMING.sub("", text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text.strip()[:300]


def connect(where: Server, options: TargetOptions) -> imapclient.IMAPClient:
    """A signed-in IMAPClient: TLS always (unless insecure to loopback); XOAUTH2 when a token is given."""
    secret = ""
    with network_errors(where):
        client = imapclient.IMAPClient(
            where.host,
            port=where.port,
            ssl=where.implicit_tls,
            ssl_context=tls_context(options) if where.implicit_tls else None,
            timeout=options.timeout,
        )
        if not where.implicit_tls and not options.insecure:
            if b"STARTTLS" not in client.capabilities():
                client.shutdown()
                raise TLSError(
                    f"{where.host}:{where.port} does not offer STARTTLS; the password would go in clear",
                    hint="use imaps:// (port 993), or --target-insecure for a server on this machine",
                )
            client.starttls(tls_context(options))
        try:
            if options.token is not None:
                secret = options.token()
                client.oauth2_login(where.user, secret)
            else:
                secret = options.secret() if options.secret else ""
                if secret.isascii() and where.user.isascii():
                    client.login(where.user, secret)
                else:  # LOGIN carries ASCII only; SASL PLAIN carries UTF-8 (RFC 4616)
                    client.plain_login(where.user, secret)
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            client.shutdown()
            text = _server_text(exc, [secret])
            if options.token is not None:
                raise AuthError(
                    f"{where.host} refused the OAuth token (XOAUTH2) for {where.user}"
                    + (f": {text}" if text else ""),
                    hint="sign in again; the app needs IMAP.AccessAsUser.All (delegated) or "
                    "IMAP.AccessAsApp with FullAccess to the mailbox",
                ) from None
            if isinstance(exc, LoginError) or "login" in str(exc).lower():
                raise AuthError(
                    f"{where.host} refused the login for {where.user}" + (f": {text}" if text else ""),
                    hint="check the target user name and password",
                ) from None
            raise ProtocolError(f"{where.host} did not accept the sign-in: {text}") from None
    client.normalise_times = False  # aware datetimes, as the server gave them
    return client


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _aware(value: datetime | None) -> datetime | None:
    """A datetime with its own offset kept (clients show INTERNALDATE in it); naive ones are UTC."""
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def message_id_of(header: bytes) -> str | None:
    """The first Message-ID field of a header block, unfolded (read as sources/headers.py reads it)."""
    value: bytes | None = None
    for line in header.replace(b"\r\n", b"\n").split(b"\n"):
        if value is not None:
            if line[:1] in (b" ", b"\t"):
                value += b" " + line.strip()
                continue
            break
        name, colon, rest = line.partition(b":")
        if colon and name.strip().lower() == b"message-id":
            value = rest.strip()
    if value is None:
        return None
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = value.decode("latin-1")
    return text.strip() or None


def _uid_set(text: bytes) -> list[int]:
    uids: list[int] = []
    for part in text.split(b","):
        first, _, last = part.partition(b":")
        low, high = int(first), int(last or first)
        step = 1 if high >= low else -1
        uids.extend(range(low, high + step, step))
    return uids


def _wait(text: str, default: float) -> float:
    found = _BACKOFF.search(text)
    return int(found.group(1)) / 1000 if found else default


def classify(text: str, throttle_wait: float = THROTTLE_WAIT) -> tuple[Failure, float | None]:
    """What a refused APPEND means (RFC 5530 response codes, Exchange's words), and how long to wait."""
    low = text.lower()
    if "throttl" in low or "server busy" in low or "serverbusy" in low:
        return Failure.RETRY, _wait(text, throttle_wait)
    if "[overquota]" in low:
        return Failure.FATAL, None
    if "[toobig]" in low or "[limit]" in low:
        return Failure.TOO_LARGE, None
    if "[unavailable]" in low or "[serverbug]" in low or "[inuse]" in low:
        return Failure.RETRY, None
    return Failure.REJECTED, None


@dataclass
class _Pending:
    index: int
    item: UploadItem
    raw: bytes
    flags: list[str]


class ImapTarget(Target):
    """One IMAP mailbox as a target. One connection, opened when first needed and again after a drop."""

    def __init__(self, where: Server, url: str, options: TargetOptions) -> None:
        self.where = where
        self.url = url
        self.options = options
        extra = options.extra
        try:
            configured = int(extra["max_message_bytes"]) if extra.get("max_message_bytes") else None
            self._throttle_wait = float(extra.get("throttle_wait") or THROTTLE_WAIT)
        except ValueError:
            raise UsageError("max_message_bytes and throttle_wait take numbers") from None
        self.capabilities = TargetCapabilities(
            keeps_raw_bytes=not where.exchange_online,
            keeps_internal_date=True,
            max_message_bytes=configured or (EXCHANGE_ONLINE_MAX if where.exchange_online else None),
            # Exchange Online answers each APPEND across the internet from a farm of servers: four
            # uploads hide the round trips. An ISP's or a company's server (Dovecot, Cyrus) starts a
            # process for each connection and has a few CPUs; with batches pipelined (MULTIAPPEND,
            # LITERAL+) two keep it busy: on the bench's 2-CPU Dovecot, two took 2.03 s (median of
            # 10) where four took 2.17 s, with less CPU on both sides. --workers chooses otherwise.
            concurrency=4 if where.exchange_online else 2,
        )
        self._pipeline = all(extra.get(name, "1") not in ("0", "no", "false", "off")
                             for name in ("pipeline", "multiappend"))
        self._wire: Wire | None = None
        self._wire_used = 0.0
        self._client: imapclient.IMAPClient | None = None
        self._server_caps: frozenset[bytes] = frozenset()
        self._selected: tuple[str, bool] | None = None
        self._uidvalidity = 0
        self._folders: dict[str, frozenset[str]] | None = None  # mailbox name -> lower-cased attributes
        self._delimiter = "/"
        self._prefix = ""
        self._created: set[str] = set()  # folders this connection created, not listed since: empty

    # --- the connection -------------------------------------------------------------------

    @property
    def client(self) -> imapclient.IMAPClient:
        if self._client is None:
            client = connect(self.where, self.options)
            try:
                with network_errors(self.where):
                    self._server_caps = frozenset(c.upper() for c in client.capabilities())
                    self._delimiter, self._prefix = self._namespace(client)
            except BaseException:
                with suppress(Exception):
                    client.shutdown()
                raise
            self._client = client
        return self._client

    def _namespace(self, client: imapclient.IMAPClient) -> tuple[str, str]:
        """The delimiter and the prefix of the personal namespace ("INBOX." on Courier and Cyrus)."""
        if b"NAMESPACE" in self._server_caps:
            personal = client.namespace().personal
            if personal:
                prefix, delimiter = personal[0]
                if delimiter:
                    return _text(delimiter), _text(prefix)
        for _, delimiter, _ in client.list_folders("", "INBOX"):
            if delimiter:
                return _text(delimiter), ""
        return "/", ""

    def _drop(self) -> None:
        """Forget a connection that failed; the next call opens a new one."""
        if self._client is not None:
            with suppress(Exception):  # it is broken already; the caller says why
                self._client.shutdown()
        self._client = None
        self._selected = None

    def _idempotent(self, what: Callable[[imapclient.IMAPClient], T]) -> T:
        """Run a call that may safely run twice, again on a new connection if the first one dropped."""
        for attempt in (1, 2):
            client = self.client
            try:
                return what(client)
            except _LOST as exc:
                self._drop()
                if attempt == 2:
                    with network_errors(self.where):
                        raise exc
        raise AssertionError("unreachable")

    def _open(self, client: imapclient.IMAPClient, name: str, readonly: bool = True, fresh: bool = False) -> int:
        """EXAMINE (or SELECT) a folder unless it is open that way already; its UIDVALIDITY."""
        if fresh or self._selected != (name, readonly):
            try:
                info = client.select_folder(name, readonly=readonly)
            except IMAPClientAbortError:
                raise
            except IMAPClientError as exc:
                self._selected = None
                raise UserError(
                    f"cannot open the target folder {name!r} on {self.where.host}: {_server_text(exc)}",
                    hint="it may have been removed or renamed on the server during the run",
                ) from None
            self._selected = (name, readonly)
            self._uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        return self._uidvalidity

    # --- folders --------------------------------------------------------------------------

    def _listing(self, client: imapclient.IMAPClient) -> dict[str, frozenset[str]]:
        if self._folders is None:
            self._folders = {
                name: frozenset(_text(f).lower() for f in flags) for flags, _, name in client.list_folders()
            }
        return self._folders

    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        if not path:
            raise UsageError("a target folder needs a name")
        return self._idempotent(lambda client: self._ensure(client, path))

    def _special(self, listing: dict[str, frozenset[str]], head: str) -> str | None:
        """The server's own folder for an Exchange well-known name: INBOX, or by SPECIAL-USE."""
        key = head.casefold()
        if key == INBOX_NAME:
            return "INBOX"
        attribute = SPECIAL_USE_FOR.get(key)
        if attribute is None:
            return None
        for name, attributes in sorted(listing.items()):
            if attribute in attributes:
                return name
        return None

    def _existing_name(self, listing: dict[str, frozenset[str]], name: str) -> str | None:
        if name in listing:
            return name
        if self.where.exchange_online:  # Exchange compares folder names without regard to case
            for known in listing:
                if known.casefold() == name.casefold():
                    return known
        return None

    def _ensure(self, client: imapclient.IMAPClient, path: tuple[str, ...]) -> TargetFolder:
        listing = self._listing(client)
        notes: list[str] = []
        base = self._special(listing, path[0])
        name, rest = (base, path[1:]) if base is not None else (None, path)
        for part in rest:
            name = self._make(client, listing, name, part, notes)
        assert name is not None
        note = "; ".join(notes) or None
        if note:
            log.info("target folder %s: %s", "/".join(path), note)
        return TargetFolder(path, name, note)

    def _make(self, client: imapclient.IMAPClient, listing: dict[str, frozenset[str]], parent: str | None,
              part: str, notes: list[str]) -> str:
        """The folder `part` under `parent` (at the top when None), created and subscribed when it is
        missing or only a placeholder. A character the server will not have in a name becomes "_"."""
        level = part
        if self._delimiter in level:
            level = level.replace(self._delimiter, "_")
            notes.append(f"{part!r} holds the target's folder separator {self._delimiter!r}: named {level!r}")
        while True:
            name = (self._prefix if parent is None else parent + self._delimiter) + level
            known = self._existing_name(listing, name)
            if known is not None and not {"\\noselect", "\\nonexistent"} & listing[known]:
                return known
            try:
                client.create_folder(name)
                self._created.add(name)
                break
            except IMAPClientAbortError:
                raise
            except IMAPClientError as exc:
                text = _server_text(exc)
                if "ALREADYEXISTS" in text.upper():
                    break
                refused = _NOT_ALLOWED.search(text)
                if refused and refused.group(1) in level and refused.group(1) != "_":
                    safe = level.replace(refused.group(1), "_")
                    notes.append(f"{part!r}: the target does not allow {refused.group(1)!r} in folder names: "
                                 f"named {safe!r}")
                    level = safe
                    continue
                raise ProtocolError(f"{self.where.host} refused to create the folder {name!r}: {text}",
                                    hint="check the name; the server may not allow it") from None
        try:
            client.subscribe_folder(name)  # clients that show only subscribed folders show it too
        except IMAPClientAbortError:
            raise
        except IMAPClientError as exc:
            log.info("could not subscribe %s: %s", name, _server_text(exc))
        listing[name] = frozenset()
        return name

    # --- upload ---------------------------------------------------------------------------

    def _open_wire(self) -> Wire:
        secret = ""
        with network_errors(self.where):
            insecure = self.options.insecure and not self.where.implicit_tls
            wire = Wire.open(self.where.host, self.where.port, self.where.implicit_tls,
                             None if insecure else tls_context(self.options), self.options.timeout,
                             starttls=not self.where.implicit_tls and not insecure)
            try:
                if self.options.token is not None:
                    secret = self.options.token()
                    wire.xoauth2(self.where.user, secret)
                else:
                    secret = self.options.secret() if self.options.secret else ""
                    wire.login(self.where.user, secret)
            except WireNo as exc:
                wire.close()
                text = _server_text(exc.text, [secret])
                raise AuthError(f"{self.where.host} refused the sign-in for {self.where.user}"
                                + (f": {text}" if text else ""),
                                hint="check the target's password or token") from None
            except BaseException:
                wire.close()
                raise
        return wire

    def _drop_wire(self) -> None:
        if self._wire is not None:
            with suppress(Exception):  # it is broken already; the caller says why
                self._wire.close()
        self._wire = None

    def _ready_wire(self) -> Wire | str:
        """The upload connection, checked with NOOP when it sat idle; or why there is none."""
        if self._wire is not None and self._wire.closed_by_server():
            self._drop_wire()  # a restart or a kick: found without a round trip
        if self._wire is not None and time.monotonic() - self._wire_used > IDLE_CHECK:
            try:
                Wire.check(self._wire.command(b"NOOP"))
            except (OSError, WireNo, ConnectionError):
                self._drop_wire()
        if self._wire is None:
            try:
                self._wire = self._open_wire()
            except UnreachableError as exc:
                return exc.message
            self._wire_used = time.monotonic()
        return self._wire

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        if not items:
            return []
        self._created.discard(folder.id)  # it holds messages from now on
        results: list[UploadResult | None] = [None] * len(items)
        pending: list[_Pending] = []
        for index, item in enumerate(items):
            flags = sorted({KEPT_FLAGS[f.lower()] for f in item.flags if f.lower() in KEPT_FLAGS})
            pending.append(_Pending(index, item, item.raw if item.crlf else to_crlf(item.raw), flags))
        wire = self._ready_wire()
        if isinstance(wire, str):
            return [UploadResult(item.key, Outcome.FAILED, failure=Failure.RETRY, reason=wire) for item in items]
        limit = self._limit(wire)
        sendable = []
        for entry in pending:
            if limit is not None and len(entry.raw) > limit:
                results[entry.index] = UploadResult(
                    entry.item.key, Outcome.FAILED, failure=Failure.TOO_LARGE,
                    reason=f"{len(entry.raw):,} bytes: over the target's limit of {limit:,}",
                )
            else:
                sendable.append(entry)
        if sendable:
            self._append(wire, folder, sendable, results)
            if self.where.exchange_online:
                self._flag_again(folder, sendable, results)
        return [r if r is not None else UploadResult(items[i].key, Outcome.FAILED, failure=Failure.RETRY,
                                                     reason="not sent") for i, r in enumerate(results)]

    def _limit(self, wire: Wire) -> int | None:
        limits = [self.capabilities.max_message_bytes]
        for cap in wire.capabilities:
            if cap.startswith(b"APPENDLIMIT="):  # RFC 7889
                with suppress(ValueError):
                    limits.append(int(cap.partition(b"=")[2]))
        known = [n for n in limits if n]
        return min(known) if known else None

    def _append(self, wire: Wire, folder: TargetFolder, batch: list[_Pending],
                results: list[UploadResult | None]) -> None:
        mailbox = quote(imap_utf7.encode(folder.id))
        messages = [(entry.flags, _aware(entry.item.received), entry.raw) for entry in batch]
        if self._pipeline and len(batch) > 1 and b"MULTIAPPEND" in wire.capabilities \
                and b"LITERAL+" in wire.capabilities and self._multi(wire, mailbox, batch, messages, results):
            return
        if self._pipeline:
            answers = wire.append_many(mailbox, messages)
        else:
            answers = []
            for message in messages:
                answers.append(wire.append_many(mailbox, [message], pipeline=False)[0])
                if answers[-1].status == "LOST":
                    answers += [Appended("LOST", "not sent: " + answers[-1].text)] * (len(messages) - len(answers))
                    break
        self._wire_used = time.monotonic()
        if any(answer.status == "LOST" for answer in answers):
            self._drop_wire()
        for entry, answer in zip(batch, answers, strict=True):
            results[entry.index] = self._result(entry, answer)

    def _multi(self, wire: Wire, mailbox: bytes, batch: list[_Pending],
               messages: list[tuple[list[str], datetime | None, bytes]], results: list[UploadResult | None]) -> bool:
        """The batch as one MULTIAPPEND: one transaction for the server (Dovecot spends a quarter of
        the CPU of as many APPENDs). False when the server refused it for a reason that may concern
        one message only: then each goes again on its own, to get its own outcome."""
        answer, uids = wire.multiappend(mailbox, messages)
        self._wire_used = time.monotonic()
        if answer.status == "OK":
            validity = answer.uidvalidity
            if validity is None:
                found = re.search(r"\[APPENDUID (\d+) ", answer.text, re.IGNORECASE)
                validity = int(found.group(1)) if found else None
            for n, entry in enumerate(batch):
                uid = uids[n] if len(uids) == len(batch) else None
                results[entry.index] = self._result(entry, Appended("OK", answer.text, validity, uid))
            return True
        if answer.status == "LOST":
            self._drop_wire()
        else:
            failure, _ = classify(_server_text(answer.text), self._throttle_wait)
            if failure in (Failure.REJECTED, Failure.TOO_LARGE):
                return False
        for entry in batch:
            results[entry.index] = self._result(entry, answer)
        return True

    def _result(self, entry: _Pending, answer: Appended) -> UploadResult:
        key = entry.item.key
        if answer.status == "OK":
            target_id = f"{answer.uidvalidity}:{answer.uid}" if answer.uid is not None else None
            return UploadResult(key, Outcome.CREATED, target_id=target_id)
        if answer.status == "LOST":
            return UploadResult(key, Outcome.FAILED, failure=Failure.RETRY, reason=answer.text)
        text = _server_text(answer.text)
        failure, wait = classify(text, self._throttle_wait)
        return UploadResult(key, Outcome.FAILED, failure=failure, retry_after=wait, reason=text)

    def _flag_again(self, folder: TargetFolder, batch: list[_Pending], results: list[UploadResult | None]) -> None:
        """Exchange Online is reported to drop \\Flagged given in APPEND: STORE it on the new UIDs."""
        flagged: dict[int, int] = {}  # uid -> index
        for entry in batch:
            result = results[entry.index]
            if "\\Flagged" in entry.flags and result is not None and result.target_id:
                flagged[int(result.target_id.partition(":")[2])] = entry.index
        if not flagged:
            return
        try:
            self._open(self.client, folder.id, readonly=False)
            self.client.add_flags(sorted(flagged), [b"\\Flagged"], silent=True)
        except (*_LOST, IMAPClientError, UserError) as exc:
            if isinstance(exc, _LOST):
                self._drop()
            for index in flagged.values():
                result = results[index]
                assert result is not None
                results[index] = UploadResult(result.key, result.outcome, result.target_id,
                                              reason=f"created, but \\Flagged could not be set again: {exc}")

    # --- what is there --------------------------------------------------------------------

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        if folder.id in self._created:  # created a moment ago for this move: nothing to list (two round trips)
            self._created.discard(folder.id)
            return

        def uids(client: imapclient.IMAPClient) -> tuple[int, list[int]]:
            validity = self._open(client, folder.id, fresh=True)
            return validity, sorted(client.search("ALL"))

        validity, all_uids = self._idempotent(uids)
        for start in range(0, len(all_uids), LISTING_CHUNK):
            yield from self._describe(folder, validity, all_uids[start:start + LISTING_CHUNK])

    def _describe(self, folder: TargetFolder, validity: int, uids: list[int]) -> list[ExistingMessage]:
        def fetch(client: imapclient.IMAPClient) -> dict[int, dict[bytes, Any]]:
            if self._open(client, folder.id) != validity:
                raise ProtocolError(f"the target folder {folder.id!r} was rebuilt (UIDVALIDITY changed) "
                                    "while it was read", hint="run the command again")
            return dict(client.fetch(uids, LISTING_ITEMS))

        data = self._idempotent(fetch)
        return [self._message(validity, uid, data[uid]) for uid in uids if uid in data]

    def _message(self, validity: int, uid: int, item: dict[bytes, Any]) -> ExistingMessage:
        header = next((v for k, v in item.items() if k.startswith(b"BODY[HEADER.FIELDS")), b"") or b""
        return ExistingMessage(
            target_id=f"{validity}:{uid}",
            message_id=message_id_of(header),
            size=int(item.get(b"RFC822.SIZE", 0)),
            flags=frozenset(_text(f) for f in item.get(b"FLAGS", ()) if _text(f).lower() != "\\recent"),
            received=_aware(item.get(b"INTERNALDATE")),
        )

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        wanted = set(message_ids)
        if len(wanted) > FIND_BY_SEARCH or not all(m.isascii() for m in wanted):
            return super().find(folder, wanted)

        def search(client: imapclient.IMAPClient) -> tuple[int, list[int]]:
            validity = self._open(client, folder.id, fresh=True)
            found: set[int] = set()
            for message_id in wanted:
                found.update(client.search(["HEADER", "MESSAGE-ID", message_id]))
            return validity, sorted(found)

        validity, uids = self._idempotent(search)
        result: dict[str, list[ExistingMessage]] = {}
        for start in range(0, len(uids), LISTING_CHUNK):
            for message in self._describe(folder, validity, uids[start:start + LISTING_CHUNK]):
                if message.message_id in wanted:  # SEARCH HEADER matches substrings
                    result.setdefault(message.message_id, []).append(message)
        return result

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        validity_text, _, uid_text = target_id.partition(":")
        try:
            validity, uid = int(validity_text), int(uid_text)
        except ValueError:
            raise UsageError(f"{target_id!r} is not an IMAP target id (UIDVALIDITY:UID)") from None

        def fetch(client: imapclient.IMAPClient) -> bytes | None:
            for fresh in (False, True):  # a message appended since the folder was opened needs a fresh look
                if self._open(client, folder.id, fresh=fresh) != validity:
                    raise ProtocolError(f"the target folder {folder.id!r} was rebuilt (UIDVALIDITY changed)")
                data = client.fetch([uid], [b"BODY.PEEK[]"])
                if uid in data:
                    body: bytes = data[uid][b"BODY[]"]
                    return body
            return None

        body = self._idempotent(fetch)
        if body is None:
            raise ProtocolError(f"message {target_id} is not in the target folder {folder.id!r}")
        return body

    def close(self) -> None:
        if self._wire is not None:
            with suppress(Exception):  # closing a dead connection must not hide the real error
                self._wire.logout()
            self._wire = None
        if self._client is not None:
            with suppress(Exception):  # closing a dead connection must not hide the real error
                self._client.logout()
            self._client = None
            self._selected = None


@register("imaps", "imap")
def _open_target(parts: SplitResult, url: str, options: TargetOptions) -> Target:
    where = server(parts, url, options)
    if where.host.lower().endswith(EXCHANGE_ONLINE_HOST) and options.token is None:
        raise AuthError(
            f"{where.host} takes only OAuth sign-in (XOAUTH2); no token was given for {where.user}",
            hint="sign in to Microsoft 365 for IMAP (scope IMAP.AccessAsUser.All); a password does not work there",
        )
    if options.token is None and options.secret is None:
        raise UsageError(f"no password for the target {where.user}@{where.host}",
                         hint="use --target-password-env VAR or --target-password-file PATH")
    return ImapTarget(where, url, options)
