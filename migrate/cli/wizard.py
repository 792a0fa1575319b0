"""`o365-migrate wizard` (and `o365-migrate` alone on a terminal): the guided move, in Swedish or English."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from migrate.errors import ExitCode, UsageError


def wizard(
    lang: Annotated[str | None, typer.Option("--lang", metavar="sv|en", help="Language (default: from the "
                                             "locale).")] = None,
    answers: Annotated[Path | None, typer.Option("--answers", metavar="FILE", help="Answers saved by an earlier "
                                                 "run: they become the defaults (or, with --yes, the answers).")]
    = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Ask nothing: take every answer from --answers.")]
    = False,
    folder: Annotated[Path | None, typer.Option("--dir", help="Where answers, plans and reports go (default: "
                                                "beside --answers, or a new folder named after the address).")]
    = None,
) -> None:
    """Walk through the whole move: discovery, sign-in, inventory, plan, run, verification and report."""
    from migrate.wizard.answers import load_answers
    from migrate.wizard.flow import Interrupted, Wizard, WizardOptions
    from migrate.wizard.strings import STRINGS, default_lang

    if yes and answers is None:
        raise UsageError("--yes needs --answers FILE", hint="run the wizard once without --yes to make the file")
    earlier = load_answers(answers) if answers is not None else None
    chosen = lang or (earlier.lang if earlier else None) or default_lang()
    if chosen not in STRINGS:
        raise typer.BadParameter(f"{chosen!r}: use sv or en", param_hint="--lang")
    if folder is None and answers is not None:
        folder = answers.resolve().parent
    options = WizardOptions(lang=chosen, folder=folder, answers=earlier, unattended=yes, console=Console())
    try:
        code = Wizard(options).run()
    except Interrupted:
        raise typer.Exit(int(ExitCode.INTERRUPTED)) from None
    if code:
        raise typer.Exit(code)
