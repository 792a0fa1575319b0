"""What `ics:` and `vcf:` share: a file, or a folder of files with the format's suffixes, read only "rb"."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from migrate.errors import UserError
from migrate.sources.base import Capabilities, Source
from migrate.sources.eml import natural_key


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {path}: {err.strerror}", hint="check that you may read it") from err


def unique(name: str, taken: set[str]) -> str:
    """Two calendars (address books) of the same name would land in one Exchange folder: number the later ones."""
    candidate, n = name, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{name} ({n})"
    taken.add(candidate.casefold())
    return candidate


class ExportFiles(Source):
    """A source of exported files: `root` is one file or a folder searched for files with SUFFIXES."""

    capabilities: ClassVar[Capabilities] = Capabilities(flags=False, internal_dates=True, folders=True)
    SUFFIXES: ClassVar[tuple[str, ...]]
    SCHEME: ClassVar[str]  # for the message when a folder holds none: "ics: wants an .ics file ..."

    def __init__(self, root: Path, url: str) -> None:
        super().__init__()
        self.url = url
        self.root = root
        self.base = root.parent if root.is_file() else root

    def _files(self) -> list[Path]:
        if self.root.is_file():
            return [self.root]
        found = [p for p in self.root.rglob("*") if p.is_file() and p.suffix.lower() in self.SUFFIXES
                 and not any(part.startswith(".") for part in p.relative_to(self.root).parts)]
        if not found:
            suffix = self.SUFFIXES[0]
            article = "an" if suffix[1] in "aeiou" else "a"
            raise UserError(f"{self.root} holds no {suffix} files",
                            hint=f"{self.SCHEME}: wants {article} {suffix} file or a folder of them")
        return sorted(found, key=lambda p: natural_key(p.relative_to(self.root).as_posix()))
