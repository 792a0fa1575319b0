"""What a batch row narrows in a plan beyond the plan's own filters: IncludeFolders and UserRoot.

Both only set folders' `include` and `target` and say why in `excluded`, so the plan file shows the
decision and a person can still change it.
"""

from __future__ import annotations

import fnmatch

from migrate.mapping import target_path
from migrate.model import Folder
from migrate.plan import Exclusion, FolderPlan, Plan, _safe_target
from migrate.sources.roles import role_for


def narrow(plan: Plan, include: list[str], user_root: str | None) -> Plan:
    if user_root:
        _reroot(plan, user_root)
    if include:
        for folder in plan.included():
            if not any(fnmatch.fnmatchcase(folder.source.casefold(), g.casefold()) for g in include):
                folder.include = False
                plan.excluded.append(Exclusion(folder=folder.source, reason="not in the row's IncludeFolders"))
    return plan


def _reroot(plan: Plan, user_root: str) -> None:
    """Microsoft's UserRoot: with an admin login on a shared namespace, the user's own folders are those
    under /users/<name>; they move without that prefix, and nothing outside it moves."""
    for folder in plan.folders:
        rest = _below(folder, user_root)
        if rest is None:
            if folder.include:
                folder.include = False
                plan.excluded.append(Exclusion(folder=folder.source, reason=f"outside UserRoot {user_root}"))
            continue
        path = tuple(rest) or ("INBOX",)  # the root itself holds the user's inbox on such servers
        moved = Folder(path=path, role=role_for(path), kind=folder.kind)
        folder.target = list(_safe_target(target_path(moved)))
        folder.role = moved.role


def _below(folder: FolderPlan, user_root: str) -> list[str] | None:
    """The levels under the root, or None outside it. The root is written with '/' (/users/terry.adams)
    whatever the server's separator, which may be '.': both spellings are compared."""
    root = user_root.strip("/").casefold()
    wanted = {root, root.replace("/", ".")}
    for taken in range(1, len(folder.path) + 1):
        prefix = folder.path[:taken]
        if "/".join(prefix).casefold() in wanted or ".".join(prefix).casefold() in wanted:
            return folder.path[taken:]
    return None
