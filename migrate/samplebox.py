"""A deterministic sample mailbox, and writers that lay it out as each kind of source.

It ships with the package so that `inventory` and the demo run on built-in data, and the
tests load the same mailbox into every source kind so that all backends can be compared.
It holds the cases that break migrations: Swedish and nested folder names, 8-bit and
RFC 2047 headers, attachments, a large message, no Message-ID, duplicate Message-IDs,
bare-LF line endings, flags and old dates.
"""

from __future__ import annotations

import hashlib
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from migrate.model import FolderRole


@dataclass(frozen=True)
class SampleMessage:
    raw: bytes
    flags: frozenset[str]
    internal_date: datetime


@dataclass
class SampleFolder:
    path: tuple[str, ...]
    role: FolderRole
    messages: list[SampleMessage] = field(default_factory=list)


SENDERS = [
    ("Anna Lindqvist", "anna@example.se"),
    ("Björn Åkesson", "bjorn@example.se"),
    ("Customer Care", "care@example.com"),
    ("Özlem Yılmaz", "ozlem@example.net"),
]
SUBJECTS = ["Offert för vårens uppdrag", "Meeting notes", "Faktura 2024-031", "Re: Lunch?", "Årsredovisning"]

FOLDERS: list[tuple[tuple[str, ...], FolderRole]] = [
    (("INBOX",), FolderRole.INBOX),
    (("Skickat",), FolderRole.SENT),
    (("Utkast",), FolderRole.DRAFTS),
    (("Papperskorgen",), FolderRole.TRASH),
    (("Skräppost",), FolderRole.JUNK),
    (("Arkiv",), FolderRole.ARCHIVE),
    (("Kunder",), FolderRole.OTHER),
    (("Kunder", "Åkesson & Söner"), FolderRole.OTHER),
    (("Kunder", "Åkesson & Söner", "2019"), FolderRole.OTHER),
    (("Projekt 2024",), FolderRole.OTHER),
]


def _b64_lines(data: bytes) -> bytes:
    import base64

    enc = base64.b64encode(data)
    return b"\r\n".join(enc[i : i + 76] for i in range(0, len(enc), 76))


def _message(
    rng: random.Random,
    n: int,
    when: datetime,
    *,
    message_id: str | None,
    subject: str,
    attachment: bytes | None = None,
    bare_lf: bool = False,
    eight_bit: bool = False,
) -> bytes:
    name, addr = SENDERS[n % len(SENDERS)]
    if eight_bit:
        from_line = f"{name} <{addr}>".encode()
        subject_line = subject.encode()
    else:
        from email.header import Header

        from_line = f"{Header(name, 'utf-8').encode()} <{addr}>".encode()
        subject_line = Header(subject, "utf-8").encode().encode()
    headers = [
        b"From: " + from_line,
        b"To: Kund <kund@example.se>",
        b"Subject: " + subject_line,
        b"Date: " + format_datetime(when).encode(),
        b"MIME-Version: 1.0",
    ]
    if message_id:
        headers.insert(0, f"Message-ID: <{message_id}>".encode())
    words = ["hej", "offert", "möte", "faktura", "tack", "vänliga", "hälsningar", "projekt", "from"]
    body_lines = [
        " ".join(rng.choice(words) for _ in range(rng.randint(6, 14))).encode() for _ in range(rng.randint(3, 40))
    ]
    # An mbox writer must escape this line and every reader must give it back unchanged.
    if n % 7 == 3:
        body_lines.insert(1, b"From the desk of the CEO: hello")
    body = b"\r\n".join(body_lines)
    if attachment is None:
        headers += [b"Content-Type: text/plain; charset=utf-8", b"Content-Transfer-Encoding: 8bit"]
        raw = b"\r\n".join(headers) + b"\r\n\r\n" + body + b"\r\n"
    else:
        boundary = f"=_sample_{n}".encode()
        headers.append(b'Content-Type: multipart/mixed; boundary="' + boundary + b'"')
        raw = (
            b"\r\n".join(headers)
            + b"\r\n\r\nThis is a multi-part message in MIME format.\r\n--"
            + boundary
            + b"\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            + body
            + b"\r\n--"
            + boundary
            + b'\r\nContent-Type: application/pdf; name="=?utf-8?q?r=C3=A4kning.pdf?="\r\n'
            + b'Content-Disposition: attachment; filename="=?utf-8?q?r=C3=A4kning.pdf?="\r\n'
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + _b64_lines(attachment)
            + b"\r\n--"
            + boundary
            + b"--\r\n"
        )
    if bare_lf:
        raw = raw.replace(b"\r\n", b"\n")
    return raw


def build(messages_per_folder: int = 12, big_message_bytes: int = 0, seed: int = 2024) -> list[SampleFolder]:
    """The sample mailbox. `big_message_bytes` adds one message with an attachment that size."""
    rng = random.Random(seed)
    folders = [SampleFolder(path, role) for path, role in FOLDERS]
    start = datetime(2004, 3, 1, 9, 30, tzinfo=UTC)
    n = 0
    for f_index, folder in enumerate(folders):
        for i in range(messages_per_folder):
            n += 1
            when = start + timedelta(days=n * 37 % 7000, minutes=n * 13)
            message_id: str | None = f"{n:05d}.{f_index}@sample.example.se"
            if n % 11 == 5:
                message_id = None
            if n in (4, 17, 58):  # the same message filed three times
                message_id = "shared.dup@sample.example.se"
            attachment = None
            if i % 5 == 2:
                attachment = hashlib.sha256(str(n).encode()).digest() * rng.randint(20, 400)
            raw = _message(
                rng,
                n,
                when,
                message_id=message_id,
                subject=SUBJECTS[n % len(SUBJECTS)] + f" #{n}",
                attachment=attachment,
                bare_lf=(n % 9 == 8),
                eight_bit=(n % 10 == 6),
            )
            flags = set()
            if n % 3 != 0:
                flags.add("\\Seen")
            if n % 8 == 1:
                flags.add("\\Flagged")
            if n % 6 == 2:
                flags.add("\\Answered")
            folder.messages.append(SampleMessage(raw, frozenset(flags), when + timedelta(minutes=2)))
    if big_message_bytes:
        blob = (hashlib.sha256(b"big").digest() * (big_message_bytes // 32 + 1))[:big_message_bytes]
        when = datetime(2023, 11, 2, 8, 0, tzinfo=UTC)
        raw = _message(rng, 99999, when, message_id="big.1@sample.example.se", subject="Stor bilaga", attachment=blob)
        folders[0].messages.append(SampleMessage(raw, frozenset({"\\Seen"}), when))
    return folders


# --- writers: the same mailbox as each kind of local store -------------------------------


def _mbox_from_line(msg: SampleMessage) -> bytes:
    return b"From MAILER-DAEMON " + msg.internal_date.strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n"


def mbox_escape(raw: bytes) -> bytes:
    """mboxrd: every line that starts with '>*From ' gets one more '>'."""
    out = []
    for line in raw.split(b"\n"):
        stripped = line.lstrip(b">")
        if stripped.startswith(b"From "):
            line = b">" + line
        out.append(line)
    return b"\n".join(out)


def _status_headers(flags: frozenset[str]) -> bytes:
    status = b"RO" if "\\Seen" in flags else b"O"
    x_status = (b"F" if "\\Flagged" in flags else b"") + (b"A" if "\\Answered" in flags else b"")
    return b"Status: " + status + b"\nX-Status: " + x_status + b"\n"


def write_mbox_tree(folders: list[SampleFolder], root: Path) -> None:
    """Thunderbird's layout: a file per folder, children in `NAME.sbd/`. Flags in Status/X-Status."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in folders:
        parts = ["Inbox" if folder.path == ("INBOX",) else p for p in folder.path]
        path = root.joinpath(*[p + ".sbd" for p in parts[:-1]], parts[-1])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            for msg in folder.messages:
                raw = msg.raw
                head_end = raw.find(b"\n") + 1  # put our status headers after the first line
                body = raw[:head_end] + _status_headers(msg.flags).replace(
                    b"\n", b"\r\n" if raw[head_end - 2 : head_end] == b"\r\n" else b"\n"
                ) + raw[head_end:]
                fh.write(_mbox_from_line(msg) + mbox_escape(body))
                if not body.endswith(b"\n"):
                    fh.write(b"\n")
                fh.write(b"\n")


def _maildir_info(flags: frozenset[str]) -> str:
    letters = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
    return ":2," + "".join(sorted(letters[f] for f in flags if f in letters))


def imap_utf7_encode(name: str) -> str:
    """Modified UTF-7 (RFC 3501 5.1.3), as Maildir++ stores use on disk."""
    from imapclient.imap_utf7 import encode

    return encode(name).decode("ascii")


def write_maildir(folders: list[SampleFolder], root: Path) -> None:
    """Maildir++ ('.A.B' folders, names in modified UTF-7), as Dovecot and Courier lay it out."""
    for folder in folders:
        dotted = "." + ".".join(imap_utf7_encode(p) for p in folder.path)
        base = root if folder.path == ("INBOX",) else root / dotted
        for sub in ("cur", "new", "tmp"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for i, msg in enumerate(folder.messages):
            stamp = int(msg.internal_date.timestamp())
            name = f"{stamp}.M{i}P1.sample,S={len(msg.raw)}{_maildir_info(msg.flags)}"
            path = base / "cur" / name
            path.write_bytes(msg.raw)
            os.utime(path, (stamp, stamp))


def write_eml_tree(folders: list[SampleFolder], root: Path) -> None:
    """A folder of .eml files per mail folder, as a user's export or a 'save as' gives it."""
    for folder in folders:
        base = root.joinpath(*folder.path)
        base.mkdir(parents=True, exist_ok=True)
        for i, msg in enumerate(folder.messages):
            path = base / f"{i + 1:04d}.eml"
            path.write_bytes(msg.raw)
            stamp = msg.internal_date.timestamp()
            os.utime(path, (stamp, stamp))


EMLX_FLAG_BITS = {"\\Seen": 1 << 0, "\\Deleted": 1 << 1, "\\Answered": 1 << 2, "\\Flagged": 1 << 4, "\\Draft": 1 << 6}


def write_emlx_tree(folders: list[SampleFolder], root: Path) -> None:
    """Apple Mail's layout: `NAME.mbox/Messages/N.emlx`, children inside the parent's .mbox."""
    import plistlib

    for folder in folders:
        base = root.joinpath(*[p + ".mbox" for p in folder.path]) / "Messages"
        base.mkdir(parents=True, exist_ok=True)
        for i, msg in enumerate(folder.messages):
            bits = sum(bit for flag, bit in EMLX_FLAG_BITS.items() if flag in msg.flags)
            plist = plistlib.dumps({"flags": bits, "date-received": int(msg.internal_date.timestamp())})
            body = msg.raw
            (base / f"{i + 1}.emlx").write_bytes(str(len(body)).encode() + b"\n" + body + plist)
