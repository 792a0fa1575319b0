"""`o365-migrate playbooks list | show NAME | check [FILE...]`: the provider presets and scenarios."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.discovery.playbooks import Playbook, all_playbooks, find_playbook, load_playbook, playbook_files

app = typer.Typer(help="Provider presets and migration scenarios: servers, sign-in, folder quirks, limits.",
                  no_args_is_help=True)
out = Console()
Lang = Annotated[str, typer.Option("--lang", metavar="sv|en", help="Language of the texts.")]


@app.command("list")
def list_command() -> None:
    """List every playbook: providers first, then scenarios."""
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("Name", "Kind"):
        table.add_column(column, no_wrap=True)
    for column in ("Title", "Domains", "Sign-in"):
        table.add_column(column, overflow="fold")
    for book in sorted(all_playbooks(), key=lambda b: (b.kind != "provider", b.name)):
        domains = ", ".join(book.domains[:4]) + (f" (+{len(book.domains) - 4})" if len(book.domains) > 4 else "")
        table.add_row(book.name, book.kind, escape(book.title), escape(domains),
                      ", ".join(book.auth.methods) if book.kind == "provider" else "")
    out.print(table)


@app.command("show")
def show_command(name: Annotated[str, typer.Argument(help="The playbook's name (see `playbooks list`).")],
                 lang: Lang = "en") -> None:
    """Show one playbook: servers with their sources, sign-in steps, folders, limits, quirks."""
    render(find_playbook(name), lang)


def _say(text: str) -> None:
    out.print(escape(text), highlight=False, soft_wrap=True)


def render(book: Playbook, lang: str) -> None:
    def words(value: object) -> str:
        return str(getattr(value, "sv" if lang == "sv" else "en"))

    _say(f"{book.title} ({book.name}, {book.kind})")
    _say(words(book.summary))
    if book.domains:
        _say("Domains: " + ", ".join(book.domains))
    if book.mx:
        _say("MX: " + ", ".join(book.mx))
    for kind in ("imap", "pop", "smtp"):
        for s in getattr(book.servers, kind):
            mark = "" if s.verified else " (unverified)"
            _say(f"{kind.upper()}: {s.host}:{s.port} {s.security}, user = {s.username}{mark}  [{s.source}]")
    for kind in ("caldav", "carddav"):
        for d in getattr(book.servers, kind):
            mark = "" if d.verified else " (unverified)"
            _say(f"{kind.upper()}: {d.url}{mark}  [{d.source}]")
    if book.probe_hosts:
        _say("Probed first: " + ", ".join(book.probe_hosts))
    _say("Sign-in: " + ", ".join(book.auth.methods))
    if book.auth.app_password:
        _say(f"App password: {book.auth.app_password.link}  [{book.auth.app_password.help}]")
        for n, step in enumerate(getattr(book.auth.app_password.steps, "sv" if lang == "sv" else "en"), 1):
            _say(f"  {n}. {step}")
    if book.auth.note:
        _say(words(book.auth.note))
    if book.folders.exclude:
        _say("Left out by default: " + ", ".join(book.folders.exclude))
    if book.folders.note:
        _say(words(book.folders.note))
    if book.limits.max_message_mb:
        _say(f"Largest message: {book.limits.max_message_mb:g} MB" + (f"  [{book.limits.source}]"
                                                                        if book.limits.source else ""))
    if book.limits.note:
        _say(words(book.limits.note))
    for n, step in enumerate(book.steps, 1):
        _say(f"{n}. {words(step)}")
    for quirk in book.quirks:
        _say("Note: " + words(quirk))


@app.command("check")
def check_command(files: Annotated[list[Path] | None, typer.Argument(help="Playbook files (default: every "
                                                                     "shipped one and $O365M_PLAYBOOKS).")] = None
                  ) -> None:
    """Validate playbooks against the schema; an error names the file and the line."""
    paths = files or playbook_files()
    names: dict[str, Path] = {}
    for path in paths:
        book = load_playbook(path)
        if book.name in names and files:
            _say(f"{path}: replaces {names[book.name]}")
        names[book.name] = path
    _say(f"{len(paths)} playbook(s) valid.")
