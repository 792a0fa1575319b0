"""A row's UserRoot and IncludeFolders narrow its plan, and the plan says why."""

from __future__ import annotations

from migrate.batch.scope import narrow
from migrate.model import FolderRole
from migrate.plan import Connection, FolderPlan, Plan


def plan_of(*paths: tuple[str, ...], delimiter: str = "/") -> Plan:
    return Plan(source=Connection(url="imaps://mailadmin@imap.example.com"),
                target=Connection(url="ews://lukas@contoso.com"),
                folders=[FolderPlan(source=delimiter.join(p), path=list(p), target=list(p)) for p in paths])


def test_user_root_keeps_the_users_own_folders_without_the_prefix() -> None:
    plan = narrow(plan_of(("INBOX",), ("users", "lukas.ahlers"), ("users", "lukas.ahlers", "Sent"),
                          ("users", "lukas.ahlers", "Projekt", "Kund"), ("users", "maria")),
                  include=[], user_root="/users/lukas.ahlers")
    moved = {f.source: (f.include, f.target, f.role) for f in plan.folders}
    assert moved["users/lukas.ahlers"] == (True, ["Inbox"], FolderRole.INBOX)
    assert moved["users/lukas.ahlers/Sent"] == (True, ["Sent Items"], FolderRole.SENT)
    assert moved["users/lukas.ahlers/Projekt/Kund"][:2] == (True, ["Projekt", "Kund"])
    assert not moved["INBOX"][0] and not moved["users/maria"][0]
    assert {(e.folder, e.reason) for e in plan.excluded} == {("INBOX", "outside UserRoot /users/lukas.ahlers"),
                                                             ("users/maria", "outside UserRoot /users/lukas.ahlers")}


def test_user_root_on_a_server_that_separates_levels_with_dots() -> None:
    plan = narrow(plan_of(("users", "lukas", "ahlers", "Drafts"), ("users", "other"), delimiter="."),
                  include=[], user_root="/users/lukas.ahlers")
    assert [(f.include, f.target) for f in plan.folders] == [(True, ["Drafts"]), (False, ["users", "other"])]


def test_include_folders_leaves_out_the_rest() -> None:
    plan = narrow(plan_of(("INBOX",), ("INBOX", "Kunder"), ("Arkiv", "2019")), include=["inbox*"], user_root=None)
    assert [f.include for f in plan.folders] == [True, True, False]
    assert [(e.folder, e.reason) for e in plan.excluded] == [("Arkiv/2019", "not in the row's IncludeFolders")]
