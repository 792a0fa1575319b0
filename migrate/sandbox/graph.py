"""The Graph endpoint (/v1.0 and /beta): the Outlook subset o365-migrate uses, over the store EWS serves too.

Checks run in Graph's order as a client sees them: the bearer token (401 InvalidAuthenticationToken), the
permission for the kind of item (403 ErrorAccessDenied), the mailbox (404 MailboxNotEnabledForRESTAPI when it
has no Exchange Online licence), then the body against Microsoft's schema (400, and a recorded violation),
then throttling (429 with Retry-After: 4 concurrent requests and the upload budget per mailbox, and scripted
faults), and only then the operation. `$batch` runs each of its requests through the same steps.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote

from . import graph_items as gi
from . import pim
from .config import SandboxConfig
from .faults import FaultKind, FaultPlan, ThrottleBudget
from .graph_schema import GraphSchema, batch_problems, upload_session_problems
from .items import ExtendedProps, ItemError
from .policy import delegated_consent, mailbox_policy
from .schema import SchemaViolation
from .store import FolderExists, FolderRow, ItemRow, Store, Token, id_kind, new_id
from .web import Request, Response

GRAPH_RESOURCE = "https://graph.microsoft.com/"
PERMISSIONS = {"mail": "Mail.ReadWrite", "event": "Calendars.ReadWrite", "contact": "Contacts.ReadWrite",
               "import": "Mail-Advanced.ReadWrite"}
WELL_KNOWN = {"inbox", "drafts", "sentitems", "deleteditems", "junkemail", "outbox", "msgfolderroot"}
MAX_CONCURRENT = 4
PAGE = 100


class GraphFault(Exception):
    def __init__(self, status: int, code: str, message: str, headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or []


def _json(status: int, payload: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    body = b"" if payload is None else json.dumps(payload).encode()
    return Response(status, body, headers=headers or [])


@dataclass
class _Call:
    """One Graph request, direct or inside a `$batch`."""

    method: str
    path: str  # below the version: /users/x/mailFolders/inbox/messages
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    beta: bool = False
    charged: bool = False  # inside a `$batch` whose bytes were counted against the upload budget already


@dataclass
class UploadSession:
    mailbox: str
    item_id: str
    name: str
    content_type: str
    size: int
    is_inline: bool
    content_id: str | None
    received: bytearray = dataclasses.field(default_factory=bytearray)


class GraphService:
    def __init__(self, store: Store, config: SandboxConfig, schema: GraphSchema | None, faults: FaultPlan,
                 throttle: ThrottleBudget | None, report_schema_error: Callable[[SchemaViolation], None],
                 base_url: Callable[[], str]) -> None:
        self._store = store
        self._config = config
        self._schema = schema
        self._faults = faults
        self._throttle = throttle
        self._report = report_schema_error
        self._base_url = base_url
        self._lock = threading.Lock()
        self._in_flight: dict[str, int] = {}
        self._sessions: dict[str, UploadSession] = {}
        self.concurrency_refusals = 0

    # the pipeline

    def handle(self, request: Request) -> Response:
        parts = request.path.split("/", 2)
        if len(parts) > 2 and parts[1] == "upload":
            response = self._upload_chunk(parts[2], request)
            response.operation = response.operation or "graph:PUT upload"
            return response
        version = parts[1] if len(parts) > 1 else ""
        call = _Call(request.method, "/" + (parts[2] if len(parts) > 2 else ""),
                     {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()},
                     request.headers, request.body, beta=version == "beta")
        token = self._authenticate(request)
        if isinstance(token, Response):
            return token
        key = f"{token.client_id}|{token.subject}"
        with self._lock:
            busy = self._in_flight.get(key, 0) >= MAX_CONCURRENT
            if busy:
                self.concurrency_refusals += 1
            else:
                self._in_flight[key] = self._in_flight.get(key, 0) + 1
        if busy:
            response = _json(429, {"error": {"code": "ApplicationThrottled", "message": "Too many concurrent "
                                             "requests for this mailbox."}}, [("Retry-After", "1")])
            response.operation = "graph:concurrency"
            return response
        try:
            if call.path == "/$batch" and call.method == "POST":
                response = self._batch(call, token)
            else:
                response = self._answer(call, token)
        finally:
            with self._lock:
                self._in_flight[key] -= 1
        response.client_id = token.client_id
        return response

    def _answer(self, call: _Call, token: Token) -> Response:
        operation = self._operation(call)
        try:
            payload, status, headers = self._run(call, token, operation)
        except GraphFault as exc:
            response = _json(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)
        except ItemError as exc:
            status = 413 if exc.code == "ErrorMessageSizeExceeded" else 400
            response = _json(status, {"error": {"code": exc.code, "message": exc.text}})
        else:
            if isinstance(payload, bytes):
                response = Response(status, payload, content_type=headers.pop(0)[1] if headers else "message/rfc822",
                                    headers=headers)
            else:
                response = _json(status, payload, headers)
        response.operation = operation
        return response

    @staticmethod
    def _operation(call: _Call) -> str:
        words = [w for w in call.path.split("/") if w]
        last = next((w for w in reversed(words) if w in gi_collections or w.startswith("$") or w == "importMime"),
                    words[-1] if words else "")
        return f"graph:{call.method} {last}"

    def _authenticate(self, request: Request) -> Token | Response:
        value = request.bearer()
        token = self._store.token(value, "access") if value else None

        def refuse(message: str) -> Response:
            response = _json(401, {"error": {"code": "InvalidAuthenticationToken", "message": message}},
                             [("WWW-Authenticate", 'Bearer realm="", error="invalid_token"')])
            response.operation = "graph:unauthorized"
            return response

        if token is None or token.revoked:
            return refuse("Access token is empty or invalid.")
        if token.expired:
            return refuse("Lifetime validation failed, the token is expired.")
        if not any(self._graph_scope(s) for s in token.scopes):
            return refuse("Invalid audience: the token is not for Microsoft Graph.")
        return token

    @staticmethod
    def _graph_scope(scope: str) -> bool:
        lowered = scope.lower()
        if lowered.startswith(GRAPH_RESOURCE):
            return True
        return "://" not in lowered and "." in lowered and lowered not in ("offline_access",)

    def _permitted(self, token: Token, need: str) -> bool:
        wanted = PERMISSIONS[need].lower()
        if token.subject_kind == "app":
            app = self._store.app(token.client_id)
            return app is not None and any(p.lower() == wanted for p in app.permissions)
        granted = {s.lower().removeprefix(GRAPH_RESOURCE) for s in token.scopes}
        consent = delegated_consent(self._store, token.client_id)
        if consent is not None and "*" not in consent and wanted not in {c.lower() for c in consent}:
            return False
        return wanted in granted

    def _mailbox(self, token: Token, who: str) -> str:
        who = unquote(who).lower()
        mailbox = self._store.mailbox(who)
        if mailbox is None:
            mailbox = next((m for m in (self._store.mailbox_by_object_id(who),) if m is not None), None)
        if mailbox is None or mailbox.tenant_id != token.tenant_id:
            raise GraphFault(404, "ErrorInvalidUser", f"The requested user '{who}' is invalid.")
        if token.subject_kind == "user" and token.subject != mailbox.address:
            raise GraphFault(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        if not mailbox_policy(self._store, mailbox.address).licensed:
            raise GraphFault(404, "MailboxNotEnabledForRESTAPI", "The mailbox is either inactive, soft-deleted, or "
                                                                  "is hosted on-premise.")
        return mailbox.address

    def _validate(self, type_name: str | None, body: Any, operation: str,
                  checker: Callable[[Any], Any] | None = None) -> None:
        if self._schema is None or not self._config.validate_schema:
            return
        problems = list(checker(body) if checker is not None else
                        (self._schema.problems(type_name, body) if type_name else []))
        for problem in problems:
            self._report(SchemaViolation(0, 0, problem, operation))
        if problems:
            raise GraphFault(400, "BadRequest", f"Invalid request body: {problems[0]}")

    def _body(self, call: _Call) -> Any:
        try:
            return json.loads(call.body or b"null")
        except ValueError:
            self._report(SchemaViolation(0, 0, "the body is not JSON", self._operation(call)))
            raise GraphFault(400, "BadRequest", "Unable to read JSON request payload.") from None

    def _throttled(self, mailbox: str | None, size: int, operation: str, charged: bool = False) -> None:
        injected = self._faults.next_for(operation)
        if injected is not None and injected.kind is FaultKind.SERVER_BUSY:
            raise GraphFault(503, "ServiceUnavailable", "Service unavailable.",
                             [("Retry-After", str(max(1, math.ceil(injected.back_off_ms / 1000))))])
        if injected is not None:
            if injected.kind is FaultKind.HTTP_401:
                raise GraphFault(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
            if injected.kind in (FaultKind.HTTP_503, FaultKind.HTTP_429):
                status = 503 if injected.kind is FaultKind.HTTP_503 else 429
                raise GraphFault(status, "ApplicationThrottled" if status == 429 else "ServiceUnavailable",
                                 "Application is over its MailboxConcurrency limit." if status == 429 else
                                 "Service unavailable.", [("Retry-After", str(injected.retry_after_s))])
        if self._throttle is not None and size and mailbox is not None and not charged:
            back_off = self._throttle.charge(mailbox, size)
            if back_off:
                raise GraphFault(429, "ApplicationThrottled", "Application is over its upload limit for the mailbox.",
                                 [("Retry-After", str(max(1, math.ceil(back_off / 1000))))])

    # routing

    def _run(self, call: _Call, token: Token, operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        words = [w for w in call.path.split("/") if w]
        if words and words[0] == "reports" and call.method == "GET":
            return self._usage_report(token, words[1:])
        if len(words) < 2 or words[0] != "users":
            raise GraphFault(400, "BadRequest", f"Resource not found for the segment '{words[0] if words else ''}'.")
        rest = words[2:]
        need = self._need(rest)
        if need is not None and not self._permitted(token, need):
            raise GraphFault(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
        mailbox = self._mailbox(token, words[1])
        method = call.method
        if not rest and method == "GET":
            found = self._store.mailbox(mailbox)
            assert found is not None
            return {"id": found.object_id, "mail": found.address, "userPrincipalName": found.address,
                    "displayName": found.display_name}, 200, []
        if rest == ["mailboxSettings"] and method == "GET":
            return {"timeZone": "UTC"}, 200, []
        if rest == ["getMailTips"] and method == "POST":
            return self._mail_tips(call, token), 200, []
        head = rest[0]
        if head == "mailFolders":
            return self._mail_folders(call, mailbox, rest[1:], operation)
        if head == "messages":
            return self._messages(call, mailbox, rest[1:], operation)
        if head in ("calendar", "calendars", "events"):
            return self._calendars(call, mailbox, rest, operation)
        if head in ("contactFolders", "contacts"):
            return self._contacts(call, mailbox, rest, operation)
        raise GraphFault(400, "BadRequest", f"Resource not found for the segment '{head}'.")

    def _mail_tips(self, call: _Call, token: Token) -> dict[str, Any]:
        """POST /users/{id}/getMailTips: each recipient's largest message and whether its mailbox is full."""
        body = self._body(call) or {}
        wanted = {w.strip().lower() for w in str(body.get("MailTipsOptions", "")).split(",")}
        tips = []
        for address in body.get("EmailAddresses") or []:
            entry: dict[str, Any] = {"emailAddress": {"address": address}}
            found = self._store.mailbox(str(address).lower())
            if found is None or found.tenant_id != token.tenant_id:
                entry["error"] = {"code": "UnableToResolveRecipient", "message": "The recipient is invalid."}
            else:
                policy = mailbox_policy(self._store, found.address)
                if "maxmessagesize" in wanted:
                    entry["maxMessageSize"] = policy.max_receive_bytes
                if "mailboxfullstatus" in wanted:
                    entry["mailboxFull"] = self._store.mailbox_bytes(found.address) >= policy.quota_bytes
            tips.append(entry)
        return {"value": tips}

    def _usage_report(self, token: Token, rest: list[str]) -> tuple[Any, int, list[tuple[str, str]]]:
        """GET /reports/getMailboxUsageDetail(period='D7'): the tenant's mailboxes with size and quotas, as CSV
        (Reports.Read.All; the real service redirects to a download of the same CSV)."""
        if not rest or not rest[0].startswith("getMailboxUsageDetail("):
            raise GraphFault(400, "BadRequest", f"Resource not found for the segment '{rest[0] if rest else ''}'.")
        if token.subject_kind == "app":
            app = self._store.app(token.client_id)
            allowed = app is not None and any(p.lower() == "reports.read.all" for p in app.permissions)
        else:
            granted = {s.lower().removeprefix(GRAPH_RESOURCE) for s in token.scopes}
            consent = delegated_consent(self._store, token.client_id)
            allowed = "reports.read.all" in granted and (
                consent is None or "*" in consent or "reports.read.all" in {c.lower() for c in consent})
        if not allowed:
            raise GraphFault(403, "UnknownError", "Forbidden: Reports.Read.All is required.")
        lines = ["Report Refresh Date,User Principal Name,Display Name,Is Deleted,Deleted Date,Created Date,"
                 "Last Activity Date,Item Count,Storage Used (Byte),Issue Warning Quota (Byte),"
                 "Prohibit Send Quota (Byte),Prohibit Send/Receive Quota (Byte),Deleted Item Count,"
                 "Deleted Item Size (Byte),Deleted Item Quota (Byte),Has Archive,Report Period"]
        for mailbox in self._store.mailboxes(token.tenant_id):
            policy = mailbox_policy(self._store, mailbox.address)
            quota = policy.quota_bytes
            lines.append(f"2026-11-29,{mailbox.address},{mailbox.display_name},False,,2026-01-01,,0,"
                         f"{self._store.mailbox_bytes(mailbox.address)},{int(quota * 0.98)},{int(quota * 0.99)},"
                         f"{quota},0,0,{30 * 1024 ** 3},False,7")
        csv = "\ufeff" + "\r\n".join(lines) + "\r\n"
        return csv.encode(), 200, [("Content-Type", "application/octet-stream")]

    @staticmethod
    def _need(rest: list[str]) -> str | None:
        if not rest or rest == ["mailboxSettings"]:
            return None
        if rest == ["getMailTips"]:  # Mail.Read in Graph's permission table; Mail.ReadWrite includes it
            return "mail"
        if "importMime" in rest:
            return "import"
        if rest[0] in ("mailFolders", "messages"):
            return "mail"
        if rest[0] in ("calendar", "calendars", "events"):
            return "event"
        return "contact"

    # folders

    def _folder(self, mailbox: str, ref: str, kind: str = "mail") -> FolderRow:
        if ref.lower() in WELL_KNOWN:
            found = self._store.distinguished_folder(mailbox, ref.lower())
        elif ref.lower() == "archive":
            root = self._store.distinguished_folder(mailbox, "msgfolderroot")
            assert root is not None
            found = next((f for f in self._store.child_folders(root.id) if f.display_name.lower() == "archive"), None)
        else:
            found = self._store.folder(ref) if id_kind(ref) == "F" else None
        if found is None or found.mailbox != mailbox:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return found

    def _folder_json(self, folder: FolderRow, kind: str) -> dict[str, Any]:
        total, unread, children = self._store.folder_counts(folder.id)
        if kind == "calendar":
            return {"id": folder.id, "name": folder.display_name, "canEdit": True,
                    "isDefaultCalendar": folder.distinguished == "calendar"}
        if kind == "contactFolder":
            return {"id": folder.id, "displayName": folder.display_name, "parentFolderId": folder.parent_id}
        return {"id": folder.id, "displayName": folder.display_name, "parentFolderId": folder.parent_id,
                "childFolderCount": children, "totalItemCount": total, "unreadItemCount": unread}

    def _create_folder(self, call: _Call, parent: FolderRow, kind: str, operation: str,
                       folder_class: str | None) -> tuple[Any, int, list[tuple[str, str]]]:
        body = self._body(call)
        self._validate(kind, body, operation)
        name = str(body.get("displayName") or body.get("name") or "").strip()
        if not name:
            raise GraphFault(400, "ErrorInvalidRequest", "The folder needs a name.")
        try:
            made = self._store.create_folder(parent, name, folder_class)
        except FolderExists:
            raise GraphFault(409, "ErrorFolderExists", "A folder with the specified name already exists.") from None
        return self._folder_json(made, kind), 201, []

    def _folders_list(self, parent: FolderRow, kind: str) -> dict[str, Any]:
        return {"value": [self._folder_json(f, kind) for f in self._store.child_folders(parent.id)]}

    def _mail_folders(self, call: _Call, mailbox: str, rest: list[str],
                      operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        root = self._folder(mailbox, "msgfolderroot")
        if not rest:
            if call.method == "POST":
                return self._create_folder(call, root, "mailFolder", operation, "IPF.Note")
            return self._folders_list(root, "mailFolder"), 200, []
        folder = self._folder(mailbox, rest[0])
        tail = rest[1:]
        if not tail and call.method == "GET":
            return self._folder_json(folder, "mailFolder"), 200, []
        if tail == ["childFolders"]:
            if call.method == "POST":
                return self._create_folder(call, folder, "mailFolder", operation, "IPF.Note")
            return self._folders_list(folder, "mailFolder"), 200, []
        if tail == ["messages"]:
            if call.method == "POST":
                return self._create_message(call, mailbox, folder, operation)
            return self._list(call, self._store.items_in(folder.id), "message"), 200, []
        if tail == ["importMime"] and call.method == "POST" and call.beta:
            mime = self._base64(call)
            self._throttled(mailbox, len(call.body), operation, call.charged)
            row = gi.mime_row(mime, mailbox, folder.id, self._config.max_message_bytes, draft=False)
            self._store.add_item(row)
            return gi.message_json(row), 201, []
        raise GraphFault(400, "BadRequest", "Unsupported mail folder request.")

    def _base64(self, call: _Call) -> bytes:
        try:
            return base64.b64decode(b"".join(call.body.split()), validate=True)
        except (binascii.Error, ValueError):
            self._report(SchemaViolation(0, 0, "the MIME body is not valid base64", self._operation(call)))
            raise GraphFault(400, "ErrorMimeContentInvalidBase64String", "Invalid base64 string for MIME "
                                                                         "content.") from None

    def _create_message(self, call: _Call, mailbox: str, folder: FolderRow,
                        operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        if call.headers.get("content-type", "").lower().startswith("text/plain"):
            mime = self._base64(call)
            self._throttled(mailbox, len(call.body), operation, call.charged)
            row = gi.mime_row(mime, mailbox, folder.id, self._config.max_message_bytes, draft=True)
        else:
            body = self._body(call)
            self._validate("message", body, operation)
            self._throttled(mailbox, len(call.body), operation, call.charged)
            row = gi.message_row(body, mailbox, folder.id, self._config.max_message_bytes)
        self._store.add_item(row)
        return gi.message_json(row), 201, []

    # listing with $filter, $expand, paging

    def _list(self, call: _Call, rows: list[ItemRow], kind: str) -> dict[str, Any]:
        expand = gi.wanted_ids(call.query.get("$expand", ""))
        wanted = self._filter(call.query.get("$filter", ""))
        out = []
        for row in rows:
            if kind == "message":
                entry = gi.message_json(row, expand)
            elif kind == "event":
                entry = gi.event_json(row)
                entry["singleValueExtendedProperties"] = gi.identity_json(row, expand)
            else:
                entry = gi.contact_json(row)
                entry["singleValueExtendedProperties"] = gi.identity_json(row, expand)
            if wanted is None or wanted(row, entry):
                out.append(entry)
        skip = int(call.query.get("$skip", "0") or 0)
        top = min(int(call.query.get("$top", str(PAGE)) or PAGE), 1000)
        page = out[skip:skip + top]
        result: dict[str, Any] = {"value": page}
        if skip + top < len(out):
            query = {**call.query, "$skip": str(skip + top)}
            from urllib.parse import urlencode

            version = "beta" if call.beta else "v1.0"
            result["@odata.nextLink"] = f"{self._base_url()}/{version}{call.path}?{urlencode(query)}"
        return result

    @staticmethod
    def _filter(text: str) -> Callable[[ItemRow, dict[str, Any]], bool] | None:
        """The two filters o365-migrate sends: internetMessageId eq '...' and an extended property's value,
        joined by `or`."""
        if not text.strip():
            return None
        values: list[tuple[str, str, str | None]] = []
        for clause in text.split(" or "):
            clause = clause.strip()
            if clause.startswith("internetMessageId eq "):
                values.append(("mid", clause.split("'", 1)[1].rsplit("'", 1)[0].replace("''", "'"), None))
            elif clause.startswith("singleValueExtendedProperties/Any("):
                quoted = clause.split("'")[1::2]
                if len(quoted) < 2:
                    raise GraphFault(400, "BadRequest", f"Invalid filter clause: {clause}")
                values.append(("prop", quoted[-1].replace("''", "'"), quoted[0]))
            else:
                raise GraphFault(400, "BadRequest", f"The sandbox does not support the filter {clause!r}.")

        def match(row: ItemRow, entry: dict[str, Any]) -> bool:
            stored = ExtendedProps.loads(row.ext_props).values
            for kind, value, prop in values:
                if kind == "mid" and row.internet_message_id == value:
                    return True
                if kind == "prop" and prop is not None and stored.get(gi.ext_key(prop), [None])[0] == value:
                    return True
            return False

        return match

    # messages

    def _item(self, mailbox: str, item_id: str) -> ItemRow:
        row = self._store.item(item_id) if id_kind(item_id) == "I" else None
        if row is None or row.mailbox != mailbox:
            raise GraphFault(404, "ErrorItemNotFound", "The specified object was not found in the store.")
        return row

    def _messages(self, call: _Call, mailbox: str, rest: list[str],
                  operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        if not rest:
            raise GraphFault(400, "BadRequest", "Use a folder's messages.")
        row = self._item(mailbox, rest[0])
        tail = rest[1:]
        if not tail:
            if call.method == "GET":
                return gi.message_json(row, gi.wanted_ids(call.query.get("$expand", ""))), 200, []
            if call.method == "DELETE":
                self._store.delete_item(row.id)
                return None, 204, []
            if call.method == "PATCH":
                body = self._body(call)
                self._validate("message", body, operation)
                if set(body) - {"isRead"}:
                    raise GraphFault(400, "ErrorInvalidRequest", "The sandbox updates isRead only.")
                self._store.set_read(row.id, bool(body.get("isRead")))
                return gi.message_json(self._item(mailbox, row.id)), 200, []
        if tail == ["$value"] and call.method == "GET":
            return row.mime or b"", 200, [("Content-Type", "message/rfc822")]
        if tail == ["attachments"] and call.method == "POST":
            body = self._body(call)
            self._validate("attachment", body, operation)
            self._throttled(mailbox, len(call.body), operation, call.charged)
            try:
                data = base64.b64decode(body.get("contentBytes") or "", validate=True)
            except (binascii.Error, ValueError):
                raise GraphFault(400, "ErrorInvalidRequest", "contentBytes is not valid base64.") from None
            if len(data) > 3 * 1024 * 1024:
                raise GraphFault(413, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                                 "Attachments over 3 MB need an upload session.")
            self._attach(row, body, data)
            return {"id": f"{row.id}.{new_id('A')[:8]}", "name": body.get("name"), "size": len(data)}, 201, []
        if tail == ["attachments", "createUploadSession"] and call.method == "POST":
            body = self._body(call)
            self._validate(None, body, operation, checker=upload_session_problems)
            spec = body["AttachmentItem"]
            size = int(spec["size"])
            if size < 3 * 1024 * 1024 or size > 150 * 1024 * 1024:
                raise GraphFault(400, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize",
                                 "An upload session takes attachments of 3 MB to 150 MB.")
            session = new_id("S").rstrip("=")
            self._sessions[session] = UploadSession(mailbox, row.id, str(spec["name"]),
                                                    str(spec.get("contentType") or "application/octet-stream"),
                                                    size, bool(spec.get("isInline")), spec.get("contentId"))
            return {"uploadUrl": f"{self._base_url()}/upload/{session}",
                    "nextExpectedRanges": ["0-"]}, 201, []
        raise GraphFault(400, "BadRequest", "Unsupported message request.")

    def _attach(self, row: ItemRow, attachment: dict[str, Any], data: bytes) -> None:
        message = gi.email_of(row.mime or b"")
        gi.add_attachment(message, attachment, data)  # type: ignore[arg-type]
        mime = message.as_bytes()
        self._store.replace_mime(row.id, mime, len(mime), True)

    def _upload_chunk(self, session_id: str, request: Request) -> Response:
        session = self._sessions.get(session_id)
        if session is None or request.method != "PUT":
            return _json(404, {"error": {"code": "ErrorItemNotFound", "message": "The upload session is gone."}})
        if request.header("authorization"):
            return _json(401, {"error": {"code": "InvalidAuthenticationToken", "message": "An upload URL takes "
                                         "no Authorization header."}})
        spec = request.header("content-range").removeprefix("bytes ").split("/")
        try:
            first, last = (int(x) for x in spec[0].split("-"))
            total = int(spec[1])
        except (ValueError, IndexError):
            return _json(400, {"error": {"code": "InvalidRange", "message": "Bad Content-Range."}})
        if first != len(session.received) or last - first + 1 != len(request.body) or total != session.size:
            return _json(416, {"error": {"code": "InvalidRange", "message": "The range does not follow the last."}})
        try:
            self._throttled(session.mailbox, len(request.body), "graph:PUT upload")
        except GraphFault as exc:
            return _json(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)
        session.received.extend(request.body)
        if len(session.received) < session.size:
            return _json(200, {"nextExpectedRanges": [f"{len(session.received)}-"]})
        del self._sessions[session_id]
        row = self._store.item(session.item_id)
        if row is None:
            return _json(404, {"error": {"code": "ErrorItemNotFound", "message": "The message is gone."}})
        self._attach(row, {"name": session.name, "contentType": session.content_type, "isInline": session.is_inline,
                           "contentId": session.content_id}, bytes(session.received))
        return _json(201, None)

    # calendars and events

    def _calendars(self, call: _Call, mailbox: str, rest: list[str],
                   operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        default = self._store.distinguished_folder(mailbox, "calendar")
        assert default is not None
        head, tail = rest[0], rest[1:]
        if head == "calendar":
            if not tail and call.method == "GET":
                return self._folder_json(default, "calendar"), 200, []
            if tail == ["events"]:
                return self._events(call, mailbox, default, operation)
        if head == "calendars":
            if not tail:
                if call.method == "POST":
                    return self._create_folder(call, default, "calendar", operation, "IPF.Appointment")
                calendars = [default, *self._store.child_folders(default.id)]
                return {"value": [self._folder_json(f, "calendar") for f in calendars]}, 200, []
            folder = self._folder(mailbox, tail[0])
            if tail[1:] == ["events"]:
                return self._events(call, mailbox, folder, operation)
            if not tail[1:] and call.method == "GET":
                return self._folder_json(folder, "calendar"), 200, []
        if head == "events" and tail:
            return self._event(call, mailbox, tail[0], tail[1:], operation)
        if head == "events" and not tail:
            return self._events(call, mailbox, default, operation)
        raise GraphFault(400, "BadRequest", "Unsupported calendar request.")

    def _events(self, call: _Call, mailbox: str, folder: FolderRow,
                operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        if call.method == "GET":
            rows = [r for r in self._store.items_in(folder.id) if r.kind == "CalendarItem"]
            return self._list(call, rows, "event"), 200, []
        body = self._body(call)
        self._validate("event", body, operation)
        self._throttled(mailbox, len(call.body), operation, call.charged)
        element = gi.event_element(body)
        row = gi.pim_row("CalendarItem", element, gi.ext_props(body), mailbox, folder.id)
        self._store.add_item(row)
        return gi.event_json(row), 201, []

    def _event(self, call: _Call, mailbox: str, event_id: str, tail: list[str],
               operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        occurrence = pim.parse_occurrence_id(event_id)
        if occurrence is not None:
            row = self._item(mailbox, occurrence[0])
            series = pim.Series(row)
            if call.method == "DELETE":
                series.delete(occurrence[1])
            elif call.method == "PATCH":
                body = self._body(call)
                self._validate("event", body, operation)
                series.change(occurrence[1], self._occurrence_changes(body), [])
            else:
                raise GraphFault(400, "BadRequest", "Unsupported occurrence request.")
            self._store.update_item(row.id, row.props, series.dumps(), row.subject)
            return None, 204, []
        row = self._item(mailbox, event_id)
        if tail == ["instances"] and call.method == "GET":
            return {"value": self._instances(row, call.query)}, 200, []
        if not tail and call.method == "GET":
            return gi.event_json(row), 200, []
        if not tail and call.method == "DELETE":
            self._store.delete_item(row.id)
            return None, 204, []
        raise GraphFault(400, "BadRequest", "Unsupported event request.")

    @staticmethod
    def _occurrence_changes(body: dict[str, Any]) -> list[Any]:
        element = gi.event_element({"start": body.get("start") or {"dateTime": "2000-01-01T00:00:00"},
                                    "end": body.get("end") or {"dateTime": "2000-01-01T00:00:00"},
                                    **{k: v for k, v in body.items() if k not in ("start", "end")}})
        keep = {"Subject": "subject", "Location": "location", "Body": "body", "Start": "start", "End": "end"}
        from lxml import etree

        return [el for el in element if etree.QName(el).localname in keep and keep[etree.QName(el).localname] in body]

    @staticmethod
    def _instances(row: ItemRow, query: dict[str, str]) -> list[dict[str, Any]]:
        """The occurrences starting within the asked window, in one pass over the pattern (a series without end
        has thousands: never expand one occurrence at a time from the start)."""
        try:
            series = pim.Series(row)
        except ItemError:
            return []
        import datetime as dt

        from .items import parse_datetime
        from .recurrence import occurrence_dates

        first = parse_datetime(query.get("startDateTime", "")) or dt.datetime.min.replace(tzinfo=dt.UTC)
        last = parse_datetime(query.get("endDateTime", "")) or dt.datetime.max.replace(tzinfo=dt.UTC)
        zone = series.zone or dt.UTC
        local_time = series.first_start.astimezone(zone).time()
        out = []
        for index, day in occurrence_dates(series.pattern):
            original = dt.datetime.combine(day, local_time, zone).astimezone(dt.UTC)
            if original > last:
                break
            if original < first or series.deleted(index):
                continue
            changed = series.modified(index)
            start, end = (series.times(index) if changed else (original, original + series.length))
            out.append({"id": pim.occurrence_id(row.id, index), "seriesMasterId": row.id,
                        "type": "exception" if changed else "occurrence",
                        "originalStart": original.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
                        "end": {"dateTime": end.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}})
        return out

    # contacts

    def _contacts(self, call: _Call, mailbox: str, rest: list[str],
                  operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        default = self._store.distinguished_folder(mailbox, "contacts")
        assert default is not None
        head, tail = rest[0], rest[1:]
        if head == "contacts":
            if not tail:
                return self._contact_items(call, mailbox, default, operation)
            row = self._item(mailbox, tail[0])
            if tail[1:] == ["photo", "$value"] and call.method == "PUT":
                data = json.loads(row.data or "{}")
                data["photo"] = {"name": "ContactPicture.jpg", "content_type": call.headers.get("content-type"),
                                 "size": len(call.body)}
                self._store.update_item(row.id, row.props, json.dumps(data), row.subject)
                return None, 200, []
            if not tail[1:] and call.method == "GET":
                return gi.contact_json(row), 200, []
            raise GraphFault(400, "BadRequest", "Unsupported contact request.")
        if not tail:
            if call.method == "POST":
                return self._create_folder(call, default, "contactFolder", operation, "IPF.Contact")
            return self._folders_list(default, "contactFolder"), 200, []
        folder = self._folder(mailbox, tail[0])
        if tail[1:] == ["childFolders"]:
            if call.method == "POST":
                return self._create_folder(call, folder, "contactFolder", operation, "IPF.Contact")
            return self._folders_list(folder, "contactFolder"), 200, []
        if tail[1:] == ["contacts"]:
            return self._contact_items(call, mailbox, folder, operation)
        if not tail[1:] and call.method == "GET":
            return self._folder_json(folder, "contactFolder"), 200, []
        raise GraphFault(400, "BadRequest", "Unsupported contact folder request.")

    def _contact_items(self, call: _Call, mailbox: str, folder: FolderRow,
                       operation: str) -> tuple[Any, int, list[tuple[str, str]]]:
        if call.method == "GET":
            rows = [r for r in self._store.items_in(folder.id) if r.kind == "Contact"]
            return self._list(call, rows, "contact"), 200, []
        body = self._body(call)
        self._validate("contact", body, operation)
        self._throttled(mailbox, len(call.body), operation, call.charged)
        props = gi.ext_props(body)
        row = gi.pim_row("Contact", gi.contact_element(body, props), props, mailbox, folder.id)
        self._store.add_item(row)
        return gi.contact_json(row), 201, []

    # $batch

    def _batch(self, call: _Call, token: Token) -> Response:
        body = self._body(call)
        try:
            self._validate(None, body, "graph:POST $batch", checker=batch_problems)
            # The whole request counts against the mailbox's budget once, as the bytes it carried.
            mailboxes = {str(r.get("url", "")).split("/")[2].lower() for r in body["requests"]
                         if str(r.get("url", "")).startswith("/users/") and r.get("method") in ("POST", "PUT")}
            owner = self._store.mailbox(next(iter(mailboxes))) if len(mailboxes) == 1 else None
            self._throttled(owner.address if owner else None, len(call.body), "graph:POST $batch")
        except GraphFault as exc:
            response = _json(exc.status, {"error": {"code": exc.code, "message": exc.message}}, exc.headers)
            response.operation = "graph:POST $batch"
            return response
        answers = []
        for inner in body["requests"]:
            path, _, query = str(inner["url"]).partition("?")
            headers = {k.lower(): str(v) for k, v in (inner.get("headers") or {}).items()}
            payload = inner.get("body")
            raw = b"" if payload is None else (json.dumps(payload).encode() if not isinstance(payload, str)
                                              else payload.encode())
            one = _Call(str(inner["method"]).upper(), "/" + path.lstrip("/"),
                        {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}, headers, raw, call.beta,
                        charged=True)
            response = self._answer(one, token)
            entry: dict[str, Any] = {"id": inner["id"], "status": response.status,
                                     "headers": {k: v for k, v in response.headers}}
            if response.body:
                try:
                    entry["body"] = json.loads(response.body)
                except ValueError:
                    entry["body"] = base64.b64encode(response.body).decode()
            answers.append(entry)
        response = _json(200, {"responses": answers})
        response.operation = "graph:POST $batch"
        return response


gi_collections = {"mailFolders", "childFolders", "messages", "events", "calendars", "contactFolders", "contacts",
                  "calendar", "attachments", "instances", "createUploadSession", "photo"}
