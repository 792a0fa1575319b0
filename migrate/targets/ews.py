"""EWS target over exchangelib: Exchange Online (while EWS lasts) and Exchange Server on-premises.

URL: `ews://mailbox@domain?endpoint=https://host/EWS/Exchange.asmx[&impersonate=1][&max_mb=35]`; the
endpoint defaults to Exchange Online's. TargetOptions.token gives OAuth access tokens (a migrate.auth
TokenProvider or its `.token`); app-only tokens, or `impersonate=1`, act on the mailbox by impersonation.

TargetOptions.extra:
  max_message_bytes=N  larger messages fail as TOO_LARGE without being sent (also `max_mb` in the URL)
  timezone=IANA        the mailbox's zone (also `tz` in the URL): where all-day events and floating times are
                       pinned; by default the zone of the machine that runs the move

Calendars and address books: a folder of kind EVENT or CONTACT is a CalendarFolder or ContactsFolder (the
mailbox's own Calendar and Contacts, or sub-folders of them), and its items go up as CalendarItem, Contact and
DistributionList made by ews_pim from the iCalendar/vCard bytes, each with its fidelity account.

How messages go up: CreateItem with the raw MIME (CRLF line endings) plus the MAPI properties that make a
message look received rather than drafted (DOMAIN.md): PR_MESSAGE_FLAGS without MSGFLAG_UNSENT, the delivery
and submit times, and PR_FLAG_STATUS for \\Flagged. exchangelib runs with FailFast: under its own retry policy
one busy item makes it resend the whole chunk, which stores duplicates. A batch that fails as a whole comes
back as RETRY for every item; the engine checks Message-IDs with find() before it sends them again.

Only this module imports exchangelib.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    OAUTH2,
    UTC,
    Account,
    BaseProtocol,
    Build,
    CalendarItem,
    Configuration,
    EWSDateTime,
    EWSTimeZone,
    ExtendedProperty,
    FailFast,
    Folder,
    Message,
    Version,
    errors,
)
from exchangelib.credentials import OAuth2AuthorizationCodeCredentials
from exchangelib.folders import Calendar, Contacts, Root
from exchangelib.protocol import close_connections

from migrate.crlf import to_crlf
from migrate.errors import (
    AuthError,
    MigrateError,
    ProtocolError,
    Retryable,
    TLSError,
    UnreachableError,
    UsageError,
    UserError,
)
from migrate.model import Contact, Event, Fidelity, ItemKind
from migrate.model import Folder as SourceFolder
from migrate.sources.headers import header_block, header_facts
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
from migrate.targets.budget import mailbox_budget
from migrate.targets.ews_pim import (
    IDENTITY,
    PlannedEvent,
    calendar_item,
    contact_item,
    identity_of,
    instant,
    parse,
    register_pim_properties,
    uid_key,
)

log = logging.getLogger(__name__)


class _NoTokens(logging.Filter):
    """requests_oauthlib logs the whole token ("Adding token {...}", "Updated headers") and exchangelib logs
    request headers at DEBUG; keep the lines, hide what follows "Bearer" and "access_token"."""

    PATTERN = re.compile(r"(?i)(bearer\s+|access_token['\"]?\s*[:=]\s*['\"]?|refresh_token['\"]?\s*[:=]\s*['\"]?)"
                         r"[A-Za-z0-9\-._~+/=]+")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a broken log call is not ours to fix; never let it carry a token out
            record.msg, record.args = "(log line dropped)", ()
            return True
        cleaned = self.PATTERN.sub(lambda m: m.group(1) + "<hidden>", text)
        if cleaned != text:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = _NoTokens()
for _name in ("requests_oauthlib.oauth2_session", "exchangelib.util", "exchangelib.util.xml", "exchangelib.protocol",
              "exchangelib.services.common", "exchangelib.transport", "exchangelib.credentials"):
    logging.getLogger(_name).addFilter(_FILTER)

EXCHANGE_ONLINE_EWS = "https://outlook.office365.com/EWS/Exchange.asmx"
MB = 1024 * 1024
DEFAULT_MAX_MESSAGE = 35 * MB  # Exchange Online's default MaxSendSize (DOMAIN.md "Limits")
MAX_BATCH_BYTES = 8 * MB  # a CreateItem must finish within a minute; MIME goes as base64 (4/3)
MAX_BATCH_ITEMS = 50
DEFAULT_BACK_OFF = 30.0  # seconds, when a busy answer suggests none
GRAPH_OR_IMAP = "EWS may be blocked for this tenant or app (Exchange Online, since 2026-10-01): " \
    "use an imaps:// target (IMAP with OAuth) or the Graph transport, or ask the admin for EwsAllowedAppIDs"

MSGFLAG_READ = 1
FLAG_STATUS_FLAGGED = 2
VERB_REPLIED = 102  # EXCHIVERB_REPLYTOSENDER: how Exchange shows IMAP's \\Answered
VERB_ANSWERED = {102, 103}


class MessageFlags(ExtendedProperty):
    property_tag = 0x0E07  # PR_MESSAGE_FLAGS: 1 = read; never 8 (unsent), so not a draft
    property_type = "Integer"


class DeliveryTime(ExtendedProperty):
    property_tag = 0x0E06  # PR_MESSAGE_DELIVERY_TIME
    property_type = "SystemTime"


class SubmitTime(ExtendedProperty):
    property_tag = 0x0039  # PidTagClientSubmitTime
    property_type = "SystemTime"


class FlagStatus(ExtendedProperty):
    property_tag = 0x1090  # PR_FLAG_STATUS: 2 = flagged
    property_type = "Integer"


class LastVerbExecuted(ExtendedProperty):
    property_tag = 0x1081  # PR_LAST_VERB_EXECUTED: 102 reply, 103 reply all, 104 forward
    property_type = "Integer"


_PROPERTIES: dict[str, type[ExtendedProperty]] = {
    "o365m_message_flags": MessageFlags,
    "o365m_delivery_time": DeliveryTime,
    "o365m_submit_time": SubmitTime,
    "o365m_flag_status": FlagStatus,
    "o365m_last_verb": LastVerbExecuted,
}
_registered = threading.Lock()


def register_properties() -> None:
    """Message.register is exchangelib's public way to add MAPI properties; done once per process."""
    with _registered:
        known = {f.name for f in Message.FIELDS}
        for name, cls in _PROPERTIES.items():
            if name not in known:
                Message.register(name, cls)
        register_pim_properties()


# TLS: requests lets REQUESTS_CA_BUNDLE override Session.verify, and exchangelib makes its own sessions. Its
# public hook is BaseProtocol.HTTP_ADAPTER_CLS; this adapter gives each endpoint that asked for one its CA
# (or no verification, with `insecure`) and leaves every other endpoint as requests would have it.

_VERIFY: dict[str, str | bool] = {}
_USERS: dict[str, int] = {}  # open targets per origin: the entry goes when the last one closes
_VERIFY_LOCK = threading.Lock()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}:{parts.port or 443}"


class EndpointCAAdapter(requests.adapters.HTTPAdapter):
    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        verify = _VERIFY.get(_origin(request.url or ""))
        if verify is not None:
            kwargs["verify"] = verify
        return super().send(request, *args, **kwargs)


def _trust(endpoint: str, options: TargetOptions) -> None:
    if options.ca_file is None and not options.insecure:
        return
    if BaseProtocol.HTTP_ADAPTER_CLS is not EndpointCAAdapter:
        if BaseProtocol.HTTP_ADAPTER_CLS is not requests.adapters.HTTPAdapter:
            raise UsageError("another adapter is already installed for exchangelib; cannot set a CA for EWS")
        BaseProtocol.HTTP_ADAPTER_CLS = EndpointCAAdapter
    origin = _origin(endpoint)
    with _VERIFY_LOCK:
        _VERIFY[origin] = False if options.insecure else str(options.ca_file)
        _USERS[origin] = _USERS.get(origin, 0) + 1


def _untrust(endpoint: str) -> None:
    # A later server on the same host and port (another sandbox, a test) has another CA.
    origin = _origin(endpoint)
    with _VERIFY_LOCK:
        if origin not in _USERS:
            return
        _USERS[origin] -= 1
        if _USERS[origin] <= 0:
            del _USERS[origin]
            _VERIFY.pop(origin, None)


class TokenCredentials(OAuth2AuthorizationCodeCredentials):
    """exchangelib credentials that ask our token provider whenever exchangelib wants a fresh token.

    Without client id and secret, exchangelib can only call refresh(); it never goes to
    login.microsoftonline.com on its own (OAuth2Credentials would, after any renewed session).
    """

    def __init__(self, token: Callable[[], str], renew: Callable[[], str] | None = None) -> None:
        self._ask = token
        self._renew = renew or token
        super().__init__(access_token=self._wrap(token()))

    @staticmethod
    def _wrap(token: str) -> dict[str, Any]:
        lifetime = 300  # unknown here: the provider renews before expiry, so ask it again often
        return {"access_token": token, "token_type": "Bearer", "expires_in": lifetime,
                "expires_at": dt.datetime.now(dt.UTC).timestamp() + lifetime}

    def refresh(self, session: Any) -> None:
        self.access_token = self._wrap(self._ask())

    def renew(self) -> None:
        """A token the provider has not handed out before: after the server refused the current one."""
        self.access_token = self._wrap(self._renew())

    @property
    def current(self) -> str:
        token = self.access_token
        return str(token.get("access_token", "")) if isinstance(token, dict) else ""

    def __repr__(self) -> str:
        return "TokenCredentials(<token hidden>)"

    __str__ = __repr__


# What the targets on one mailbox in a process know of its folders. A mailbox's move opens its target several
# times (the run's reader and upload lanes, then verification), and each exchangelib Account learns the folder
# tree afresh: the distinguished folders and a deep FindFolder, about a third of a small mailbox's requests.
# Found once, a folder's id serves every target, each on its own Account and connections (one pool shared by
# threads would meet exchangelib's pool shrinking under ErrorServerBusy). Kept KEEP_SECONDS after its last use.
KEEP_SECONDS = 120.0


@dataclass
class _Directory:
    folders: dict[tuple[ItemKind, tuple[str, ...]], tuple[str, type[Folder]]] = field(default_factory=dict)
    made: set[str] = field(default_factory=set)  # folders made in this process, not written to since: empty
    lock: threading.Lock = field(default_factory=threading.Lock)  # one target makes a folder at a time
    used: float = field(default_factory=time.monotonic)


_DIRECTORIES: dict[tuple[str, str], _Directory] = {}
_DIRECTORIES_LOCK = threading.Lock()


def _directory_of(endpoint: str, mailbox: str) -> _Directory:
    with _DIRECTORIES_LOCK:
        now = time.monotonic()
        for key, kept in list(_DIRECTORIES.items()):
            if now - kept.used > KEEP_SECONDS:
                del _DIRECTORIES[key]
        found = _DIRECTORIES.setdefault((endpoint.lower(), mailbox.lower()), _Directory())
        found.used = now
        return found


@dataclass(frozen=True)
class Where:
    mailbox: str
    endpoint: str
    impersonate: bool | None  # None: decide from the token (app-only means impersonation)
    max_message_bytes: int
    timezone: str | None = None  # the mailbox's zone (IANA) for all-day events and floating times


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def where(parts: SplitResult, options: TargetOptions) -> Where:
    if not parts.username or not parts.hostname:
        raise UsageError(f"an EWS target needs a mailbox: ews://mailbox@domain, not {parts.geturl()!r}")
    mailbox = f"{unquote(parts.username)}@{parts.hostname}"
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    endpoint = query.get("endpoint", EXCHANGE_ONLINE_EWS)
    ep = urlsplit(endpoint)
    if ep.scheme not in ("https", "http") or not ep.hostname:
        raise UsageError(f"bad EWS endpoint {endpoint!r}", hint="e.g. endpoint=https://host/EWS/Exchange.asmx")
    if ep.scheme == "http" and not options.insecure:
        raise UsageError("an EWS endpoint over plain http would send the token in clear", hint="use https")
    limit = DEFAULT_MAX_MESSAGE
    try:
        if "max_mb" in query:
            limit = int(float(query["max_mb"]) * MB)
        if "max_message_bytes" in options.extra:
            limit = int(options.extra["max_message_bytes"])
    except ValueError as exc:
        raise UsageError(f"bad message size limit in {parts.geturl()!r}") from exc
    impersonate = _yes(query["impersonate"]) if "impersonate" in query else None
    zone = options.extra.get("timezone") or query.get("tz")
    if zone:
        try:
            EWSTimeZone(zone)
        except Exception:  # exchangelib raises its own UnknownTimeZone or zoneinfo's errors
            raise UsageError(f"unknown time zone {zone!r} for the mailbox",
                             hint="give an IANA name Exchange knows, such as Europe/Stockholm") from None
    return Where(mailbox, endpoint, impersonate, limit, zone)


def _app_only(token: Callable[[], str]) -> bool:
    provider = getattr(token, "__self__", token)
    settings = getattr(provider, "settings", None)
    return bool(getattr(settings, "app_only", False))


def _renewer(token: Callable[[], str]) -> Callable[[], str] | None:
    provider = getattr(token, "__self__", token)
    renew = getattr(provider, "refresh", None)
    return renew if callable(renew) else None


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def _ews_time(value: dt.datetime) -> EWSDateTime:
    aware = _aware(value)
    assert aware is not None
    return EWSDateTime.from_datetime(aware.astimezone(dt.UTC)).astimezone(UTC)


def _back_off(exc: BaseException) -> float:
    wait = getattr(exc, "back_off", None)
    return float(wait) if wait else DEFAULT_BACK_OFF


PER_ITEM: dict[type[Exception], Failure] = {
    errors.ErrorMessageSizeExceeded: Failure.TOO_LARGE,
    errors.ErrorServerBusy: Failure.RETRY,
    errors.ErrorTimeoutExpired: Failure.RETRY,
    errors.ErrorQuotaExceeded: Failure.FATAL,
    errors.ErrorMimeContentConversionFailed: Failure.REJECTED,
    errors.ErrorCorruptData: Failure.REJECTED,
    errors.ErrorItemSave: Failure.REJECTED,
}


def classify(exc: BaseException) -> Failure:
    for cls, failure in PER_ITEM.items():
        if isinstance(exc, cls):
            return failure
    return Failure.REJECTED


T = TypeVar("T")


class EwsTarget(Target):
    def __init__(self, place: Where, url: str, options: TargetOptions) -> None:
        if options.token is None:
            raise UsageError("an EWS target signs in with OAuth only", hint="sign in first: o365-migrate auth login")
        self.url = url
        self.where = place
        self.options = options
        self.capabilities = TargetCapabilities(
            keeps_raw_bytes=False, keeps_internal_date=True, calendars=True, contacts=True,
            max_message_bytes=place.max_message_bytes, max_batch_bytes=MAX_BATCH_BYTES,
            max_batch_items=MAX_BATCH_ITEMS, concurrency=4,
        )
        impersonate = place.impersonate if place.impersonate is not None else _app_only(options.token)
        self._access = IMPERSONATION if impersonate else DELEGATE
        self._credentials: TokenCredentials | None = None
        self._account: Account | None = None
        self._folders: dict[str, Folder] = {}
        # A probe (preflight) asks the server; other targets share what is known of the mailbox's folders.
        self._directory = _directory_of(place.endpoint, place.mailbox) if options.shared else None
        register_properties()
        _trust(place.endpoint, options)
        self._trusted = options.ca_file is not None or options.insecure
        # Exchange Online's import budget, paced here as for Graph: without it a large CreateItem waits behind
        # small ones that refill the window, is refused ServerBusy again and again, and fails after its retries.
        online = place.endpoint.lower().rstrip("/") == EXCHANGE_ONLINE_EWS.lower()
        self._budget = mailbox_budget(place.endpoint, place.mailbox, default=online)

    # connection and errors

    def _secrets(self) -> list[str]:
        token = self._credentials.current if self._credentials else ""
        return [token] if token else []

    def _clean(self, exc: BaseException | str) -> str:
        text = str(exc) or type(exc).__name__
        for secret in self._secrets():
            text = text.replace(secret, "<token>")
        return text[:300]

    def _account_now(self) -> Account:
        if self._account is None:
            assert self.options.token is not None
            with self._translated():
                self._credentials = TokenCredentials(self.options.token, _renewer(self.options.token))
            config = Configuration(
                service_endpoint=self.where.endpoint, credentials=self._credentials, auth_type=OAUTH2,
                version=Version(build=Build(15, 20, 0, 0)), retry_policy=FailFast(),
                max_connections=self.capabilities.concurrency,
            )
            self._account = Account(self.where.mailbox, config=config, autodiscover=False,
                                    access_type=self._access,
                                    default_timezone=EWSTimeZone(self.where.timezone) if self.where.timezone else None)
        return self._account

    @contextmanager
    def _translated(self) -> Iterator[None]:
        """exchangelib's and requests' errors as ours, never with a token in the text."""
        mailbox = self.where.mailbox
        try:
            yield
        except MigrateError:
            raise
        except errors.ErrorNonExistentMailbox as exc:
            raise UserError(f"no mailbox {mailbox} at {self.where.endpoint}",
                            hint="check the address in the target URL") from exc
        except (errors.ErrorAccessDenied, errors.ErrorImpersonateUserDenied) as exc:
            raise AuthError(f"{mailbox}: access denied ({self._clean(exc)})", hint=GRAPH_OR_IMAP) from exc
        except errors.UnauthorizedError as exc:
            raise AuthError(f"{mailbox}: the EWS server refused the token", hint=GRAPH_OR_IMAP) from exc
        except errors.ErrorServerBusy as exc:
            raise Retryable(f"{mailbox}: EWS server busy", wait=_back_off(exc)) from exc
        except requests.exceptions.SSLError as exc:
            raise TLSError(f"TLS with {self.where.endpoint} failed: certificate not trusted or TLS refused",
                           hint="give the CA with --ca-file, or check REQUESTS_CA_BUNDLE") from exc
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise UnreachableError(f"cannot reach {self.where.endpoint}") from exc
        except errors.TransportError as exc:
            text = self._clean(exc)
            if "403" in text or "Forbidden" in text:
                raise AuthError(f"{mailbox}: EWS answered 403 Forbidden", hint=GRAPH_OR_IMAP) from exc
            if any(w in text for w in ("SSLError", "CERTIFICATE", "certificate")):
                raise TLSError(f"TLS with {self.where.endpoint} failed ({text})") from exc
            if any(w in text for w in ("ConnectionError", "Connection refused", "timed out", "resolve")):
                raise UnreachableError(f"cannot reach {self.where.endpoint} ({text})") from exc
            raise ProtocolError(f"EWS at {self.where.endpoint}: {text}") from exc
        except errors.EWSError as exc:
            raise ProtocolError(f"EWS at {self.where.endpoint}: {type(exc).__name__}: {self._clean(exc)}") from exc

    def _call(self, what: Callable[[Account], T]) -> T:
        """Run one EWS exchange; on HTTP 401 (token revoked or expired early) renew the token once."""
        with self._translated():
            account = self._account_now()
            try:
                return what(account)
            except errors.UnauthorizedError:
                log.info("EWS refused the token for %s; asking for a new one", self.where.mailbox)
                assert self._credentials is not None
                self._credentials.renew()
                account.protocol.close()  # sessions carry the old token
                return what(account)

    # folders

    def _known(self, account: Account, path: tuple[str, ...], kind: ItemKind) -> Folder | None:
        """A folder another target in this process found: bound to this target's account, without a request."""
        if self._directory is None:
            return None
        found = self._directory.folders.get((kind, path))
        if found is None:
            return None
        folder_id, cls = found
        return cls(root=Root(account=account), id=folder_id)

    def _well_known(self, account: Account, name: str) -> Folder | None:
        key = name.casefold()
        if key == "inbox":
            return account.inbox
        if key == "sent items":
            return account.sent
        if key == "drafts":
            return account.drafts
        if key == "deleted items":
            return account.trash
        if key == "junk email":
            return account.junk
        if key == "archive":
            return self._child(account.msg_folder_root, "Archive")
        return None

    @staticmethod
    def _named(parent: Folder, name: str) -> Folder | None:
        key = name.casefold()
        return next((c for c in parent.children if (c.name or "").casefold() == key), None)

    def _child(self, parent: Folder, name: str, cls: type[Folder] = Folder) -> Folder:
        found = self._named(parent, name)
        if found is not None:
            return found
        folder = cls(parent=parent, name=name)
        try:
            folder.save()
            if self._directory is not None:
                self._directory.made.add(folder.id)
        except errors.ErrorFolderExists:
            # Made by another connection meanwhile (this one's folder cache is older): list again.
            parent.root.clear_cache()
            again = self._named(parent, name)
            if again is None:
                raise
            return again
        return folder

    def ensure_folder(self, path: tuple[str, ...], source: SourceFolder | None = None) -> TargetFolder:
        return self._ensure(path, source.kind if source is not None else ItemKind.MAIL)

    def _ensure(self, path: tuple[str, ...], kind: ItemKind) -> TargetFolder:
        if not path:
            raise UsageError("an empty folder path")
        # Calendars and address books live in the mailbox's own Calendar and Contacts, or in folders of
        # their class elsewhere: Outlook shows events only in a CalendarFolder, contacts in a ContactsFolder.
        cls: type[Folder] = {ItemKind.EVENT: Calendar, ItemKind.CONTACT: Contacts}.get(kind, Folder)

        def make(account: Account) -> Folder:
            home = {ItemKind.EVENT: ("calendar", lambda: account.calendar),
                    ItemKind.CONTACT: ("contacts", lambda: account.contacts)}.get(kind)
            if home is not None and path[0].casefold() == home[0]:
                folder: Folder | None = home[1]()
            else:
                folder = self._well_known(account, path[0]) if kind is ItemKind.MAIL else None
            rest = path[1:]
            if folder is None:
                folder, rest = account.msg_folder_root, path
            for name in rest:
                folder = self._child(folder, name, cls)
            return folder

        account = self._call(lambda account: account)
        folder = self._known(account, path, kind)
        if folder is None:
            with self._directory.lock if self._directory is not None else nullcontext():  # not made twice at once
                folder = self._known(account, path, kind) or self._call(make)
            if self._directory is not None:
                self._directory.folders[(kind, path)] = (folder.id, type(folder))
        self._folders[folder.id] = folder
        return TargetFolder(path, folder.id, kind=kind)

    def _folder(self, folder: TargetFolder) -> Folder:
        known = self._folders.get(folder.id)
        if known is None:
            self._ensure(folder.path, folder.kind)
            known = self._folders.get(folder.id)
            if known is None:
                raise ProtocolError(f"folder {'/'.join(folder.path)} is no longer {folder.id[:12]}...")
        return known

    # upload

    def _message(self, folder: Folder, item: UploadItem, raw: bytes) -> Message:
        seen = "\\seen" in {f.lower() for f in item.flags}
        kwargs: dict[str, Any] = {"folder": folder, "mime_content": raw, "is_read": seen,
                                  "o365m_message_flags": MSGFLAG_READ if seen else 0}
        if item.received is not None:
            kwargs["o365m_delivery_time"] = _ews_time(item.received)
        sent = item.sent or header_facts(header_block(raw)).date
        if sent is not None:
            kwargs["o365m_submit_time"] = _ews_time(sent)
        if "\\flagged" in {f.lower() for f in item.flags}:
            kwargs["o365m_flag_status"] = FLAG_STATUS_FLAGGED
        if "\\answered" in {f.lower() for f in item.flags}:
            kwargs["o365m_last_verb"] = VERB_REPLIED
        return Message(**kwargs)

    def _batches(self, pending: list[tuple[int, bytes]]) -> Iterator[list[tuple[int, bytes]]]:
        batch: list[tuple[int, bytes]] = []
        size = 0
        for entry in pending:
            cost = len(entry[1]) * 4 // 3 + 1024
            if batch and (size + cost > self.capabilities.max_batch_bytes
                          or len(batch) >= self.capabilities.max_batch_items):
                yield batch
                batch, size = [], 0
            batch.append(entry)
            size += cost
        if batch:
            yield batch

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        results: list[UploadResult | None] = [None] * len(items)
        pending: list[tuple[int, bytes]] = []
        limit = self.capabilities.max_message_bytes
        for n, item in enumerate(items):
            # Line ends matter to MIME only: an event or card may be UTF-16, where a CR inserted breaks it.
            raw = to_crlf(item.raw) if folder.kind is ItemKind.MAIL and not item.crlf else item.raw
            if limit is not None and len(raw) > limit:
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.TOO_LARGE,
                                          reason=f"{len(raw)} bytes, over the target's {limit}")
            else:
                pending.append((n, raw))
        if pending:
            if self._directory is not None:
                self._directory.made.discard(folder.id)  # it holds items from now on (or may, if the call fails)
            ews_folder = self._folder(folder)
            for batch in self._batches(pending):
                if folder.kind is ItemKind.MAIL:
                    self._send(ews_folder, items, batch, results)
                else:
                    self._send_pim(folder.kind, ews_folder, items, batch, results)
        done = [r for r in results if r is not None]
        assert len(done) == len(items)
        return done

    def _send(self, folder: Folder, items: Sequence[UploadItem], batch: list[tuple[int, bytes]],
              results: list[UploadResult | None]) -> None:
        messages = [self._message(folder, items[n], raw) for n, raw in batch]
        size = sum(len(raw) for _, raw in batch)
        for n, answer in self._create(folder, [(n, items[n].key) for n, _ in batch], messages, results, size):
            results[n] = UploadResult(items[n].key, Outcome.CREATED, target_id=answer.id)

    def _create(self, folder: Folder, keys: list[tuple[int, str]], objects: list[Any],
                results: list[UploadResult | None], size: int = 0) -> list[tuple[int, Any]]:
        """One CreateItem for a batch: each failure goes into `results`, the items created come back."""
        # The service counts the request body: MIME goes as base64 (4/3) inside about 2 KB of XML per item.
        send = self._budget.reserve(size * 4 // 3 + 2048 * len(objects)) if self._budget and size else None
        busy: list[bool] = []
        try:
            return self._create_now(folder, keys, objects, results, busy)
        finally:
            if send is not None and self._budget is not None:
                # ServerBusy: the service did not take (or count) the body; a request broken on the way may have
                self._budget.settle(send, counted=not busy)

    def _create_now(self, folder: Folder, keys: list[tuple[int, str]], objects: list[Any],
                    results: list[UploadResult | None], busy: list[bool]) -> list[tuple[int, Any]]:
        try:
            answers = self._call(lambda account: account.bulk_create(folder, objects, chunk_size=len(objects)))
        except Retryable as exc:  # the whole request was refused; some items may have landed (find() first)
            if isinstance(exc.__cause__, errors.ErrorServerBusy):
                busy.append(True)
            for n, key in keys:
                results[n] = UploadResult(key, Outcome.FAILED, failure=Failure.RETRY,
                                          retry_after=exc.wait, reason=exc.message)
            return []
        except ProtocolError as exc:
            cause = exc.__cause__
            if cause is not None and isinstance(cause, tuple(PER_ITEM)):  # a per-item code exchangelib raised
                failure = classify(cause)
                for n, key in keys:
                    results[n] = UploadResult(
                        key, Outcome.FAILED, failure=failure, reason=self._clean(cause),
                        retry_after=_back_off(cause) if failure is Failure.RETRY else None)
                return []
            raise
        if len(answers) != len(keys):
            raise ProtocolError(f"EWS answered {len(answers)} results for {len(keys)} items")
        created = []
        for (n, key), answer in zip(keys, answers, strict=True):
            if isinstance(answer, BaseException):
                failure = classify(answer)
                results[n] = UploadResult(key, Outcome.FAILED, failure=failure, reason=self._clean(answer),
                                          retry_after=_back_off(answer) if failure is Failure.RETRY else None)
            else:
                created.append((n, answer))
        return created

    # events and contacts

    def _send_pim(self, kind: ItemKind, folder: Folder, items: Sequence[UploadItem], batch: list[tuple[int, bytes]],
                  results: list[UploadResult | None]) -> None:
        home = self._call(lambda account: account.default_timezone)
        what = "iCalendar event" if kind is ItemKind.EVENT else "vCard"
        parsed: dict[int, Event | Contact] = {}
        for n, raw in batch:
            try:
                parsed[n] = parse(kind, raw, self.where.timezone)
            except Exception as exc:  # any flaw of one file (the parsers' errors vary) fails that item alone
                results[n] = UploadResult(items[n].key, Outcome.FAILED, failure=Failure.REJECTED,
                                          reason=f"not a {what} Exchange can take: {self._clean(exc)}")
        members = self._group_members(folder, [p for p in parsed.values() if isinstance(p, Contact)])
        made: dict[int, tuple[Any, Fidelity, PlannedEvent | None]] = {}
        for n, raw in batch:
            if n not in parsed:
                continue
            item, source = items[n], parsed[n]
            try:
                identity = identity_of(item.message_id, source, raw)
                if isinstance(source, Event):
                    plan = calendar_item(source, identity, folder, self.where.mailbox, home)
                    made[n] = (plan.item, plan.fidelity, plan)
                else:
                    contact, fidelity = contact_item(source, identity, folder, members)
                    made[n] = (contact, fidelity, None)
            except Exception as exc:  # a value exchangelib refuses (an interval, a date) fails that item alone
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.REJECTED,
                                          reason=f"not a {what} Exchange can take: {self._clean(exc)}")
        keys = [(n, items[n].key) for n, _ in batch if n in made]
        if not keys:
            return
        size = sum(len(raw) for n, raw in batch if n in made)
        for n, answer in self._create(folder, keys, [made[n][0] for n, _ in keys], results, size):
            _, fidelity, planned = made[n]
            if planned is not None and (planned.changed or planned.deleted):
                self._occurrences(folder, answer, planned)
            results[n] = UploadResult(items[n].key, Outcome.CREATED, target_id=answer.id, fidelity=fidelity)

    def _group_members(self, folder: Folder, cards: list[Contact]) -> dict[str, str]:
        """The e-mail address of each contact the groups among `cards` name by UID: from the batch itself, or
        from the contacts an earlier batch made in the folder (found by their identity property)."""
        wanted = {uid_key(u) for c in cards if c.is_group for u in c.member_uids}
        if not wanted:
            return {}
        found = {uid_key(c.uid): c.emails[0].value.removeprefix("mailto:") for c in cards
                 if c.uid and not c.is_group and c.emails and uid_key(c.uid) in wanted}
        missing = sorted(wanted - set(found))
        if missing:
            def look(account: Account) -> None:
                for start in range(0, len(missing), 50):
                    chunk = missing[start:start + 50]
                    query = folder.filter(**{f"{IDENTITY}__in": chunk + [f"urn:uuid:{u}" for u in chunk]})
                    for there in query.only(IDENTITY, "email_addresses"):
                        emails = getattr(there, "email_addresses", None) or []
                        if emails and getattr(there, IDENTITY, None):
                            found.setdefault(uid_key(getattr(there, IDENTITY)), emails[0].email)

            self._call(look)
        return found

    def _occurrences(self, folder: Folder, created: Any, plan: PlannedEvent) -> None:
        """Changed occurrences, then deleted ones (from the last back, so no index moves under another);
        what Exchange refuses is a fidelity drop of that occurrence, the series itself stays."""
        f = plan.fidelity

        def occurrence(account: Account, index: int) -> CalendarItem:
            master = CalendarItem(account=account, folder=folder, id=created.id, changekey=created.changekey)
            return master.occurrence(index)

        def change(account: Account) -> list[Any]:
            updates = []
            for index, fields, _ in plan.changed:
                item = occurrence(account, index)
                for name, value in fields.items():
                    setattr(item, name, value)
                updates.append((item, list(fields)))
            return list(account.bulk_update(updates))

        def delete(account: Account) -> list[Any]:
            return list(account.bulk_delete([occurrence(account, index) for index, _ in plan.deleted]))

        plan.deleted.sort(key=lambda entry: -entry[0])
        for what, entries, run in (("changed", plan.changed, change), ("deleted", plan.deleted, delete)):
            if not entries:
                continue
            labels = [entry[-1] for entry in entries]
            try:
                answers = self._call(run)
            except (ProtocolError, Retryable) as exc:  # the series is there: only these occurrences are lost
                answers = [exc] * len(entries)
            for label, answer in zip(labels, answers, strict=False):
                if isinstance(answer, BaseException):
                    f.drop("occurrence", f"{label}: Exchange refused it as {what} ({self._clean(answer)})")

    # what the mailbox holds

    FIELDS = ("message_id", "size", "is_read", "datetime_received", "o365m_flag_status", "o365m_last_verb")

    def _existing(self, message: Message) -> ExistingMessage:
        flags = set()
        if message.is_read:
            flags.add("\\Seen")
        if getattr(message, "o365m_flag_status", None) == FLAG_STATUS_FLAGGED:
            flags.add("\\Flagged")
        if getattr(message, "o365m_last_verb", None) in VERB_ANSWERED:
            flags.add("\\Answered")
        received = message.datetime_received
        return ExistingMessage(
            target_id=message.id, message_id=message.message_id, size=int(message.size or 0),
            flags=frozenset(flags), received=_aware(received) if received is not None else None,
        )

    PIM_FIELDS: ClassVar[dict[ItemKind, tuple[str, ...]]] = {
        ItemKind.EVENT: (IDENTITY, "uid", "subject", "start", "end", "is_all_day", "size"),
        ItemKind.CONTACT: (IDENTITY, "display_name", "size"),
    }

    @staticmethod
    def _existing_pim(item: Any) -> ExistingMessage:
        """An event or contact as dedupe and verification see it: its identity (ours, else the event's UID)."""
        identity = getattr(item, IDENTITY, None) or getattr(item, "uid", None)
        if isinstance(item, CalendarItem):
            end = item.end
            if item.is_all_day and end is not None and not isinstance(end, dt.datetime):
                end = end + dt.timedelta(days=1)  # exchangelib gives the last day; iCalendar's end is the day after
            return ExistingMessage(target_id=item.id, message_id=identity, size=int(item.size or 0),
                                   received=instant(item.start), subject=item.subject, end=instant(end))
        return ExistingMessage(target_id=item.id, message_id=identity, size=int(item.size or 0),
                               subject=getattr(item, "display_name", None))

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        ews_folder = self._folder(folder)
        if self._directory is not None and folder.id in self._directory.made:
            return  # made a moment ago for this move, nothing written since: a FindItem fewer per folder
        if folder.kind is not ItemKind.MAIL:
            fields = self.PIM_FIELDS[folder.kind]
            yield from self._call(lambda account: [self._existing_pim(i) for i in ews_folder.all().only(*fields)])
            return
        found = self._call(lambda account: [self._existing(m) for m in
                                            ews_folder.all().only(*self.FIELDS).order_by("datetime_received")])
        yield from found

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        wanted = sorted(set(message_ids))
        if not wanted:
            return {}
        ews_folder = self._folder(folder)
        found: dict[str, list[ExistingMessage]] = {}

        def look(account: Account) -> None:
            for start in range(0, len(wanted), 50):
                chunk = wanted[start:start + 50]
                if folder.kind is not ItemKind.MAIL:
                    for item in ews_folder.filter(**{f"{IDENTITY}__in": chunk}).only(*self.PIM_FIELDS[folder.kind]):
                        there = self._existing_pim(item)
                        if there.message_id in chunk:
                            found.setdefault(there.message_id, []).append(there)
                    continue
                for message in ews_folder.filter(message_id__in=chunk).only(*self.FIELDS):
                    if message.message_id in chunk:
                        found.setdefault(message.message_id, []).append(self._existing(message))

        self._call(look)
        return found

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        ews_folder = self._folder(folder)

        def get(account: Account) -> bytes:
            message = ews_folder.get(id=target_id)
            mime = message.mime_content
            return mime.encode() if isinstance(mime, str) else bytes(mime or b"")

        return self._call(get)

    def close(self) -> None:
        if self._account is not None:
            try:
                self._account.protocol.close()
            except Exception as exc:  # closing must not fail a run that is over
                log.debug("closing EWS sessions: %s", type(exc).__name__)
            self._account = None
        self._folders.clear()
        if self._trusted:
            _untrust(self.where.endpoint)
            self._trusted = False


def close_all() -> None:
    """Drop exchangelib's cached protocols (per endpoint and credentials) and what is known of mailboxes'
    folders: for tests and long-lived processes."""
    with _DIRECTORIES_LOCK:
        _DIRECTORIES.clear()
    close_connections()


@register("ews", kinds=frozenset({ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT}))
def _open_target(parts: SplitResult, url: str, options: TargetOptions) -> Target:
    return EwsTarget(where(parts, options), url, options)
