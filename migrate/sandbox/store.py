"""Everything the sandbox knows, in one SQLite file under the state directory, so it survives a restart.

One connection guarded by a lock: the HTTP server is threaded, requests are small, and SQLite serialises
writers anyway. Every write commits at once; a sandbox killed mid-run keeps all answered requests.
"""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2  # 2: items.data, the neutral JSON form of events and contacts

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tenants (
    id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ews_blocked INTEGER NOT NULL DEFAULT 0,
    ews_allowed_app_ids TEXT);
CREATE TABLE IF NOT EXISTS apps (
    client_id TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, secret TEXT, certificate_pem TEXT,
    permissions TEXT NOT NULL, display_name TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mailboxes (
    address TEXT PRIMARY KEY, tenant_id TEXT NOT NULL, display_name TEXT NOT NULL, object_id TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    value TEXT PRIMARY KEY, kind TEXT NOT NULL, client_id TEXT NOT NULL, tenant_id TEXT NOT NULL,
    subject_kind TEXT NOT NULL, subject TEXT NOT NULL, scopes TEXT NOT NULL, expires_at REAL NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS device_codes (
    device_code TEXT PRIMARY KEY, user_code TEXT NOT NULL UNIQUE, client_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL, scopes TEXT NOT NULL, expires_at REAL NOT NULL, approved_user TEXT,
    consumed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY, mailbox TEXT NOT NULL, parent_id TEXT, display_name TEXT NOT NULL,
    name_key TEXT NOT NULL, folder_class TEXT, distinguished TEXT, seq INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS folders_name ON folders (mailbox, parent_id, name_key);
CREATE UNIQUE INDEX IF NOT EXISTS folders_distinguished ON folders (mailbox, distinguished);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, mailbox TEXT NOT NULL,
    folder_id TEXT NOT NULL, kind TEXT NOT NULL, item_class TEXT NOT NULL, subject TEXT,
    internet_message_id TEXT, date_received TEXT NOT NULL, date_sent TEXT, date_created TEXT NOT NULL,
    is_read INTEGER NOT NULL, is_draft INTEGER NOT NULL, msg_flags INTEGER NOT NULL, size INTEGER NOT NULL,
    has_attachments INTEGER NOT NULL, mime BLOB, props BLOB NOT NULL, ext_props TEXT NOT NULL, data TEXT);
CREATE INDEX IF NOT EXISTS items_folder ON items (mailbox, folder_id);
-- Folder lookups by folder id alone (FindItem, a folder's counts, its children): without these each one
-- scanned every item (every folder) of every mailbox, under the store's one lock, so a tenant of 50
-- mailboxes made every request slower for all of them.
CREATE INDEX IF NOT EXISTS items_by_folder ON items (folder_id);
CREATE INDEX IF NOT EXISTS folders_by_parent ON folders (parent_id);
CREATE TABLE IF NOT EXISTS policies (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# (distinguished id, display name, folder class) under msgfolderroot, as Exchange Online creates them.
WELL_KNOWN_FOLDERS: tuple[tuple[str, str, str], ...] = (
    ("inbox", "Inbox", "IPF.Note"),
    ("drafts", "Drafts", "IPF.Note"),
    ("sentitems", "Sent Items", "IPF.Note"),
    ("deleteditems", "Deleted Items", "IPF.Note"),
    ("outbox", "Outbox", "IPF.Note"),
    ("junkemail", "Junk Email", "IPF.Note"),
    ("calendar", "Calendar", "IPF.Appointment"),
    ("contacts", "Contacts", "IPF.Contact"),
    ("tasks", "Tasks", "IPF.Task"),
    ("notes", "Notes", "IPF.StickyNote"),
    ("journal", "Journal", "IPF.Journal"),
)


def new_id(prefix: str) -> str:
    """Opaque ids shaped like the captures' (base64 text); the prefix tells folder ids from item ids."""
    return base64.b64encode(f"{prefix}{uuid.uuid4().hex}".encode()).decode()


def id_kind(value: str) -> str | None:
    """'F' for a folder id, 'I' for an item id, None for something we never issued."""
    try:
        raw = base64.b64decode(value, validate=True).decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    if len(raw) == 33 and raw[0] in "FI" and all(c in "0123456789abcdef" for c in raw[1:]):
        return raw[0]
    return None


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    ews_blocked: bool
    ews_allowed_app_ids: tuple[str, ...] | None  # None: no allow list, every app may use EWS


@dataclass(frozen=True)
class App:
    client_id: str
    tenant_id: str
    secret: str | None
    certificate_pem: str | None
    permissions: tuple[str, ...]
    display_name: str


@dataclass(frozen=True)
class Mailbox:
    address: str
    tenant_id: str
    display_name: str
    object_id: str


@dataclass(frozen=True)
class Token:
    value: str
    kind: str  # "access" or "refresh"
    client_id: str
    tenant_id: str
    subject_kind: str  # "user" or "app"
    subject: str  # mailbox address or client id
    scopes: tuple[str, ...]
    expires_at: float
    revoked: bool

    @property
    def expired(self) -> bool:
        return self.expires_at <= time.time()


@dataclass(frozen=True)
class DeviceCode:
    device_code: str
    user_code: str
    client_id: str
    tenant_id: str
    scopes: tuple[str, ...]
    expires_at: float
    approved_user: str | None
    consumed: bool


@dataclass(frozen=True)
class FolderRow:
    id: str
    mailbox: str
    parent_id: str | None
    display_name: str
    folder_class: str | None
    distinguished: str | None


@dataclass(frozen=True)
class ItemRow:
    id: str
    mailbox: str
    folder_id: str
    kind: str  # the EWS element name: Message, CalendarItem, Contact, Task, ...
    item_class: str
    subject: str | None
    internet_message_id: str | None
    date_received: str
    date_sent: str | None
    date_created: str
    is_read: bool
    is_draft: bool
    msg_flags: int
    size: int
    has_attachments: bool
    mime: bytes | None  # exactly as received
    props: bytes  # the item element as sent, minus MimeContent: properties the client set explicitly
    ext_props: str  # JSON list of {"key", "uri", "values"}
    # Events, contacts and groups in a neutral JSON form (see pim.py), with a series' changed and deleted
    # occurrences: what another API (Graph) over the same store reads, and what tests inspect.
    data: str | None = None


class FolderExists(Exception):
    pass


def _tuple(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


class Store:
    def __init__(self, path: Path):
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_DDL)  # executescript manages its own transaction
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        version = self._one("SELECT value FROM meta WHERE key='schema_version'")
        if version is not None and int(version["value"]) == 1:  # state from before calendars and contacts
            with self._tx() as db:
                db.execute("ALTER TABLE items ADD COLUMN data TEXT")
                db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
            version = self._one("SELECT value FROM meta WHERE key='schema_version'")
        if version is None or int(version["value"]) != SCHEMA_VERSION:
            raise RuntimeError(f"{path}: sandbox state has schema version {version and version['value']}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _one(self, sql: str, args: Sequence[object] = ()) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self._db.execute(sql, args).fetchone()
            return row

    def _all(self, sql: str, args: Sequence[object] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # tenants, apps, mailboxes

    def ensure_tenant(self, name: str) -> Tenant:
        tenant_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"tenant.{name.lower()}"))
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO tenants (id, name) VALUES (?, ?)", (tenant_id, name.lower()))
        tenant = self.tenant(tenant_id)
        assert tenant is not None
        return tenant

    def tenant(self, name_or_id: str) -> Tenant | None:
        row = self._one("SELECT * FROM tenants WHERE id = ? OR name = ?", (name_or_id.lower(), name_or_id.lower()))
        if row is None:
            return None
        allowed = row["ews_allowed_app_ids"]
        return Tenant(row["id"], row["name"], bool(row["ews_blocked"]), None if allowed is None else _tuple(allowed))

    def set_ews_access(self, tenant_id: str, blocked: bool, allowed_app_ids: Sequence[str] | None) -> None:
        allowed = None if allowed_app_ids is None else json.dumps([a.lower() for a in allowed_app_ids])
        with self._tx() as db:
            db.execute(
                "UPDATE tenants SET ews_blocked = ?, ews_allowed_app_ids = ? WHERE id = ?",
                (int(blocked), allowed, tenant_id),
            )

    def put_app(self, app: App) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO apps VALUES (?, ?, ?, ?, ?, ?)",
                (app.client_id.lower(), app.tenant_id, app.secret, app.certificate_pem,
                 json.dumps(list(app.permissions)), app.display_name),
            )

    def app(self, client_id: str) -> App | None:
        row = self._one("SELECT * FROM apps WHERE client_id = ?", (client_id.lower(),))
        if row is None:
            return None
        return App(row["client_id"], row["tenant_id"], row["secret"], row["certificate_pem"],
                   _tuple(row["permissions"]), row["display_name"])

    def put_mailbox(self, address: str, tenant_id: str, display_name: str) -> Mailbox:
        address = address.lower()
        object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"mailbox:{address}"))
        with self._tx() as db:
            db.execute("INSERT OR IGNORE INTO mailboxes VALUES (?, ?, ?, ?)",
                       (address, tenant_id, display_name, object_id))
            if db.execute("SELECT 1 FROM folders WHERE mailbox = ?", (address,)).fetchone() is None:
                self._create_well_known(db, address)
        mailbox = self.mailbox(address)
        assert mailbox is not None
        return mailbox

    def mailboxes(self, tenant_id: str) -> list[Mailbox]:
        rows = self._all("SELECT * FROM mailboxes WHERE tenant_id = ? ORDER BY address", (tenant_id,))
        return [Mailbox(r["address"], r["tenant_id"], r["display_name"], r["object_id"]) for r in rows]

    def mailbox_by_object_id(self, object_id: str) -> Mailbox | None:
        row = self._one("SELECT address FROM mailboxes WHERE object_id = ?", (object_id.lower(),))
        return None if row is None else self.mailbox(row["address"])

    # Tenant and mailbox settings beyond the columns above (policy.py): one JSON value per key.

    def policy(self, key: str) -> dict[str, Any] | None:
        row = self._one("SELECT value FROM policies WHERE key = ?", (key.lower(),))
        return None if row is None else dict(json.loads(row["value"]))

    def set_policy(self, key: str, value: dict[str, Any]) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO policies VALUES (?, ?)", (key.lower(), json.dumps(value)))

    def mailbox(self, address: str) -> Mailbox | None:
        row = self._one("SELECT * FROM mailboxes WHERE address = ?", (address.lower(),))
        return None if row is None else Mailbox(row["address"], row["tenant_id"], row["display_name"],
                                                row["object_id"])

    def _create_well_known(self, db: sqlite3.Connection, mailbox: str) -> None:
        root, top = new_id("F"), new_id("F")
        rows: list[tuple[str, str | None, str, str | None, str]] = [
            (root, None, "", None, "root"), (top, root, "Top of Information Store", None, "msgfolderroot")]
        rows += [(new_id("F"), top, name, cls, dist) for dist, name, cls in WELL_KNOWN_FOLDERS]
        for seq, (fid, parent, name, cls, dist) in enumerate(rows):
            db.execute("INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (fid, mailbox, parent, name, name.casefold(), cls, dist, seq))

    # tokens and device codes

    def issue_token(self, kind: str, client_id: str, tenant_id: str, subject_kind: str, subject: str,
                    scopes: Sequence[str], lifetime_s: float) -> str:
        value = secrets.token_urlsafe(48)
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)",
                (value, kind, client_id.lower(), tenant_id, subject_kind, subject.lower(),
                 json.dumps(list(scopes)), now + lifetime_s, now),
            )
        return value

    def token(self, value: str, kind: str) -> Token | None:
        row = self._one("SELECT * FROM tokens WHERE value = ? AND kind = ?", (value, kind))
        if row is None:
            return None
        return Token(row["value"], row["kind"], row["client_id"], row["tenant_id"], row["subject_kind"],
                     row["subject"], _tuple(row["scopes"]), row["expires_at"], bool(row["revoked"]))

    def revoke_tokens(self, subject: str | None = None) -> int:
        with self._tx() as db:
            if subject is None:
                return db.execute("UPDATE tokens SET revoked = 1").rowcount
            return db.execute("UPDATE tokens SET revoked = 1 WHERE subject = ?", (subject.lower(),)).rowcount

    def expire_tokens(self, subject: str | None = None, kind: str = "access") -> int:
        past = time.time() - 1
        with self._tx() as db:
            if subject is None:
                return db.execute("UPDATE tokens SET expires_at = ? WHERE kind = ?", (past, kind)).rowcount
            return db.execute("UPDATE tokens SET expires_at = ? WHERE kind = ? AND subject = ?",
                              (past, kind, subject.lower())).rowcount

    def create_device_code(self, client_id: str, tenant_id: str, scopes: Sequence[str],
                           lifetime_s: float) -> DeviceCode:
        # Entra ID's user codes are 9 letters/digits; avoid look-alike characters for people typing them.
        alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
        user_code = "".join(secrets.choice(alphabet) for _ in range(9))
        device_code = secrets.token_urlsafe(48)
        with self._tx() as db:
            db.execute("INSERT INTO device_codes VALUES (?, ?, ?, ?, ?, ?, NULL, 0)",
                       (device_code, user_code, client_id.lower(), tenant_id, json.dumps(list(scopes)),
                        time.time() + lifetime_s))
        code = self.device_code(device_code=device_code)
        assert code is not None
        return code

    def device_code(self, device_code: str | None = None, user_code: str | None = None) -> DeviceCode | None:
        if device_code is not None:
            row = self._one("SELECT * FROM device_codes WHERE device_code = ?", (device_code,))
        else:
            row = self._one("SELECT * FROM device_codes WHERE user_code = ?", ((user_code or "").upper(),))
        if row is None:
            return None
        return DeviceCode(row["device_code"], row["user_code"], row["client_id"], row["tenant_id"],
                          _tuple(row["scopes"]), row["expires_at"], row["approved_user"], bool(row["consumed"]))

    def approve_device_code(self, user_code: str, address: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE device_codes SET approved_user = ? WHERE user_code = ?",
                       (address.lower(), user_code.upper()))

    def consume_device_code(self, device_code: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE device_codes SET consumed = 1 WHERE device_code = ?", (device_code,))

    def expire_device_codes(self) -> None:
        with self._tx() as db:
            db.execute("UPDATE device_codes SET expires_at = ?", (time.time() - 1,))

    # folders

    @staticmethod
    def _folder(row: sqlite3.Row | None) -> FolderRow | None:
        if row is None:
            return None
        return FolderRow(row["id"], row["mailbox"], row["parent_id"], row["display_name"], row["folder_class"],
                         row["distinguished"])

    def folder(self, folder_id: str) -> FolderRow | None:
        return self._folder(self._one("SELECT * FROM folders WHERE id = ?", (folder_id,)))

    def distinguished_folder(self, mailbox: str, name: str) -> FolderRow | None:
        return self._folder(self._one("SELECT * FROM folders WHERE mailbox = ? AND distinguished = ?",
                                      (mailbox.lower(), name)))

    def child_folders(self, folder_id: str) -> list[FolderRow]:
        rows = self._all("SELECT * FROM folders WHERE parent_id = ? ORDER BY seq", (folder_id,))
        return [f for f in map(self._folder, rows) if f is not None]

    def create_folder(self, parent: FolderRow, display_name: str, folder_class: str | None) -> FolderRow:
        fid = new_id("F")
        try:
            with self._tx() as db:
                seq = db.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM folders").fetchone()[0]
                db.execute("INSERT INTO folders VALUES (?, ?, ?, ?, ?, ?, NULL, ?)",
                           (fid, parent.mailbox, parent.id, display_name, display_name.casefold(), folder_class,
                            seq))
        except sqlite3.IntegrityError as exc:
            raise FolderExists(display_name) from exc
        folder = self.folder(fid)
        assert folder is not None
        return folder

    def folder_counts(self, folder_id: str) -> tuple[int, int, int]:
        """(total items, unread items, child folders)"""
        row = self._one(
            "SELECT COUNT(*), COALESCE(SUM(1 - is_read), 0) FROM items WHERE folder_id = ?", (folder_id,))
        children = self._one("SELECT COUNT(*) FROM folders WHERE parent_id = ?", (folder_id,))
        assert row is not None and children is not None
        return int(row[0]), int(row[1]), int(children[0])

    # items

    @staticmethod
    def _item(row: sqlite3.Row | None) -> ItemRow | None:
        if row is None:
            return None
        return ItemRow(
            row["id"], row["mailbox"], row["folder_id"], row["kind"], row["item_class"], row["subject"],
            row["internet_message_id"], row["date_received"], row["date_sent"], row["date_created"],
            bool(row["is_read"]), bool(row["is_draft"]), row["msg_flags"], row["size"],
            bool(row["has_attachments"]), row["mime"], row["props"], row["ext_props"], row["data"],
        )

    def add_item(self, item: ItemRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO items (id, mailbox, folder_id, kind, item_class, subject, internet_message_id,"
                " date_received, date_sent, date_created, is_read, is_draft, msg_flags, size, has_attachments,"
                " mime, props, ext_props, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (item.id, item.mailbox, item.folder_id, item.kind, item.item_class, item.subject,
                 item.internet_message_id, item.date_received, item.date_sent, item.date_created,
                 int(item.is_read), int(item.is_draft), item.msg_flags, item.size, int(item.has_attachments),
                 item.mime, item.props, item.ext_props, item.data),
            )

    def item(self, item_id: str) -> ItemRow | None:
        return self._item(self._one("SELECT * FROM items WHERE id = ?", (item_id,)))

    def items_in(self, folder_id: str) -> list[ItemRow]:
        # Exchange's default view order: newest received first.
        rows = self._all("SELECT * FROM items WHERE folder_id = ? ORDER BY date_received DESC, seq DESC",
                         (folder_id,))
        return [i for i in map(self._item, rows) if i is not None]

    def items_with_mime(self, mailbox: str) -> list[ItemRow]:
        rows = self._all("SELECT * FROM items WHERE mailbox = ? AND mime IS NOT NULL ORDER BY seq",
                         (mailbox.lower(),))
        return [i for i in map(self._item, rows) if i is not None]

    def update_item(self, item_id: str, props: bytes, data: str | None, subject: str | None) -> None:
        """An item's properties after UpdateItem (or a series after a change to one of its occurrences)."""
        with self._tx() as db:
            db.execute("UPDATE items SET props = ?, data = ?, subject = ? WHERE id = ?",
                       (props, data, subject, item_id))

    def move_item(self, item_id: str, folder_id: str) -> None:
        with self._tx() as db:
            db.execute("UPDATE items SET folder_id = ? WHERE id = ?", (folder_id, item_id))

    def replace_mime(self, item_id: str, mime: bytes, size: int, has_attachments: bool) -> None:
        """A message's MIME after an attachment was added to it (Graph)."""
        with self._tx() as db:
            db.execute("UPDATE items SET mime = ?, size = ?, has_attachments = ? WHERE id = ?",
                       (mime, size, int(has_attachments), item_id))

    def set_read(self, item_id: str, is_read: bool) -> None:
        with self._tx() as db:
            db.execute("UPDATE items SET is_read = ?, msg_flags = (msg_flags & ~1) | ? WHERE id = ?",
                       (int(is_read), int(is_read), item_id))

    def mailbox_bytes(self, mailbox: str) -> int:
        row = self._one("SELECT COALESCE(SUM(size), 0) FROM items WHERE mailbox = ?", (mailbox.lower(),))
        return int(row[0]) if row is not None else 0

    def delete_item(self, item_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM items WHERE id = ?", (item_id,))
