"""A distributed mailbox's plan is kept in the shared database when it is made, and the worker that resumes the
mailbox (with none of the first worker's files) goes on with that plan while the CSV row is unchanged.

The task's body (`run_order`) runs here as a Celery worker runs it, without a broker: a real mailbox process
moves a mailbox from the loopback Dovecot into Dovecot, its journal in a real PostgreSQL."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import NoReturn

import pytest
import yaml

from migrate import samplebox
from migrate.batch.orders import Order, SecretRef
from migrate.batch.shared import SharedBatch
from migrate.batch.tasks import WorkerSettings, run_order
from migrate.plan import Connection, Filters, load_plan
from tests import corpus
from tests.servers.dovecot import Dovecot
from tests.servers.postgres import Postgres

BATCH, MAILBOX = "kept", "kp@example.test"
KEY = f"{BATCH}/{MAILBOX}"
MARK = "the plan the first worker made"


def _never(wait: float) -> NoReturn:
    raise AssertionError(f"the mailbox was sent back to the broker ({wait} s)")


def test_the_worker_that_resumes_a_mailbox_goes_on_with_its_kept_plan(dovecot: Dovecot, postgres: Postgres,
                                                                      tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    password = "Kept-Plan-Pw-3!"
    corpus.load_into_dovecot(dovecot, "kp-src", password, samplebox.build(1, seed=77))
    dovecot.add_user("kp-dst", password)
    monkeypatch.setenv("KP_PW", password)
    port, ca = dovecot.ports["imaps"], str(dovecot.ca_path)
    order = Order(batch=BATCH, id=MAILBOX, line=2, email=MAILBOX,
                  source=Connection(url=f"imaps://kp-src@127.0.0.1:{port}", ca_file=ca),
                  target=Connection(url=f"imaps://kp-dst@127.0.0.1:{port}", ca_file=ca),
                  source_secret=SecretRef(kind="env", name="KP_PW"), target_secret=SecretRef(kind="env", name="KP_PW"))
    url = postgres.new_database("kept")
    first, second = tmp_path / "worker-a", tmp_path / "worker-b"

    assert run_order(order, WorkerSettings(journal_db=url, folder=first, lease=10), "task-1", _never) == "done"
    made = first / BATCH / MAILBOX / "plan.yaml"
    shared = SharedBatch(url)
    try:
        assert shared.kept(KEY, "plan.yaml") == made.read_text(encoding="utf-8")
        assert shared.kept(KEY, "row.json") == (made.parent / "row.json").read_text(encoding="utf-8")
        # Marked, to tell the kept plan from a new one; the mailbox is to move again (as after a failure).
        data = yaml.safe_load(made.read_text(encoding="utf-8"))
        data["estimate"]["basis"] = MARK
        shared.keep(KEY, {"plan.yaml": yaml.safe_dump(data, sort_keys=False, allow_unicode=True)})
        shared.update(BATCH, MAILBOX, state="failed")
        shutil.rmtree(first)  # the first worker's machine is gone

        assert run_order(order, WorkerSettings(journal_db=url, folder=second, lease=10), "task-2", _never) == "done"
        resumed = second / BATCH / MAILBOX / "plan.yaml"
        kept = load_plan(resumed)
        assert kept.estimate is not None and kept.estimate.basis == MARK
        ran = yaml.safe_load(shared.kept(KEY, "plan") or "{}")  # the plan the run recorded in its journal
        assert ran["estimate"]["basis"] == MARK

        # The row changed (a date filter added): the kept plan no longer fits, and the mailbox is planned anew.
        shared.update(BATCH, MAILBOX, state="failed")
        changed = order.model_copy(update={"filters": Filters(since=date(2000, 1, 1))})
        assert run_order(changed, WorkerSettings(journal_db=url, folder=second, lease=10), "task-3", _never) == "done"
        again = load_plan(resumed)
        assert again.filters.since == date(2000, 1, 1) and again.estimate is not None and again.estimate.basis != MARK
        assert yaml.safe_load(shared.kept(KEY, "plan.yaml") or "{}")["estimate"]["basis"] != MARK
    finally:
        shared.close()
