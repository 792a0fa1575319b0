"""Step 5: calendars and contacts, from the provider's CalDAV/CardDAV (found and checked with the mail
password) or from .ics/.vcf files; offered only when this version can read them."""

from __future__ import annotations

from pathlib import Path

from migrate.discovery.dav import discover_dav
from migrate.migration import source_options
from migrate.sources.base import registered_schemes
from migrate.wizard.answers import SourceAnswer
from migrate.wizard.session import Session

# Source kinds for calendars and contacts, offered only when this version has them registered.
CALENDAR_SCHEMES = ("ics", "vcf", "caldav+https", "carddav+https")

class CalendarsStep(Session):
    """Offers the calendars and contacts discovery finds, files, or nothing."""

    def step_calendars(self) -> None:
        self.say(self.t("step", n=5, title=self.t("calendars_title")), style="bold cyan")
        kinds = [s for s in CALENDAR_SCHEMES if s in registered_schemes()]
        if not kinds:
            self.say(self.t("calendars_unavailable"))
            return
        dav = self.found_dav(kinds)
        choices = [("none", self.t("calendars_none")), *dav]
        if len(dav) > 1:
            choices.insert(1, ("found", self.t("calendars_found_all")))
        if "ics" in kinds or "vcf" in kinds:
            choices.append(("files", self.t("calendars_files")))
        current = self.answers.calendars[0].url if self.answers.calendars else None
        picked = self.ask.select("calendars", self.t("calendars_question"), choices, current,
                                 default=choices[1][0] if dav else "none")
        if picked == "none":
            self.answers.calendars = []
        elif picked == "found":
            server = self.answers.server
            self.answers.calendars = [SourceAnswer(url=url, label=url, password=server.password if server else None,
                                                   ca_file=server.ca_file if server else None) for url, _ in dav]
        elif picked == "files":
            path = self.ask.text("calendars", self.t("calendars_file_question"),
                                 check=lambda v: None if Path(v).expanduser().exists() else self.t("file_missing"))
            suffix = Path(path).suffix.lower().lstrip(".")
            scheme = suffix if suffix in kinds else ("ics" if "ics" in kinds else "vcf")
            self.answers.calendars = [SourceAnswer(url=f"{scheme}:{Path(path).expanduser().resolve()}",
                                                   label=Path(path).name)]
        else:
            server = self.answers.server
            self.answers.calendars = [SourceAnswer(url=picked, label=picked, password=server.password if server
                                                   else None)]
        self.save()

    def found_dav(self, kinds: list[str]) -> list[tuple[str, str]]:
        """The CalDAV/CardDAV endpoints discovery finds for the address, signed in with the mail password."""
        server, address = self.answers.server, self.answers.address
        if server is None or address is None or self.o.unattended or not {"caldav+https", "carddav+https"} & set(kinds):
            return []
        secret = source_options(self.connection(server)).secret
        with self.out.status(self.t("calendars_discovering")):
            found = discover_dav(address, secret or "", self.books, self.o.network)
        if found.reason:
            self.say(found.reason, style="yellow")
        return [(e.url, self.t(f"calendars_found_{e.kind}", url=e.url)) for e in found.endpoints
                if f"{e.kind}+https" in kinds]
