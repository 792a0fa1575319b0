"""One way for library code to tell how far it has come; the CLI renders it (bars or JSON lines)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Progress:
    phase: str  # "inventory", "upload", "verify", ...
    folder: str | None
    items: int  # done so far in this folder
    bytes: int
    total_items: int | None = None
    note: str | None = None  # "waiting 30 s: server busy"


Reporter = Callable[[Progress], None]


def silent(progress: Progress) -> None:
    """A reporter for callers that do not show progress."""
