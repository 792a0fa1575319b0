"""`o365-migrate copy SOURCE TARGET`: a shortcut for `run SOURCE --to TARGET`, and nothing more.

One code path for one job: the copy is planned in memory and run by the engine, with its journal in
the state folder (one per source and target), so a stopped copy resumes where it ended.
"""

from __future__ import annotations

from typing import Annotated

import typer

from migrate.auth.settings import DEFAULT_AUTHORITY
from migrate.cli import migration
from migrate.cli.migration import DryRun, JournalFile, JsonFile, LogJson, Quiet, RetryFailed, Workers
from migrate.cli.options import Auth, CaFile, Insecure, PasswordEnv, PasswordFile
from migrate.cli.targetopts import (
    AuthCaFile,
    Authority,
    Certificate,
    ClientId,
    ClientSecretEnv,
    ClientSecretFile,
    TargetCaFile,
    TargetInsecure,
    TargetPasswordEnv,
    TargetPasswordFile,
    Tenant,
)


def copy(
    source: Annotated[str, typer.Argument(help="Where the mail is: imaps://user@host, pop3s://..., mbox:PATH, "
                                               "maildir:PATH, eml:DIR, emlx:DIR, pst:FILE ... (see `inventory`).")],
    target: Annotated[str, typer.Argument(help="Where it goes: ews://mailbox@domain, imaps://user@host, or "
                                               "imap://user@host with STARTTLS.")],
    json_file: JsonFile = None,
    journal: JournalFile = None,
    workers: Workers = None,
    dry_run: DryRun = False,
    retry_failed: RetryFailed = False,
    quiet: Quiet = False,
    log_json: LogJson = None,
    password_env: PasswordEnv = None, password_file: PasswordFile = None, auth: Auth = "auto",
    insecure: Insecure = False, ca_file: CaFile = None,
    target_password_env: TargetPasswordEnv = None, target_password_file: TargetPasswordFile = None,
    target_insecure: TargetInsecure = False, target_ca_file: TargetCaFile = None,
    tenant: Tenant = None, client_id: ClientId = None, authority: Authority = DEFAULT_AUTHORITY,
    client_secret_env: ClientSecretEnv = None, client_secret_file: ClientSecretFile = None,
    certificate: Certificate = None, auth_ca_file: AuthCaFile = None,
) -> None:
    """Copy every folder of SOURCE into TARGET: the same as `run SOURCE --to TARGET`. Safe to stop and run again."""
    migration.run(
        source, to=target, journal=journal, workers=workers, dry_run=dry_run, retry_failed=retry_failed,
        quiet=quiet, log_json=log_json, json_file=json_file,
        password_env=password_env, password_file=password_file, auth=auth, insecure=insecure, ca_file=ca_file,
        target_password_env=target_password_env, target_password_file=target_password_file,
        target_insecure=target_insecure, target_ca_file=target_ca_file,
        tenant=tenant, client_id=client_id, authority=authority, client_secret_env=client_secret_env,
        client_secret_file=client_secret_file, certificate=certificate, auth_ca_file=auth_ca_file,
    )
