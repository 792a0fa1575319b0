"""The steps of a migration as library calls: plan, run, verify. Commands and the wizard call these.

A plan names where secrets come from; here they are turned into the options that sources and
targets take, so no command holds migration logic of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from migrate.engine.journal import Journal, JournalPlace, journal_exists, open_journal
from migrate.engine.runner import Runner, RunResult, in_date_range
from migrate.engine.verify import Verification, check_folder
from migrate.errors import ExitCode, MigrateError, UserError
from migrate.inventory import Inventory, take_inventory
from migrate.model import ItemKind, MessageRef
from migrate.plan import Connection, Exclusion, Filters, Plan, Transports, make_plan, plan_json
from migrate.progress import Reporter, silent
from migrate.secrets import secret_provider
from migrate.sources import Source, SourceOptions, open_source
from migrate.targets import Target, TargetOptions, open_target
from migrate.targets.base import target_kinds

if TYPE_CHECKING:
    from migrate.auth.scopes import Transport
    from migrate.preflight import Preflight

MB = 1024 * 1024
LOCAL_BYTES_PER_SECOND = None  # a plain IMAP server: no published budget


def source_options(conn: Connection) -> SourceOptions:
    return SourceOptions(
        secret=conn.held_secret() or secret_provider(
            conn.password_env, Path(conn.password_file) if conn.password_file else None, f"Password for {conn.url}: "),
        auth=conn.auth, insecure=conn.insecure, ca_file=Path(conn.ca_file) if conn.ca_file else None,
    )


def target_options(conn: Connection, transports: Transports | None = None) -> TargetOptions:
    token: Callable[[], str] | None = None
    tokens: dict[str, Callable[[], str]] = {}
    extra: dict[str, str] = {}
    scheme = conn.url.partition(":")[0].lower()
    if conn.sign_in is not None:  # only a signed-in target needs preflight's parts: a password run starts faster
        from migrate.preflight.reach import token_provider
    if conn.sign_in is not None and scheme == "m365":
        from migrate.auth.scopes import Transport
        from migrate.preflight.result import KIND_WORDS

        routes = transports.routes() if transports is not None else {}
        extra["routes"] = ",".join(f"{KIND_WORDS[k]}={v}" for k, v in routes.items())
        tokens = {name: token_provider(conn, Transport(name)) for name in set(routes.values())}
    elif conn.sign_in is not None:
        from migrate.preflight.endpoints import EXCHANGE_URL_SCHEMES

        token = token_provider(conn, EXCHANGE_URL_SCHEMES.get(scheme, EXCHANGE_URL_SCHEMES["imaps"]))
    secret = None
    if conn.sign_in is None:
        secret = conn.held_secret() or secret_provider(
            conn.password_env, Path(conn.password_file) if conn.password_file else None, f"Password for {conn.url}: ",
            option="--target-password")
    return TargetOptions(secret=secret, token=token, tokens=tokens, insecure=conn.insecure,
                         ca_file=Path(conn.ca_file) if conn.ca_file else None, extra=extra)


class PreflightRefused(MigrateError):
    """The tenant or mailbox does not let the move in as planned; the result says what an admin must fix."""

    exit_code = ExitCode.PREFLIGHT

    def __init__(self, message: str, result: Preflight, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.result = result


def preflight_target(target: Connection, kinds: tuple[ItemKind, ...] | None = None,
                     chosen: dict[ItemKind, Transport] | None = None, source_bytes: int | None = None,
                     source_largest: int | None = None) -> Preflight | None:
    """Check the Microsoft 365 target (None for a target preflight cannot check: a plain IMAP server)."""
    if target.sign_in is None:  # a password target: not Microsoft 365, and no import of preflight's parts
        return None
    from migrate.preflight import run_preflight
    from migrate.preflight.reach import is_microsoft_365, reach_for

    if not is_microsoft_365(target):
        return None
    return run_preflight(reach_for(target), kinds or (ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT),
                         chosen=chosen, source_bytes=source_bytes, source_largest=source_largest)


def refuse_unless_ready(result: Preflight | None) -> None:
    if result is None or result.ok:
        return
    first = next(p for p in result.problems if p.blocking)
    raise PreflightRefused(f"preflight: {first.what}", result,
                           hint=(first.fix[0] if first.fix else "see o365-migrate preflight --to " + result.target))


def record_choice(plan: Plan, result: Preflight | None, chosen_by: str = "preflight") -> None:
    """Keep preflight's choice in the plan (m365:// only); leave out what no transport can carry, with why."""
    if result is None or not plan.target.url.lower().startswith("m365:"):
        return
    from migrate.preflight.result import KIND_WORDS

    words = {KIND_WORDS[k]: (t.value if t else None) for k, t in result.choice.items()}
    plan.transports = Transports(chosen_by=chosen_by, **words)  # type: ignore[arg-type]
    for folder in plan.folders:
        if folder.include and folder.kind in result.choice and result.choice[folder.kind] is None:
            folder.include = False
            why = next((p.what for p in result.problems if KIND_WORDS[folder.kind] in p.what),
                       f"no transport into Microsoft 365 can carry {KIND_WORDS[folder.kind]} for this mailbox")
            plan.excluded.append(Exclusion(folder=folder.source, reason=why))


def open_plan_source(plan: Plan) -> Source:
    return open_source(plan.source.url, source_options(plan.source))


def open_plan_target(plan: Plan) -> Target:
    return open_target(plan.target.url, target_options(plan.target, plan.transports))


def plan_migration(source: Connection, target: Connection, filters: Filters | None = None, dedupe: bool = True,
                   report: Reporter = silent, chosen: dict[ItemKind, Transport] | None = None,
                   on_preflight: Callable[[Preflight], None] | None = None) -> tuple[Plan, Inventory]:
    """Inventory the source, check the target (preflight), map the folders, and estimate from the target's
    upload budget. A target that cannot take the move stops here with what an admin must fix."""
    with open_source(source.url, source_options(source)) as src:
        inventory = take_inventory(src, report)
    plan = plan_from_inventory(inventory, source, target, filters, dedupe)
    kinds = tuple(dict.fromkeys(f.kind for f in plan.included())) or (ItemKind.MAIL,)
    result = preflight_target(target, kinds, chosen, source_bytes=sum(f.bytes for f in plan.included()),
                              source_largest=max((i.size for i in inventory.largest), default=None))
    if result is not None and on_preflight is not None:
        on_preflight(result)
    refuse_unless_ready(result)
    record_choice(plan, result, "--transport" if chosen else "preflight")
    if result is not None and result.limits.max_message_bytes:
        _leave_out_larger(plan, inventory, result.limits.max_message_bytes)
    return plan, inventory


def _leave_out_larger(plan: Plan, inventory: Inventory, limit: int) -> None:
    """Messages over the mailbox's MaxReceiveSize would be refused one by one: list them as left out now."""
    if limit >= plan.filters.max_message_size:
        return
    plan.filters.max_message_size = limit
    listed = {(e.folder, e.message) for e in plan.excluded}
    for item in inventory.largest:
        if item.size > limit and (item.folder, item.key) not in listed:
            plan.excluded.append(Exclusion(folder=item.folder, message=item.key,
                                           reason=f"{item.size / MB:.1f} MB is over the {limit / MB:.0f} MB the "
                                                  "mailbox takes (MaxReceiveSize)"))


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


def check_before_run(plan: Plan, chosen: dict[ItemKind, Transport] | None = None,
                     on_preflight: Callable[[Preflight], None] | None = None) -> Preflight | None:
    """Preflight again before a run: a tenant changes (EWS blocked since the plan was made, consent revoked).
    `chosen` (--transport) overrides the plan's choice; the choice made here is what the run uses."""
    from migrate.auth.scopes import Transport

    kinds = tuple(dict.fromkeys(f.kind for f in plan.included())) or (ItemKind.MAIL,)
    planned = plan.transports
    overridden = chosen is not None and (planned is None or planned.routes() != chosen)
    if chosen is None and planned is not None:
        chosen = {k: Transport(v) for k, v in planned.routes().items()}
    result = preflight_target(plan.target, kinds, chosen)
    if result is not None and on_preflight is not None:
        on_preflight(result)
    refuse_unless_ready(result)
    record_choice(plan, result, "--transport" if overridden else planned.chosen_by if planned else "preflight")
    return result


def run_plan(plan: Plan, journal_path: JournalPlace, workers: int | None = None, dry_run: bool = False,
             report: Reporter = silent, retry_failed: bool = False, chosen: dict[ItemKind, Transport] | None = None,
             on_preflight: Callable[[Preflight], None] | None = None, preflight: bool = True) -> RunResult:
    """Preflight the target again (`chosen`: --transport), then run the plan, resuming from the journal."""
    refuse_what_the_target_cannot_hold(plan)
    if preflight:
        check_before_run(plan, chosen, on_preflight)
    journal = open_journal(journal_path) if not dry_run else Journal(Path(":memory:"))
    try:
        journal.set_meta("plan", plan_json(plan))
        if retry_failed:
            journal.reopen_failed()
        result = Runner(plan, lambda: open_plan_source(plan), lambda: open_plan_target(plan), journal,
                        report=report, workers=workers, dry_run=dry_run).run()
        if not dry_run:
            journal.set_meta("last_run", json.dumps(result.as_json()))
        return result
    finally:
        journal.shut()


def verify_plan(plan: Plan, journal_path: JournalPlace | None = None, report: Reporter = silent) -> Verification:
    """Reconcile every included folder; messages the plan or the run left out are not counted missing."""
    left_out: set[tuple[str, str]] = set()
    if journal_path is not None and journal_exists(journal_path):
        journal = open_journal(journal_path)
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
    if journal_path is not None and journal_exists(journal_path):
        journal = open_journal(journal_path)
        try:
            journal.set_meta("verification", json.dumps(result.as_json()))
        finally:
            journal.shut()
    return result
