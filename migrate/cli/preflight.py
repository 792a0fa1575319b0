"""`o365-migrate preflight --to TENANT_OR_MAILBOX`: which transport into Microsoft 365 works, and what an admin
does about the ones that do not. `plan` and `run` show the same table when they check before they start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from migrate.cli.targetopts import (
    AuthCaFile,
    Authority,
    Certificate,
    ClientId,
    ClientSecretEnv,
    ClientSecretFile,
    TargetCaFile,
    TargetInsecure,
    Tenant,
    TransportOption,
    target_connection,
)
from migrate.errors import MigrateError, UsageError
from migrate.model import ItemKind
from migrate.preflight import Preflight, Status, parse_transports
from migrate.preflight.result import KIND_WORDS

GB = 1024 ** 3
MB = 1024 ** 2
_MARK = {Status.WORKS: "[green]works[/]", Status.REFUSED: "[red]refused[/]", Status.NOT_CHECKED: "[dim]not checked[/]"}


def render_preflight(result: Preflight, console: Console, brief: bool = False) -> None:
    """The table of transports by kind, then each refusal with its fix, the limits, the choice and the problems."""
    table = Table(title=f"Preflight: {escape(result.mailbox or result.target)} "
                        f"({'app-only' if result.app_only else 'delegated'} sign-in)",
                  title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("Transport")
    kinds = [k for k in KIND_WORDS if any(f.kind is k for f in result.findings)]
    for kind in kinds:
        table.add_column(KIND_WORDS[kind].capitalize())
    for transport in dict.fromkeys(f.transport for f in result.findings):
        cells = []
        for kind in kinds:
            finding = result.finding(transport, kind)
            cells.append("[dim]-[/]" if finding is None else _MARK[finding.status])
        table.add_row(transport.value.upper(), *cells)
    console.print(table)
    shown: set[tuple[str | None, tuple[str, ...]]] = set()
    for f in result.findings:
        if f.status is Status.WORKS or (f.reason, tuple(f.fix)) in shown:
            continue
        shown.add((f.reason, tuple(f.fix)))
        console.print(f"  [red]{f.transport.value.upper()}[/] {escape(f.reason or '')}", highlight=False)
        if not brief or f.status is Status.REFUSED:
            for line in f.fix:
                console.print(f"      fix: {escape(line)}", highlight=False)
    _render_limits(result, console)
    if result.choice:
        chosen = ", ".join(f"{KIND_WORDS[k]} by {t.value.upper() if t else '[red]nothing[/]'}"
                           for k, t in result.choice.items() if k in kinds or t is not None)
        console.print(f"Transport: {chosen}", highlight=False)
    for problem in result.problems:
        colour = "red" if problem.blocking else "yellow"
        console.print(f"[{colour}]{'problem' if problem.blocking else 'warning'}:[/] {escape(problem.what)}",
                      highlight=False)
        for line in problem.fix:
            console.print(f"      fix: {escape(line)}", highlight=False)


def _render_limits(result: Preflight, console: Console) -> None:
    lim = result.limits
    parts = []
    if lim.max_message_bytes is not None:
        parts.append(f"largest message {lim.max_message_bytes / MB:.0f} MB")
    if lim.quota_bytes is not None:
        parts.append(f"quota {lim.quota_bytes / GB:.2f} GB")
    if lim.used_bytes is not None:
        parts.append(f"used {lim.used_bytes / GB:.2f} GB")
    if lim.mailbox_full:
        parts.append("[red]full[/]")
    if result.source_bytes is not None:
        parts.append(f"the move brings {result.source_bytes / GB:.2f} GB")
    if parts:
        console.print("Mailbox: " + ", ".join(parts), highlight=False)
    for note in lim.notes:
        console.print(f"  [yellow]note[/] {escape(note)}", highlight=False)
    for line in lim.fix:
        console.print(f"      fix: {escape(line)}", highlight=False)


def preflight(
    to: Annotated[str, typer.Option("--to", help="The Microsoft 365 mailbox (m365://user@domain), a tenant "
                                                 "(m365://contoso.onmicrosoft.com), or an ews://, graph:// or "
                                                 "imaps:// target.")],
    transport: TransportOption = None,
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE", help="Write the result as JSON "
                                                   "('-' for stdout).")] = None,
    target_ca_file: TargetCaFile = None, target_insecure: TargetInsecure = False,
    tenant: Tenant = None, client_id: ClientId = None, authority: Authority = "https://login.microsoftonline.com",
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    certificate: Certificate = None, auth_ca_file: AuthCaFile = None,
) -> None:
    """Sign in and check EWS, IMAP and Graph for this app and mailbox: what works, what an admin must fix, the
    mailbox's limits, and the transport a move will use for mail, calendars and contacts."""
    from migrate.migration import preflight_target

    if not (tenant and client_id):
        raise UsageError("preflight signs in to Microsoft 365: --tenant and --client-id are needed",
                         hint="see docs/admin-setup.md for the app registration")
    conn = target_connection(to, None, None, target_insecure, target_ca_file, tenant, client_id, authority,
                             client_secret_env, client_secret_file, certificate, auth_ca_file)
    chosen = parse_transports(transport) if transport else None
    result = preflight_target(conn, (ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT), chosen)
    if result is None:
        raise UsageError(f"{to} is not a Microsoft 365 target", hint="use m365://user@domain")
    console = Console(stderr=json_file is not None and str(json_file) == "-")
    if json_file is not None:
        text = json.dumps(result.as_json(), indent=2, ensure_ascii=False)
        if str(json_file) == "-":
            print(text)
        else:
            json_file.write_text(text + "\n", encoding="utf-8")
    render_preflight(result, console)
    if not result.ok:
        from migrate.migration import PreflightRefused

        first = next(p for p in result.problems if p.blocking)
        raise PreflightRefused(f"preflight: {first.what}", result, hint="an admin fixes what the table says, "
                               "then run preflight again")
    if not any(t for t in result.choice.values()) and result.mailbox:
        raise MigrateError("preflight: no transport works for this mailbox", hint="see the fixes above")
