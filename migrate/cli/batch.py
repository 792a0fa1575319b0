"""`batch`: move many mailboxes from a CSV (Microsoft's IMAP migration file as it is), and `batch status`."""

from __future__ import annotations

import json
import logging
import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from typer.core import TyperGroup

from migrate.batch import (
    BatchFile,
    Defaults,
    SecretCell,
    Supervisor,
    batch_lock,
    default_dir,
    default_parallel,
    load_status,
    prepare,
    read_batch,
)
from migrate.batch.columns import column_help
from migrate.batch.needs import require_distributed
from migrate.batch.status import BatchStatus, save_status
from migrate.batch.urls import ADDRESS_SCHEMES, check_place, is_template, tenant_of
from migrate.cli.options import CaFile
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
)
from migrate.errors import ExitCode, MigrateError, UsageError, UserError
from migrate.plan import SignIn

MB = 1024 * 1024
STATE_STYLE = {"done": "green", "failed": "red", "stopped": "yellow", "running": "cyan", "planning": "cyan",
               "pending": "dim"}


class _BatchGroup(TyperGroup):
    """`batch users.csv ...` is `batch run users.csv ...`; `batch status DIR` is its own command."""

    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:  # type: ignore[override]
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(cls=_BatchGroup, no_args_is_help=True,
                  help="Move many mailboxes from a CSV: o365-migrate batch users.csv --to TENANT_OR_TARGET. "
                       "See `o365-migrate batch run --help`.")

RUN_HELP = f"""Move every mailbox a CSV lists: check the whole file first, then N mailboxes at once.

The CSV may be Microsoft's own IMAP migration file as it is (EmailAddress,UserName,Password[,UserRoot];
EmailAddress is the Microsoft 365 mailbox, UserName the login on the old server, admin forms such as
user*admin included). Optional columns give each row what a single run takes. Columns: {column_help()}.
A password cell may be env:VAR or file:PATH instead of the value.

--to says where the mailboxes go. A place without a mailbox is completed by each row's mailbox
(TargetMailbox, else EmailAddress): ews://contoso.onmicrosoft.com[?endpoint=URL] gives
ews://anna@contoso.com[?endpoint=URL] (and names the tenant, unless --tenant does); graph://TENANT likewise;
imaps://HOST[:PORT] gives imaps://anna@contoso.com@HOST. Or a template with {{mailbox}}, {{local}}, {{domain}},
{{email}}, {{user}}: 'imaps://{{local}}@mail.example.net'. A row's Transport (ews, graph, imap) switches a
bare Microsoft 365 place to that transport.

--from is the old server for rows that do not name one (Microsoft's migration endpoint):
imaps://mail.example.com[:993] gives imaps://USERNAME@mail.example.com.

Mailboxes at once (-j): by default 6 into EWS, 8 into Graph or IMAP, never more than the rows or two a CPU
(Exchange Online's budgets are per mailbox; the cap keeps the app's EWS concurrency and the old server's
connection limits safe). Each mailbox runs in its own process, with its plan and journal under
--dir (default: users.batch beside users.csv). Run the same command again to continue: done mailboxes are
skipped, the others resume from their journals; --retry-failed runs only the failed ones and tries the
items the target refused again. Ctrl-C stops every mailbox cleanly."""
# Paragraphs as single lines: the help renderer wraps them to the terminal's width itself.
RUN_HELP = "\n\n".join(" ".join(paragraph.split("\n")) for paragraph in RUN_HELP.split("\n\n"))


@app.command("run", help=RUN_HELP)
def run(
    csv_file: Annotated[Path, typer.Argument(metavar="CSV", help="The mailboxes, one a row.")],
    to: Annotated[str, typer.Option("--to", metavar="TENANT_OR_TARGET", help="Where they go (see above).")],
    source: Annotated[str | None, typer.Option("--from", metavar="URL", help="The old server for rows that name "
                                               "none: imaps://host[:port] or a template.")] = None,
    parallel: Annotated[int | None, typer.Option("-j", "--parallel", min=1, max=64,
                                                 help="Mailboxes at once (default: from the transport).")] = None,
    batch_dir: Annotated[Path | None, typer.Option("--dir", metavar="BATCH_DIR", help="The batch folder (default: "
                                                   "<csv name>.batch beside the CSV).")] = None,
    check: Annotated[bool, typer.Option("--check", help="Only check the CSV; move nothing.")] = False,
    retry_failed: Annotated[bool, typer.Option("--retry-failed", help="Run only the failed mailboxes, and try "
                                               "again the items the target refused.")] = False,
    uploads: Annotated[int | None, typer.Option("--uploads", min=1, max=32, help="Parallel uploads in each "
                                                "mailbox (default: the target's limit).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No live table.")] = False,
    log_json: Annotated[Path | None, typer.Option("--log-json", metavar="FILE",
                                                  help="Write every mailbox's events as JSON lines.")] = None,
    engine: Annotated[str, typer.Option("--engine", metavar="local|celery", help="local: this machine moves every "
                                        "mailbox; celery: one task a mailbox for `o365-migrate worker`s on any "
                                        "machine (needs --broker and --journal-db).")] = "local",
    broker: Annotated[str | None, typer.Option("--broker", metavar="URL", help="--engine celery: the broker, "
                                               "redis://HOST:6379/0 (or env:VAR holding the URL).")] = None,
    journal_db: Annotated[str | None, typer.Option("--journal-db", metavar="URL", help="--engine celery: the "
                                                   "shared journal, postgresql://USER@HOST/DB (or env:VAR).")] = None,
    name: Annotated[str | None, typer.Option("--name", help="--engine celery: the batch's name in the journal "
                                             "database (default: the CSV's name).")] = None,
    tenant_limit: Annotated[int | None, typer.Option("--tenant-limit", min=1, max=1000, help="--engine celery: "
                                                     "at most N mailboxes of one tenant at once, across all "
                                                     "workers.")] = None,
    ca_file: CaFile = None,
    target_password_env: TargetPasswordEnv = None, target_password_file: TargetPasswordFile = None,
    target_insecure: TargetInsecure = False, target_ca_file: TargetCaFile = None,
    tenant: Tenant = None, client_id: ClientId = None, authority: Authority = "https://login.microsoftonline.com",
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    certificate: Certificate = None, auth_ca_file: AuthCaFile = None,
) -> None:
    err = Console(stderr=True)
    check_place(to, "--to")
    if source is not None:
        check_place(source, "--from")
    if target_password_env and target_password_file:
        raise UsageError("--target-password-env and --target-password-file both given", hint="use one of them")
    target_password = (SecretCell("env", target_password_env) if target_password_env else
                       SecretCell("file", str(target_password_file.resolve())) if target_password_file else None)
    defaults = Defaults(
        to=to, source=source, source_ca_file=_file(ca_file, "--ca-file"), target_password=target_password,
        target_insecure=target_insecure, target_ca_file=_file(target_ca_file, "--target-ca-file"),
        sign_in=_sign_in(to, tenant, client_id, authority, client_secret_env, client_secret_file, certificate,
                         auth_ca_file))
    if engine not in ("local", "celery"):
        raise UsageError(f"--engine {engine!r} is not an engine", hint="give --engine local or --engine celery")
    distributed = engine == "celery"
    if distributed and not (broker and journal_db):
        raise UsageError("--engine celery needs --broker URL and --journal-db URL",
                         hint="see README: running a tenant move on several machines")
    if not distributed and (broker or journal_db or name or tenant_limit):
        raise UsageError("--broker, --journal-db, --name and --tenant-limit are for --engine celery",
                         hint="add --engine celery")
    if distributed and (parallel or log_json):
        raise UsageError("-j and --log-json are for the local engine",
                         hint="with --engine celery, each worker's --concurrency says how many mailboxes it moves")
    parsed = read_batch(csv_file, defaults)
    _report_problems(parsed, err)
    if check:
        _render_rows(parsed, Console())
        return
    folder = (batch_dir or default_dir(csv_file)).resolve()
    lock = batch_lock(folder)
    try:
        if distributed:
            assert broker is not None and journal_db is not None
            require_distributed("--engine celery")
            from migrate.cli.batchremote import move_remote  # celery and psycopg only for this engine

            move_remote(parsed, folder, to, name, broker, journal_db, retry_failed, uploads, quiet, err, tenant_limit)
        else:
            _move(parsed, folder, to, parallel, retry_failed, uploads, quiet, log_json, err)
    finally:
        lock.close()


def _file(path: Path | None, option: str) -> str | None:
    if path is None:
        return None
    if not path.is_file():
        raise UsageError(f"{option} {path} is not a file", hint="give the path of a PEM file")
    return str(path.resolve())


def _sign_in(to: str, tenant: str | None, client_id: str | None, authority: str, client_secret_env: str | None,
             client_secret_file: Path | None, certificate: Path | None, auth_ca_file: Path | None) -> SignIn | None:
    """The app that signs in to Microsoft 365 for every mailbox. A batch signs in app-only: a sign-in as one
    user reaches only that user's mailbox, and workers have no terminal for a device code."""
    tenant = tenant or tenant_of(to)
    microsoft = (not is_template(to) and to.partition(":")[0].lower() in ADDRESS_SCHEMES) or \
        "outlook.office365.com" in to.lower()
    if client_id is None:
        if microsoft:
            raise UsageError("a Microsoft 365 target needs --client-id (and --tenant, unless --to names it)",
                             hint="see docs/admin-setup.md for the app registration")
        return None
    if not tenant:
        raise UsageError("--client-id needs --tenant (or a tenant in --to, such as ews://contoso.onmicrosoft.com)")
    if not (client_secret_env or client_secret_file or certificate):
        raise UsageError("a batch signs in to Microsoft 365 as the app, not as one user",
                         hint="give --client-secret-env VAR, --client-secret-file PATH or --certificate PEM")
    return SignIn(tenant=tenant, client_id=client_id, authority=authority, client_secret_env=client_secret_env,
                  client_secret_file=str(client_secret_file.resolve()) if client_secret_file else None,
                  certificate=str(certificate.resolve()) if certificate else None,
                  ca_file=str(auth_ca_file.resolve()) if auth_ca_file else None)


def _report_problems(parsed: BatchFile, err: Console) -> None:
    for warning in parsed.warnings:
        err.print(f"[yellow]warning:[/] {escape(warning)}", highlight=False, soft_wrap=True)
    for problem in parsed.problems:
        err.print(escape(problem.where(parsed.path)), highlight=False, soft_wrap=True)
    if parsed.problems:
        raise UserError(f"{len(parsed.problems)} problem(s) in {parsed.path}; nothing was moved",
                        hint="fix them and run again (--check checks the file alone)")
    if not parsed.rows:
        raise UserError(f"{parsed.path} lists no mailboxes", hint="add a row per mailbox under the header")


def _render_rows(parsed: BatchFile, console: Console) -> None:
    table = Table(title=f"{escape(str(parsed.path))}: {len(parsed.rows)} mailbox(es), no problems",
                  title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("Line", "Mailbox", "Source", "Target"):
        table.add_column(column, overflow="fold")
    for row in parsed.rows:
        table.add_row(str(row.line), escape(row.id), escape(row.source.url), escape(row.target.url))
    console.print(table)


def _move(parsed: BatchFile, folder: Path, to: str, parallel: int | None, retry_failed: bool, uploads: int | None,
          quiet: bool, log_json: Path | None, err: Console) -> None:
    debug = logging.getLogger().isEnabledFor(logging.DEBUG)
    status, jobs = prepare(folder, parsed.path, to, parsed.rows, retry_failed=retry_failed, workers=uploads,
                           debug=debug)
    save_status(folder, status)
    console = Console()
    n = parallel or default_parallel([job.target.url for job, _ in jobs])
    skipped = len(parsed.rows) - len(jobs)
    if skipped:
        err.print(f"{skipped} mailbox(es) {'not failed' if retry_failed else 'done'} before: skipped", highlight=False)
    log = log_json.open("a", encoding="utf-8") if log_json else None
    live_table = not quiet and console.is_terminal

    def on_event(mailbox_id: str, event: dict[str, Any]) -> None:
        if log is not None:
            log.write(json.dumps({"time": round(time.time(), 3), "mailbox": mailbox_id,
                                  **{k: v for k, v in event.items() if k != "time"}}, ensure_ascii=False) + "\n")
            log.flush()
        if not live_table and not quiet and event.get("event") == "mailbox" and \
                event["state"] in ("done", "failed", "stopped"):
            err.print(f"{escape(mailbox_id)}: {event['state']}"
                          + (f": {escape(event['error'])}" if event.get("error") else ""), highlight=False)

    supervisor = Supervisor(folder, status, jobs, n, on_event)
    try:
        if live_table:
            with Live(get_renderable=lambda: _live(supervisor), console=console, refresh_per_second=4,
                      transient=True):
                finished = supervisor.run()
        else:
            finished = supervisor.run()
    finally:
        if log is not None:
            log.close()
    console.print(_summary(status, folder))
    if not finished:
        err.print(f"[yellow]stopped.[/] Every mailbox's journal is closed; run the same command again to resume:\n"
                  f"  {escape(_again())}", highlight=False, soft_wrap=True)  # a command to copy: never wrapped
        raise typer.Exit(int(ExitCode.INTERRUPTED))
    failed = [m for m in status.mailboxes if m.state == "failed"]
    if failed:
        raise MigrateError(f"{len(failed)} of {len(status.mailboxes)} mailbox(es) failed "
                           f"(first: {failed[0].id}: {failed[0].error})",
                           hint=f"fix what the errors say (o365-migrate batch status {folder}), then run the same "
                                "command again, or add --retry-failed to run only the failed ones")


def _again() -> str:
    """The command that was run, to run again: its arguments hold no secrets (those come by env or file)."""
    return shlex.join(["o365-migrate", *[a for a in sys.argv[1:] if a != "--retry-failed"]])


def _live(supervisor: Supervisor) -> Table:
    table = Table(box=box.SIMPLE_HEAD, title="Batch", title_justify="left")
    for column, justify in (("Mailbox", "left"), ("Phase", "left"), ("Progress", "right"), ("Rate", "right"),
                            ("Errors", "left")):
        table.add_column(column, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for m in supervisor.status.mailboxes:
        live = supervisor.live.get(m.id)
        if live is None:
            continue
        style = STATE_STYLE.get(m.state, "")
        phase = m.phase if m.state in ("planning", "running") and m.phase else m.state
        progress = ""
        rate = ""
        if m.state in ("planning", "running"):
            total = f" / {live.planned:,}" if live.planned is not None and live.phase != "inventory" else ""
            progress = f"{live.items:,}{total} ({live.bytes / MB:,.1f} MB)"
            if live.phase == "upload" and live.items:
                rate = f"{live.items_per_s:,.0f} msg/s {live.bytes_per_s / MB:,.1f} MB/s"
        elif m.totals:
            progress = f"{m.totals.get('created', 0):,} created"
        errors = m.error or live.note or (f"{m.totals['failed']} failed" if m.totals.get("failed") else "")
        table.add_row(escape(m.id), f"[{style}]{escape(phase)}[/]", progress, rate, escape(errors or ""))
    return table


def _summary(status: BatchStatus, folder: Path) -> Table:
    counts = status.counts()
    title = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
    table = Table(title=f"Batch {escape(str(folder))}: {title}", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Mailbox", overflow="fold")
    table.add_column("State")
    for column in ("Created", "Skipped", "Failed"):
        table.add_column(column, justify="right")
    table.add_column("Verified")
    table.add_column("Error", overflow="fold", ratio=1)
    for m in status.mailboxes:
        t = m.totals
        verified = {True: "[green]yes[/]", False: "[red]no[/]"}.get(t.get("verified"), "")  # type: ignore[arg-type]
        table.add_row(escape(m.id), f"[{STATE_STYLE.get(m.state, '')}]{m.state}[/]", f"{t.get('created', 0):,}",
                      f"{t.get('skipped', 0):,}", f"{t.get('failed', 0):,}", verified, escape(m.error or ""))
    return table


@app.command("status")
def status(
    batch_dir: Annotated[Path, typer.Argument(metavar="BATCH_DIR", help="The batch folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print batch.json with a count per state, for scripts.")]
    = False,
) -> None:
    """Where every mailbox of a batch stands (exit code 0 when all are done, 1 otherwise)."""
    current = load_status(batch_dir)
    if current.engine == "celery":
        require_distributed("a distributed batch's status")
        from migrate.cli.batchremote import refresh_status  # psycopg only for a distributed batch

        refresh_status(current, batch_dir)
    if as_json:
        print(json.dumps({**current.model_dump(mode="json"), "counts": current.counts()}, indent=2,
                         ensure_ascii=False))
    else:
        Console().print(_summary(current, batch_dir))
    if any(m.state != "done" for m in current.mailboxes):
        raise typer.Exit(int(ExitCode.FAILED))

