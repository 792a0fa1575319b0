"""The contract every target keeps (EWS, IMAP, Graph), and the registry by URL scheme.

A target creates folders, uploads batches of messages and answers what it already holds.
It never decides what to retry: it classifies each item's outcome and the engine decides.
"""

from __future__ import annotations

import enum
import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import TracebackType
from urllib.parse import SplitResult, urlsplit

from migrate.errors import UsageError
from migrate.model import Fidelity, Folder, ItemKind


@dataclass(frozen=True)
class TargetCapabilities:
    keeps_raw_bytes: bool  # reading a message back gives the bytes we sent (Dovecot: yes; Exchange: no)
    keeps_internal_date: bool  # the received date we give is the one it shows
    calendars: bool = False
    contacts: bool = False
    max_message_bytes: int | None = None  # larger messages fail as TOO_LARGE without being sent
    max_batch_bytes: int = 8 * 1024 * 1024  # one upload call's payload
    max_batch_items: int = 100
    concurrency: int = 4  # parallel uploads the service allows per mailbox


@dataclass
class TargetOptions:
    """How to reach and sign in to a target. Secrets come through callables, asked when needed."""

    secret: Callable[[], str] | None = None  # password for a plain IMAP server
    token: Callable[[], str] | None = None  # OAuth access token (MSAL), asked again on refresh
    tokens: dict[str, Callable[[], str]] = field(default_factory=dict)  # per transport name, for m365://
    insecure: bool = False
    ca_file: Path | None = None
    timeout: float = 120.0
    extra: dict[str, str] = field(default_factory=dict)
    # May share what it knows of the mailbox (folders, connections) with other targets on it in this process?
    # Not a probe, which must ask the server (preflight: the tenant may have changed a moment ago).
    shared: bool = True


@dataclass(frozen=True)
class TargetFolder:
    path: tuple[str, ...]  # as Exchange names it: ("Inbox", "Kunder")
    id: str  # the target's own handle: an EWS FolderId, an IMAP mailbox name
    note: str | None = None  # what the target had to change (a level renamed), for the user
    kind: ItemKind = ItemKind.MAIL  # what it holds: upload turns items of this kind into the target's own


class Outcome(enum.StrEnum):
    CREATED = "created"
    SKIPPED = "skipped"  # already on the target
    FAILED = "failed"


class Failure(enum.StrEnum):
    RETRY = "retry"  # passing: try again after `retry_after` seconds
    TOO_LARGE = "too-large"
    REJECTED = "rejected"  # the target will not take this item as it is
    FATAL = "fatal"  # the whole run cannot go on (auth, quota, mailbox gone)


@dataclass(frozen=True)
class UploadItem:
    key: str  # the source key, echoed in the result
    raw: bytes  # the original MIME bytes
    flags: frozenset[str]
    received: datetime | None  # INTERNALDATE, or the best stand-in the source has
    sent: datetime | None = None
    message_id: str | None = None
    crlf: bool = False  # `raw` has CRLF line ends throughout already (the engine makes it so): no check


@dataclass(frozen=True)
class UploadResult:
    key: str
    outcome: Outcome
    target_id: str | None = None
    failure: Failure | None = None
    retry_after: float | None = None
    reason: str | None = None
    # Events and contacts: what was carried, changed or dropped (the parser's account and the target's own).
    fidelity: Fidelity | None = None


@dataclass(frozen=True)
class ExistingMessage:
    """What a target can tell of a message it holds, for dedupe and verification."""

    target_id: str
    message_id: str | None
    size: int
    flags: frozenset[str] = frozenset()
    received: datetime | None = None  # for events: the start
    sha256: str | None = None  # only where the target keeps raw bytes
    subject: str | None = None  # events: the title; contacts: the display name (for verification)
    end: datetime | None = None  # events only


class Target(ABC):
    capabilities: TargetCapabilities  # per instance where it depends on the server or options
    url: str

    @abstractmethod
    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        """The folder at `path`, created with its parents when missing; well-known names map to
        the target's own well-known folders (Inbox, Sent Items, Drafts, Deleted Items, ...)."""

    @abstractmethod
    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        """Create the messages; one result per item, in order. A failed item never sinks the batch."""

    @abstractmethod
    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        """Every message in the folder, as much as the target can tell cheaply."""

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        """The messages in the folder with these Message-IDs (checked before any retry)."""
        wanted = set(message_ids)
        found: dict[str, list[ExistingMessage]] = {}
        for message in self.existing(folder):
            if message.message_id in wanted:
                found.setdefault(message.message_id, []).append(message)
        return found

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        """The message's MIME as the target gives it now (Exchange rebuilds it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot give messages back")

    def close(self) -> None:
        """Release connections; safe to call twice."""

    def __enter__(self) -> Target:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


TargetFactory = Callable[[SplitResult, str, TargetOptions], Target]
_REGISTRY: dict[str, TargetFactory] = {}
# What each kind of target can hold, declared at registration: a plan is made without signing in.
_KINDS: dict[str, frozenset[ItemKind]] = {}
# Only the backend a URL names is imported: exchangelib alone takes half a second to load.
_BACKEND_MODULES = {"imap": "migrate.targets.imap", "imaps": "migrate.targets.imap", "ews": "migrate.targets.ews",
                    "graph": "migrate.targets.graph", "m365": "migrate.targets.m365"}


def register(*schemes: str, kinds: frozenset[ItemKind] = frozenset({ItemKind.MAIL})
             ) -> Callable[[TargetFactory], TargetFactory]:
    def add(factory: TargetFactory) -> TargetFactory:
        for scheme in schemes:
            _REGISTRY[scheme] = factory
            _KINDS[scheme] = kinds
        return factory

    return add


def target_kinds(url: str) -> frozenset[ItemKind]:
    """What a target of this URL's kind can hold (mail, events, contacts), without connecting to it."""
    scheme = url.partition(":")[0].lower()
    _load_backend(scheme)
    return _KINDS.get(scheme, frozenset({ItemKind.MAIL}))


def _load_backend(scheme: str) -> None:
    name = _BACKEND_MODULES.get(scheme)
    if name is None or scheme in _REGISTRY:
        return
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:  # a backend that is there but lacks a dependency must say so
            raise


def open_target(url: str, options: TargetOptions | None = None) -> Target:
    scheme = url.partition(":")[0].lower()
    _load_backend(scheme)
    if scheme not in _REGISTRY:
        raise UsageError(f"unknown target kind {scheme!r} in {url!r}",
                         hint="use one of: " + ", ".join(sorted(_BACKEND_MODULES)))
    parts = urlsplit(url)
    if parts.password is not None:
        raise UsageError("a password inside the target URL is refused: it would be kept in shell history",
                         hint="use --target-password-env VAR or --target-password-file PATH")
    return _REGISTRY[scheme](parts, url, options or TargetOptions())
