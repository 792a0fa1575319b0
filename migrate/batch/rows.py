"""Read a batch CSV into one job per mailbox, and find every problem in it before anything moves.

Each problem names its line and column (as a spreadsheet counts them, from 1), so a file with ten
mistakes is fixed in one pass, not ten. Nothing here connects anywhere: paths and secrets are checked
for being there and readable; servers and passwords are the workers' to try.
"""

from __future__ import annotations

import csv
import glob
import io
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import unquote, urlsplit

from migrate.batch.columns import BY_KEY, COLUMNS, REQUIRED, header_key
from migrate.batch.secrets import SecretCell
from migrate.batch.urls import ADDRESS_SCHEMES, EXCHANGE_ONLINE_IMAP, fill, is_template, target_url, with_user
from migrate.discovery.playbooks import Playbook, all_playbooks
from migrate.errors import MigrateError
from migrate.plan import Connection, Filters, SignIn
from migrate.sources.base import registered_schemes
from migrate.sources.connect import is_loopback

MB = 1024 * 1024
MAX_ROWS = 50_000  # Microsoft's limit for one IMAP migration batch; a file this long is a mistake here too
NETWORK_KINDS = {"imap": ("imaps", "imap", 993), "pop3": ("pop3s", "pop3", 995),
                 "caldav": ("caldav+https", "caldav+http", 443), "carddav": ("carddav+https", "carddav+http", 443)}
FILE_KINDS = ("mbox", "maildir", "eml", "emlx", "pst", "ost", "ics", "vcf")
KIND_NAMES = {"imap": "imap", "imaps": "imap", "pop": "pop3", "pop3": "pop3", "pop3s": "pop3", "caldav": "caldav",
              "carddav": "carddav", **{k: k for k in FILE_KINDS}}
SECURITY = {"tls": True, "ssl": True, "starttls": False, "none": False, "plain": False}
TRANSPORTS = ("ews", "graph", "imap")
AUTHS = ("auto", "login", "plain", "xoauth2")


@dataclass(frozen=True)
class Problem:
    line: int
    column: int
    message: str

    def where(self, path: Path) -> str:
        return f"{path}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class Defaults:
    """What the command line gives every row."""

    to: str
    source: str | None = None  # --from: the old server, as Microsoft's migration endpoint is
    source_ca_file: str | None = None
    target_password: SecretCell | None = None
    target_insecure: bool = False
    target_ca_file: str | None = None
    sign_in: SignIn | None = None


@dataclass
class MailboxRow:
    """One mailbox's move, as the CSV and the command line say it; secrets only as cells."""

    id: str
    line: int
    email: str
    source: Connection
    target: Connection
    filters: Filters
    include_folders: list[str] = field(default_factory=list)
    user_root: str | None = None
    source_secret: SecretCell | None = None
    target_secret: SecretCell | None = None


@dataclass
class BatchFile:
    path: Path
    rows: list[MailboxRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_batch(path: Path, defaults: Defaults) -> BatchFile:
    result = BatchFile(path)
    try:
        mode = path.stat().st_mode
        raw = path.read_bytes()
    except OSError as exc:
        result.problems.append(Problem(1, 1, f"cannot read the file: {exc.strerror}"))
        return result
    text = _decode(raw, result)
    lines = text.splitlines()
    # Excel saves "CSV" with ';' where ',' is the decimal comma (Swedish, German): take what the header uses.
    first = lines[0] if lines else ""
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        result.problems.append(Problem(1, 1, "the file is empty: the first line names the columns, for example "
                                             "EmailAddress,UserName,Password"))
        return result
    columns = _header(header, result)
    if columns is None:
        return result
    parse = _RowParser(path, columns, defaults, result)
    start = reader.line_num + 1
    for cells in reader:
        line, start = start, reader.line_num + 1  # a quoted cell may span lines: a row starts where the last ended
        if not any(c.strip() for c in cells):
            continue
        if len(result.rows) + 1 > MAX_ROWS:
            result.problems.append(Problem(line, 1, f"more than {MAX_ROWS:,} rows: split the batch"))
            break
        if len(cells) > len(header):
            result.problems.append(Problem(line, len(header) + 1, f"{len(cells)} values, but the header names "
                                                                  f"{len(header)} columns"))
            continue
        parse.row(line, cells)
    if parse.plaintext and mode & (stat.S_IRGRP | stat.S_IROTH):  # a password column with values in it
        result.warnings.append(f"{path} holds plaintext passwords and other users can read it; run: chmod 600 {path}")
    return result


def _decode(raw: bytes, result: BatchFile) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel's plain "CSV" on Windows is cp1252; its "CSV UTF-8" starts with a BOM. Both are common.
        result.warnings.append(f"{result.path} is not UTF-8; read as Windows-1252 (save as \"CSV UTF-8\" to be sure)")
        return raw.decode("cp1252", errors="replace")


def _header(header: list[str], result: BatchFile) -> dict[str, int] | None:
    """Column name -> index; None when the file cannot be read row by row."""
    columns: dict[str, int] = {}
    for index, name in enumerate(header):
        key = header_key(name)
        if not key:
            result.problems.append(Problem(1, index + 1, "a column without a name"))
            continue
        column = BY_KEY.get(key)
        if column is None:
            result.problems.append(Problem(1, index + 1, f"unknown column {name.strip()!r}; known: "
                                                         + ", ".join(c.name for c in COLUMNS)))
            continue
        if column.name in columns:
            result.problems.append(Problem(1, index + 1, f"the column {column.name} is there twice (also column "
                                                         f"{columns[column.name] + 1})"))
            continue
        columns[column.name] = index
    missing = [name for name in REQUIRED if name not in columns]
    for name in missing:
        result.problems.append(Problem(1, 1, f"no {name} column: the header must name it (Microsoft's form: "
                                             "EmailAddress,UserName,Password)"))
    return None if missing else columns


class _RowParser:
    def __init__(self, path: Path, columns: dict[str, int], defaults: Defaults, result: BatchFile) -> None:
        self.base = path.resolve().parent
        self.columns = columns
        self.defaults = defaults
        self.result = result
        self.plaintext = False
        self.targets: dict[str, int] = {}
        self.ids: set[str] = set()
        self._schemes: list[str] | None = None
        self._books: list[Playbook] | None = None

    # --- cells ------------------------------------------------------------------------------

    def _cell(self, cells: list[str], name: str) -> str:
        index = self.columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    def _col(self, *names: str) -> int:
        """The column to point at: the first of these the file has, else the first column."""
        return next((self.columns[n] + 1 for n in names if n in self.columns), 1)

    def _problem(self, line: int, message: str, *names: str) -> None:
        self.result.problems.append(Problem(line, self._col(*names), message))

    def _secret(self, cells: list[str], line: int, name: str) -> SecretCell | None:
        raw = cells[self.columns[name]] if name in self.columns and self.columns[name] < len(cells) else ""
        if not raw.strip():
            return None
        secret = SecretCell.parse(raw, self.base)  # spaces may belong to a password: kept
        problem = secret.problem()
        if problem:
            self._problem(line, f"{name}: {problem}", name)
        self.plaintext = self.plaintext or secret.plaintext
        return secret

    # --- a row -----------------------------------------------------------------------------

    def row(self, line: int, cells: list[str]) -> None:
        before = len(self.result.problems)
        email = self._cell(cells, "EmailAddress")
        if not email:
            self._problem(line, "EmailAddress is empty: it names the mailbox in Microsoft 365", "EmailAddress")
        elif "@" not in email.strip("@"):
            self._problem(line, f"EmailAddress {email!r} is not an address", "EmailAddress")
        user = self._cell(cells, "UserName")
        source_secret = self._secret(cells, line, "Password")
        target_secret = self._secret(cells, line, "TargetPassword") or self.defaults.target_password
        book = self._playbook(cells, line)
        source, insecure = self._source(cells, line, user, book)
        network = source is not None and bool(urlsplit(source).netloc)
        if network and source is not None:
            if not user and not urlsplit(source).username:
                self._problem(line, "UserName is empty: the login on the old server is needed for "
                                    f"{source.partition(':')[0]}", "UserName")
            if source_secret is None:
                self._problem(line, "Password is empty: the old server needs one (or write env:VAR or file:PATH)",
                              "Password")
        auth = (self._cell(cells, "Auth") or "auto").lower()
        if auth not in AUTHS:
            self._problem(line, f"Auth {auth!r}: use {', '.join(AUTHS)}", "Auth")
        filters, include = self._filters(cells, line, book)
        mailbox = self._cell(cells, "TargetMailbox") or email
        target = self._target(cells, line, mailbox, email, user, target_secret)
        if len(self.result.problems) > before or source is None or target is None:
            return
        row_id = self._id(mailbox, line)
        self.result.rows.append(MailboxRow(
            id=row_id, line=line, email=email,
            source=Connection(url=source, auth=auth, insecure=insecure, ca_file=self.defaults.source_ca_file,
                              password_env=source_secret.name if source_secret and source_secret.kind == "env"
                              else None,
                              password_file=source_secret.name if source_secret and source_secret.kind == "file"
                              else None),
            target=target, filters=filters, include_folders=include,
            user_root=self._cell(cells, "UserRoot") or None,
            source_secret=source_secret, target_secret=target_secret if target.sign_in is None else None,
        ))

    def _id(self, mailbox: str, line: int) -> str:
        """A folder name for the mailbox: its address, kept readable and safe on any file system."""
        base = re.sub(r"[^a-z0-9@._+-]", "_", mailbox.lower()).strip("._") or f"line-{line}"
        row_id = base if base not in self.ids else f"{base}-{line}"
        self.ids.add(row_id)
        return row_id

    def _playbook(self, cells: list[str], line: int) -> Playbook | None:
        name = self._cell(cells, "Playbook").lower()
        if not name:
            return None
        try:
            if self._books is None:
                self._books = all_playbooks()
        except MigrateError as exc:
            self._problem(line, f"the playbooks cannot be read: {exc.one_line()}", "Playbook")
            return None
        providers = [b for b in self._books if b.kind == "provider"]
        book = next((b for b in self._books if b.name == name), None)
        if book is None:
            self._problem(line, f"unknown provider playbook {name!r}; known: "
                                + ", ".join(sorted(b.name for b in providers)), "Playbook")
            return None
        if book.kind != "provider":
            self._problem(line, f"{name!r} is a scenario, not a provider: name the provider whose server this is "
                                f"({', '.join(sorted(b.name for b in providers))})", "Playbook")
            return None
        return book

    # --- where the mail is ------------------------------------------------------------------

    def _source(self, cells: list[str], line: int, user: str, book: Playbook | None) -> tuple[str | None, bool]:
        given = self._cell(cells, "Source")
        kind_text = self._cell(cells, "SourceKind").lower()
        kind = KIND_NAMES.get(kind_text)
        if kind_text and kind is None:
            self._problem(line, f"unknown source kind {kind_text!r}; use one of: "
                                + ", ".join(sorted(set(KIND_NAMES.values()))), "SourceKind")
            return None, False
        host = self._cell(cells, "Host")
        if given:
            scheme = given.partition(":")[0].lower() if ":" in given else ""
            if len(scheme) > 1 and scheme in self._known_schemes():
                if given[len(scheme) + 1:].startswith("//"):
                    return with_user(given, user), self._insecure(given, line)
                return self._file(f"{scheme}:{unquote(given[len(scheme) + 1:])}", line)
            if kind in FILE_KINDS:
                return self._file(f"{kind}:{given}", line)
            if kind in NETWORK_KINDS:
                host = given
            else:
                self._problem(line, f"Source {given!r} names no kind: write mbox:PATH, imaps://host and so on, or "
                                    "add a SourceKind column", "Source")
                return None, False
        if host:
            return self._server(cells, line, host, kind or "imap", user)
        if kind in FILE_KINDS:
            self._problem(line, f"SourceKind {kind} needs a path in Source", "Source", "SourceKind")
            return None, False
        if book is not None:
            return self._from_playbook(book, kind, user, line)
        if self.defaults.source:
            url = self.defaults.source
            url = fill(url, "", "", user) if is_template(url) else with_user(url, user)
            return url, self._insecure(url, line)
        self._problem(line, "no source for this mailbox: add a Source (or Host) column, a Playbook, or give --from",
                      "Source", "Host", "Playbook")
        return None, False

    def _known_schemes(self) -> list[str]:
        if self._schemes is None:
            self._schemes = registered_schemes()
        return self._schemes

    def _file(self, url: str, line: int) -> tuple[str | None, bool]:
        scheme, _, rest = url.partition(":")
        if rest.startswith("//"):
            rest = urlsplit(url).path
        path = Path(rest).expanduser()
        path = path if path.is_absolute() else self.base / path
        if not path.exists() or not _readable(path):
            self._problem(line, f"unreadable path {path}: it does not exist or cannot be read", "Source")
            return None, False
        return f"{scheme}:{path}", False

    def _server(self, cells: list[str], line: int, host: str, kind: str, user: str) -> tuple[str | None, bool]:
        if kind not in NETWORK_KINDS:
            self._problem(line, f"Host is for a server; SourceKind {kind} reads a path from Source", "Host")
            return None, False
        tls_scheme, plain_scheme, default_port = NETWORK_KINDS[kind]
        security = (self._cell(cells, "Security") or "tls").lower()
        if security not in SECURITY:
            self._problem(line, f"Security {security!r}: use tls, starttls or none", "Security")
            return None, False
        port_text = self._cell(cells, "Port")
        port = default_port
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                self._problem(line, f"Port {port_text!r} is not a port number (1-65535)", "Port")
                return None, False
            port = int(port_text)
        elif not SECURITY[security] and kind in ("imap", "pop3"):
            port = {"imap": 143, "pop3": 110}[kind]
        insecure = security in ("none", "plain")
        if insecure and not is_loopback(host):
            self._problem(line, f"Security none sends the password in clear: allowed only to this machine, not {host}",
                          "Security")
            return None, False
        if security == "starttls" and kind not in ("imap", "pop3"):
            self._problem(line, "CalDAV/CardDAV has no STARTTLS: use tls", "Security")
            return None, False
        # imap:// and pop3:// are STARTTLS, and plaintext only with the loopback leave (insecure).
        scheme = tls_scheme if SECURITY[security] else plain_scheme
        url = with_user(f"{scheme}://{host}:{port}" + ("/" if kind in ("caldav", "carddav") else ""), user)
        return url, insecure

    def _from_playbook(self, book: Playbook, kind: str | None, user: str, line: int) -> tuple[str | None, bool]:
        pop = kind == "pop3" or (kind is None and book.mail_kind == "pop")
        servers = book.servers.pop if pop else book.servers.imap
        if not servers:
            self._problem(line, f"the playbook {book.name} names no {'POP3' if pop else 'IMAP'} server: add Host",
                          "Playbook")
            return None, False
        server = servers[0]
        scheme = ("pop3" if pop else "imap") + ("s" if server.security == "tls" else "")
        return with_user(f"{scheme}://{server.host}:{server.port}", user), False

    def _insecure(self, url: str, line: int) -> bool:
        """A plaintext URL (imap://, pop3://) is STARTTLS, which needs no leave; caldav+http:// does."""
        if url.lower().startswith(("caldav+http:", "carddav+http:")):
            host = urlsplit(url).hostname or ""
            if not is_loopback(host):
                self._problem(line, f"plain http sends the password in clear: allowed only to this machine, not "
                                    f"{host}", "Source")
            return True
        return False

    # --- what moves --------------------------------------------------------------------------

    def _filters(self, cells: list[str], line: int, book: Playbook | None) -> tuple[Filters, list[str]]:
        since = self._day(cells, line, "Since")
        until = self._day(cells, line, "Until")
        if since and until and since > until:
            self._problem(line, f"Since {since} is after Until {until}", "Since")
        size_text = self._cell(cells, "MaxMessageSize")
        size = Filters().max_message_size
        if book is not None and book.limits.max_message_mb:
            size = int(book.limits.max_message_mb * MB)
        if size_text:
            try:
                mb = float(size_text.replace(",", "."))
                if mb <= 0:
                    raise ValueError
                size = int(mb * MB)
            except ValueError:
                self._problem(line, f"MaxMessageSize {size_text!r} is not a size in MB", "MaxMessageSize")
        exclude = _globs(self._cell(cells, "ExcludeFolders"))
        if book is not None:  # the playbook's names are exact: brackets ([Gmail]) are not glob classes there
            exclude += [glob.escape(name) for name in book.excluded_folders()]
        return (Filters(since=since, until=until, exclude_folders=exclude, max_message_size=size),
                _globs(self._cell(cells, "IncludeFolders")))

    def _day(self, cells: list[str], line: int, name: str) -> date | None:
        text = self._cell(cells, name)
        if not text:
            return None
        try:
            return date.fromisoformat(text)
        except ValueError:
            self._problem(line, f"{name} {text!r} is not a date: write YYYY-MM-DD", name)
            return None

    # --- where it goes -----------------------------------------------------------------------

    def _target(self, cells: list[str], line: int, mailbox: str, email: str, user: str,
                secret: SecretCell | None) -> Connection | None:
        if not mailbox or "@" not in mailbox.strip("@"):
            if self._cell(cells, "TargetMailbox"):
                self._problem(line, f"TargetMailbox {mailbox!r} is not an address", "TargetMailbox")
            return None
        transport = self._cell(cells, "Transport").lower() or None
        if transport and transport not in TRANSPORTS:
            self._problem(line, f"Transport {transport!r}: use {', '.join(TRANSPORTS)}", "Transport")
            return None
        url = target_url(self.defaults.to, mailbox, email, user, transport)
        scheme = url.partition(":")[0].lower()
        microsoft = scheme in ADDRESS_SCHEMES or (urlsplit(url).hostname or "").endswith(EXCHANGE_ONLINE_IMAP)
        sign_in = self.defaults.sign_in if microsoft else None
        if microsoft and sign_in is None:
            self._problem(line, f"the target {scheme}:// signs in to Microsoft 365: give --tenant and --client-id "
                                "(and --client-secret-env or --certificate)", "Transport", "EmailAddress")
            return None
        if not microsoft and secret is None:
            self._problem(line, f"no password for the target {mailbox}: add a TargetPassword column or give "
                                "--target-password-env/--target-password-file", "TargetPassword", "EmailAddress")
            return None
        key = url.split("?", 1)[0].casefold()
        if key in self.targets:
            self._problem(line, f"duplicate target mailbox {mailbox} (also on line {self.targets[key]})",
                          "TargetMailbox", "EmailAddress")
            return None
        self.targets[key] = line
        env = secret.name if secret is not None and secret.kind == "env" and not microsoft else None
        file = secret.name if secret is not None and secret.kind == "file" and not microsoft else None
        return Connection(url=url, password_env=env, password_file=file, insecure=self.defaults.target_insecure,
                          ca_file=self.defaults.target_ca_file, sign_in=sign_in)


def _globs(text: str) -> list[str]:
    return [g.strip() for g in text.split(";") if g.strip()]


def _readable(path: Path) -> bool:
    return os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0))
