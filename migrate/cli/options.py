"""Options that several commands share: how to reach and sign in to a source."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from migrate.plan import Connection
from migrate.secrets import secret_provider
from migrate.sources.base import SourceOptions

PasswordEnv = Annotated[
    str | None, typer.Option("--password-env", metavar="VAR", help="Read the password (or token) from $VAR.")
]
PasswordFile = Annotated[
    Path | None, typer.Option("--password-file", metavar="PATH", help="Read the password from a file (chmod 600).")
]
Auth = Annotated[
    str, typer.Option("--auth", help="Sign-in method for IMAP/POP3: auto, login, plain or xoauth2 (token).")
]
Insecure = Annotated[
    bool, typer.Option("--insecure", help="Allow plaintext IMAP/POP3 to a server on this machine only.")
]
CaFile = Annotated[
    Path | None, typer.Option("--ca-file", metavar="PATH", help="Trust this CA for the source's TLS certificate.")
]


def _check(auth: str, ca_file: Path | None) -> None:
    if auth not in ("auto", "login", "plain", "xoauth2"):
        raise typer.BadParameter(f"{auth!r}: use auto, login, plain or xoauth2", param_hint="--auth")
    if ca_file is not None and not ca_file.is_file():
        raise typer.BadParameter(f"{ca_file} is not a file", param_hint="--ca-file")


def source_connection(
    url: str, password_env: str | None, password_file: Path | None, auth: str, insecure: bool, ca_file: Path | None
) -> Connection:
    """The source as a plan names it (where its secret comes from, never the secret), checked before use."""
    _check(auth, ca_file)
    return Connection(url=url, password_env=password_env,
                      password_file=str(password_file.resolve()) if password_file else None, auth=auth,
                      insecure=insecure, ca_file=str(ca_file.resolve()) if ca_file else None)


def source_options(
    url: str, password_env: str | None, password_file: Path | None, auth: str, insecure: bool, ca_file: Path | None
) -> SourceOptions:
    _check(auth, ca_file)
    return SourceOptions(
        secret=secret_provider(password_env, password_file, f"Password for {url}: "),
        auth=auth,
        insecure=insecure,
        ca_file=ca_file,
    )
