"""`vcf:PATH` - a vCard file, or a folder of them.

A file of many cards is an address book named after the file. A folder whose files each hold a
single card (what Apple Contacts, Android and many web tools export) is one address book named
after the folder; a folder of files with several cards each gives one address book per file.
Cards travel as the files hold them. Files are only opened "rb".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from urllib.parse import SplitResult

from migrate.errors import UserError
from migrate.model import Folder, FolderRole, ItemKind, MessageRef, SourceProblem
from migrate.sources.base import Source, SourceOptions, path_from_url, register
from migrate.sources.eml import below
from migrate.sources.pimfiles import ExportFiles, read_file, unique
from migrate.sources.pimitems import card_keys, card_ref, split_cards

SUFFIXES = (".vcf", ".vcard")
ALL_FILES = "*"  # the locator of an address book made of every file of the folder


class VcfSource(ExportFiles):
    SUFFIXES = SUFFIXES
    SCHEME = "vcf"

    def folders(self) -> list[Folder]:
        files = self._files()
        if len(files) > 1 and all(len(split_cards(read_file(p))) <= 1 for p in files):
            return [Folder((self.root.name or "Contacts",), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT,
                           locator=ALL_FILES)]
        taken: set[str] = set()
        return [Folder((unique(p.stem, taken),), role=FolderRole.CONTACTS, kind=ItemKind.CONTACT,
                       locator=p.relative_to(self.base).as_posix()) for p in files]

    def _cards(self, folder: Folder) -> Iterator[bytes]:
        if folder.locator == ALL_FILES:
            for path in self._files():
                yield from split_cards(read_file(path))
            return
        book = below(self.base, folder.locator)
        if book is None or not folder.locator:
            raise UserError(f"{folder.name!r} is not an address book of {self.url}")
        yield from split_cards(read_file(book))

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        for key, data in card_keys(self._cards(folder)):
            yield card_ref(key, data)

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        cards = dict(card_keys(self._cards(folder)))
        for ref in refs:
            if ref.key not in cards:
                self.problems.append(SourceProblem("message-gone", folder.name, f"{ref.key} is no longer there"))
                continue
            yield ref, cards[ref.key]


@register("vcf")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    return VcfSource(path_from_url(url), url)
