"""The steps of a migration as library calls: plan, run, verify. Commands and the wizard call these.

A plan names where secrets come from; here they are turned into the options that sources and
targets take, so no command holds migration logic of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from migrate.engine.journal import Journal
from migrate.engine.runner import Runner, RunResult, in_date_range
from migrate.engine.verify import Verification, check_folder
from migrate.errors import UserError
from migrate.inventory import Inventory, take_inventory
from migrate.model import MessageRef
from migrate.plan import Connection, Filters, Plan, make_plan
from migrate.progress import Reporter, silent
from migrate.secrets import secret_provider
from migrate.sources import Source, SourceOptions, open_source
from migrate.targets import Target, TargetOptions, open_target
from migrate.targets.base import target_kinds

LOCAL_BYTES_PER_SECOND = None  # a plain IMAP server: no published budget


def source_options(conn: Connection) -> SourceOptions:
    return SourceOptions(
        secret=conn.held_secret() or secret_provider(
            conn.password_env, Path(conn.password_file) if conn.password_file else None, f"Password for {conn.url}: "),
        auth=conn.auth, insecure=conn.insecure, ca_file=Path(conn.ca_file) if conn.ca_file else None,
    )


def target_options(conn: Connection) -> TargetOptions:
    token: Callable[[], str] | None = None
    if conn.sign_in is not None:
        token = _token_provider(conn)
    secret = None
    if conn.sign_in is None:
        secret = conn.held_secret() or secret_provider(
            conn.password_env, Path(conn.password_file) if conn.password_file else None, f"Password for {conn.url}: ",
            option="--target-password")
    return TargetOptions(secret=secret, token=token, insecure=conn.insecure,
                         ca_file=Path(conn.ca_file) if conn.ca_file else None)


def _token_provider(conn: Connection) -> Callable[[], str]:
    from migrate.auth import AuthSettings, TokenProvider, Transport, client_credential

    assert conn.sign_in is not None
    s = conn.sign_in
    scheme = conn.url.partition(":")[0].lower()
    transport = {"ews": Transport.EWS, "graph": Transport.GRAPH}.get(scheme, Transport.IMAP)
    credential = None
    if s.client_secret_env or s.client_secret_file or s.certificate:
        credential = client_credential(s.client_secret_env, Path(s.client_secret_file) if s.client_secret_file
                                       else None, Path(s.certificate) if s.certificate else None)
    settings = AuthSettings(transport, tenant=s.tenant, client_id=s.client_id, authority=s.authority,
                            credential=credential, ca_file=Path(s.ca_file) if s.ca_file else None)
    mailbox = conn.url.split("://", 1)[-1].split("?", 1)[0].rsplit("@", 1)
    return TokenProvider(settings, mailbox="@".join(mailbox) if len(mailbox) == 2 else None)


def open_plan_source(plan: Plan) -> Source:
    return open_source(plan.source.url, source_options(plan.source))


def open_plan_target(plan: Plan) -> Target:
    return open_target(plan.target.url, target_options(plan.target))


def plan_migration(source: Connection, target: Connection, filters: Filters | None = None, dedupe: bool = True,
                   report: Reporter = silent) -> tuple[Plan, Inventory]:
    """Inventory the source, map its folders, and estimate from the target's upload budget."""
    with open_source(source.url, source_options(source)) as src:
        inventory = take_inventory(src, report)
    return plan_from_inventory(inventory, source, target, filters, dedupe), inventory


def plan_from_inventory(inventory: Inventory, source: Connection, target: Connection, filters: Filters | None = None,
                        dedupe: bool = True) -> Plan:
    """The plan for an inventory already taken (the wizard shows the inventory before the target is known)."""
    # The budget is a property of the service, not of the transport: Exchange Online's for any Microsoft host.
    online = any(h in target.url.lower() for h in ("office365.com", "outlook.com", "microsoft.com"))
    budget = None if not online else 150 * 1024 * 1024 / 300
    return make_plan(inventory, source, target, filters, dedupe, budget)


def refuse_what_the_target_cannot_hold(plan: Plan) -> None:
    """A plan edited by hand may include a calendar for a mail-only target: say so before anything moves."""
    holds = target_kinds(plan.target.url)
    refused = [f for f in plan.included() if f.kind not in holds]
    if refused:
        first = refused[0]
        raise UserError(f"the plan includes {first.source!r} ({first.kind.value} items), which the target "
                        f"{plan.target.url.partition(':')[0]}:// cannot hold"
                        + (f" (and {len(refused) - 1} more such folders)" if len(refused) > 1 else ""),
                        hint="set 'include: false' for it in the plan, or use an ews:// target")


def run_plan(plan: Plan, journal_path: Path, workers: int | None = None, dry_run: bool = False,
             report: Reporter = silent, retry_failed: bool = False) -> RunResult:
    refuse_what_the_target_cannot_hold(plan)
    journal = Journal(journal_path) if not dry_run else Journal(Path(":memory:"))
    try:
        journal.set_meta("plan", plan.model_dump_json())
        if retry_failed:
            journal.reopen_failed()
        result = Runner(plan, lambda: open_plan_source(plan), lambda: open_plan_target(plan), journal,
                        report=report, workers=workers, dry_run=dry_run).run()
        if not dry_run:
            journal.set_meta("last_run", json.dumps(result.as_json()))
        return result
    finally:
        journal.shut()


def verify_plan(plan: Plan, journal_path: Path | None = None, report: Reporter = silent) -> Verification:
    """Reconcile every included folder; messages the plan or the run left out are not counted missing."""
    left_out: set[tuple[str, str]] = set()
    if journal_path is not None and journal_path.exists():
        journal = Journal(journal_path)
        try:
            left_out = {(folder, r.source_key) for folder, r in journal.items(status="failed")}
        finally:
            journal.shut()
    left_out |= {(e.folder, e.message) for e in plan.excluded if e.message}
    result = Verification()
    with open_plan_source(plan) as source, open_plan_target(plan) as target:
        result.hashes_compared = target.capabilities.keeps_raw_bytes
        folders = {f.name: f for f in source.folders()}
        for plan_folder in plan.included():
            folder = folders.get(plan_folder.source)
            if folder is None:
                continue
            there = target.ensure_folder(tuple(plan_folder.target), folder)
            name = plan_folder.source

            def excluded(ref: MessageRef, name: str = name) -> bool:
                return ((name, ref.key) in left_out or not in_date_range(plan, ref)
                        or ref.size > plan.filters.max_message_size)

            result.folders.append(check_folder(source, folder, target, there, "/".join(plan_folder.target),
                                               excluded=excluded, report=report))
    if journal_path is not None and journal_path.exists():
        journal = Journal(journal_path)
        try:
            journal.set_meta("verification", json.dumps(result.as_json()))
        finally:
            journal.shut()
    return result
