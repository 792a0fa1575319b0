"""Render a ReportData: Jinja2 with autoescape and StrictUndefined, fed from the model alone.

Templates are package data (migrate/templates/), so they are found the same way in a
checkout, an editable install and a wheel.
"""

from __future__ import annotations

from datetime import UTC, datetime

from jinja2 import Environment, PackageLoader, StrictUndefined

from migrate.reporting.model import ReportData
from migrate.reporting.strings import STRINGS


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("migrate", "templates"),
        autoescape=True,  # every value is the customer's text: subjects, folder names
        undefined=StrictUndefined,  # a misspelt field fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(num=_num, size=_size, duration=_duration, when=_when)
    return env


def render_html(data: ReportData, lang: str = "en") -> str:
    return environment().get_template("report.html.j2").render(data=data, t=STRINGS[lang])


def _num(n: float) -> str:
    return f"{n:,}" if isinstance(n, int) else f"{n:,.2f}"


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
