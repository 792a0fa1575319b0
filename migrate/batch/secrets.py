"""A password cell of a batch CSV: `env:VAR`, `file:PATH`, `value:TEXT`, or the password itself.

The value is held as pydantic's SecretStr, so a repr, a log line or a traceback shows asterisks; it
leaves this process only down the pipe to the mailbox's worker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from migrate.errors import UserError
from migrate.secrets import read_secret_file


@dataclass(frozen=True)
class SecretCell:
    kind: Literal["value", "env", "file"]
    name: str  # the variable or the path; empty for a value
    value: SecretStr | None = None

    @classmethod
    def parse(cls, text: str, base: Path) -> SecretCell:
        """`value:` lets a password that really starts with `env:` or `file:` be written as it is."""
        head, sep, rest = text.partition(":")
        if sep and head == "env":
            return cls("env", rest.strip())
        if sep and head == "file":
            path = Path(rest.strip()).expanduser()
            return cls("file", str(path if path.is_absolute() else base / path))
        if sep and head == "value":
            return cls("value", "", SecretStr(rest))
        return cls("value", "", SecretStr(text))

    @property
    def plaintext(self) -> bool:
        return self.kind == "value"

    def problem(self) -> str | None:
        """What stops this secret from being read, checked before anything moves."""
        if self.kind == "env":
            if not self.name:
                return "env: names no variable (write env:VAR)"
            if os.environ.get(self.name) is None:
                return f"the environment variable {self.name} is not set"
        if self.kind == "file":
            path = Path(self.name)
            if not path.is_file() or not os.access(path, os.R_OK):
                return f"unreadable path {path}: the password file is missing or cannot be read"
        if self.kind == "value" and not (self.value and self.value.get_secret_value()):
            return "empty"
        return None

    def resolve(self) -> str:
        if self.kind == "env":
            value = os.environ.get(self.name)
            if value is None:
                raise UserError(f"the environment variable {self.name} is not set", hint=f"export {self.name}=...")
            return value
        if self.kind == "file":
            return read_secret_file(Path(self.name))
        assert self.value is not None
        return self.value.get_secret_value()
