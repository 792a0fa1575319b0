"""`ics:PATH` - an iCalendar file, or a folder of them: one calendar per file.

A calendar is named by its X-WR-CALNAME (Google, Apple) or else the file's name without .ics.
Items are the events as `split_calendar` cuts them; tasks and journal entries are not carried
and are named in the source's problems. Files are only opened "rb".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar
from urllib.parse import SplitResult

from migrate.errors import UserError
from migrate.model import Folder, FolderRole, ItemKind, MessageRef, SourceProblem
from migrate.pim.ical import calendar_name
from migrate.sources.base import Capabilities, Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below, natural_key
from migrate.sources.pimitems import event_items, event_ref

SUFFIXES = (".ics", ".ical", ".ifb", ".icalendar")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err


def unique(name: str, taken: set[str]) -> str:
    """Two calendars of the same name would land in one Exchange folder: number the later ones."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name} ({n})"
    taken.add(candidate.casefold())
    return candidate


class IcsSource(Source):
    capabilities: ClassVar[Capabilities] = Capabilities(flags=False, internal_dates=True, folders=True)

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        self.base = root.parent if root.is_file() else root

    def _files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        found = [p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES
                 and not any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        if not found:
            raise UserError(f"{self.root} holds no .ics files", hint="ics: wants an .ics file or a folder of them")
        return sorted(found, key=lambda p: natural_key(p.relative_to(self.root).as_posix()))

    def folders(self) -> list[Folder]:
        taken: set[str] = set()
        result = []
        for path in self._files():
            name = unique(calendar_name(_read(path)) or path.stem, taken)
            result.append(Folder((name,), role=FolderRole.CALENDAR, kind=ItemKind.EVENT,
                                 locator=path.relative_to(self.base).as_posix()))
        return result

    def _path(self, folder: Folder) -> Path:
        path = below(self.base, folder.locator)
        if path is None or not folder.locator:
            raise UserError(f"{folder.name!r} is not a calendar of {self.url}")
        return path

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        path = self._path(folder)
        where = path.relative_to(self.base).as_posix()
        for identity, data in event_items(_read(path), where, self.problems):
            ref = event_ref(f"uid:{identity}", identity, data, where)
            if isinstance(ref, SourceProblem):
                self.problems.append(ref)
            else:
                yield ref

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        path = self._path(folder)
        items = {f"uid:{identity}": data for identity, data in event_items(_read(path), str(path), [])}
        for ref in refs:
            if ref.key not in items:
                self.problems.append(SourceProblem("message-gone", str(path),
                                                   f"{ref.key} is no longer in the file"))
                continue
            yield ref, items[ref.key]


@register("ics")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return IcsSource(path_from_url(url), url)
