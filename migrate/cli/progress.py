"""Rendering library progress: rich bars for people, JSON lines for machines (the only place that draws)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from migrate.progress import Progress as Event
from migrate.progress import Reporter


@contextmanager
def event_log(path: Path | None) -> Iterator[Reporter | None]:
    """Progress events as JSON lines, one object a line, flushed as they come."""
    if path is None:
        yield None
        return
    with path.open("a", encoding="utf-8") as fh:
        def write(event: Event) -> None:
            record = {"time": round(time.time(), 3), **{k: v for k, v in vars(event).items() if v is not None}}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()

        yield write


@contextmanager
def live_progress(console: Console, title: str, disable: bool = False,
                  also: Reporter | None = None) -> Iterator[Reporter]:
    """An overall bar plus one for the folder being worked on, with items, MB/s and waits."""
    bars = Progress(
        SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TextColumn("{task.fields[note]}"), TimeElapsedColumn(),
        console=console, transient=True, disable=disable or not console.is_terminal,
    )
    overall = bars.add_task(title, total=None, note="", rate="")
    folder_task = bars.add_task("", total=None, note="", rate="", visible=False)
    started = time.monotonic()
    done_items = 0
    done_bytes = 0

    def report(event: Event) -> None:
        nonlocal done_items, done_bytes
        if also is not None:
            also(event)
        items, size = done_items + event.items, done_bytes + event.bytes
        if event.total_items is not None:  # the folder is finished
            done_items, done_bytes = items, size
        elapsed = max(time.monotonic() - started, 1e-6)
        rate = f"{items / elapsed:,.0f} msg/s {size / elapsed / 1048576:,.1f} MB/s"
        bars.update(overall, completed=items, note=escape(event.note or ""), rate=rate)
        bars.update(folder_task, description=f"  {escape(event.folder or '')}", completed=event.items,
                    total=event.total_items, visible=event.folder is not None)

    with bars:
        yield report
