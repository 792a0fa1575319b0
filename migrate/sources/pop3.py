"""POP3 source: the server's inbox, read with UIDL, LIST, TOP and RETR. It never sends DELE.

We speak POP3 ourselves rather than through poplib: poplib refuses lines over 2,048 bytes,
which real mail has, and cannot pipeline, which makes a TOP per message a round trip each.
The client below has no command that changes the mailbox, so it is read-only by construction.
"""

from __future__ import annotations

import base64
import contextlib
import re
import socket
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import ClassVar
from urllib.parse import SplitResult

from migrate.errors import AuthError, ProtocolError, TLSError
from migrate.model import Folder, FolderRole, MessageRef
from migrate.sources.base import Capabilities, Source, SourceOptions, register
from migrate.sources.connect import Endpoint, endpoint, login_refused, network_errors, tls_context
from migrate.sources.headers import header_block, header_facts, parse_date

INBOX = Folder(("INBOX",), "/", FolderRole.INBOX, True, locator="INBOX")
PIPELINE_DEPTH = 64  # commands in flight when the server offers PIPELINING
_RECEIVED_DATE = re.compile(rb"^Received:(?:.|\r?\n[ \t])*?;\s*((?:.|\r?\n[ \t])+?)\r?$", re.M | re.I)


class Pop3Client:
    """A small POP3 client (RFC 1939, 2449, 2595): read-only commands, optional pipelining."""

    def __init__(self, where: Endpoint, options: SourceOptions) -> None:
        self.where = where
        sock = socket.create_connection((where.host, where.port), timeout=options.timeout)
        if where.implicit_tls:
            sock = tls_context(options).wrap_socket(sock, server_hostname=where.host)
        self._sock = sock
        self._file = sock.makefile("rb")
        self._status()  # greeting
        self.capabilities = self._capa()
        if not where.implicit_tls and not options.insecure:
            if "STLS" not in self.capabilities:
                raise TLSError(
                    f"{where.host}:{where.port} does not offer STLS; the password would go in clear",
                    hint="use pop3s:// (port 995), or --insecure for a server on this machine",
                )
            self._send(b"STLS")
            self._status()
            self._file.close()
            self._sock = tls_context(options).wrap_socket(self._sock, server_hostname=where.host)
            self._file = self._sock.makefile("rb")
            self.capabilities = self._capa()
        self.pipelining = "PIPELINING" in self.capabilities

    def _send(self, line: bytes) -> None:
        self._sock.sendall(line + b"\r\n")

    def _line(self) -> bytes:
        line = self._file.readline()
        if not line:
            raise ConnectionResetError("server closed the connection")
        return line.rstrip(b"\r\n")

    def _status(self) -> bytes:
        line = self._line()
        if not line.startswith(b"+OK"):
            raise ProtocolError(f"{self.where.host} answered: {line[:200].decode('utf-8', 'replace')}")
        return line

    def _multiline(self) -> list[bytes]:
        lines: list[bytes] = []
        while True:
            line = self._file.readline()
            if not line:
                raise ConnectionResetError("server closed the connection in a reply")
            if line in (b".\r\n", b".\n"):
                return lines
            if line.startswith(b".."):
                line = line[1:]  # dot-stuffing
            lines.append(line)

    def _capa(self) -> set[str]:
        self._send(b"CAPA")
        if not self._line().startswith(b"+OK"):
            return set()
        return {line.split()[0].decode("ascii", "replace").upper() for line in self._multiline() if line.strip()}

    def login(self, user: str, secret: str, mechanism: str) -> None:
        if mechanism == "xoauth2":
            token = base64.b64encode(f"user={user}\x01auth=Bearer {secret}\x01\x01".encode())
            self._send(b"AUTH XOAUTH2 " + token)
        elif mechanism == "plain":
            self._send(b"AUTH PLAIN " + base64.b64encode(b"\0" + user.encode() + b"\0" + secret.encode()))
        else:
            self._send(b"USER " + user.encode())
            self._status()
            self._send(b"PASS " + secret.encode())
        reply = self._line()
        if not reply.startswith(b"+OK"):
            raise login_refused(self.where, reply[4:200].decode("utf-8", "replace"))

    def listing(self) -> list[tuple[int, str, int]]:
        """(number, UIDL, size) of every message, in server order."""
        self._send(b"UIDL")
        self._status()
        uids = {}
        for line in self._multiline():
            number, uid = line.split()[:2]
            uids[int(number)] = uid.decode("ascii", "replace")
        self._send(b"LIST")
        self._status()
        sizes = {}
        for line in self._multiline():
            number, size = line.split()[:2]
            sizes[int(number)] = int(size)
        return [(n, uids[n], sizes.get(n, 0)) for n in sorted(uids)]

    def retrieve(self, commands: Sequence[bytes]) -> Iterator[bytes]:
        """Send TOP/RETR commands, pipelined when the server allows, and yield each reply body."""
        depth = PIPELINE_DEPTH if self.pipelining else 1
        pending = 0
        for i, command in enumerate(commands):
            self._send(command)
            pending += 1
            if pending >= depth or i == len(commands) - 1:
                for _ in range(pending):
                    self._status()
                    yield b"".join(
                        line if line.endswith(b"\r\n") else line.rstrip(b"\n") + b"\r\n"
                        for line in self._multiline()
                    )
                pending = 0

    def quit(self) -> None:
        try:
            self._send(b"QUIT")
            self._line()
        finally:
            self._file.close()
            self._sock.close()


class Pop3Source(Source):
    capabilities: ClassVar[Capabilities] = Capabilities(flags=False, internal_dates=False, folders=False)

    def __init__(self, where: Endpoint, url: str, options: SourceOptions) -> None:
        super().__init__()
        self.where = where
        self.url = url
        self.options = options
        self._client: Pop3Client | None = None
        self._numbers: dict[str, int] = {}

    @property
    def client(self) -> Pop3Client:
        if self._client is None:
            with network_errors(self.where):
                client = Pop3Client(self.where, self.options)
                try:
                    client.login(self.where.user, self.options.secret() if self.options.secret else "",
                                 self.options.auth)
                except AuthError:
                    client.quit()
                    raise
            self._client = client
        return self._client

    def folders(self) -> list[Folder]:
        return [INBOX]

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        with network_errors(self.where):
            listing = self.client.listing()
            self._numbers = {uid: n for n, uid, _ in listing}
            tops = self.client.retrieve([f"TOP {n} 0".encode() for n, _, _ in listing])
            for (_, uid, size), head in zip(listing, tops, strict=True):
                facts = header_facts(head)
                yield MessageRef(
                    key=uid,
                    size=size,
                    internal_date=_received_date(head),
                    message_id=facts.message_id,
                    date=facts.date,
                    subject=facts.subject,
                    header_problems=facts.problems,
                )

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        with network_errors(self.where):
            if not self._numbers:
                self._numbers = {uid: n for n, uid, _ in self.client.listing()}
            missing = [ref.key for ref in refs if ref.key not in self._numbers]
            if missing:
                raise ProtocolError(f"message {missing[0]} is no longer on {self.where.host}")
            # RETR marks a message as read on many servers (Dovecot, Courier), which would change
            # the source; TOP with more lines than any message has reads it whole without that.
            command = "TOP {} 999999999" if "TOP" in self.client.capabilities else "RETR {}"
            bodies = self.client.retrieve([command.format(self._numbers[ref.key]).encode() for ref in refs])
            yield from zip(refs, bodies, strict=True)

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError):
                self._client.quit()
            self._client = None


def _received_date(head: bytes) -> datetime | None:
    """When the server got the message: the date of the topmost Received header.

    POP3 has no INTERNALDATE; without this, Exchange would show the Date header, which is
    the sender's clock.
    """
    match = _RECEIVED_DATE.search(header_block(head))
    if not match:
        return None
    return parse_date(re.sub(rb"\s+", b" ", match.group(1)).decode("ascii", "replace").strip())


@register("pop3", "pop3s")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return Pop3Source(endpoint(parts, url, 995, 110, options), url, options)


