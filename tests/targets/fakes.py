"""An in-memory source and target whose failures a test scripts, to drive the engine's dedupe and retry
rules (migrate.engine.runner.Runner) into corners a real server reaches only by bad luck (an APPEND
done, but its answer lost)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from migrate.model import Folder, FolderRole, MessageRef
from migrate.sources.base import Capabilities, Source
from migrate.targets import (
    ExistingMessage,
    Failure,
    Outcome,
    Target,
    TargetCapabilities,
    TargetFolder,
    UploadItem,
    UploadResult,
)


def message(n: int, message_id: str | None = "default", body: str = "") -> bytes:
    mid = f"<m{n}@example.se>" if message_id == "default" else message_id
    head = f"Message-ID: {mid}\r\n" if mid else ""
    return f"{head}Subject: nr {n}\r\n\r\n{body or f'hej {n}'}\r\n".encode()


class MemorySource(Source):
    capabilities = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, folders: dict[tuple[str, ...], list[bytes]]) -> None:
        super().__init__()
        self.url = "memory:"
        self.boxes = folders
        self.reads: list[str] = []

    def folders(self) -> list[Folder]:
        return [Folder(path, role=FolderRole.INBOX if path == ("INBOX",) else FolderRole.OTHER, locator="/".join(path))
                for path in self.boxes]

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        from migrate.sources.headers import header_block, header_facts

        base = datetime(2020, 1, 1, tzinfo=UTC)
        for n, raw in enumerate(self.boxes[folder.path]):
            facts = header_facts(header_block(raw))
            yield MessageRef(f"{folder.locator}:{n}", len(raw), frozenset({"\\Seen"}), base + timedelta(hours=n),
                             facts.message_id, facts.date, facts.subject)

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        for ref in refs:
            self.reads.append(ref.key)
            yield ref, self.boxes[folder.path][int(ref.key.rpartition(":")[2])]


@dataclass
class Stored:
    target_id: str
    raw: bytes
    message_id: str | None
    received: datetime | None


@dataclass
class Script:
    """What the target does with an item, by source key, one entry per upload of it; then it works."""

    store_but_retry: set[str] = field(default_factory=set)  # done, but the answer is lost
    retry: dict[str, list[float | None]] = field(default_factory=dict)  # refused for now, with retry_after
    fatal: set[str] = field(default_factory=set)
    unreachable_finds: int = 0  # find() fails this many times


class MemoryTarget(Target):
    def __init__(self, raw: bool = True, max_message_bytes: int | None = None, script: Script | None = None) -> None:
        self.url = "memory-target:"
        self.capabilities = TargetCapabilities(keeps_raw_bytes=raw, keeps_internal_date=True,
                                               max_message_bytes=max_message_bytes, max_batch_items=3)
        self.folders: dict[tuple[str, ...], list[Stored]] = {}
        self.script = script or Script()
        self.uploads: list[list[str]] = []
        self.finds = 0
        self._next = 0

    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        self.folders.setdefault(path, [])
        return TargetFolder(path, "/".join(path))

    def _store(self, folder: TargetFolder, item: UploadItem) -> str:
        self._next += 1
        # A target that rebuilds MIME gives other bytes back, of another size.
        raw = item.raw if self.capabilities.keeps_raw_bytes else b"X-Rebuilt: yes\r\n" + item.raw
        self.folders[folder.path].append(Stored(str(self._next), raw, item.message_id, item.received))
        return str(self._next)

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        self.uploads.append([item.key for item in items])
        results = []
        for item in items:
            waits = self.script.retry.get(item.key)
            limit = self.capabilities.max_message_bytes
            if limit is not None and len(item.raw) > limit:  # as Target promises: refused without being sent
                results.append(UploadResult(item.key, Outcome.FAILED, failure=Failure.TOO_LARGE,
                                            reason=f"{len(item.raw):,} bytes, over the target's {limit:,}"))
            elif item.key in self.script.fatal:
                results.append(UploadResult(item.key, Outcome.FAILED, failure=Failure.FATAL, reason="over quota"))
            elif waits:
                results.append(UploadResult(item.key, Outcome.FAILED, failure=Failure.RETRY,
                                            retry_after=waits.pop(0), reason="server busy"))
            elif item.key in self.script.store_but_retry:
                self.script.store_but_retry.discard(item.key)
                self._store(folder, item)
                results.append(UploadResult(item.key, Outcome.FAILED, failure=Failure.RETRY,
                                            reason="the connection was lost during the upload"))
            else:
                results.append(UploadResult(item.key, Outcome.CREATED, self._store(folder, item)))
        return results

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        for stored in self.folders[folder.path]:
            yield ExistingMessage(stored.target_id, stored.message_id, len(stored.raw), received=stored.received)

    def find(self, folder: TargetFolder, message_ids: object) -> dict[str, list[ExistingMessage]]:
        from migrate.errors import UnreachableError

        self.finds += 1
        if self.script.unreachable_finds:
            self.script.unreachable_finds -= 1
            raise UnreachableError("the target is down")
        return super().find(folder, message_ids)  # type: ignore[arg-type]

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        return next(s.raw for s in self.folders[folder.path] if s.target_id == target_id)

    def digests(self, path: tuple[str, ...]) -> list[str]:
        return sorted(hashlib.sha256(s.raw).hexdigest() for s in self.folders.get(path, []))
