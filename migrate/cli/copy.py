"""`o365-migrate copy SOURCE TARGET`: every folder across, what is there already skipped."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.cli.options import Auth, CaFile, Insecure, PasswordEnv, PasswordFile, source_options
from migrate.cli.progress import live_progress
from migrate.copy import CopyResult, copy_mailbox
from migrate.errors import ExitCode, MigrateError, UsageError
from migrate.secrets import secret_provider
from migrate.sources import open_source
from migrate.targets import TargetOptions, open_target

TargetPasswordEnv = Annotated[
    str | None, typer.Option("--target-password-env", metavar="VAR", help="Read the target's password from $VAR.")
]
TargetPasswordFile = Annotated[
    Path | None, typer.Option("--target-password-file", metavar="PATH",
                              help="Read the target's password from a file (chmod 600).")
]
TargetInsecure = Annotated[
    bool, typer.Option("--target-insecure", help="Allow plaintext IMAP to a target on this machine only.")
]
TargetCaFile = Annotated[
    Path | None, typer.Option("--target-ca-file", metavar="PATH",
                              help="Trust this CA for the target's TLS certificate.")
]


def target_options(url: str, password_env: str | None, password_file: Path | None, insecure: bool,
                   ca_file: Path | None) -> TargetOptions:
    if password_env and password_file:
        raise UsageError("--target-password-env and --target-password-file both given", hint="use one of them")
    if ca_file is not None and not ca_file.is_file():
        raise typer.BadParameter(f"{ca_file} is not a file", param_hint="--target-ca-file")
    ask = secret_provider(password_env, password_file, f"Password for {url}: ")

    def secret() -> str:
        try:
            return ask()
        except MigrateError as exc:  # the shared provider's advice names the source's options
            hint = exc.hint.replace("--password-", "--target-password-") if exc.hint else None
            raise type(exc)(exc.message, hint=hint) from None

    return TargetOptions(secret=secret, insecure=insecure, ca_file=ca_file)


def copy(
    source: Annotated[str, typer.Argument(help="Where the mail is: imaps://user@host, pop3s://..., mbox:PATH, "
                                               "maildir:PATH, eml:DIR, emlx:DIR, or sample:.")],
    target: Annotated[str, typer.Argument(help="Where it goes: imaps://user@host, or imap://user@host "
                                               "with STARTTLS.")],
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE",
                                                   help="Also write the result as JSON ('-' for stdout).")] = None,
    password_env: PasswordEnv = None,
    password_file: PasswordFile = None,
    auth: Auth = "auto",
    insecure: Insecure = False,
    ca_file: CaFile = None,
    target_password_env: TargetPasswordEnv = None,
    target_password_file: TargetPasswordFile = None,
    target_insecure: TargetInsecure = False,
    target_ca_file: TargetCaFile = None,
) -> None:
    """Copy every folder of SOURCE into TARGET. Messages already there are skipped, so it can run again."""
    options = source_options(source, password_env, password_file, auth, insecure, ca_file)
    to = target_options(target, target_password_env, target_password_file, target_insecure, target_ca_file)
    to_stdout = json_file is not None and str(json_file) == "-"
    console = Console(stderr=to_stdout)
    with (
        open_source(source, options) as src,
        open_target(target, to) as dst,
        live_progress(console, "Copy") as report,
    ):
        result = copy_mailbox(src, dst, report)
    if json_file is not None:
        _write(json_file, to_stdout, lambda: json.dumps(result.as_json(), indent=2, ensure_ascii=False))
    render(result, console)
    if result.exit_code is not ExitCode.OK:
        # A MigrateError, not typer.Exit: in main()'s non-standalone mode click returns Exit's code
        # instead of raising it, and the process would end with 0.
        what = f"{len(result.failures)} message(s) did not move"
        raise MigrateError(what + (f"; the run stopped early: {result.stopped}" if result.stopped else ""),
                           hint="see the list above; run the same command again to retry them")


def _write(path: Path, to_stdout: bool, text: Callable[[], str]) -> None:
    if to_stdout:
        print(text())
    else:
        path.write_text(text() + "\n", encoding="utf-8")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def render(result: CopyResult, console: Console) -> None:
    table = Table(title=f"Copy of {result.source} to {result.target}", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("Folder", overflow="fold", ratio=1)
    table.add_column("Target folder", overflow="fold", ratio=1)
    for column in ("Created", "Skipped", "Failed", "Size"):
        table.add_column(column, justify="right", no_wrap=True)
    for f in result.folders:  # names are the user's: "[Gmail]/Sent Mail" is not markup
        table.add_row(escape(f.source), escape(f.target), f"{f.created:,}", f"{f.skipped:,}",
                      f"[red]{f.failed:,}[/]" if f.failed else "0", _size(f.bytes))
    table.add_section()
    table.add_row("Total", "", f"{result.created:,}", f"{result.skipped:,}", f"{result.failed:,}",
                  _size(sum(f.bytes for f in result.folders)))
    console.print(table)
    for f in result.folders:
        if f.note:
            console.print(f"[yellow]note[/] {escape(f.source)}: {escape(f.note)}", highlight=False)
    for problem in result.source_problems:
        console.print(f"[yellow]source[/] {escape(problem)}", highlight=False)
    if result.stopped:
        console.print(f"[bold red]stopped early:[/] {escape(result.stopped)}", highlight=False)
    if not result.failures:
        console.print("[green]Nothing failed.[/]" + (" Already there: skipped." if result.skipped else ""))
        return
    console.print(f"[bold red]{len(result.failures)} message(s) did not move:[/]")
    for item in result.failures:
        subject = f" {item.subject!r}" if item.subject else ""
        console.print(f"  {escape(item.folder)} {escape(item.key)}{escape(subject)}: "
                      f"[red]{item.failure.value}[/] {escape(item.reason)}", highlight=False)
