"""The sandbox process: one HTTPS listener on loopback serving the OAuth authority and EWS.

The standard library's ThreadingHTTPServer is enough: clients are tests, a demo and a rehearsal, not a fleet.
TLS handshakes run in the per-connection thread (not in accept), so one stalled client cannot block the
listener, and stop() closes kept-alive connections so no thread answers from a closed store afterwards.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import json
import logging
import socket
import socketserver
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

from . import items as item_model
from .certs import issue_server_credentials
from .config import SandboxConfig
from .ews import EwsService
from .faults import Fault, FaultPlan, ThrottleBudget
from .graph import GraphService
from .graph_schema import GraphSchema
from .oauth import Authority
from .policy import set_delegated_consent, set_mailbox_policy
from .schema import EwsSchema, SchemaViolation
from .store import App, ItemRow, Store
from .web import Request, Response

log = logging.getLogger(__name__)
EWS_PATH = "/ews/exchange.asmx"
GRAPH_PREFIXES = ("/v1.0/", "/beta/", "/upload/")
REHEARSAL_PERMISSIONS = ["full_access_as_app", "Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite",
                         "Reports.Read.All"]
STATE_FILE = "sandbox.sqlite3"


class SandboxError(Exception):
    pass


@dataclass(frozen=True)
class RequestRecord:
    """One answered HTTP request, for tests that assert on traffic (e.g. "exactly one FindItem")."""

    at: float
    method: str
    path: str
    operation: str
    status: int
    client_id: str | None
    mailbox: str | None
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True)
class StoredItem:
    """An item as the sandbox holds it, for tests to inspect without going through EWS."""

    id: str
    kind: str
    folder_path: str
    subject: str | None
    internet_message_id: str | None
    is_read: bool
    is_draft: bool
    date_received: dt.datetime
    date_sent: dt.datetime | None
    size: int
    mime: bytes | None
    extended_properties: dict[str, list[str]]
    xml: bytes
    data: dict[str, Any] | None = None  # events, contacts and groups in neutral form (see pim.py)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sandbox: Sandbox, context: ssl.SSLContext):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.sandbox = sandbox
        self.context = context
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip that can stall on CI machines.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def finish_request(self, request: socket.socket | tuple[bytes, socket.socket],
                       client_address: tuple[str, int]) -> None:
        assert isinstance(request, socket.socket)
        # A response goes out as two writes (headers, then body): with Nagle's algorithm the second waits for
        # the client's ACK of the first, which the client delays up to 40 ms. Exchange answers at once.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            log.debug("TLS handshake with %s failed: %s", client_address, exc)
            return
        with self.connections_lock:
            self.connections.add(conn)
        try:
            _Handler(conn, client_address, self)
        except (ssl.SSLError, OSError) as exc:
            log.debug("connection from %s ended: %s", client_address, exc)
        finally:
            with self.connections_lock:
                self.connections.discard(conn)
            conn.close()

    def close_connections(self) -> None:
        with self.connections_lock:
            for conn in list(self.connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Exchange and the clients' connection pools expect
    server_version = "Microsoft-IIS/10.0"
    sys_version = ""
    timeout = 120
    server: _Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    # Graph: updates, deletions and upload-session chunks.
    do_PATCH = do_POST
    do_PUT = do_POST
    do_DELETE = do_POST

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.client_address[0], *args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        path, _, query = self.path.partition("?")
        request = Request(self.command, path, query, {k.lower(): v for k, v in self.headers.items()},
                          self._read_body())
        try:
            response = self.server.sandbox.dispatch(request)
        except Exception:  # a sandbox bug must reach the client as a 500, not as a dead connection
            log.exception("sandbox failed on %s %s", self.command, path)
            response = Response(500, b"Server Error in '/EWS' Application", content_type="text/plain",
                                operation="crash")
        # Recorded before it goes out: a client that has its answer finds the request in the log (with
        # TCP_NODELAY the answer can arrive before this thread would get to it after the write).
        self.server.sandbox.record(request, response)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


class Sandbox:
    """A local stand-in for Exchange Online: an Entra-like authority plus EWS, over HTTPS on loopback."""

    def __init__(self, state_dir: Path, host: str = "127.0.0.1", port: int = 0,
                 config: SandboxConfig | None = None):
        if not _is_loopback(host):
            raise SandboxError(f"the sandbox only listens on loopback addresses, not {host!r}")
        self.state_dir = Path(state_dir)
        self.host = host
        self.config = config or SandboxConfig()
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._store: Store | None = None
        self._schema: EwsSchema | None = None
        self._lock = threading.Lock()
        self._requests: deque[RequestRecord] = deque(maxlen=self.config.request_log_limit)
        self._schema_errors: list[SchemaViolation] = []
        self.faults = FaultPlan(self.config.faults, self.config.busy_every_n_requests, self.config.busy_back_off_ms)
        self._authority: Authority | None = None
        self._ews: EwsService | None = None
        self._graph: GraphService | None = None
        self.ca_path = self.state_dir / "ca.pem"

    # lifecycle

    def start(self) -> Sandbox:
        if self._server is not None:
            raise SandboxError("sandbox already started")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if self.config.validate_schema:
            if self.config.schema_dir is None:
                raise SandboxError("validate_schema is on but no EWS schema directory was found or configured")
            self._schema = EwsSchema(self.config.schema_dir)
        credentials = issue_server_credentials(self.state_dir, self.host)
        self.ca_path = credentials.ca_path
        self._store = Store(self.state_dir / STATE_FILE)
        self._store.ensure_tenant(self.config.tenant)
        throttle = ThrottleBudget(self.config.throttle_bytes, self.config.throttle_window_s) \
            if self.config.throttle_enabled else None
        self._authority = Authority(self._store, self.config, lambda: self.url)
        self._ews = EwsService(self._store, self.config, self._schema, self.faults, throttle,
                               self._schema_error, lambda: self.url)
        # Graph shares the store, the faults and the upload budget: one mailbox, whichever API reaches it.
        graph_schema = GraphSchema(self.config.graph_schema_dir) \
            if self.config.validate_schema and self.config.graph_schema_dir is not None else None
        self._graph = GraphService(self._store, self.config, graph_schema, self.faults, throttle, self._schema_error,
                                   lambda: self.url)
        self._server = _Server((self.host, self._requested_port), self, credentials.ssl_context())
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"sandbox-{self.port}", daemon=True)
        self._thread.start()
        log.info("sandbox listening on %s (state in %s)", self.url, self.state_dir)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._store is not None:
            with self._lock:
                self._store.close()
        if self._schema is not None:
            self._schema.close()
            self._schema = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # addresses

    @property
    def port(self) -> int:
        if self._server is None:
            raise SandboxError("sandbox not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.url}/{self.config.tenant}"

    @property
    def ews_url(self) -> str:
        return f"{self.url}/EWS/Exchange.asmx"

    @property
    def graph_url(self) -> str:
        return f"{self.url}/v1.0"

    @property
    def graph(self) -> GraphService:
        if self._graph is None:
            raise SandboxError("sandbox not started")
        return self._graph

    # set-up

    @property
    def store(self) -> Store:
        if self._store is None:
            raise SandboxError("sandbox not started")
        return self._store

    def add_tenant(self, name: str) -> str:
        """Register another tenant; returns its id (a GUID, as Entra answers in token endpoints)."""
        return self.store.ensure_tenant(name).id

    def add_app(self, client_id: str, secret: str | None = None, tenant: str | None = None,
                permissions: Sequence[str] = (), certificate_pem: str | bytes | None = None,
                display_name: str | None = None) -> None:
        """Register an application. Without secret or certificate it is a public client (device flow).
        App-only EWS needs permissions=["full_access_as_app"]."""
        found = self.store.tenant(tenant or self.config.tenant) or self.store.ensure_tenant(tenant or "")
        pem = certificate_pem.decode() if isinstance(certificate_pem, bytes) else certificate_pem
        self.store.put_app(App(client_id.lower(), found.id, secret, pem, tuple(permissions),
                               display_name or client_id))

    def add_mailbox(self, address: str, tenant: str | None = None, display_name: str | None = None) -> None:
        found = self.store.tenant(tenant or self.config.tenant) or self.store.ensure_tenant(tenant or "")
        self.store.put_mailbox(address, found.id, display_name or address.split("@")[0].title())

    def set_ews_blocked(self, blocked: bool = True, tenant: str | None = None,
                        allowed_app_ids: Sequence[str] | None = None) -> None:
        """Block EWS for the tenant, as Exchange Online does from October 2026, except for `allowed_app_ids`
        (Set-OrganizationConfig -EwsAllowedAppIDs)."""
        found = self.store.tenant(tenant or self.config.tenant)
        if found is None:
            raise SandboxError(f"no tenant {tenant!r}")
        self.store.set_ews_access(found.id, blocked, allowed_app_ids)

    def set_mailbox_policy(self, address: str, **changes: Any) -> None:
        """What Set-CASMailbox (-ImapEnabled, -EwsEnabled), Set-Mailbox (quotas, MaxReceiveSize) and licence
        assignment change for one mailbox; see policy.MailboxPolicy for the names."""
        set_mailbox_policy(self.store, address, **changes)

    def set_consent(self, client_id: str, permissions: Sequence[str] | None) -> None:
        """The delegated permissions an admin consented to for the app (None: whatever it asks for)."""
        set_delegated_consent(self.store, client_id, None if permissions is None else list(permissions))

    def approve_device_code(self, user_code: str, user_address: str) -> None:
        """What the person does in a browser: enter the code shown by the device flow and sign in."""
        if self._authority is None:
            raise SandboxError("sandbox not started")
        self._authority.approve(user_code, user_address)

    def revoke_tokens(self, subject: str | None = None) -> None:
        """Revoke access and refresh tokens (of one user address or client id, or all)."""
        self.store.revoke_tokens(subject)

    def expire_tokens(self, subject: str | None = None) -> None:
        """Make current access tokens expired; refresh tokens stay usable."""
        self.store.expire_tokens(subject)

    def expire_device_codes(self) -> None:
        self.store.expire_device_codes()

    def inject(self, *faults: Fault) -> None:
        self.faults.add(*faults)

    # inspection

    @property
    def requests(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)

    @property
    def schema_errors(self) -> list[SchemaViolation]:
        with self._lock:
            return list(self._schema_errors)

    def folder_path(self, folder_id: str) -> str:
        """A folder's display names from below "Top of Information Store", joined with "/"."""
        names: list[str] = []
        folder = self.store.folder(folder_id)
        while folder is not None and folder.distinguished not in ("msgfolderroot", "root"):
            names.append(folder.display_name)
            folder = self.store.folder(folder.parent_id) if folder.parent_id else None
        return "/".join(reversed(names))

    def _folder_by_path(self, mailbox: str, folder_path: str | Sequence[str]) -> str:
        parts = folder_path.split("/") if isinstance(folder_path, str) else list(folder_path)
        folder = self.store.distinguished_folder(mailbox, "msgfolderroot")
        for part in parts:
            if folder is None:
                break
            folder = next((f for f in self.store.child_folders(folder.id)
                           if f.display_name.casefold() == part.casefold()), None)
        if folder is None:
            raise KeyError(f"{mailbox}: no folder {folder_path!r}")
        return folder.id

    def _stored(self, row: ItemRow) -> StoredItem:
        received = item_model.parse_datetime(row.date_received)
        assert received is not None
        return StoredItem(
            id=row.id, kind=row.kind, folder_path=self.folder_path(row.folder_id), subject=row.subject,
            internet_message_id=row.internet_message_id, is_read=row.is_read, is_draft=row.is_draft,
            date_received=received, date_sent=item_model.parse_datetime(row.date_sent or ""), size=row.size,
            mime=row.mime, extended_properties=item_model.ExtendedProps.loads(row.ext_props).values, xml=row.props,
            data=json.loads(row.data) if row.data else None,
        )

    def items(self, mailbox: str, folder_path: str | Sequence[str]) -> list[StoredItem]:
        """Items of one folder, e.g. items("alice@contoso.example", "Inbox/Import 2024"), newest first."""
        return [self._stored(r) for r in self.store.items_in(self._folder_by_path(mailbox.lower(), folder_path))]

    def received_mime(self, mailbox: str) -> list[tuple[str, bytes]]:
        """(folder path, MIME bytes exactly as received) for every message of the mailbox, in upload order."""
        rows = self.store.items_with_mime(mailbox)
        return [(self.folder_path(r.folder_id), r.mime) for r in rows if r.mime is not None]

    # request plumbing

    def dispatch(self, request: Request) -> Response:
        if self._authority is None or self._ews is None:
            raise SandboxError("sandbox not started")
        if request.path.lower() == EWS_PATH:
            if request.method != "POST":
                return Response(405, b"", content_type="text/plain", operation="ews")
            return self._ews.handle(request)
        if self._graph is not None and request.path.startswith(GRAPH_PREFIXES) and request.path != "/v1.0/me":
            return self._graph.handle(request)
        return self._authority.handle(request) or Response(404, b"Not Found", content_type="text/plain",
                                                           operation="not-found")

    def record(self, request: Request, response: Response) -> None:
        with self._lock:
            self._requests.append(RequestRecord(
                time.time(), request.method, request.path, response.operation, response.status,
                response.client_id, response.mailbox, len(request.body), len(response.body),
            ))

    def _schema_error(self, problem: SchemaViolation) -> None:
        log.warning("EWS schema violation: %s", problem)
        with self._lock:
            self._schema_errors.append(problem)


def serve(port: int, state_dir: Path, host: str = "127.0.0.1", config: SandboxConfig | None = None,
          on_ready: Callable[[Sandbox], None] | None = None, apps: Iterable[tuple[str, str | None]] = (),
          mailboxes: Iterable[str] = ()) -> None:
    """Run a sandbox until interrupted (Ctrl-C), for `o365-migrate sandbox --port N`.

    Prints nothing: `on_ready` is told when the sandbox listens (the CLI prints its URL, CA path, authority),
    and everything else goes to the `migrate.sandbox` logger. `apps` are (client id, secret or None) to
    register with full_access_as_app; `mailboxes` are addresses to create. State persists in `state_dir`.
    """
    if config is None:
        config = SandboxConfig()
        config.validate_schema = config.schema_dir is not None
    sandbox = Sandbox(state_dir, host=host, port=port, config=config).start()
    try:
        for client_id, secret in apps:
            # What docs/admin-setup.md has an admin grant: EWS, Graph for each kind, and the usage report.
            sandbox.add_app(client_id, secret=secret, permissions=REHEARSAL_PERMISSIONS)
        for address in mailboxes:
            sandbox.add_mailbox(address)
        if on_ready is not None:
            on_ready(sandbox)
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        log.info("sandbox interrupted")
    finally:
        sandbox.stop()
