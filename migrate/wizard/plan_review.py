"""Step 6: the inventory of every source (folders, messages, size, period, warnings), then the choices the
plan is built from: folders left out (a playbook's defaults first) and a date range."""

from __future__ import annotations

import glob
from datetime import date

from rich.markup import escape
from rich.table import Table

from migrate.cli.progress import live_progress
from migrate.errors import UsageError
from migrate.inventory import Inventory, take_inventory
from migrate.migration import source_options
from migrate.sources.base import open_source
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.session import MB, Session


class PlanReviewStep(Session):
    """Takes the inventory, shows it, and records which folders and which dates move."""

    def step_inventory(self) -> list[tuple[SourceAnswer, Inventory]]:
        self.say(self.t("step", n=6, title=self.t("inventory_title")), style="bold cyan")
        found = []
        for source in self.answers.sources():
            with open_source(source.url, source_options(self.connection(source))) as src, \
                    live_progress(self.out, self.t("inventory_progress")) as report:
                inventory = take_inventory(src, report)
            self.show_inventory(source, inventory)
            found.append((source, inventory))
        if not found:
            raise UsageError(self.t("nothing_to_move"), hint=self.t("nothing_to_move_hint"))
        self.edit_choices([inv for _, inv in found])
        self.save()
        return found

    def show_inventory(self, source: SourceAnswer, inventory: Inventory) -> None:
        table = Table(title=escape(f"{source.label or ''} {source.url}".strip()), title_justify="left")
        for column in ("col_folder", "col_messages", "col_size", "col_period"):
            table.add_column(self.t(column), justify="left" if column in ("col_folder", "col_period") else "right")
        for f in inventory.folders:
            period = f"{f.oldest:%Y-%m} – {f.newest:%Y-%m}" if f.oldest and f.newest else ""
            table.add_row(escape(f.folder.name), f"{f.messages:,}", f"{f.bytes / MB:.1f} MB", period)
        table.add_row(self.t("total"), f"{inventory.messages:,}", f"{inventory.bytes / MB:.1f} MB", "",
                      style="bold")
        self.out.print(table)
        codes: dict[str, int] = {}
        for warning in inventory.warnings:
            codes[warning.code] = codes.get(warning.code, 0) + 1
        for code, n in codes.items():
            self.say(self.t("inventory_warning", code=code, n=n,
                            text=self.t.get(f"warn_{code}", next(w.detail for w in inventory.warnings
                                                                 if w.code == code))), style="yellow")

    def edit_choices(self, inventories: list[Inventory]) -> None:
        names = [f.folder.name for inv in inventories for f in inv.folders]
        default_out = set(self.playbook.excluded_folders()) if self.playbook else set()
        known = self.answers.exclude_folders or []
        left_out = {n for n in names if glob.escape(n) in known} if known else {
            n for n in names if n in default_out}
        if self.playbook is not None and self.playbook.folders.note is not None:
            self.say(self.words(self.playbook.folders.note))
        if self.ask.confirm("exclude_folders", self.t("edit_question"), None, default=False):
            keep = self.ask.checkbox("exclude_folders", self.t("edit_folders"),
                                     [(n, n, n not in left_out) for n in names])
            left_out = {n for n in names if n not in keep}
            self.answers.since = self.ask_day("since", self.t("edit_since"), self.answers.since)
            self.answers.until = self.ask_day("until", self.t("edit_until"), self.answers.until)
        self.answers.exclude_folders = sorted(glob.escape(n) for n in left_out)

    def ask_day(self, key: str, message: str, current: date | None) -> date | None:
        def check(text: str) -> str | None:
            if not text:
                return None
            try:
                date.fromisoformat(text)
            except ValueError:
                return self.t("day_bad")
            return None

        text = self.ask.text(key, message, current.isoformat() if current else "", check=check)
        return date.fromisoformat(text) if text else None
