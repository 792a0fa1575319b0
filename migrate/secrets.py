"""Where a password or token comes from: an environment variable, a file, or a hidden prompt.

Never from argv or a URL, which end up in shell history and process lists.
"""

from __future__ import annotations

import getpass
import logging
import os
import stat
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

from migrate.errors import UsageError, UserError

log = logging.getLogger(__name__)


def secret_provider(env: str | None, file: Path | None, prompt: str, option: str = "--password") -> Callable[[], str]:
    """A function that gives the secret when first needed (so file sources never ask). `option` is how
    the command line names this end's secret (`--password`, `--target-password`): the advice names it."""
    if env and file:
        raise UsageError(f"{option}-env and {option}-file both given", hint="use one of them")

    @cache
    def get() -> str:
        if env:
            value = os.environ.get(env)
            if value is None:
                raise UserError(f"the environment variable {env} is not set",
                                hint=f"export {env}=... first, or use {option}-file")
            return value
        if file:
            return read_secret_file(file)
        if not sys.stdin.isatty():
            raise UsageError("a password is needed and there is no terminal to ask on",
                             hint=f"use {option}-env VAR or {option}-file PATH")
        return getpass.getpass(prompt)

    return get


def read_secret_file(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"the password file {path} does not exist", hint="check the path") from None
    except OSError as exc:
        raise UserError(f"cannot read the password file {path}: {exc.strerror}",
                        hint="check its permissions") from None
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        # Not fatal: the user may be on a single-user machine, but others can read it here.
        log.warning("the password file %s is readable by other users; run: chmod 600 %s", path, path)
    return text.rstrip("\r\n")
