"""Options that say how to reach a target and sign in to Microsoft 365 (never the secret itself)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

import typer

from migrate.errors import UsageError
from migrate.plan import Connection, SignIn

TargetPasswordEnv = Annotated[
    str | None, typer.Option("--target-password-env", metavar="VAR", help="The target IMAP server's password, "
                             "from $VAR.")]
TargetPasswordFile = Annotated[
    Path | None, typer.Option("--target-password-file", metavar="PATH", help="The same, from a file (chmod 600).")]
TargetInsecure = Annotated[
    bool, typer.Option("--target-insecure", help="Allow plaintext IMAP to a target on this machine only.")]
TargetCaFile = Annotated[
    Path | None, typer.Option("--target-ca-file", metavar="PATH", help="Trust this CA for the target's TLS.")]
Tenant = Annotated[
    str | None, typer.Option("--tenant", help="Microsoft 365 tenant (contoso.onmicrosoft.com or its id).")]
ClientId = Annotated[str | None, typer.Option("--client-id", help="The app registration's client id.")]
Authority = Annotated[
    str, typer.Option("--authority", help="The sign-in authority (the local sandbox's for rehearsals).")]
ClientSecretEnv = Annotated[
    str | None, typer.Option("--client-secret-env", metavar="VAR", help="App-only: the client secret, from $VAR.")]
ClientSecretFile = Annotated[
    Path | None, typer.Option("--client-secret-file", metavar="PATH", help="App-only: the client secret, from a "
                              "file.")]
Certificate = Annotated[
    Path | None, typer.Option("--certificate", metavar="PEM", help="App-only: a certificate with its key.")]
TransportOption = Annotated[
    str | None, typer.Option("--transport", metavar="T|KIND=T,...",
                             help="Use this transport instead of preflight's choice: ews, imap or graph, for all "
                                  "it can carry, or per kind: mail=imap,calendars=graph,contacts=graph.")]
AuthCaFile = Annotated[
    Path | None, typer.Option("--auth-ca-file", metavar="PATH", help="Trust this CA for the authority's TLS.")]


def target_connection(
    url: str, password_env: str | None, password_file: Path | None, insecure: bool, ca_file: Path | None,
    tenant: str | None, client_id: str | None, authority: str, client_secret_env: str | None,
    client_secret_file: Path | None, certificate: Path | None, auth_ca_file: Path | None,
) -> Connection:
    # Checked here, before the source is inventoried, and before the URL is written to a plan or a journal.
    if urlsplit(url).password is not None:
        raise UsageError("a password inside the target URL is refused: it would be kept in shell history",
                         hint="use --target-password-env VAR or --target-password-file PATH")
    if password_env and password_file:
        raise UsageError("--target-password-env and --target-password-file both given", hint="use one of them")
    if ca_file is not None and not ca_file.is_file():
        raise typer.BadParameter(f"{ca_file} is not a file", param_hint="--target-ca-file")
    sign_in = None
    if tenant or client_id:
        if not (tenant and client_id):
            raise typer.BadParameter("--tenant and --client-id go together", param_hint="--tenant/--client-id")
        sign_in = SignIn(tenant=tenant, client_id=client_id, authority=authority,
                         client_secret_env=client_secret_env,
                         client_secret_file=str(client_secret_file) if client_secret_file else None,
                         certificate=str(certificate) if certificate else None,
                         ca_file=str(auth_ca_file.resolve()) if auth_ca_file else None)
    elif url.lower().startswith(("ews", "graph", "m365")):
        raise typer.BadParameter("an Exchange target needs --tenant and --client-id (see docs/admin-setup.md)",
                                 param_hint="--tenant")
    return Connection(url=url, password_env=password_env,
                      password_file=str(password_file.resolve()) if password_file else None,
                      insecure=insecure, ca_file=str(ca_file.resolve()) if ca_file else None, sign_in=sign_in)
