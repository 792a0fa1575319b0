"""`ics:PATH` - an iCalendar file, or a folder of them: one calendar per file.

A calendar is named by its X-WR-CALNAME (Google, Apple) or else the file's name without .ics.
Items are the events as `split_calendar` cuts them; tasks and journal entries are not carried
and are named in the source's problems. Files are only opened "rb".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import SplitResult

from migrate.errors import UserError
from migrate.model import Folder, FolderRole, ItemKind, MessageRef, SourceProblem
from migrate.pim.ical import calendar_name
from migrate.sources.base import Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below
from migrate.sources.pimfiles import ExportFiles, read_file, unique
from migrate.sources.pimitems import event_items, event_ref

SUFFIXES = (".ics", ".ical", ".ifb", ".icalendar")


class IcsSource(ExportFiles):
    SUFFIXES = SUFFIXES
    SCHEME = "ics"

    def folders(self) -> list[Folder]:
        taken: set[str] = set()
        result = []
        for path in self._files():
            name = unique(calendar_name(read_file(path)) or path.stem, taken)
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
        for identity, data in event_items(read_file(path), where, self.problems):
            ref = event_ref(f"uid:{identity}", identity, data, where)
            if isinstance(ref, SourceProblem):
                self.problems.append(ref)
            else:
                yield ref

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        path = self._path(folder)
        items = {f"uid:{identity}": data for identity, data in event_items(read_file(path), str(path), [])}
        for ref in refs:
            if ref.key not in items:
                self.problems.append(SourceProblem("message-gone", str(path),
                                                   f"{ref.key} is no longer in the file"))
                continue
            yield ref, items[ref.key]


@register("ics")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return IcsSource(path_from_url(url), url)
