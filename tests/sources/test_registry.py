"""The source registry: every scheme a backend registers is one open_source can find without
importing every backend first."""

from __future__ import annotations

import ast
import subprocess
import sys

from migrate.sources import base


def test_every_registered_scheme_is_in_the_lazy_table() -> None:
    assert set(base.registered_schemes()) == set(base._BACKEND_MODULES)


def test_opening_one_kind_imports_only_its_backend() -> None:
    code = ("import sys; from migrate.sources.base import open_source, SourceOptions; "
            "open_source('imaps://a@127.0.0.1:1', SourceOptions()); "
            "print(sorted(m for m in sys.modules if m.startswith('migrate.sources.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = ast.literal_eval(out)
    assert "migrate.sources.imap" in loaded
    assert not {"migrate.sources.pst", "migrate.sources.ics", "migrate.sources.mbox"} & set(loaded)
