"""Step 4, for POP users: where this computer keeps the mail POP already took off the server (Thunderbird,
Apple Mail, a folder the user names)."""

from __future__ import annotations

from pathlib import Path

from migrate.discovery.local_stores import LocalStore, find_local_stores, store_in_folder
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.session import Session


class LocalStoreStep(Session):
    """Offers the local mail stores found, and whether the mail still on the server moves too."""

    def step_local_store(self) -> None:
        if self.answers.mail_kind != "pop":
            return
        self.say(self.t("step", n=4, title=self.t("local_title")), style="bold cyan")
        self.say(self.t("local_explain"))
        stores = find_local_stores(self.o.home)
        choices: list[tuple[str, str]] = [(s.url, s.label + (f" ({s.note})" if s.note else "")) for s in stores]
        choices += [("folder", self.t("local_folder")), ("none", self.t("local_none"))]
        current = self.answers.local_store.url if self.answers.local_store else None
        if current is None and self.answers.move_server_mail is not None:
            current = "none"
        picked = self.ask.select("local_store", self.t("local_question"), choices, current,
                                 default=stores[0].url if stores else None)
        if picked == "none":
            self.answers.local_store = None
            self.answers.move_server_mail = True
            self.save()
            return
        if picked == "folder":
            path = self.ask.text("local_store", self.t("local_folder_question"),
                                 check=lambda v: None if Path(v).expanduser().exists() else self.t("file_missing"))
            store: LocalStore = store_in_folder(Path(path))
            picked = store.url
        label = next((s.label for s in stores if s.url == picked), picked)
        self.answers.local_store = SourceAnswer(url=picked, label=label)
        self.answers.move_server_mail = self.ask.confirm("move_server_mail", self.t("local_server_too"),
                                                         self.answers.move_server_mail, default=True)
        self.save()
