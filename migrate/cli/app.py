"""The `o365-migrate` command: one Typer app, one place where errors meet the user."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

from migrate import __version__
from migrate.cli import auth as auth_cmd
from migrate.cli import batch as batch_cmd
from migrate.cli import copy as copy_cmd
from migrate.cli import demo as demo_cmd
from migrate.cli import inventory as inventory_cmd
from migrate.cli import migration as migration_cmd
from migrate.cli import playbooks as playbooks_cmd
from migrate.cli import report as report_cmd
from migrate.cli import sandbox as sandbox_cmd
from migrate.cli import wizard as wizard_cmd
from migrate.errors import ExitCode, MigrateError
from migrate.memory import give_big_buffers_back

app = typer.Typer(
    name="o365-migrate",
    help="Move mail, calendars and contacts into Microsoft 365, and prove nothing was lost.",
    invoke_without_command=True,  # alone on a terminal it starts the wizard; otherwise it shows the help
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
_debug = False


def _version(value: bool) -> None:
    if value:
        print(f"o365-migrate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and protocol details.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    global _debug
    _debug = debug
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.WARNING,
        format="%(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            wizard_cmd.wizard()
            return
        typer.echo(ctx.get_help())
        raise typer.Exit(int(ExitCode.USAGE))


app.command("demo")(demo_cmd.demo)
app.command("inventory")(inventory_cmd.inventory)
app.command("plan")(migration_cmd.plan)
app.command("run")(migration_cmd.run)
app.command("verify")(migration_cmd.verify)
app.command("sandbox")(sandbox_cmd.sandbox)
app.command("copy")(copy_cmd.copy)
app.command("report")(report_cmd.report)
app.command("guide")(report_cmd.guide)
app.command("dns-check")(report_cmd.dns_check)
app.add_typer(auth_cmd.app, name="auth")
app.add_typer(batch_cmd.app, name="batch")
app.command("wizard")(wizard_cmd.wizard)
app.add_typer(playbooks_cmd.app, name="playbooks")
app.command("providers", help="List the provider playbooks (the same as `playbooks list`).")(
    playbooks_cmd.list_command)


def main() -> None:
    """Entry point: run the app; a MigrateError becomes one line and its exit code."""
    give_big_buffers_back()
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except MigrateError as exc:
        if _debug:
            err.print_exception()
        err.print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        err.print("interrupted; nothing half-done was left behind")
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors come through here in non-standalone mode
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(int(getattr(exc, "exit_code", ExitCode.USAGE)))
        if _debug:
            raise
        err.print(f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc}", highlight=False,
                  markup=True)
        err.print("run again with --debug for the traceback, and report it")
        sys.exit(int(ExitCode.FAILED))
