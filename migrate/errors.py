"""Errors that meet the user, each with a named exit code and advice.

Backends raise these classes only; the CLI turns them into one line and an exit code.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    FAILED = 1  # the run finished, but something did not move or verify
    USAGE = 2  # bad arguments (typer uses 2 too)
    BAD_INPUT = 3  # a file, folder or URL that cannot be used
    AUTH = 4  # wrong password, token refused
    UNREACHABLE = 5  # host not found, connection refused, timeout
    TLS = 6  # certificate not trusted, TLS refused
    PROTOCOL = 7  # the server said something we cannot work with
    PREFLIGHT = 8  # the tenant or mailbox does not let the move in: preflight says what an admin must fix
    INTERRUPTED = 130


class MigrateError(Exception):
    """Base of every error we raise on purpose. The message never holds a secret."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UserError(MigrateError):
    """Input the user can fix: a path, a URL, an option."""

    exit_code = ExitCode.BAD_INPUT


class UsageError(UserError):
    exit_code = ExitCode.USAGE


class AuthError(MigrateError):
    exit_code = ExitCode.AUTH


class UnreachableError(MigrateError):
    exit_code = ExitCode.UNREACHABLE


class TLSError(MigrateError):
    exit_code = ExitCode.TLS


class ProtocolError(MigrateError):
    exit_code = ExitCode.PROTOCOL


class Retryable(MigrateError):
    """A passing failure: try again after `wait` seconds."""

    def __init__(self, message: str, wait: float = 0.0, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.wait = wait


class Skipped(MigrateError):
    """This item will not move, for the reason given; the run goes on."""
