"""The contract every source keeps, and the registry that finds a source by URL scheme.

A source is read-only by construction: the interface has no way to write, and each backend
opens its store read-only (IMAP EXAMINE and BODY.PEEK, POP3 without DELE, files opened "rb").
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import ClassVar
from urllib.parse import SplitResult, unquote, urlsplit

from migrate.errors import UsageError, UserError
from migrate.model import Folder, MessageRef, SourceProblem


@dataclass(frozen=True)
class Capabilities:
    flags: bool  # the source knows \Seen, \Flagged, \Answered
    internal_dates: bool  # the source knows when each message arrived
    folders: bool  # more than one folder
    message_ids_in_listing: bool = True  # messages() fills message_id without reading bodies


@dataclass
class SourceOptions:
    """How to reach a source; secrets come through `secret`, never through the URL."""

    secret: Callable[[], str] | None = None  # password or OAuth token, asked for only when needed
    auth: str = "auto"  # auto | login | plain | xoauth2
    insecure: bool = False  # plaintext IMAP/POP3, loopback only
    ca_file: Path | None = None
    timeout: float = 60.0
    # Messages per FETCH round trip, and bytes per body FETCH: big enough to keep the
    # pipe full, small enough that memory stays flat whatever the folder's size.
    listing_chunk: int = 1000
    fetch_bytes: int = 8 * 1024 * 1024
    extra: dict[str, str] = field(default_factory=dict)


class Source(ABC):
    """A mailbox to read. Implementations register with `@register("scheme", ...)`.

    `folders()` lists every folder with its role; `messages(folder)` streams `MessageRef`s
    in source order without holding the folder in memory; `read(folder, refs)` yields the
    raw RFC 822 bytes of the given messages, in the given order, fetched in bulk.
    `problems` collects what could not be read cleanly (the bad spot of a corrupt mbox),
    so a listing goes on past it.
    """

    capabilities: ClassVar[Capabilities]
    url: str

    def __init__(self) -> None:
        self.problems: list[SourceProblem] = []

    @abstractmethod
    def folders(self) -> list[Folder]: ...

    @abstractmethod
    def messages(self, folder: Folder) -> Iterator[MessageRef]: ...

    @abstractmethod
    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]: ...

    def close(self) -> None:
        """Release connections and files; safe to call twice."""

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


SourceFactory = Callable[[SplitResult, str, SourceOptions], Source]

_REGISTRY: dict[str, SourceFactory] = {}
# Backends live in their own modules; importing them registers their schemes.
_BACKEND_MODULES = {
    "imap": "migrate.sources.imap",
    "imaps": "migrate.sources.imap",
    "pop3": "migrate.sources.pop3",
    "pop3s": "migrate.sources.pop3",
    "mbox": "migrate.sources.mbox",
    "maildir": "migrate.sources.maildir",
    "eml": "migrate.sources.eml",
    "emlx": "migrate.sources.emlx",
    "sample": "migrate.sources.sample",
    "pst": "migrate.sources.pst",
    "ost": "migrate.sources.pst",
    "ics": "migrate.sources.ics",
    "vcf": "migrate.sources.vcf",
    "caldav+https": "migrate.sources.dav",
    "caldav+http": "migrate.sources.dav",
    "carddav+https": "migrate.sources.dav",
    "carddav+http": "migrate.sources.dav",
}


def register(*schemes: str) -> Callable[[SourceFactory], SourceFactory]:
    def add(factory: SourceFactory) -> SourceFactory:
        for scheme in schemes:
            _REGISTRY[scheme] = factory
        return factory

    return add


def _load_backends(scheme: str | None = None) -> None:
    """Import the backend of one scheme (a run needs only its own: libpff and icalendar take a
    while to load), or of all of them."""
    names = set(_BACKEND_MODULES.values()) if scheme is None else {_BACKEND_MODULES.get(scheme, "")} - {""}
    for name in sorted(names):
        importlib.import_module(name)


def registered_schemes() -> list[str]:
    _load_backends()
    return sorted(_REGISTRY)


def open_source(url: str, options: SourceOptions | None = None) -> Source:
    """Open the source a URL names: `imaps://user@host`, `mbox:PATH`, `maildir:PATH`, ..."""
    options = options or SourceOptions()
    scheme, sep, _ = url.partition(":")
    scheme = scheme.lower()
    _load_backends(scheme if scheme in _BACKEND_MODULES else None)
    if not sep or scheme not in _REGISTRY:
        if sep == "" or len(scheme) == 1:  # a bare path, or a Windows drive letter
            raise UsageError(
                f"{url!r} is not a source URL",
                hint="write the kind first, for example mbox:PATH, maildir:PATH or imaps://user@host",
            )
        raise UsageError(
            f"unknown source kind {scheme!r} in {url!r}",
            hint="use one of: " + ", ".join(sorted(_REGISTRY)),
        )
    parts = urlsplit(url)
    if parts.password is not None:
        raise UsageError(
            "a password inside the source URL is refused: it would be kept in shell history "
            "and shown in process lists",
            hint="leave it out and use --password-env VAR, --password-file PATH or the prompt",
        )
    return _REGISTRY[scheme](parts, url, options)


def path_from_url(url: str) -> Path:
    """The path of a file source URL: `mbox:/a/b`, `mbox:relative/b` or `mbox:///a/b`."""
    rest = url.partition(":")[2]
    if rest.startswith("//"):
        rest = urlsplit(url).path
    path = Path(unquote(rest)).expanduser()
    if not path.exists():
        raise UserError(f"{path} does not exist", hint="check the path after the colon in the source URL")
    return path


def chunked(items: Iterable[MessageRef], max_bytes: int, max_items: int = 1000) -> Iterator[list[MessageRef]]:
    """Group messages so that one bulk read stays under `max_bytes` (a big one goes alone)."""
    batch: list[MessageRef] = []
    size = 0
    for ref in items:
        if batch and (size + ref.size > max_bytes or len(batch) >= max_items):
            yield batch
            batch, size = [], 0
        batch.append(ref)
        size += ref.size
    if batch:
        yield batch
