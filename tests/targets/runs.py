"""Runs of the engine on the ends under test, as `run` and `copy` make them: a plan made in memory
from an inventory, a journal in a file (or in the shared database: tests/stores.py), and waits written down
rather than waited for."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from migrate.engine.journal import JournalPlace, open_journal
from migrate.engine.retry import RetryPolicy
from migrate.engine.runner import Runner, RunResult
from migrate.inventory import take_inventory
from migrate.plan import Connection, Filters, Plan, make_plan
from migrate.progress import Progress
from migrate.sources import Source
from migrate.targets import Target


@dataclass(frozen=True)
class RecordedWaits(RetryPolicy):
    """The real policy's waits, written down instead of waited for (the runner waits on a timer)."""

    waits: list[float] = field(default_factory=list)

    def wait(self, attempt: int, asked: float | None) -> float:
        self.waits.append(super().wait(attempt, asked))
        return 0.0


def plan_for(source: Source, target_url: str, filters: Filters | None = None) -> Plan:
    return make_plan(take_inventory(source), Connection(url=source.url), Connection(url=target_url), filters)


def run(plan: Plan, open_source: Callable[[], Source], open_target: Callable[[], Target], journal: JournalPlace,
        retry: RetryPolicy | None = None, report: Callable[[Progress], None] | None = None) -> RunResult:
    """One run of the engine with its journal at `journal` (a new one: nothing known yet)."""
    kept = open_journal(journal)
    try:
        return Runner(plan, open_source, open_target, kept, report=report or (lambda _: None), workers=1,
                      retry=retry or RecordedWaits()).run()
    finally:
        kept.shut()
