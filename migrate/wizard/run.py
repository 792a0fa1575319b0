"""Step 8: the plans are written, confirmed and run with progress bars, verified, and a report is written;
the wizard says where it is, what to do next and how to replay the run unattended."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from migrate.cli.progress import live_progress
from migrate.engine.journal import journal_for_plan
from migrate.inventory import Inventory
from migrate.migration import plan_from_inventory, record_choice, run_plan, verify_plan
from migrate.plan import Filters, Plan, save_plan
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.session import MB, Session


class RunStep(Session):
    """Writes the plans, runs and verifies them, and writes the reports."""

    def step_run(self, inventories: list[tuple[SourceAnswer, Inventory]]) -> int:
        self.say(self.t("step", n=8, title=self.t("run_title")), style="bold cyan")
        assert self.folder is not None
        filters = Filters(since=self.answers.since, until=self.answers.until,
                          exclude_folders=list(self.answers.exclude_folders))
        target = self.target_connection()
        made: list[tuple[Path, Plan, Plan]] = []
        for n, (source, inventory) in enumerate(inventories, 1):
            path = self.folder / ("plan.yaml" if n == 1 else f"plan-{n}.yaml")
            live = plan_from_inventory(inventory, self.connection(source), target, filters)
            record_choice(live, self.preflight)  # the transports step 7 found, kept in the plan
            saved = dataclasses.replace(live, source=self.connection(source, saved=True))
            save_plan(saved, path)
            made.append((path, live, saved))
            self.show_plan(path, live)
        self.plans = [p for p, _, _ in made]
        if not self.ask.confirm("start", self.t("run_confirm"), None, default=True):
            self.say(self.t("run_later", command=f"o365-migrate run {self.plans[0]}"))
            return 0
        self.running = True
        worst = 0
        for n, (path, live, _) in enumerate(made, 1):
            journal = journal_for_plan(path)
            with live_progress(self.out, self.t("run_progress")) as report:
                result = run_plan(live, journal, report=report)
            totals = result.as_json()["totals"]
            self.say(self.t("run_done", created=totals["created"], skipped=totals["skipped"],
                            failed=totals["failed"]), style="green" if not result.exit_code else "yellow")
            if result.stopped:
                self.say(self.t("run_stopped", reason=result.stopped), style="red")
            with live_progress(self.out, self.t("verify_progress")) as report:
                check = verify_plan(live, journal, report=report)
            self.say(self.t("verified") if check.ok else self.t("not_verified"),
                     style="green" if check.ok else "red")
            report_path = self.folder / ("report.html" if n == 1 else f"report-{n}.html")
            self.write_report(journal, report_path)
            self.say(self.t("report_written", path=str(report_path)), style="bold")
            worst = max(worst, result.exit_code, 0 if check.ok else 1)
        self.running = False
        self.say(self.t("next_steps"))
        self.say(self.t("replay", command=f"o365-migrate wizard --answers {self.answers_path()} --yes"))
        return worst

    def show_plan(self, path: Path, plan: Plan) -> None:
        included = plan.included()
        self.say(self.t("plan_summary", path=str(path), folders=len(included), total=len(plan.folders)), style="bold")
        for folder in included:
            self.say(f"  {folder.source} → {'/'.join(folder.target)}  ({folder.messages:,})")
        for exclusion in plan.excluded:
            what = f"{exclusion.folder} {exclusion.message}" if exclusion.message else exclusion.folder
            self.say(self.t("plan_excluded", what=what, reason=exclusion.reason), style="yellow")
        if plan.estimate is not None:
            est = plan.estimate
            minutes = max(1, round(est.seconds / 60))
            self.say(self.t("plan_estimate", messages=f"{est.messages:,}", mb=f"{est.bytes / MB:.1f}",
                            minutes=minutes))

    def write_report(self, journal: Path, path: Path) -> None:
        from migrate.cli.report import write_atomically
        from migrate.reporting import from_journal, render_html
        from migrate.reporting.strings import STRINGS as REPORT_STRINGS

        # The report speaks the wizard's language where the report has it, else English.
        lang = self.t.lang if self.t.lang in REPORT_STRINGS else "en"
        write_atomically(path, render_html(from_journal(journal), lang=lang))
