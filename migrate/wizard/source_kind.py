"""Step 1: what kind of mail the customer has (IMAP, POP, Exchange), explained in their terms, or "I don't know",
which discovery then answers."""

from __future__ import annotations

from typing import Any, cast

from migrate.wizard.session import Session


class SourceKindStep(Session):
    """Asks IMAP, POP, Exchange or unknown; the answer orders the servers discovery offers."""

    def step_kind(self) -> None:
        self.say(self.t("step", n=1, title=self.t("kind_title")), style="bold cyan")
        self.say(self.t("kind_explain"))
        choices = [("imap", self.t("kind_imap")), ("pop", self.t("kind_pop")),
                   ("exchange", self.t("kind_exchange")), ("unknown", self.t("kind_unknown"))]
        self.answers.mail_kind = cast(Any, self.ask.select("mail_kind", self.t("kind_question"), choices,
                                                           self.answers.mail_kind))
