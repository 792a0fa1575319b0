"""Microsoft Graph target: mail folders and messages, calendars and events, contact folders and contacts.

URL: `graph://mailbox@domain[?endpoint=https://graph.microsoft.com/v1.0][&import_mime=1][&max_mb=35][&tz=IANA]`.
TargetOptions.token gives OAuth access tokens for Graph (a migrate.auth TokenProvider with Transport.GRAPH).

Mail goes up by the non-draft JSON route (graph_mail): one JSON message with the MAPI properties that make it
received (PR_MESSAGE_FLAGS, delivery and submit times, the original headers), small messages twenty to a
`$batch`, attachments over 3 MB through upload sessions. What that route cannot keep is in each item's
fidelity account; byte-true mail wants the IMAP transport, which preflight prefers where the tenant allows it.
`import_mime=1` (TargetOptions.extra or the URL) uses the beta `importMime` action instead: the whole MIME,
kept as is, as a received message (permission Mail-Advanced.ReadWrite; a beta API that may change).

Limits (graph_http): at most 4 requests at once per mailbox, 429/503 answered with Failure.RETRY and the
service's Retry-After, and the 150 MB per 5 minutes upload budget paced before each upload so it is not hit.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit

from migrate.crlf import to_crlf
from migrate.errors import AuthError, ProtocolError, Retryable, UsageError, UserError
from migrate.model import Contact, Event, Fidelity, ItemKind
from migrate.model import Folder as SourceFolder
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
from migrate.targets.graph_http import GraphClient, GraphError
from migrate.targets.graph_mail import (
    PROP_LAST_VERB,
    PROP_MESSAGE_FLAGS,
    REQUEST_MAX,
    UPLOAD_CHUNK,
    Attachment,
    GraphMessage,
    graph_message,
)
from migrate.targets.graph_pim import IDENTITY_PROP, NotForGraph, graph_contact, graph_event

log = logging.getLogger(__name__)

GRAPH_V1 = "https://graph.microsoft.com/v1.0"
MB = 1024 * 1024
DEFAULT_MAX_MESSAGE = 35 * MB  # Exchange Online's default MaxSendSize; Set-Mailbox -MaxReceiveSize raises it
MAX_BATCH_ITEMS = 20  # one `$batch`
BATCH_BODY_MAX = 3 * MB  # the JSON of a `$batch` stays under Graph's 4 MB request limit
WELL_KNOWN_MAIL = {"inbox": "inbox", "sent items": "sentitems", "drafts": "drafts", "deleted items": "deleteditems",
                   "junk email": "junkemail", "archive": "archive"}
DEFAULT_CONTACTS = "contacts"  # TargetFolder.id of the mailbox's own Contacts folder (Graph: /contacts)
PER_ITEM: dict[str, Failure] = {
    "ErrorMessageSizeExceeded": Failure.TOO_LARGE,
    "ErrorQuotaExceeded": Failure.FATAL,
    "ErrorMailboxStoreUnavailable": Failure.RETRY,
    "ErrorServerBusy": Failure.RETRY,
    "ErrorTimeoutExpired": Failure.RETRY,
}
IDENTITY_FILTER = f"singleValueExtendedProperties/Any(ep: ep/id eq '{IDENTITY_PROP}' and ep/value eq 'VALUE')"
EXPAND_IDENTITY = f"singleValueExtendedProperties($filter=id eq '{IDENTITY_PROP}')"
EXPAND_MAIL = (f"singleValueExtendedProperties($filter=id eq '{PROP_MESSAGE_FLAGS}' or "
               f"id eq '{PROP_LAST_VERB}')")


@dataclass(frozen=True)
class Where:
    mailbox: str
    endpoint: str
    max_message_bytes: int
    import_mime: bool
    timezone: str | None


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def where(parts: SplitResult, options: TargetOptions) -> Where:
    if not parts.username or not parts.hostname:
        raise UsageError(f"a Graph target needs a mailbox: graph://mailbox@domain, not {parts.geturl()!r}")
    mailbox = f"{unquote(parts.username)}@{parts.hostname}"
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    endpoint = query.get("endpoint", GRAPH_V1).rstrip("/")
    ep = urlsplit(endpoint)
    if ep.scheme != "https" or not ep.hostname:
        raise UsageError(f"bad Graph endpoint {endpoint!r}", hint="e.g. endpoint=https://graph.microsoft.com/v1.0")
    limit = DEFAULT_MAX_MESSAGE
    try:
        if "max_mb" in query:
            limit = int(float(query["max_mb"]) * MB)
        if "max_message_bytes" in options.extra:
            limit = int(options.extra["max_message_bytes"])
    except ValueError as exc:
        raise UsageError(f"bad message size limit in {parts.geturl()!r}") from exc
    import_mime = _yes(options.extra.get("import_mime") or query.get("import_mime"))
    zone = options.extra.get("timezone") or query.get("tz")
    return Where(mailbox, endpoint, limit, import_mime, zone)


def _renewer(token: Callable[[], str]) -> Callable[[], str] | None:
    provider = getattr(token, "__self__", token)
    renew = getattr(provider, "refresh", None)
    return renew if callable(renew) else None


def _time(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _event_time(value: dict[str, Any] | None) -> dt.datetime | None:
    """A Graph dateTimeTimeZone read back with `Prefer: outlook.timezone="UTC"`."""
    if not value:
        return None
    return _time(value.get("dateTime"))


def _quoted(value: str) -> str:
    return value.replace("'", "''")


class GraphTarget(Target):
    def __init__(self, place: Where, url: str, options: TargetOptions) -> None:
        if options.token is None:
            raise UsageError("a Graph target signs in with OAuth only",
                             hint="sign in first: o365-migrate auth login --transport graph")
        self.url = url
        self.where = place
        self.options = options
        self.capabilities = TargetCapabilities(
            keeps_raw_bytes=False, keeps_internal_date=True, calendars=True, contacts=True,
            max_message_bytes=place.max_message_bytes, max_batch_bytes=8 * MB, max_batch_items=MAX_BATCH_ITEMS,
            concurrency=4,
        )
        self.client = GraphClient(place.endpoint, place.mailbox, options.token, _renewer(options.token),
                                  ca_file=options.ca_file, insecure=options.insecure, timeout=options.timeout)
        self._folders: dict[tuple[ItemKind, tuple[str, ...]], str] = {}

    # folders

    def _u(self, path: str) -> str:
        return f"{self.client.user_path}{path}"

    def _list(self, path: str, params: str = "", extra: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
        """Every entry of a collection, following @odata.nextLink."""
        url: str | None = f"{self.where.endpoint}{self._u(path)}{params}"
        while url:
            page: str = url
            data = self._call(functools.partial(self.client.request, "GET", "", url=page, extra=extra)) or {}
            yield from data.get("value", [])
            url = data.get("@odata.nextLink")

    def _call(self, what: Callable[[], Any]) -> Any:
        """A call outside an upload: a refused mailbox or missing permission stops the run with advice."""
        try:
            return what()
        except GraphError as exc:
            if exc.status == 403 or exc.code in ("ErrorAccessDenied", "Authorization_RequestDenied"):
                raise AuthError(f"{self.where.mailbox}: Microsoft Graph denied access ({exc.code})",
                                hint="the app needs Mail/Calendars/Contacts.ReadWrite with admin consent: "
                                     "o365-migrate preflight --to " + self.url) from None
            if exc.code in ("MailboxNotEnabledForRESTAPI", "ResourceNotFound", "ErrorInvalidUser"):
                raise UserError(f"{self.where.mailbox}: no Exchange Online mailbox behind this address ({exc.code})",
                                hint="check the address, and that the user has an Exchange Online licence") from None
            raise

    def _child(self, parent_path: str, children: str, name: str, create: dict[str, Any], key: str) -> str:
        key_cf = name.casefold()
        for entry in self._list(f"{parent_path}/{children}", "?$top=999"):
            if str(entry.get(key, "")).casefold() == key_cf:
                return str(entry["id"])
        try:
            made = self._call(lambda: self.client.json("POST", self._u(f"{parent_path}/{children}"), create))
        except GraphError as exc:
            if exc.code != "ErrorFolderExists":
                raise
            for entry in self._list(f"{parent_path}/{children}", "?$top=999"):  # made meanwhile by another thread
                if str(entry.get(key, "")).casefold() == key_cf:
                    return str(entry["id"])
            raise
        return str(made["id"])

    def ensure_folder(self, path: tuple[str, ...], source: SourceFolder | None = None) -> TargetFolder:
        if not path:
            raise UsageError("an empty folder path")
        kind = source.kind if source is not None else ItemKind.MAIL
        known = self._folders.get((kind, path))
        if known is not None:
            return TargetFolder(path, known, kind=kind)
        note = None
        if kind is ItemKind.MAIL:
            folder_id = self._mail_folder(path)
        elif kind is ItemKind.EVENT:
            folder_id, note = self._calendar(path)
        else:
            folder_id, note = self._contact_folder(path)
        self._folders[(kind, path)] = folder_id
        return TargetFolder(path, folder_id, note=note, kind=kind)

    def _mail_folder(self, path: tuple[str, ...]) -> str:
        well_known = WELL_KNOWN_MAIL.get(path[0].casefold())
        rest = path
        folder_id: str | None = None
        if well_known is not None:
            try:
                folder_id = str(self._call(lambda: self.client.request("GET", self._u(
                    f"/mailFolders/{well_known}?$select=id")))["id"])
                rest = path[1:]
            except GraphError as exc:
                if exc.status != 404:
                    raise
        if folder_id is None:
            folder_id = self._child("", "mailFolders", rest[0], {"displayName": rest[0]}, "displayName")
            rest = rest[1:]
        for name in rest:
            folder_id = self._child(f"/mailFolders/{folder_id}", "childFolders", name, {"displayName": name},
                                    "displayName")
        return folder_id

    def _calendar(self, path: tuple[str, ...]) -> tuple[str, str | None]:
        # Graph's calendars stand side by side under the mailbox's Calendar: no nesting, so deeper paths join.
        names = path[1:] if path[0].casefold() == "calendar" else path
        if not names:
            return str(self._call(lambda: self.client.request("GET", self._u("/calendar?$select=id")))["id"]), None
        name = " - ".join(names)
        note = None if len(names) == 1 and path[0].casefold() == "calendar" else \
            f"Graph keeps calendars side by side: {'/'.join(path)} is the calendar {name!r}"
        return self._child("", "calendars", name, {"name": name}, "name"), note

    def _contact_folder(self, path: tuple[str, ...]) -> tuple[str, str | None]:
        names = path[1:] if path[0].casefold() == "contacts" else path
        note = None if path[0].casefold() == "contacts" else \
            f"Graph keeps contact folders under Contacts: {'/'.join(path)} is Contacts/{'/'.join(path)}"
        folder_id = DEFAULT_CONTACTS
        parent, children = "", "contactFolders"
        for name in names:
            folder_id = self._child(parent, children, name, {"displayName": name}, "displayName")
            parent, children = f"/contactFolders/{folder_id}", "childFolders"
        return folder_id, note

    def _items_path(self, folder: TargetFolder) -> str:
        if folder.kind is ItemKind.MAIL:
            return f"/mailFolders/{folder.id}/messages"
        if folder.kind is ItemKind.EVENT:
            return f"/calendars/{folder.id}/events"
        return "/contacts" if folder.id == DEFAULT_CONTACTS else f"/contactFolders/{folder.id}/contacts"

    # upload

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        results: list[UploadResult | None] = [None] * len(items)
        limit = self.capabilities.max_message_bytes
        pending: list[tuple[int, bytes]] = []
        for n, item in enumerate(items):
            raw = to_crlf(item.raw) if folder.kind is ItemKind.MAIL and not item.crlf else item.raw
            if limit is not None and len(raw) > limit:
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.TOO_LARGE,
                                          reason=f"{len(raw)} bytes, over the target's {limit}")
            else:
                pending.append((n, raw))
        if folder.kind is ItemKind.MAIL:
            self._upload_mail(folder, items, pending, results)
        else:
            self._upload_pim(folder, items, pending, results)
        done = [r for r in results if r is not None]
        assert len(done) == len(items)
        return done

    def _failed(self, key: str, exc: Exception) -> UploadResult:
        if isinstance(exc, Retryable):
            return UploadResult(key, Outcome.FAILED, failure=Failure.RETRY, retry_after=exc.wait,
                                reason=exc.message)
        if isinstance(exc, GraphError):
            failure = PER_ITEM.get(exc.code, Failure.REJECTED if exc.status < 500 else Failure.RETRY)
            if exc.status == 413:
                failure = Failure.TOO_LARGE
            return UploadResult(key, Outcome.FAILED, failure=failure, reason=self.client.clean(str(exc))[:300],
                                retry_after=5.0 if failure is Failure.RETRY else None)
        raise exc

    def _batch_answer(self, key: str, answer: dict[str, Any]) -> UploadResult | dict[str, Any]:
        """A `$batch` answer as the created entity, or the item's failure."""
        status = int(answer.get("status", 500))
        body = answer.get("body") or {}
        if isinstance(body, str):  # a batch answer body may come base64-encoded
            try:
                body = json.loads(base64.b64decode(body))
            except ValueError:
                body = {}
        if status < 300:
            return body if isinstance(body, dict) else {}
        if status in (429, 503):
            headers = {k.lower(): v for k, v in (answer.get("headers") or {}).items()}
            try:
                wait = float(headers.get("retry-after", "30"))
            except ValueError:
                wait = 30.0
            return UploadResult(key, Outcome.FAILED, failure=Failure.RETRY, retry_after=wait,
                                reason=f"Graph is throttling ({status})")
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return self._failed(key, GraphError(status, str(error.get("code") or status), str(error.get("message", ""))))

    def _upload_mail(self, folder: TargetFolder, items: Sequence[UploadItem], pending: list[tuple[int, bytes]],
                     results: list[UploadResult | None]) -> None:
        if self.where.import_mime:
            for n, raw in pending:
                results[n] = self._import_mime(folder, items[n], raw)
            return
        prepared: list[tuple[int, GraphMessage, bytes]] = []
        for n, raw in pending:
            item = items[n]
            try:
                message = graph_message(raw, item.flags, item.received, item.sent)
            except Exception as exc:  # one unreadable message fails alone; email's errors vary
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.REJECTED,
                                          reason=f"not a message Graph can take: {type(exc).__name__}: {exc}"[:300])
                continue
            prepared.append((n, message, json.dumps(message.body, ensure_ascii=False).encode()))
        path = self._u(f"/mailFolders/{folder.id}/messages")
        small: list[tuple[int, GraphMessage, bytes]] = []
        for entry in prepared:
            n, message, body = entry
            if message.later or len(body) > BATCH_BODY_MAX:
                results[n] = self._one_message(items[n].key, path, message, body)
            else:
                small.append(entry)
        for group in self._groups(small):
            self._batch_messages(items, path, group, results)

    @staticmethod
    def _groups(entries: list[tuple[int, GraphMessage, bytes]]) -> Iterator[list[tuple[int, GraphMessage, bytes]]]:
        group: list[tuple[int, GraphMessage, bytes]] = []
        size = 0
        for entry in entries:
            if group and (len(group) >= MAX_BATCH_ITEMS or size + len(entry[2]) > BATCH_BODY_MAX):
                yield group
                group, size = [], 0
            group.append(entry)
            size += len(entry[2])
        if group:
            yield group

    def _batch_messages(self, items: Sequence[UploadItem], path: str, group: list[tuple[int, GraphMessage, bytes]],
                        results: list[UploadResult | None]) -> None:
        calls = [{"method": "POST", "url": path, "headers": {"Content-Type": "application/json"},
                  "body": message.body} for _, message, _ in group]
        try:
            answers = self.client.batch(calls, paced=True)
        except (Retryable, GraphError) as exc:  # the whole batch refused: some may have landed (find() first)
            for n, _, _ in group:
                results[n] = self._failed(items[n].key, exc)
            return
        for (n, message, _), answer in zip(group, answers, strict=True):
            got = self._batch_answer(items[n].key, answer)
            results[n] = got if isinstance(got, UploadResult) else self._created(items[n].key, got, message.fidelity)

    @staticmethod
    def _created(key: str, made: dict[str, Any], fidelity: Fidelity | None) -> UploadResult:
        return UploadResult(key, Outcome.CREATED, target_id=str(made.get("id")),
                            fidelity=fidelity if fidelity is not None and not fidelity.exact else None)

    def _one_message(self, key: str, path: str, message: GraphMessage, body: bytes) -> UploadResult:
        if len(body) > REQUEST_MAX:
            return UploadResult(key, Outcome.FAILED, failure=Failure.TOO_LARGE,
                                reason="the message's text is over Graph's 4 MB per request")
        try:
            made = self.client.request("POST", path, body, paced=True)
        except (Retryable, GraphError) as exc:
            return self._failed(key, exc)
        message_id = str(made["id"])
        for attachment in message.later:
            try:
                self._upload_session(message_id, attachment)
            except (Retryable, GraphError) as exc:
                # Without its attachment the message is incomplete: remove it so a retry starts clean.
                try:
                    self.client.request("DELETE", self._u(f"/messages/{message_id}"))
                except (Retryable, GraphError, ProtocolError) as gone:
                    log.warning("could not remove the incomplete message %s: %s", message_id[:12], gone)
                return self._failed(key, exc)
        return self._created(key, made, message.fidelity)

    def _upload_session(self, message_id: str, attachment: Attachment) -> None:
        """An attachment of 3-150 MB: an upload session, then chunks (multiples of 320 KiB, under 4 MB)."""
        size = len(attachment.data)
        spec: dict[str, Any] = {"AttachmentItem": {"attachmentType": "file", "name": attachment.name,
                                                   "size": size, "contentType": attachment.content_type,
                                                   "isInline": attachment.is_inline}}
        if attachment.content_id:
            spec["AttachmentItem"]["contentId"] = attachment.content_id
        session = self.client.json("POST", self._u(f"/messages/{message_id}/attachments/createUploadSession"), spec)
        upload_url = str(session["uploadUrl"])
        for start in range(0, size, UPLOAD_CHUNK):
            chunk = attachment.data[start:start + UPLOAD_CHUNK]
            # The upload URL carries its own authorisation; Graph refuses a bearer token on it.
            self.client.request("PUT", "", chunk, content_type="application/octet-stream", url=upload_url, auth=False,
                                extra={"Content-Range": f"bytes {start}-{start + len(chunk) - 1}/{size}"}, paced=True)

    def _import_mime(self, folder: TargetFolder, item: UploadItem, raw: bytes) -> UploadResult:
        beta = self.where.endpoint.rsplit("/", 1)[0] + "/beta"
        body = base64.b64encode(raw)
        try:
            made = self.client.request("POST", "", body, content_type="text/plain", paced=True,
                                       url=f"{beta}{self._u(f'/mailFolders/{folder.id}/importMime')}")
        except (Retryable, GraphError) as exc:
            return self._failed(item.key, exc)
        if not ({f.lower() for f in item.flags} & {"\\seen"}) and made and made.get("isRead"):
            try:
                self.client.json("PATCH", self._u(f"/messages/{made['id']}"), {"isRead": False})
            except (Retryable, GraphError) as exc:
                log.warning("could not mark %s unread: %s", item.key, exc)
        return UploadResult(item.key, Outcome.CREATED, target_id=str((made or {}).get("id")))

    # events and contacts

    def _upload_pim(self, folder: TargetFolder, items: Sequence[UploadItem], pending: list[tuple[int, bytes]],
                    results: list[UploadResult | None]) -> None:
        what = "iCalendar event" if folder.kind is ItemKind.EVENT else "vCard"
        path = self._u(self._items_path(folder))
        for n, raw in pending:
            item = items[n]
            try:
                parsed = _parse(folder.kind, raw, self.where.timezone)
                identity = item.message_id or parsed.uid or _hash_identity(raw)
                if isinstance(parsed, Event):
                    planned = graph_event(parsed, identity, self.where.mailbox, self.where.timezone)
                    body, fidelity, photo = planned.body, planned.fidelity, None
                else:
                    body, fidelity, photo = graph_contact(parsed, identity)
            except NotForGraph as exc:
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.REJECTED, reason=str(exc))
                continue
            except Exception as exc:  # any flaw of one file (the parsers' errors vary) fails that item alone
                results[n] = UploadResult(item.key, Outcome.FAILED, failure=Failure.REJECTED,
                                          reason=f"not a {what} Exchange can take: {exc}"[:300])
                continue
            try:
                made = self.client.upload("POST", path, body)
            except (Retryable, GraphError) as exc:
                results[n] = self._failed(item.key, exc)
                continue
            if isinstance(parsed, Event) and (planned.occurrences.deleted or planned.occurrences.changed):
                self._occurrences(str(made["id"]), planned.occurrences, fidelity)
            if photo is not None:
                try:
                    self.client.request("PUT", self._u(f"/contacts/{made['id']}/photo/$value"), photo,
                                        content_type="image/jpeg")
                except (Retryable, GraphError) as exc:
                    fidelity.drop("photo", f"Graph refused it: {exc}")
            results[n] = UploadResult(item.key, Outcome.CREATED, target_id=str(made["id"]), fidelity=fidelity)

    def _occurrences(self, series_id: str, plan: Any, f: Fidelity) -> None:
        """Deleted and changed occurrences, found among the series' instances by their original start."""
        wanted = [w for w in plan.deleted] + [w for w, _ in plan.changed]
        first, last = min(wanted), max(wanted)
        window = (f"?startDateTime={quote((first - dt.timedelta(days=1)).strftime('%Y-%m-%dT%H:%M:%SZ'))}"
                  f"&endDateTime={quote((last + dt.timedelta(days=2)).strftime('%Y-%m-%dT%H:%M:%SZ'))}&$top=999")
        try:
            instances = list(self._list(f"/events/{series_id}/instances", window))
        except (Retryable, GraphError) as exc:
            for when in wanted:
                f.drop("occurrence", f"{when:%Y-%m-%d %H:%M}Z: the series' occurrences could not be listed ({exc})")
            return
        by_start = {_time(i.get("originalStart")): str(i["id"]) for i in instances}
        for when in plan.deleted:
            found = by_start.get(when)
            try:
                if found is None:
                    raise ProtocolError("no such occurrence in the series")
                self.client.request("DELETE", self._u(f"/events/{found}"))
            except (Retryable, GraphError, ProtocolError) as exc:
                f.drop("occurrence", f"{when:%Y-%m-%d %H:%M}Z: Exchange refused it as deleted ({exc})")
        for when, changes in plan.changed:
            found = by_start.get(when)
            try:
                if found is None:
                    raise ProtocolError("no such occurrence in the series")
                self.client.json("PATCH", self._u(f"/events/{found}"), changes)
            except (Retryable, GraphError, ProtocolError) as exc:
                f.drop("occurrence", f"{when:%Y-%m-%d %H:%M}Z: Exchange refused it as changed ({exc})")

    # what the mailbox holds

    @staticmethod
    def _identity(entry: dict[str, Any]) -> str | None:
        for prop in entry.get("singleValueExtendedProperties") or []:
            if str(prop.get("id", "")).lower() == IDENTITY_PROP.lower():
                return str(prop.get("value"))
        return None

    def _existing_message(self, entry: dict[str, Any]) -> ExistingMessage:
        flags = set()
        if entry.get("isRead"):
            flags.add("\\Seen")
        if (entry.get("flag") or {}).get("flagStatus") == "flagged":
            flags.add("\\Flagged")
        for prop in entry.get("singleValueExtendedProperties") or []:
            if str(prop.get("id", "")).lower() == PROP_LAST_VERB.lower() and str(prop.get("value")) in ("102", "103"):
                flags.add("\\Answered")
        size = 0
        for prop in entry.get("singleValueExtendedProperties") or []:
            if str(prop.get("id", "")).lower() == "integer 0x0e08":
                size = int(prop.get("value") or 0)
        return ExistingMessage(target_id=str(entry["id"]), message_id=entry.get("internetMessageId"), size=size,
                               flags=frozenset(flags), received=_time(entry.get("receivedDateTime")),
                               subject=entry.get("subject"))

    def _existing_pim(self, folder: TargetFolder, entry: dict[str, Any]) -> ExistingMessage:
        identity = self._identity(entry) or entry.get("iCalUId")
        if folder.kind is ItemKind.EVENT:
            return ExistingMessage(target_id=str(entry["id"]), message_id=identity, size=0,
                                   received=_event_time(entry.get("start")), subject=entry.get("subject"),
                                   end=_event_time(entry.get("end")))
        return ExistingMessage(target_id=str(entry["id"]), message_id=identity, size=0,
                               subject=entry.get("displayName"))

    MAIL_SELECT = "id,internetMessageId,isRead,flag,receivedDateTime,subject"
    # PR_MESSAGE_SIZE (0x0E08) for the size: Graph's message has no size field.
    MAIL_EXPAND = (f"singleValueExtendedProperties($filter=id eq '{PROP_LAST_VERB}' or id eq 'Integer 0x0E08')")

    def _selection(self, folder: TargetFolder) -> str:
        if folder.kind is ItemKind.MAIL:
            return f"$select={self.MAIL_SELECT}&$expand={self.MAIL_EXPAND}"
        fields = "id,subject,start,end,iCalUId" if folder.kind is ItemKind.EVENT else "id,displayName"
        return f"$select={fields}&$expand={EXPAND_IDENTITY}"

    def _entries(self, folder: TargetFolder, extra: str = "") -> Iterator[dict[str, Any]]:
        params = f"?{self._selection(folder)}&$top=500{extra}"
        path = self._items_path(folder)
        # Events come back in the zone the Prefer header names; UTC makes them comparable.
        prefer = {"Prefer": 'outlook.timezone="UTC"'} if folder.kind is ItemKind.EVENT else None
        yield from self._list(path, params, prefer)

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        for entry in self._entries(folder):
            yield self._existing_message(entry) if folder.kind is ItemKind.MAIL else self._existing_pim(folder, entry)

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        wanted = sorted(set(message_ids))
        found: dict[str, list[ExistingMessage]] = {}
        for start in range(0, len(wanted), 10):  # Graph allows a few OR clauses per $filter
            chunk = wanted[start:start + 10]
            if folder.kind is ItemKind.MAIL:
                clause = " or ".join(f"internetMessageId eq '{_quoted(m)}'" for m in chunk)
            else:
                clause = " or ".join(IDENTITY_FILTER.replace("VALUE", _quoted(m)) for m in chunk)
            for entry in self._entries(folder, f"&$filter={quote(clause)}"):
                there = self._existing_message(entry) if folder.kind is ItemKind.MAIL \
                    else self._existing_pim(folder, entry)
                if there.message_id in chunk:
                    found.setdefault(there.message_id, []).append(there)
        return found

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        if folder.kind is not ItemKind.MAIL:
            raise NotImplementedError("Graph gives events and contacts back as JSON, not as iCalendar or vCard")
        return bytes(self._raw(f"/messages/{target_id}/$value"))

    def _raw(self, path: str) -> bytes:
        return bytes(self._call(lambda: self.client.request("GET", self._u(path), raw=True)))

    def close(self) -> None:
        self.client.close()
        self._folders.clear()


def _hash_identity(raw: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _parse(kind: ItemKind, raw: bytes, default_timezone: str | None) -> Event | Contact:
    if kind is ItemKind.EVENT:
        from migrate.pim import parse_event

        return parse_event(raw, default_timezone)
    from migrate.pim import parse_card

    return parse_card(raw)


@register("graph", kinds=frozenset({ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT}))
def _open_target(parts: SplitResult, url: str, options: TargetOptions) -> Target:
    return GraphTarget(where(parts, options), url, options)
