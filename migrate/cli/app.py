"""The `o365-migrate` command: one Typer app, one place where errors meet the user."""

from __future__ import annotations

import gc
import logging
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from migrate import __version__
from migrate.errors import ExitCode, MigrateError
from migrate.memory import give_big_buffers_back

if TYPE_CHECKING:
    from rich.console import Console

# Each command's module is imported only when that command runs: together they pull in pydantic
# models, the batch supervisor, playbooks, MSAL and the report templates, which cost a run half a
# second before the first byte moves. (name, module, attribute, a group of commands?, help)
_COMMANDS: tuple[tuple[str, str, str, bool, str | None], ...] = (
    ("demo", "demo", "demo", False, None),
    ("inventory", "inventory", "inventory", False, None),
    ("plan", "migration", "plan", False, None),
    ("run", "migration", "run", False, None),
    ("verify", "migration", "verify", False, None),
    ("preflight", "preflight", "preflight", False, None),
    ("sandbox", "sandbox", "sandbox", False, None),
    ("copy", "copy", "copy", False, None),
    ("report", "report", "report", False, None),
    ("guide", "report", "guide", False, None),
    ("dns-check", "report", "dns_check", False, None),
    ("auth", "auth", "app", True, None),
    ("batch", "batch", "app", True, None),
    ("worker", "worker", "worker", False, None),
    ("wizard", "wizard", "wizard", False, None),
    ("playbooks", "playbooks", "app", True, None),
    ("providers", "playbooks", "list_command", False, "List the provider playbooks (the same as `playbooks list`)."),
)
_ROOT_FLAGS = {"--debug"}  # root options that take no value: what follows may still be the command

app = typer.Typer(
    name="o365-migrate",
    help="Move mail, calendars and contacts into Microsoft 365, and prove nothing was lost.",
    invoke_without_command=True,  # alone on a terminal it starts the wizard; otherwise it shows the help
    add_completion=False,
    pretty_exceptions_enable=False,
)
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
            from migrate.cli import wizard as wizard_cmd

            wizard_cmd.wizard()
            return
        typer.echo(ctx.get_help())
        raise typer.Exit(int(ExitCode.USAGE))


def register(only: str | None = None) -> typer.Typer:
    """Add the commands to the app: all of them, or only the one named (what this process runs)."""
    import importlib

    for name, module_name, attribute, group, help_text in _COMMANDS:
        if (only is not None and name != only) or name in _registered:
            continue
        _registered.add(name)
        target = getattr(importlib.import_module(f"migrate.cli.{module_name}"), attribute)
        if group:
            app.add_typer(target, name=name)
        else:
            app.command(name, help=help_text)(target)
    return app


_registered: set[str] = set()


def _command_named(argv: list[str]) -> str | None:
    """The command a command line runs, when it is one of ours and no root option hides it."""
    for word in argv:
        if word in _ROOT_FLAGS:
            continue
        if word.startswith("-"):
            return None  # --help, --version, or a mistake: all commands, for the help or the error
        return word if any(word == c[0] for c in _COMMANDS) else None
    return None


def _settle_memory() -> None:
    """Everything imported so far stays for good: out of the collector's sight (gc.freeze), and the
    collector back on, less eager: what a move allocates is freed by reference counting, not by it."""
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)
    gc.enable()


def _err() -> Console:
    from rich.console import Console

    return Console(stderr=True)


def main() -> None:
    """Entry point: run the app; a MigrateError becomes one line and its exit code."""
    give_big_buffers_back()
    # Importing a command builds hundreds of thousands of objects (pydantic schemas, typer, rich) that
    # live as long as the process: the collector walking them again and again while they load cost a
    # run a tenth of a second before the first byte moves. It rests while they load.
    gc.disable()
    try:
        register(_command_named(sys.argv[1:]))
    finally:
        _settle_memory()
    try:
        # Without standalone mode click returns typer.Exit's code instead of raising it.
        code = app(standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except MigrateError as exc:
        if _debug:
            _err().print_exception()
        _err().print(f"[bold red]error:[/] {exc.one_line()}", highlight=False, markup=True, soft_wrap=True)
        sys.exit(int(exc.exit_code))
    except KeyboardInterrupt:
        _err().print("interrupted; nothing half-done was left behind")
        sys.exit(int(ExitCode.INTERRUPTED))
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        _err().print("aborted")
        sys.exit(int(ExitCode.INTERRUPTED))
    except SystemExit:
        raise
    except Exception as exc:  # click's usage errors come through here in non-standalone mode
        if isinstance(exc, typer.TyperException) and hasattr(exc, "show"):
            exc.show()
            sys.exit(int(getattr(exc, "exit_code", ExitCode.USAGE)))
        if _debug:
            raise
        _err().print(f"[bold red]internal error:[/] {exc.__class__.__name__}: {exc}", highlight=False,
                     markup=True)
        _err().print("run again with --debug for the traceback, and report it")
        sys.exit(int(ExitCode.FAILED))

