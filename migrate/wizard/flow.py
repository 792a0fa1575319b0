"""The wizard's eight steps in order. It asks, shows and saves; every move is a call to the library the commands use.

1 the kind of mail (source_kind), 2 the address and discovery (address), 3 sign-in with a live test
(credentials), 4 a POP user's mail on this computer (local_store), 5 calendars and contacts (calendars),
6 the inventory and choices (plan_review), 7 the Microsoft 365 side (target), 8 the plan, the run,
verification and the report (run). Answers are saved after each step; plans are written whole.
"""

from __future__ import annotations

import os

from migrate.model import ItemKind
from migrate.wizard.address import AddressStep
from migrate.wizard.calendars import CALENDAR_SCHEMES, CalendarsStep
from migrate.wizard.credentials import CredentialsStep
from migrate.wizard.local_store import LocalStoreStep
from migrate.wizard.plan_review import PlanReviewStep
from migrate.wizard.run import RunStep
from migrate.wizard.session import Interrupted, WizardOptions
from migrate.wizard.source_kind import SourceKindStep
from migrate.wizard.target import TargetStep

__all__ = ["CALENDAR_SCHEMES", "Interrupted", "Wizard", "WizardOptions"]


class Wizard(SourceKindStep, AddressStep, CredentialsStep, LocalStoreStep, CalendarsStep, PlanReviewStep,
             TargetStep, RunStep):
    """The whole course, from the kind of mail to the report; Ctrl-C says how to resume."""

    def run(self) -> int:
        try:
            self.say(self.t("welcome"), style="bold")
            self.step_kind()
            self.step_address()
            self.step_sign_in()
            self.step_local_store()
            self.step_calendars()
            inventories = self.step_inventory()
            self.step_microsoft(tuple(dict.fromkeys(f.folder.kind for _, inv in inventories for f in inv.folders))
                                or (ItemKind.MAIL,))
            return self.step_run(inventories)
        except KeyboardInterrupt:
            self.stopped()
            raise Interrupted() from None
        finally:
            for name in self.exported:
                os.environ.pop(name, None)

    def stopped(self) -> None:
        self.say("")
        self.say(self.t("stopped"), style="bold yellow")
        if self.running and self.plans:
            self.say(self.t("resume_run", command=f"o365-migrate run {self.plans[0]}"))
        if self.answers_path() is not None and self.answers_path().exists():  # type: ignore[union-attr]
            self.say(self.t("resume_wizard", command=f"o365-migrate wizard --answers {self.answers_path()}"))
        else:
            self.say(self.t("resume_nothing_saved"))
