"""Rendering library progress as rich bars (the only place that draws them)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from migrate.progress import Progress as Event
from migrate.progress import Reporter


@contextmanager
def live_progress(console: Console, title: str) -> Iterator[Reporter]:
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[size]}"), TimeElapsedColumn(),
        console=console, transient=True, disable=not console.is_terminal,
    )
    task = bars.add_task(title, total=None, size="")
    done_items = 0
    done_bytes = 0

    def report(event: Event) -> None:
        nonlocal done_items, done_bytes
        if event.total_items is not None:
            done_items += event.items
            done_bytes += event.bytes
            items, size = done_items, done_bytes
        else:
            items, size = done_items + event.items, done_bytes + event.bytes
        bars.update(task, description=f"{title}: {event.folder or ''}", completed=items,
                    size=f"{size / 1048576:.1f} MB")

    with bars:
        yield report
