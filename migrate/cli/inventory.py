"""`o365-migrate inventory SOURCE`: what is there, and what will cause trouble."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.cli.options import Auth, CaFile, Insecure, PasswordEnv, PasswordFile, source_options
from migrate.cli.progress import live_progress
from migrate.inventory import Inventory, InventoryWarning, take_inventory
from migrate.model import ItemKind
from migrate.sources import open_source


def inventory(
    source: Annotated[str, typer.Argument(help="imaps://user@host, pop3s://..., mbox:PATH, maildir:PATH, "
                                               "eml:DIR, emlx:DIR, ics:PATH, vcf:PATH, caldav+https://user@host, "
                                               "carddav+https://user@host, or sample: for the built-in mailbox.")],
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE",
                                                   help="Also write the inventory as JSON ('-' for stdout).")] = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    auth: Auth = "auto",
    insecure: Insecure = False,
    ca_file: CaFile = None,
) -> None:
    """List folders with their role, counts, sizes and dates, and warn of what Exchange will refuse."""
    options = source_options(source, password_env, password_file, auth, insecure, ca_file)
    to_stdout = json_file is not None and str(json_file) == "-"
    console = Console(stderr=to_stdout)
    with open_source(source, options) as src, live_progress(console, "Inventory") as report:
        result = take_inventory(src, report)
    if json_file is not None:
        text = json.dumps(result.as_json(), indent=2, ensure_ascii=False)
        if to_stdout:
            print(text)
        else:
            json_file.write_text(text + "\n", encoding="utf-8")
    render(result, console)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def render(result: Inventory, console: Console) -> None:
    table = Table(title=f"Inventory of {escape(result.source)}", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Folder", overflow="fold", ratio=1)
    table.add_column("Role", no_wrap=True)
    mail_only = all(f.folder.kind is ItemKind.MAIL for f in result.folders)
    for column in ("Messages" if mail_only else "Items", "Size"):
        table.add_column(column, justify="right", no_wrap=True)
    table.add_column("Period", no_wrap=True)
    wide = console.width >= 100
    if wide:
        table.add_column("Largest", justify="right", no_wrap=True)
    for f in result.folders:
        period = f"{f.oldest:%Y-%m} – {f.newest:%Y-%m}" if f.oldest and f.newest else ""
        row = [escape(f.folder.name), f.folder.role.value, f"{f.messages:,}", _size(f.bytes), period]
        table.add_row(*row, *([_size(f.largest.size) if f.largest else ""] if wide else []))
    table.add_section()
    table.add_row("Total", "", f"{result.messages:,}", _size(result.bytes), "", *([""] if wide else []))
    console.print(table)
    if not result.warnings:
        console.print("[green]No warnings.[/]")
        return
    console.print(f"[bold yellow]{len(result.warnings)} warning(s)[/]")
    by_code: dict[str, list[InventoryWarning]] = {}
    for w in result.warnings:
        by_code.setdefault(w.code, []).append(w)
    for code, found in by_code.items():
        if all(w.message is not None for w in found):
            places = Counter(w.folder or "" for w in found)
            where = ", ".join(f"{name} {n}" for name, n in places.most_common(4))
            more = "" if len(places) <= 4 else f" and {len(places) - 4} more folders"
            detail = found[0].detail if len(found) == 1 else _general(found[0].detail)
            console.print(f"  [yellow]{code}[/] x{len(found)} ({escape(where)}{more}): {escape(detail)}",
                          highlight=False)
        else:
            for w in found[:5]:
                where = escape(w.folder + ": ") if w.folder else ""
                console.print(f"  [yellow]{code}[/] {where}{escape(w.detail)}", highlight=False)
            if len(found) > 5:
                console.print(f"  [yellow]{code}[/] ... and {len(found) - 5} more (see --json)")


def _general(detail: str) -> str:
    """The part of a per-message detail that holds for all of them (after the first colon)."""
    head, sep, tail = detail.partition(": ")
    return tail if sep and any(ch.isdigit() for ch in head) else detail
