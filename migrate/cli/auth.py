"""`o365-migrate auth login | status | logout`: sign in to Microsoft 365 and see what is kept."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from migrate import auth
from migrate.auth.scopes import Transport
from migrate.auth.settings import DEFAULT_AUTHORITY
from migrate.errors import UsageError

app = typer.Typer(help="Sign in to Microsoft 365, and see or forget the sign-ins kept on this machine.",
                  no_args_is_help=True)
out = Console()
err = Console(stderr=True)

TransportOpt = Annotated[Transport, typer.Option("--transport", help="What the sign-in is for: ews, imap or graph.")]
Tenant = Annotated[str, typer.Option("--tenant", help="The tenant's domain (contoso.onmicrosoft.com) or directory id.")]
ClientId = Annotated[str, typer.Option("--client-id", help="The app registration's Application (client) ID.")]
Authority = Annotated[str, typer.Option("--authority", help="The sign-in service (another cloud, or the sandbox).")]
CaFile = Annotated[Path | None, typer.Option("--ca-file", metavar="PATH",
                                             help="Trust this CA for the sign-in service's TLS certificate.")]
AppOnly = Annotated[bool, typer.Option("--app-only", help="Sign in as the app (client secret or certificate), "
                                                          "not as a user.")]
SecretEnv = Annotated[str | None, typer.Option("--client-secret-env", metavar="VAR",
                                               help="Read the app's client secret from $VAR.")]
SecretFile = Annotated[Path | None, typer.Option("--client-secret-file", metavar="PATH",
                                                 help="Read the app's client secret from a file (chmod 600).")]
Certificate = Annotated[Path | None, typer.Option("--certificate", metavar="PEM",
                                                  help="A PEM file with the app's private key and certificate.")]


def _say(text: str) -> None:
    """One line of data for people: no markup (addresses and paths may hold brackets), no wrapping."""
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def _when(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z")


def _show_code(prompt: auth.DeviceCodePrompt) -> None:
    text = Text(f"{prompt.message}\n\nPage: ")
    text.append(prompt.verification_uri, style="bold")
    text.append("\nCode: ")
    text.append(f" {prompt.user_code} ", style="bold reverse")
    text.append(f"\nValid until {_when(prompt.expires_at)}. Waiting for the sign-in...")
    err.print(Panel(text, title="Sign in with a browser", expand=False), highlight=False)


def _cache_line(info: auth.CacheInfo) -> str:
    mode = f"{info.file_mode:04o}" if info.file_mode is not None else "not written yet"
    line = f"{info.path} ({info.storage}, file {mode}, folder {info.dir_mode:04o})"
    if info.plaintext_reason:
        line += f"\n  plaintext because: {info.plaintext_reason}"
    return line


@app.command("login")
def login_command(
    transport: TransportOpt,
    tenant: Tenant,
    client_id: ClientId,
    authority: Authority = DEFAULT_AUTHORITY,
    app_only: AppOnly = False,
    client_secret_env: SecretEnv = None,
    client_secret_file: SecretFile = None,
    certificate: Certificate = None,
    ca_file: CaFile = None,
) -> None:
    """Sign in with a device code (you, in a browser), or as the app with --app-only."""
    credential = auth.client_credential(client_secret_env, client_secret_file, certificate)
    if app_only and credential is None:
        raise UsageError("--app-only needs the app's credential",
                         hint="add --client-secret-env VAR, --client-secret-file PATH or --certificate PEM")
    if credential is not None and not app_only:
        raise UsageError("a client secret or certificate is for app-only sign-in", hint="add --app-only")
    settings = auth.AuthSettings(transport=transport, tenant=tenant, client_id=client_id, authority=authority,
                            credential=credential, ca_file=ca_file)
    render_sign_in(auth.TokenProvider(settings).login(_show_code))


def render_sign_in(result: auth.SignIn) -> None:
    who = result.account or f"app {result.client_id}"
    _say(f"Signed in as {who} for {result.transport.value} in tenant {result.tenant}")
    _say(f"  scopes: {' '.join(result.scopes)}")
    if result.thumbprint:
        _say(f"  certificate thumbprint: {result.thumbprint}")
    renew = "renewed from the refresh token" if not result.app_only else "asked for again with the app's credential"
    _say(f"  access token valid until {_when(result.expires_at)}, then {renew}")
    _say(f"  kept in {_cache_line(result.cache)}")


@app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the status as JSON.")] = False,
) -> None:
    """List signed-in accounts and app sign-ins, their transports and expiry, and where the cache is."""
    result = auth.status()
    if as_json:
        print(json.dumps(status_json(result), indent=2))
        return
    render_status(result)


def _token_json(token: auth.CachedToken) -> dict[str, Any]:
    return {"client_id": token.client_id, "tenant": token.tenant, "authority_host": token.authority_host,
            "transports": list(token.transports), "scopes": list(token.scopes),
            "expires_at": token.expires_at.isoformat(), "expired": token.expired}


def status_json(result: auth.AuthStatus) -> dict[str, Any]:
    info = result.cache
    return {
        "version": 1,
        "cache": {"path": str(info.path), "encrypted": info.encrypted, "storage": info.storage,
                  "plaintext_reason": info.plaintext_reason,
                  "file_mode": f"{info.file_mode:04o}" if info.file_mode is not None else None,
                  "dir_mode": f"{info.dir_mode:04o}"},
        "accounts": [{"address": a.address, "tenant": a.tenant, "authority_host": a.authority_host,
                      "renewable_for_apps": list(a.apps), "tokens": [_token_json(t) for t in a.tokens]}
                     for a in result.accounts],
        "app_tokens": [_token_json(t) for t in result.app_tokens],
    }


def _expiry(token: auth.CachedToken) -> str:
    return f"expired {_when(token.expires_at)}" if token.expired else f"until {_when(token.expires_at)}"


def _what(token: auth.CachedToken) -> str:
    return ", ".join(token.transports) or " ".join(token.scopes)


def render_status(result: auth.AuthStatus) -> None:
    _say(f"Token cache: {_cache_line(result.cache)}")
    if not result.accounts and not result.app_tokens:
        _say("Nobody is signed in. Sign in with: o365-migrate auth login --transport ews|imap|graph "
             "--tenant TENANT --client-id APP_ID")
        return
    if result.accounts:
        _say("Signed-in users:")
    for account in result.accounts:
        _say(f"  {account.address}  tenant {account.tenant} at {account.authority_host}")
        for token in account.tokens:
            renew = "renewable" if token.client_id in account.apps else "not renewable: sign in again"
            _say(f"    app {token.client_id}: {_what(token)}, access token {_expiry(token)} ({renew})")
        if not account.tokens:
            _say(f"    apps {', '.join(account.apps) or '(none)'}: no access token cached")
    if result.app_tokens:
        _say("App-only sign-ins (renewed with the app's credential):")
    for token in result.app_tokens:
        _say(f"  app {token.client_id}  tenant {token.tenant} at {token.authority_host}: {_what(token)}, "
             f"access token {_expiry(token)}")


@app.command("logout")
def logout_command(
    address: Annotated[str | None, typer.Argument(help="The user to sign out.")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Forget every sign-in, users and apps.")] = False,
) -> None:
    """Forget a user's sign-ins on this machine (or all of them with --all)."""
    if (address is None) == (not everyone):
        problem = "name one user to sign out, or give --all" if address is None else "give an address or --all"
        raise UsageError(problem, hint="see who is signed in: o365-migrate auth status")
    result = auth.logout(None if everyone else address)
    if result.addresses:
        _say(f"Signed out: {', '.join(result.addresses)}")
    if result.app_tokens:
        _say(f"Forgot {result.app_tokens} app-only token(s)")
    if not result.addresses and not result.app_tokens:
        _say("Nothing was signed in.")
    _say(f"Token cache: {_cache_line(result.cache)}")
