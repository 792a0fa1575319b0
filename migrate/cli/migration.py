"""`plan`, `run` and `verify`: the migration itself. Each parses, calls one library function, renders."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.cli.options import Auth, CaFile, Insecure, PasswordEnv, PasswordFile, source_connection
from migrate.cli.progress import event_log, live_progress
from migrate.cli.targetopts import (
    AuthCaFile,
    Authority,
    Certificate,
    ClientId,
    ClientSecretEnv,
    ClientSecretFile,
    TargetCaFile,
    TargetInsecure,
    TargetPasswordEnv,
    TargetPasswordFile,
    Tenant,
    TransportOption,
    target_connection,
)
from migrate.engine.journal import journal_for_plan
from migrate.engine.runner import RunResult
from migrate.errors import MigrateError, UsageError
from migrate.migration import plan_migration, run_plan, verify_plan
from migrate.plan import Filters, Plan, load_plan, save_plan
from migrate.targets import Failure

if TYPE_CHECKING:
    from migrate.preflight import Preflight

MB = 1024 * 1024

# The options of `run` that `copy`, its shortcut, takes too.
JournalFile = Annotated[
    Path | None, typer.Option("--journal", help="Where progress is kept (default: beside the plan; for a source "
                              "URL, in the state folder, one journal per source and target).")]
Workers = Annotated[
    int | None, typer.Option("-j", "--workers", min=1, max=32, help="Parallel uploads (default: the target's limit).")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Read and check everything, upload nothing.")]
RetryFailed = Annotated[
    bool, typer.Option("--retry-failed", help="Try again the messages the target refused (passing failures are "
                       "always tried again).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
LogJson = Annotated[
    Path | None, typer.Option("--log-json", metavar="FILE", help="Write progress events as JSON lines.")]
JsonFile = Annotated[
    Path | None, typer.Option("--json", metavar="FILE", help="Write the result as JSON ('-' for stdout).")]


def _write_json(path: Path | None, data: dict[str, Any]) -> None:
    if path is None:
        return
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    if str(path) == "-":
        print(text)
    else:
        path.write_text(text + "\n", encoding="utf-8")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def plan(
    source: Annotated[str, typer.Argument(help="Where the mail is (see `inventory`).")],
    to: Annotated[str, typer.Option("--to", help="Where it goes: m365://mailbox@domain (preflight chooses EWS, "
                                                 "IMAP or Graph), ews://, graph:// or imaps://user@host.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="The plan file to write (YAML).")],
    since: Annotated[str | None, typer.Option("--since", metavar="YYYY-MM-DD", help="Only mail from this day.")] = None,
    until: Annotated[str | None, typer.Option("--until", metavar="YYYY-MM-DD", help="Only mail up to this day.")]
    = None,
    exclude_folder: Annotated[list[str] | None, typer.Option("--exclude-folder", metavar="GLOB",
                                                             help="Leave out folders matching (repeatable).")] = None,
    max_message_size: Annotated[int, typer.Option("--max-message-size", metavar="MB",
                                                  help="Leave out larger messages.")] = 150,
    no_dedupe: Annotated[bool, typer.Option("--no-dedupe", help="Do not skip messages already on the target.")]
    = False,
    transport: TransportOption = None,
    password_env: PasswordEnv = None, password_file: PasswordFile = None, auth: Auth = "auto",
    insecure: Insecure = False, ca_file: CaFile = None,
    target_password_env: TargetPasswordEnv = None, target_password_file: TargetPasswordFile = None,
    target_insecure: TargetInsecure = False, target_ca_file: TargetCaFile = None,
    tenant: Tenant = None, client_id: ClientId = None, authority: Authority = "https://login.microsoftonline.com",
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    certificate: Certificate = None, auth_ca_file: AuthCaFile = None,
) -> None:
    """Inventory SOURCE and write a plan you can read and edit: folders, exclusions, estimate."""
    src = source_connection(source, password_env, password_file, auth, insecure, ca_file)
    dst = target_connection(to, target_password_env, target_password_file, target_insecure, target_ca_file, tenant,
                            client_id, authority, client_secret_env, client_secret_file, certificate, auth_ca_file)
    filters = Filters(since=_day(since, "--since"), until=_day(until, "--until"),
                      exclude_folders=exclude_folder or [], max_message_size=max_message_size * MB)
    console = Console()
    with live_progress(console, "Inventory") as report:
        from migrate.cli.preflight import render_preflight
        from migrate.preflight import parse_transports

        made, _ = plan_migration(src, dst, filters, dedupe=not no_dedupe, report=report,
                                 chosen=parse_transports(transport) if transport else None,
                                 on_preflight=lambda found: render_preflight(found, console, brief=True))
    save_plan(made, output)
    render_plan(made, console)
    console.print(f"Plan written to [bold]{escape(str(output))}[/]. Review it, then run: "
                  f"o365-migrate run {escape(str(output))}")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a date; write YYYY-MM-DD", param_hint=option) from None


def render_plan(made: Plan, console: Console) -> None:
    table = Table(title=f"Plan: {escape(made.source.url)} → {escape(made.target.url)}", title_justify="left",
                  box=box.SIMPLE_HEAD)
    table.add_column("Folder", overflow="fold", ratio=1)
    table.add_column("→ Exchange", overflow="fold", ratio=1)
    table.add_column("Messages", justify="right")
    table.add_column("Size", justify="right")
    for f in made.folders:
        style = "" if f.include else "dim strike"
        table.add_row(escape(f.source), escape("/".join(f.target)), f"{f.messages:,}", f"{f.bytes / MB:.1f} MB",
                      style=style)
    console.print(table)
    render_left_out(made, console)
    if made.estimate:
        est = made.estimate
        console.print(f"Estimate: {est.messages:,} messages, {est.bytes / MB:.1f} MB, about "
                      f"{_duration(est.seconds)} ({escape(est.basis)})", highlight=False)


def render_left_out(made: Plan, console: Console) -> None:
    for e in made.excluded:
        console.print(f"  [yellow]left out[/] {escape(e.folder)}{' ' + escape(e.message) if e.message else ''}: "
                      f"{escape(e.reason)}", highlight=False)


def _state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "o365-migrate" / "journals"


def run(
    plan_or_source: Annotated[str, typer.Argument(metavar="PLAN_OR_SOURCE",
                                                  help="A plan file, or a source URL with --to.")],
    to: Annotated[str | None, typer.Option("--to", help="With a source URL: the target, planned in memory.")]
    = None,
    journal: JournalFile = None,
    workers: Workers = None,
    dry_run: DryRun = False,
    retry_failed: RetryFailed = False,
    quiet: Quiet = False,
    log_json: LogJson = None,
    json_file: JsonFile = None,
    transport: TransportOption = None,
    password_env: PasswordEnv = None, password_file: PasswordFile = None, auth: Auth = "auto",
    insecure: Insecure = False, ca_file: CaFile = None,
    target_password_env: TargetPasswordEnv = None, target_password_file: TargetPasswordFile = None,
    target_insecure: TargetInsecure = False, target_ca_file: TargetCaFile = None,
    tenant: Tenant = None, client_id: ClientId = None, authority: Authority = "https://login.microsoftonline.com",
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    certificate: Certificate = None, auth_ca_file: AuthCaFile = None,
) -> None:
    """Run a plan (or plan SOURCE --to TARGET in memory and run it). Safe to stop and run again."""
    console = Console(stderr=json_file is not None and str(json_file) == "-")
    chosen = None
    if transport:
        from migrate.preflight import parse_transports

        chosen = parse_transports(transport)
    checked: list[bool] = []

    def show(found: Preflight) -> None:
        if not checked and (not quiet or not found.ok):
            from migrate.cli.preflight import render_preflight

            render_preflight(found, console, brief=True)
        checked.append(True)

    path = Path(plan_or_source)
    if to is None:
        if not path.exists():
            raise UsageError(f"{plan_or_source} is not a plan file", hint="give a plan, or a source URL with --to")
        made = load_plan(path)
        journal = journal or journal_for_plan(path)
    else:
        src = source_connection(plan_or_source, password_env, password_file, auth, insecure, ca_file)
        dst = target_connection(to, target_password_env, target_password_file, target_insecure, target_ca_file,
                                tenant, client_id, authority, client_secret_env, client_secret_file, certificate,
                                auth_ca_file)
        with live_progress(console, "Inventory", disable=quiet) as report:
            made, _ = plan_migration(src, dst, report=report, chosen=chosen, on_preflight=show)
        render_left_out(made, console)  # no plan file was shown: say here what will not move
        if journal is None:
            key = hashlib.sha256(f"{src.url}\n{dst.url}".encode()).hexdigest()[:16]
            _state_dir().mkdir(parents=True, exist_ok=True, mode=0o700)
            journal = _state_dir() / f"{key}.sqlite"
    with event_log(log_json) as log, live_progress(console, "Upload", disable=quiet, also=log) as report:
        result = run_plan(made, journal, workers=workers, dry_run=dry_run, report=report, retry_failed=retry_failed,
                          chosen=chosen, on_preflight=show, preflight=to is None)  # planned just now: checked
    _write_json(json_file, result.as_json())
    render_run(result, console)
    if not dry_run:
        console.print(f"Journal: {escape(str(journal))}. Next: o365-migrate verify {escape(plan_or_source)}"
                      if to is None else f"Journal: {escape(str(journal))}")
    if result.exit_code:
        # Passing failures are tried again by the next run; what the target refused only with --retry-failed.
        refused = any(f.get("failure") != Failure.RETRY.value for f in result.failures)
        raise MigrateError(f"{len(result.failures)} item(s) did not move"
                           + (f"; stopped: {result.stopped}" if result.stopped else ""),
                           hint="fix what the reasons say, then run the same command again: it resumes"
                           + (" (add --retry-failed for what the target refused)" if refused else ""))


def render_run(result: RunResult, console: Console) -> None:
    """The outcome per folder, what did not move and why, and what the source could not read."""
    table = Table(title=f"{'Dry run' if result.dry_run else 'Run'}: {escape(result.source)} → "
                        f"{escape(result.target)}", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Folder", "→ Exchange"):
        table.add_column(column, overflow="fold", ratio=1)
    for column in ("Created" if not result.dry_run else "Would send", "Skipped", "Failed", "Earlier"):
        table.add_column(column, justify="right")
    for f in result.folders:
        table.add_row(escape(f.source), escape(f.target), f"{f.created:,}", f"{f.skipped:,}", f"{f.failed:,}",
                      f"{f.already:,}")
    if len(result.folders) > 1:
        table.add_section()
        table.add_row("Total", "", *(f"{result.total(k):,}" for k in ("created", "skipped", "failed", "already")))
    console.print(table)
    for failure in result.failures[:20]:
        console.print(f"  [red]not moved[/] {escape(str(failure['folder']))}: "
                      f"{escape(str(failure.get('subject') or failure.get('key')))}: "
                      f"[red]{escape(str(failure['failure']))}[/] {escape(str(failure['reason']))}", highlight=False)
    if len(result.failures) > 20:
        console.print(f"  ... and {len(result.failures) - 20} more (see --json or the report)")
    for problem in result.source_problems:
        console.print(f"  [yellow]source[/] {escape(problem)}", highlight=False)
    if result.stopped:
        console.print(f"[red]stopped:[/] {escape(result.stopped)}", highlight=False)


def verify(
    plan_file: Annotated[Path, typer.Argument(metavar="PLAN", help="The plan that was run.")],
    journal: Annotated[Path | None, typer.Option("--journal", help="The run's journal (default: beside the "
                                                 "plan).")] = None,
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE", help="Write the result as JSON.")]
    = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Reconcile source and target per folder: match, missing on target, extra on target, differs."""
    made = load_plan(plan_file)
    console = Console(stderr=json_file is not None and str(json_file) == "-")
    with live_progress(console, "Verify", disable=quiet) as report:
        result = verify_plan(made, journal or journal_for_plan(plan_file), report=report)
    _write_json(json_file, result.as_json())
    table = Table(title="Verification" + (" (content hashes compared)" if result.hashes_compared else
                                          " (Message-ID, dates and flags; Exchange rebuilds MIME)"),
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Folder", "→ Exchange"):
        table.add_column(column, overflow="fold", ratio=1)
    for column in ("Source", "Target", "Match", "Missing", "Extra", "Differs"):
        table.add_column(column, justify="right")
    table.add_column("Verdict")
    from migrate.engine.verify import Verdict

    for f in result.folders:
        colour = "green" if f.verdict is Verdict.MATCH else ("yellow" if f.verdict is Verdict.EXTRA else "red")
        table.add_row(escape(f.source), escape(f.target), str(f.source_count - f.excluded), str(f.target_count),
                      str(f.matched), str(f.count(Verdict.MISSING)), str(f.count(Verdict.EXTRA)),
                      str(f.count(Verdict.DIFFERS)), f"[{colour}]{f.verdict.value}[/]")
    console.print(table)
    for f in result.folders:
        for d in [d for d in f.differences if d.verdict is not Verdict.EXTRA][:10]:
            console.print(f"  [red]{d.verdict.value}[/] {escape(f.source)} {escape(d.message_id or d.key or '')}: "
                          f"{escape(d.detail)}", highlight=False)
    if not result.ok:
        raise MigrateError("verification found missing or differing messages",
                           hint="run the plan again (it resumes and fills gaps), then verify again")
    console.print("[green]Verified:[/] every message that was meant to move is on the target.")
