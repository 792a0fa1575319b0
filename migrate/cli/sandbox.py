"""`o365-migrate sandbox`: a local stand-in for Exchange Online, for rehearsals and demos."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from migrate.errors import UsageError

if TYPE_CHECKING:
    from migrate.sandbox.server import Sandbox


def _state_home() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "o365-migrate" / "sandbox"


def sandbox(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0 picks a free one).")] = 8443,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Where mailboxes and tokens are kept "
                                                   "(default: ~/.local/state/o365-migrate/sandbox).")] = None,
    mailbox: Annotated[list[str] | None, typer.Option("--mailbox", help="Create this mailbox (repeatable).")] = None,
    app_id: Annotated[str | None, typer.Option("--app", help="Register an app-only client id.")] = None,
    app_secret_env: Annotated[str | None, typer.Option("--app-secret-env", metavar="VAR",
                                                       help="Its client secret, from $VAR.")] = None,
) -> None:
    """Run the local Exchange sandbox (OAuth authority, EWS and Graph) until Ctrl-C."""
    from migrate.sandbox.server import serve  # loaded only for this command

    if not 0 <= port <= 65535:
        raise typer.BadParameter("a port is 0-65535", param_hint="--port")
    secret = None
    if app_secret_env:
        secret = os.environ.get(app_secret_env)
        if secret is None:
            raise UsageError(f"the environment variable {app_secret_env} is not set",
                             hint=f"export {app_secret_env}=... first")
    folder = state_dir or _state_home()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    console = Console()

    def ready(sb: Sandbox) -> None:
        console.print(f"Exchange sandbox listening on [bold]{sb.url}[/]")
        console.print(f"  EWS endpoint: {sb.ews_url}")
        console.print(f"  Graph:        {sb.graph_url}")
        console.print(f"  authority:    {sb.authority}")
        console.print(f"  CA to trust:  {sb.ca_path}")
        console.print(f"  state:        {folder}")
        for address in mailbox or []:  # a target for plan/run/preflight; IMAP has no stand-in here
            console.print(f"  target:       m365://{address}?ews={sb.ews_url}&graph={sb.graph_url}&imap=none",
                          highlight=False, soft_wrap=True)
        console.print("Press Ctrl-C to stop.")

    apps = [(app_id, secret)] if app_id else []
    serve(port, folder, on_ready=ready, apps=apps, mailboxes=mailbox or [])
