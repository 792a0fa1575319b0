"""`o365-migrate demo`: plan, run, verify and report on built-in data, against the local sandbox."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from migrate.cli.progress import live_progress
from migrate.errors import MigrateError


def demo(
    folder: Annotated[Path | None, typer.Option("--dir", help="Where to put everything (default: a new folder "
                                                "o365-migrate-demo-TIME here).")] = None,
) -> None:
    """Show the whole move on a sample mailbox: no network beyond this machine, no questions."""
    from migrate.demo import run_demo  # the sandbox and MSAL load only for this command

    folder = folder or Path(f"o365-migrate-demo-{time.strftime('%Y%m%d-%H%M%S')}")
    console = Console()
    console.print(f"Demo in [bold]{escape(str(folder))}[/]: a Thunderbird mailbox → a local Exchange sandbox (EWS)")
    started = time.monotonic()
    with live_progress(console, "Demo") as report:
        result = run_demo(folder, report=report)
    totals = result.run.as_json()["totals"]
    console.print(f"Planned {len(result.plan.included())} folders; moved {totals['created']} messages "
                  f"({totals['bytes'] / 1048576:.1f} MB), skipped {totals['skipped']}, failed {totals['failed']}.")
    verdict = "[green]verified[/]" if result.verification.ok else "[red]NOT verified[/]"
    console.print(f"Verification: {verdict} ({sum(f.matched for f in result.verification.folders)} messages "
                  "matched by Message-ID, dates and flags)")
    console.print(f"Plan:    {escape(str(folder / 'plan.yaml'))}")
    if result.report:
        console.print(f"Report:  [bold]{escape(str(result.report))}[/]")
    console.print(f"Done in {time.monotonic() - started:.0f} s.")
    if not result.verification.ok or result.run.exit_code:
        raise MigrateError("the demo did not verify", hint="run again with --debug and report it")
