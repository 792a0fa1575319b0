"""`o365-migrate report JOURNAL_OR_PLAN -o report.html`: the client's report, from the journal alone."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from migrate.errors import UserError


def report(
    journal: Annotated[Path, typer.Argument(metavar="JOURNAL_OR_PLAN",
                                            help="The run's journal, or the plan it sits beside (plan.yaml).")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE", help="Write the HTML report here.")],
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE",
                                                   help="Also write the report's data as JSON ('-' for stdout).")]
    = None,
) -> None:
    """Write a self-contained HTML report: what moved, what did not and why, and the verification."""
    from migrate.reporting import from_path, render_html  # Jinja2 loads only for this command

    data = from_path(journal)
    write_atomically(output, render_html(data))
    to_stdout = json_file is not None and str(json_file) == "-"
    if json_file is not None:
        text = data.model_dump_json(indent=2) + "\n"
        if to_stdout:
            typer.echo(text, nl=False)
        else:
            write_atomically(json_file, text)
    typer.echo(f"wrote {output}: {data.verdict}", err=to_stdout)


def write_atomically(path: Path, text: str) -> None:
    """A reader sees the old file or the new one, never half of one."""
    if path.is_dir():
        raise UserError(f"{path} is a folder", hint="give a file name, e.g. -o report.html")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}",
                        hint="check the folder exists and is writable") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
