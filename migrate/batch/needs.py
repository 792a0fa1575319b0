"""The packages a distributed batch needs, checked before they are imported: one clear line, not a traceback,
on a machine installed without the `distributed` extra."""

from __future__ import annotations

import importlib.util

from migrate.errors import UserError


def require_distributed(what: str) -> None:
    missing = [name for name in ("celery", "psycopg") if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"{what} needs {' and '.join(missing)}, which this installation lacks",
                        hint="pip install 'o365-migrate[distributed]' (on every machine of the move)")
