"""The EWS endpoint (/EWS/Exchange.asmx): authentication, mailbox resolution, faults, and the operations
o365-migrate needs (GetFolder, FindFolder, CreateFolder, CreateItem, FindItem, GetItem, UpdateItem, DeleteItem,
ConvertId), for mail and for events (with the occurrences of a series), contacts and contact groups.

Checks run in the order Exchange Online applies them as seen from a client: the bearer token first (HTTP 401,
no body), then the tenant's EWS access policy (HTTP 403), then the SOAP body (schema faults), then throttling
and the caller's mailbox, and only then the operation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from . import pim
from .config import SandboxConfig
from .faults import Fault, FaultKind, FaultPlan, ThrottleBudget
from .items import (
    CHANGE_KEY,
    DEFAULT_FOLDER,
    ItemError,
    ItemRenderer,
    Shape,
    build_item,
)
from .policy import mailbox_policy
from .query import Page, Restriction, folder_value, item_value, sort_rows
from .schema import EwsSchema, SchemaViolation
from .schema_order import CALENDAR_FOLDER, CONTACTS_FOLDER, FOLDER, TASKS_FOLDER
from .soap import (
    SOAP_NS,
    boolean,
    children,
    fault,
    m,
    response_document,
    response_message,
    schema_validation_fault,
    serialize,
    server_busy_fault,
    sub,
    t,
)
from .store import FolderExists, FolderRow, ItemRow, Store, Token, id_kind
from .web import Request, Response

# Audiences of Exchange Online's resource, as scopes name them.
EXCHANGE_RESOURCES = ("https://outlook.office365.com/", "https://outlook.office.com/",
                      "00000002-0000-0ff1-ce00-000000000000/")
APP_PERMISSION = "full_access_as_app"
DELEGATED_PERMISSIONS = ("EWS.AccessAsUser.All", ".default")
NO_MAILBOX = "The SMTP address has no mailbox associated with it."
FOLDER_NOT_FOUND = "The specified folder could not be found in the store."
ITEM_NOT_FOUND = "The specified object was not found in the store., The process failed to get the correct properties."
_PARSER = etree.XMLParser(huge_tree=True, resolve_entities=False, no_network=True, load_dtd=False)


class SoapFault(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(status)
        self.status, self.body = status, body


@dataclass(frozen=True)
class Caller:
    token: Token
    mailbox: str


def _text_response(status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None,
                   content_type: str = "text/xml; charset=utf-8") -> Response:
    return Response(status, body, content_type=content_type, headers=headers or [])


def _folder_tag(folder: FolderRow) -> tuple[str, tuple[str, ...]]:
    cls = folder.folder_class or ""
    if cls.startswith("IPF.Appointment"):
        return "CalendarFolder", CALENDAR_FOLDER
    if cls.startswith("IPF.Contact"):
        return "ContactsFolder", CONTACTS_FOLDER
    if cls.startswith("IPF.Task"):
        return "TasksFolder", TASKS_FOLDER
    return "Folder", FOLDER


class EwsService:
    def __init__(self, store: Store, config: SandboxConfig, schema: EwsSchema | None, faults: FaultPlan,
                 throttle: ThrottleBudget | None, report_schema_error: Callable[[SchemaViolation], None],
                 base_url: Callable[[], str]):
        self._store = store
        self._config = config
        self._schema = schema
        self._faults = faults
        self._throttle = throttle
        self._report = report_schema_error
        self._base_url = base_url
        self._operations: dict[str, Callable[[Caller, etree._Element, Fault | None], etree._Element]] = {
            "GetFolder": self._get_folder,
            "FindFolder": self._find_folder,
            "CreateFolder": self._create_folder,
            "CreateItem": self._create_item,
            "FindItem": self._find_item,
            "GetItem": self._get_item,
            "UpdateItem": self._update_item,
            "DeleteItem": self._delete_item,
            "ConvertId": self._convert_id,
        }

    # the request pipeline

    def handle(self, request: Request) -> Response:
        token = self._authenticate(request)
        if isinstance(token, Response):
            return token
        response = self._handle_authenticated(request, token)
        response.client_id = token.client_id
        return response

    def _handle_authenticated(self, request: Request, token: Token) -> Response:
        tenant = self._store.tenant(token.tenant_id)
        if tenant is not None and tenant.ews_blocked and token.client_id not in (tenant.ews_allowed_app_ids or ()):
            answer = self._config.blocked_answer
            return Response(answer.status, answer.body, content_type=answer.content_type,
                            headers=list(answer.headers), operation="blocked")
        try:
            envelope = etree.fromstring(request.body, _PARSER)
        except etree.XMLSyntaxError as exc:
            line, column = exc.position
            self._report(SchemaViolation(line, column, str(exc), "(unparsable)"))
            return _text_response(500, schema_validation_fault(line, column, str(exc)))
        body = envelope.find(f"{{{SOAP_NS}}}Body")
        op_el = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if op_el is None:
            return _text_response(500, schema_validation_fault(1, 1, "The SOAP body is empty."))
        operation = etree.QName(op_el).localname
        try:
            response = self._dispatch(request, token, envelope, op_el, operation)
        except SoapFault as exc:
            response = _text_response(exc.status, exc.body)
        response.operation = response.operation or operation
        return response

    def _dispatch(self, request: Request, token: Token, envelope: etree._Element, op_el: etree._Element,
                  operation: str) -> Response:
        if self._schema is not None and self._config.validate_schema:
            problems = self._schema.validate(envelope)
            if problems:
                for problem in problems:
                    self._report(problem)
                first = problems[0]
                raise SoapFault(500, schema_validation_fault(first.line, first.column, first.message))
        injected = self._faults.next_for(operation)
        if injected is not None and injected.kind is not FaultKind.ITEM_ERROR:
            return self._injected(injected)
        mailbox = self._mailbox_of(token, envelope)
        if not mailbox_policy(self._store, mailbox).ews_enabled:
            # Set-CASMailbox -EwsEnabled $false: the mailbox refuses EWS as the tenant switch does (HTTP 403)
            answer = self._config.blocked_answer
            raise SoapFault(answer.status, answer.body)
        caller = Caller(token, mailbox)
        if self._throttle is not None and operation == "CreateItem":
            back_off = self._throttle.charge(caller.mailbox, len(request.body))
            if back_off:
                raise SoapFault(500, server_busy_fault(back_off))
        handler = self._operations.get(operation)
        if handler is None:
            raise SoapFault(500, fault("ErrorInvalidOperation", f"The sandbox does not implement {operation}."))
        answer = handler(caller, op_el, injected)
        if self._schema is not None and self._config.validate_responses:
            for problem in self._schema.validate(answer):
                self._report(SchemaViolation(problem.line, problem.column, problem.message,
                                             f"response to {operation}: {problem.operation}"))
        response = _text_response(200, serialize(answer))
        response.mailbox = caller.mailbox
        return response

    def _injected(self, injected: Fault) -> Response:
        if injected.kind is FaultKind.HTTP_401:
            return self._unauthorized("The token has expired.", "invalid_token", operation="fault:401")
        if injected.kind is FaultKind.HTTP_503:
            return Response(503, b"Service Unavailable", content_type="text/plain",
                            headers=[("Retry-After", str(injected.retry_after_s))], operation="fault:503")
        response = _text_response(500, server_busy_fault(injected.back_off_ms))
        response.operation = "fault:ErrorServerBusy"
        return response

    # authentication and the caller's mailbox

    def _unauthorized(self, reason: str, category: str, operation: str = "unauthorized") -> Response:
        # Exchange Online's 401: no body, a Bearer challenge and its diagnostics header; and no
        # "Connection: close", which exchangelib would take for a busy server instead of a login failure.
        challenge = (f'Bearer client_id="00000002-0000-0ff1-ce00-000000000000", '
                     f'trusted_issuers="00000001-0000-0000-c000-000000000000@*", '
                     f'token_types="app_asserted_user_v1 service_asserted_app_v1", '
                     f'authorization_uri="{self._base_url()}/common/oauth2/authorize", error="{category}"')
        return Response(401, b"", content_type="text/html", operation=operation, headers=[
            ("WWW-Authenticate", challenge),
            ("x-ms-diagnostics", f'2000001;reason="{reason}";error_category="{category}"'),
        ])

    def _authenticate(self, request: Request) -> Token | Response:
        value = request.bearer()
        if value is None:
            return self._unauthorized("No bearer token was presented.", "invalid_user")
        token = self._store.token(value, "access")
        if token is None or token.revoked:
            return self._unauthorized("The token is invalid.", "invalid_token")
        if token.expired:
            return self._unauthorized("The token has expired.", "invalid_token")
        resources = [s for s in token.scopes if s.lower().startswith(EXCHANGE_RESOURCES)]
        if token.subject_kind == "app":
            app = self._store.app(token.client_id)
            allowed = bool(resources) and app is not None and APP_PERMISSION in app.permissions
        else:
            allowed = any(s.endswith(DELEGATED_PERMISSIONS) for s in resources)
        if not allowed:
            return self._unauthorized("The token contains no permissions, or permissions can not be understood.",
                                      "invalid_grant")
        return token

    def _mailbox_of(self, token: Token, envelope: etree._Element) -> str:
        sid = envelope.find(f"{{{SOAP_NS}}}Header/{t('ExchangeImpersonation')}/{t('ConnectingSID')}")
        wanted = None
        if sid is not None:
            wanted = next((c.text.strip().lower() for c in sid if isinstance(c.tag, str) and c.text), None)
        if token.subject_kind == "app":
            if wanted is None:
                raise SoapFault(500, fault("ErrorInvalidExchangeImpersonationHeaderData",
                                           "ExchangeImpersonation SOAP header must be present for this type of "
                                           "OAuth token."))
            mailbox = self._store.mailbox(wanted)
            if mailbox is None or mailbox.tenant_id != token.tenant_id:
                raise SoapFault(500, fault("ErrorNonExistentMailbox", NO_MAILBOX))
            return mailbox.address
        if wanted is not None and wanted != token.subject:
            raise SoapFault(500, fault("ErrorImpersonateUserDenied",
                                       "The account does not have permission to impersonate the requested user."))
        if self._store.mailbox(token.subject) is None:
            raise SoapFault(500, fault("ErrorNonExistentMailbox", NO_MAILBOX))
        return token.subject

    # folder references

    def _resolve_folder(self, caller: Caller, ref: etree._Element) -> FolderRow:
        """The folder a t:FolderId or t:DistinguishedFolderId names, or ItemError for its response message."""
        kind = etree.QName(ref).localname
        if kind == "FolderId":
            folder_id = ref.get("Id", "")
            if id_kind(folder_id) != "F":
                raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")
            folder = self._store.folder(folder_id)
            if folder is None or folder.mailbox != caller.mailbox:
                raise ItemError("ErrorFolderNotFound", FOLDER_NOT_FOUND)
            return folder
        if kind == "DistinguishedFolderId":
            address = ref.findtext(f"{t('Mailbox')}/{t('EmailAddress')}")
            if address and address.strip().lower() != caller.mailbox:
                if self._store.mailbox(address.strip()) is None:
                    raise ItemError("ErrorNonExistentMailbox", NO_MAILBOX)
                raise ItemError("ErrorAccessDenied", "Access is denied. Check credentials and try again.")
            folder = self._store.distinguished_folder(caller.mailbox, ref.get("Id", ""))
            if folder is None:
                raise ItemError("ErrorFolderNotFound", FOLDER_NOT_FOUND)
            return folder
        raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")

    def _render_folder(self, parent: etree._Element, folder: FolderRow, shape: Shape) -> None:
        tag, order = _folder_tag(folder)
        total, unread, children = self._store.folder_counts(folder.id)
        wants = shape.wants
        default = shape.base in ("Default", "AllProperties")
        values: dict[str, Callable[[etree._Element], object]] = {
            "FolderId": lambda el: sub(el, t("FolderId"), Id=folder.id, ChangeKey="AQAAAA=="),
        }
        if folder.parent_id is not None and wants("ParentFolderId"):
            values["ParentFolderId"] = lambda el: sub(el, t("ParentFolderId"), Id=folder.parent_id or "",
                                                      ChangeKey="AQAAAA==")
        if folder.folder_class and (default or wants("FolderClass")):
            values["FolderClass"] = lambda el: sub(el, t("FolderClass"), folder.folder_class)
        if default or wants("DisplayName"):
            values["DisplayName"] = lambda el: sub(el, t("DisplayName"), folder.display_name)
        if default or wants("TotalCount"):
            values["TotalCount"] = lambda el: sub(el, t("TotalCount"), str(total))
        if default or wants("ChildFolderCount"):
            values["ChildFolderCount"] = lambda el: sub(el, t("ChildFolderCount"), str(children))
        if wants("EffectiveRights") and shape.base != "Default":
            values["EffectiveRights"] = self._effective_rights
        if folder.distinguished and wants("DistinguishedFolderId") and shape.base != "Default":
            values["DistinguishedFolderId"] = lambda el: sub(el, t("DistinguishedFolderId"), folder.distinguished)
        if "UnreadCount" in order and (default or wants("UnreadCount")):
            values["UnreadCount"] = lambda el: sub(el, t("UnreadCount"), str(unread))
        element = sub(parent, t(tag))
        for name in order:
            if name in values:
                values[name](element)

    @staticmethod
    def _effective_rights(parent: etree._Element) -> None:
        rights = sub(parent, t("EffectiveRights"))
        for name in ("CreateAssociated", "CreateContents", "CreateHierarchy", "Delete", "Modify", "Read",
                     "ViewPrivateItems"):
            sub(rights, t(name), "true")

    # operations

    def _get_folder(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        shape = Shape.parse(op.find(m("FolderShape")))
        env, messages = response_document("GetFolder")
        for ref in children(op.find(m("FolderIds"))):
            try:
                folder = self._resolve_folder(caller, ref)
            except ItemError as exc:
                response_message(messages, "GetFolder", exc.code, exc.text)
                continue
            self._render_folder(sub(response_message(messages, "GetFolder"), m("Folders")), folder, shape)
        return env

    def _descendants(self, folder: FolderRow, deep: bool) -> list[FolderRow]:
        found: list[FolderRow] = []
        for child in self._store.child_folders(folder.id):
            found.append(child)
            if deep:
                found.extend(self._descendants(child, deep))
        return found

    def _find_folder(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        shape = Shape.parse(op.find(m("FolderShape")))
        traversal = op.get("Traversal", "Shallow")
        page = Page.parse(op.find(m("IndexedPageFolderView")))
        restriction = Restriction(op.find(m("Restriction")), folder_value)
        env, messages = response_document("FindFolder")
        for ref in children(op.find(m("ParentFolderIds"))):
            try:
                parent = self._resolve_folder(caller, ref)
                found = [] if traversal == "SoftDeleted" else self._descendants(parent, traversal == "Deep")
                found = [f for f in found if restriction.matches(f)]
            except ItemError as exc:
                response_message(messages, "FindFolder", exc.code, exc.text)
                continue
            rows, next_offset, last = page.apply(found, self._config.find_count_limit)
            root = sub(response_message(messages, "FindFolder"), m("RootFolder"), IndexedPagingOffset=str(
                next_offset), TotalItemsInView=str(len(found)), IncludesLastItemInRange=boolean(last))
            folders = sub(root, t("Folders"))
            for folder in rows:
                self._render_folder(folders, folder, shape)
        return env

    def _create_folder(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        env, messages = response_document("CreateFolder")
        parent_ref = next(iter(children(op.find(m("ParentFolderId")))), None)
        for spec in children(op.find(m("Folders"))):
            tag = etree.QName(spec).localname
            default_class = {"CalendarFolder": "IPF.Appointment", "ContactsFolder": "IPF.Contact",
                             "TasksFolder": "IPF.Task", "SearchFolder": None}.get(tag, "IPF.Note")
            try:
                if parent_ref is None:
                    raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")
                parent = self._resolve_folder(caller, parent_ref)
                name = (spec.findtext(t("DisplayName")) or "").strip()
                if not name:
                    raise ItemError("ErrorInvalidFolderId", "The folder name is empty.")
                folder = self._store.create_folder(parent, name, spec.findtext(t("FolderClass")) or default_class)
            except FolderExists:
                response_message(messages, "CreateFolder", "ErrorFolderExists",
                                 "A folder with the specified name already exists.")
                continue
            except ItemError as exc:
                response_message(messages, "CreateFolder", exc.code, exc.text)
                continue
            folders = sub(response_message(messages, "CreateFolder"), m("Folders"))
            sub(sub(folders, t(tag)), t("FolderId"), Id=folder.id, ChangeKey="AQAAAA==")
        return env

    def _create_item(self, caller: Caller, op: etree._Element, injected: Fault | None) -> etree._Element:
        env, messages = response_document("CreateItem")
        disposition = op.get("MessageDisposition", "SaveOnly")
        target_ref = next(iter(children(op.find(m("SavedItemFolderId")))), None)
        specs = children(op.find(m("Items")))
        fail_at = min(injected.item_index, len(specs) - 1) if injected is not None else -1
        for index, spec in enumerate(specs):
            kind = etree.QName(spec).localname
            try:
                if index == fail_at and injected is not None:
                    details = {"BackOffMilliseconds": str(injected.back_off_ms)} \
                        if injected.code == "ErrorServerBusy" else None
                    response_message(messages, "CreateItem", injected.code,
                                     "The server cannot service this request right now. Try again later."
                                     if details else f"Injected failure {injected.code}", details)
                    sub(messages[-1], m("Items"))
                    continue
                if target_ref is not None:
                    folder = self._resolve_folder(caller, target_ref)
                else:
                    default = "sentitems" if disposition == "SendAndSaveCopy" and kind == "Message" \
                        else DEFAULT_FOLDER.get(kind, "drafts")
                    found = self._store.distinguished_folder(caller.mailbox, default)
                    if found is None:
                        raise ItemError("ErrorFolderNotFound", FOLDER_NOT_FOUND)
                    folder = found
                item = build_item(spec, caller.mailbox, folder.id, self._config.max_message_bytes,
                                  sent=disposition != "SaveOnly")
                item = dataclasses.replace(item, data=pim.neutral(kind, etree.fromstring(item.props)))
            except ItemError as exc:
                response_message(messages, "CreateItem", exc.code, exc.text)
                sub(messages[-1], m("Items"))
                continue
            items = sub(response_message(messages, "CreateItem"), m("Items"))
            if disposition == "SendOnly" and kind == "Message":
                continue  # nothing is delivered or kept; Exchange answers without an item id
            self._store.add_item(item)
            sub(sub(items, t(kind)), t("ItemId"), Id=item.id, ChangeKey=CHANGE_KEY)
        return env

    def _find_item(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        shape = Shape.parse(op.find(m("ItemShape")))
        shape.include_mime = False  # FindItem never returns MimeContent
        shape.fields.discard("MimeContent")
        traversal = op.get("Traversal", "Shallow")
        calendar_view = op.find(m("CalendarView"))
        page = Page.parse(op.find(m("IndexedPageItemView")))
        restriction = Restriction(op.find(m("Restriction")), item_value)
        renderer = ItemRenderer(self._config.rebuild_mime, caller.mailbox)
        env, messages = response_document("FindItem")
        for ref in children(op.find(m("ParentFolderIds"))):
            try:
                folder = self._resolve_folder(caller, ref)
                found = [] if traversal != "Shallow" else self._store.items_in(folder.id)
                found = [i for i in found if restriction.matches(i)]
                if calendar_view is not None:
                    found = self._in_calendar_view(found, calendar_view)
                sort_rows(found, op.find(m("SortOrder")), item_value)
            except ItemError as exc:
                response_message(messages, "FindItem", exc.code, exc.text)
                continue
            msg = response_message(messages, "FindItem")
            if calendar_view is not None:
                limit = int(calendar_view.get("MaxEntriesReturned") or self._config.find_count_limit)
                rows, last = found[:limit], len(found) <= limit
                root = sub(msg, m("RootFolder"), TotalItemsInView=str(len(found)),
                           IncludesLastItemInRange=boolean(last))
            else:
                rows, next_offset, last = page.apply(found, self._config.find_count_limit)
                root = sub(msg, m("RootFolder"), IndexedPagingOffset=str(next_offset),
                           TotalItemsInView=str(len(found)), IncludesLastItemInRange=boolean(last))
            items = sub(root, t("Items"))
            for item in rows:
                renderer.render(items, item, shape)
        return env

    @staticmethod
    def _in_calendar_view(found: list[ItemRow], view: etree._Element) -> list[ItemRow]:
        """Items overlapping the view's window. Recurring series are not expanded (a sandbox limitation)."""
        start, end = view.get("StartDate", ""), view.get("EndDate", "")
        kept = []
        for item in found:
            props = etree.fromstring(item.props)
            item_start, item_end = props.findtext(t("Start")), props.findtext(t("End"))
            if item_start and item_end and item_start < end and item_end > start:
                kept.append(item)
        return kept

    def _item_for(self, caller: Caller, ref: etree._Element) -> ItemRow:
        item_id = ref.get("Id", "")
        if etree.QName(ref).localname != "ItemId" or id_kind(item_id) != "I":
            raise ItemError("ErrorInvalidIdMalformed", "Id is malformed.")
        item = self._store.item(item_id)
        if item is None or item.mailbox != caller.mailbox:
            raise ItemError("ErrorItemNotFound", ITEM_NOT_FOUND)
        return item

    def _occurrence_for(self, caller: Caller, ref: etree._Element) -> tuple[pim.Series, int] | None:
        """The series and index an OccurrenceItemId (or an occurrence's own ItemId) names; None for other ids."""
        name = etree.QName(ref).localname
        if name == "OccurrenceItemId":
            master_id, index = ref.get("RecurringMasterId", ""), int(ref.get("InstanceIndex") or 0)
        elif name == "ItemId" and pim.parse_occurrence_id(ref.get("Id", "")) is not None:
            found = pim.parse_occurrence_id(ref.get("Id", ""))
            assert found is not None
            master_id, index = found
        else:
            return None
        master = self._store.item(master_id) if id_kind(master_id) == "I" else None
        if master is None or master.mailbox != caller.mailbox:
            raise ItemError("ErrorItemNotFound", ITEM_NOT_FOUND)
        if index < 1:
            raise ItemError(*pim.NOT_RECURRING)
        return pim.Series(master), index

    def _get_item(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        shape = Shape.parse(op.find(m("ItemShape")))
        renderer = ItemRenderer(self._config.rebuild_mime, caller.mailbox)
        env, messages = response_document("GetItem")
        for ref in children(op.find(m("ItemIds"))):
            try:
                occurrence = self._occurrence_for(caller, ref)
                if occurrence is not None:
                    series, index = occurrence
                    item = dataclasses.replace(series.item, id=pim.occurrence_id(series.item.id, index), data=None,
                                               props=etree.tostring(series.occurrence_props(index)))
                else:
                    item = self._item_for(caller, ref)
            except ItemError as exc:
                response_message(messages, "GetItem", exc.code, exc.text)
                sub(messages[-1], m("Items"))  # as Exchange answers, and as the schema wants
                continue
            renderer.render(sub(response_message(messages, "GetItem"), m("Items")), item, shape)
        return env

    def _delete_item(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        env, messages = response_document("DeleteItem")
        to_trash = op.get("DeleteType") == "MoveToDeletedItems"
        trash = self._store.distinguished_folder(caller.mailbox, "deleteditems")
        for ref in children(op.find(m("ItemIds"))):
            try:
                occurrence = self._occurrence_for(caller, ref)
                if occurrence is not None:
                    series, index = occurrence
                    series.delete(index)
                    self._store.update_item(series.item.id, series.item.props, series.dumps(), series.item.subject)
                    response_message(messages, "DeleteItem")
                    continue
                item = self._item_for(caller, ref)
            except ItemError as exc:
                response_message(messages, "DeleteItem", exc.code, exc.text)
                continue
            if to_trash and trash is not None:
                self._store.move_item(item.id, trash.id)
            else:
                self._store.delete_item(item.id)
            response_message(messages, "DeleteItem")
        return env

    def _update_item(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        """Set and delete properties of items, or of one occurrence of a series (which becomes an exception)."""
        env, messages = response_document("UpdateItem")
        for change in children(op.find(m("ItemChanges"))):
            ref, updates = children(change)[0], change.find(t("Updates"))
            sets: list[etree._Element] = []
            deletes: list[str] = []
            for update in children(updates):
                verb = etree.QName(update).localname
                path = children(update)[0]
                if verb == "DeleteItemField":
                    deletes.append(path.get("FieldURI", "").split(":")[-1])
                else:  # SetItemField, AppendToItemField: the value is the one child of the item element
                    values = children(children(update)[1])
                    sets.extend(values)
            try:
                occurrence = self._occurrence_for(caller, ref)
                if occurrence is not None:
                    series, index = occurrence
                    series.change(index, sets, deletes)
                    self._store.update_item(series.item.id, series.item.props, series.dumps(), series.item.subject)
                    item_id, tag = pim.occurrence_id(series.item.id, index), "CalendarItem"
                else:
                    item = self._item_for(caller, ref)
                    props = etree.fromstring(item.props)
                    for name in deletes + [etree.QName(v).localname for v in sets]:
                        for old in props.findall(t(name)):
                            props.remove(old)
                    for value in sets:
                        props.append(value)
                    data = pim.neutral(item.kind, props)
                    subject = props.findtext(t("Subject")) or props.findtext(t("DisplayName")) or item.subject
                    self._store.update_item(item.id, etree.tostring(props), data, subject)
                    item_id, tag = item.id, item.kind if item.kind in ("Message", "CalendarItem", "Contact",
                                                                        "DistributionList") else "Item"
            except ItemError as exc:
                response_message(messages, "UpdateItem", exc.code, exc.text)
                sub(messages[-1], m("Items"))
                continue
            msg = response_message(messages, "UpdateItem")
            sub(sub(sub(msg, m("Items")), t(tag)), t("ItemId"), Id=item_id, ChangeKey=CHANGE_KEY)
            sub(sub(msg, m("ConflictResults")), t("Count"), "0")
        return env

    def _convert_id(self, caller: Caller, op: etree._Element, _: Fault | None) -> etree._Element:
        # exchangelib's version guess sends a dummy ConvertId; answer it as capture s01 does.
        env, messages = response_document("ConvertId")
        for _ in children(op.find(m("SourceIds"))):
            response_message(messages, "ConvertId", "ErrorInvalidIdMalformed", "Id is malformed.")
        return env

