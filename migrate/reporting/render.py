"""Render the result models: Jinja2 with autoescape and StrictUndefined, fed from the models alone.

Templates are package data (migrate/templates/), so they are found the same way in a checkout,
an editable install and a wheel. HTML is the one rendering; the PDF is that same HTML laid out
by WeasyPrint (its print CSS), so the two never disagree. JSON and CSV carry the same data for
scripts and spreadsheets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from migrate.discovery.cutover import DOCS, QUICK_TTL, DomainCheck
from migrate.errors import UsageError, UserError
from migrate.reporting import charts
from migrate.reporting.batch import BatchSummary
from migrate.reporting.formats import FORMATS
from migrate.reporting.guide import Guide
from migrate.reporting.model import ReportData
from migrate.reporting.strings import STRINGS


def strings(lang: str) -> dict[str, str]:
    if lang not in STRINGS:
        raise UsageError(f"no strings for the language {lang!r}", hint=f"use one of: {', '.join(sorted(STRINGS))}")
    return STRINGS[lang]


def environment(lang: str = "en") -> Environment:
    env = Environment(
        loader=PackageLoader("migrate", "templates"),
        # Every value is the customer's text (subjects, folder names): escaped in HTML; the terminal's
        # plain-text checklist (*.txt.j2) is not HTML.
        autoescape=select_autoescape(enabled_extensions=("html.j2",), disabled_extensions=("txt.j2",),
                                     default_for_string=True, default=True),
        undefined=StrictUndefined,  # a misspelt field fails the render instead of printing nothing
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    fmt = FORMATS.get(lang, FORMATS["en"])
    env.filters.update(num=fmt.num, size=fmt.size, duration=fmt.duration, when=fmt.when, day=fmt.day,
                       percent=fmt.percent, steps=lambda text: text.split("|"), breaks=breaks)
    # Colours as SVG attributes, not CSS variables: WeasyPrint's SVG painter does not resolve var().
    env.globals.update(dns_docs=DOCS, quick_ttl=QUICK_TTL,
                       chart_colors={"moved": "#2f6f9f", "skipped": "#9fb3c8", "failed": "#c2410c"})
    return env


def breaks(text: str, after: str) -> Markup:
    """Escaped text with a line-break chance (<wbr>) after each of `after`'s characters: a folder path
    breaks after "/", an address after "@" and ".", so a narrow column wraps between the parts of a name
    rather than inside a word."""
    out = []
    for char in str(text):
        out.append(escape(char))
        if char in after:
            out.append(Markup("<wbr>"))
    return Markup("").join(out)


def _render(template: str, lang: str, **context: Any) -> str:
    return environment(lang).get_template(template).render(t=strings(lang), **context)


def render_html(data: ReportData, lang: str = "en", dns: list[DomainCheck] | None = None) -> str:
    return _render("report.html.j2", lang, data=data, dns=dns or [],
                   chart_size=charts.size_by_folder(data), chart_years=charts.items_by_year(data),
                   chart_size_narrow=charts.size_by_folder(data, charts.NARROW),
                   chart_years_narrow=charts.items_by_year(data, charts.NARROW), chart_outcome=charts.outcome(data))


def render_batch_html(summary: BatchSummary, lang: str = "en", links: dict[str, str] | None = None) -> str:
    """`links` maps a mailbox id to its report's path relative to the summary."""
    return _render("batch.html.j2", lang, batch=summary, links=links or {})


def render_guide_html(guide: Guide, lang: str = "en") -> str:
    return _render("guide.html.j2", lang, guide=guide)


def render_dns_text(checks: list[DomainCheck], lang: str = "en") -> str:
    return _render("dns.txt.j2", lang, checks=checks)


def render_pdf(html: str) -> bytes:
    """The HTML laid out for paper by WeasyPrint. It needs Pango (Debian: libpango-1.0-0, libpangoft2-1.0-0)."""
    try:
        from weasyprint import HTML  # loads Pango through cffi: only when a PDF is asked for
    except (ImportError, OSError) as exc:
        raise UserError(f"PDF output needs WeasyPrint and Pango ({exc.__class__.__name__}: {exc})",
                        hint="apt-get install libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; "
                             "pip install weasyprint") from None
    # No base URL and no fetcher beyond data: the report has no external resources, and must not get any.
    return bytes(HTML(string=html, base_url=None, url_fetcher=_no_fetching).write_pdf())


def _no_fetching(url: str, *args: object, **kwargs: object) -> dict[str, Any]:
    raise ValueError(f"the report asked for {url!r}; it must be self-contained")


# --- JSON and CSV ----------------------------------------------------------------------------------

REPORT_COLUMNS = ("record", "mailbox", "folder", "target_folder", "kind", "key", "subject", "status", "reason",
                  "planned", "moved", "skipped", "failed", "pending", "bytes", "seconds", "count")
BATCH_COLUMNS = ("id", "line", "mailbox", "source", "state", "result", "planned", "moved", "skipped", "failed",
                 "pending", "bytes", "seconds", "problems", "error")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")  # what a spreadsheet would run as a formula


def _cell(value: object) -> str:
    """A CSV cell; text a spreadsheet would take for a formula gets a leading apostrophe (OWASP's advice)."""
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(_FORMULA) else text


def uncell(text: str) -> str:
    """The value a cell was written from (the reverse of the formula guard)."""
    return text[1:] if text.startswith("'") and text[1:2] in _FORMULA else text


def _csv(columns: tuple[str, ...], rows: Iterator[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return out.getvalue()


def _report_rows(data: ReportData) -> Iterator[dict[str, object]]:
    t = data.totals
    yield {"record": "total", "mailbox": data.mailbox, "status": data.verdict, "planned": t.planned, "moved": t.moved,
           "skipped": t.skipped, "failed": t.failed, "pending": t.pending, "bytes": t.bytes, "seconds": data.seconds,
           "count": data.problems}
    for f in data.folders:
        yield {"record": "folder", "mailbox": data.mailbox, "folder": f.source, "target_folder": f.target,
               "kind": f.kind, "status": f.verdict or "not verified", "planned": f.planned, "moved": f.moved,
               "skipped": f.skipped, "failed": f.failed, "pending": f.pending, "bytes": f.bytes}
    for n in data.not_moved:
        yield {"record": "not_moved", "mailbox": data.mailbox, "folder": n.folder, "key": n.key, "subject": n.subject,
               "status": n.status, "reason": n.reason}
    for s in data.skipped:
        yield {"record": "skipped", "mailbox": data.mailbox, "folder": s.folder, "reason": s.reason, "count": s.count}
    for e in data.exclusions:
        yield {"record": "excluded", "mailbox": data.mailbox, "folder": e.folder, "key": e.message, "reason": e.reason}
    for fi in data.fidelity:
        for status, count in (("exact", fi.exact), ("changed", fi.changed), ("dropped", fi.dropped)):
            yield {"record": "fidelity", "mailbox": data.mailbox, "folder": fi.folder, "target_folder": fi.target,
                   "status": status, "count": count}
    for note in data.fidelity_notes:
        yield {"record": "fidelity_note", "mailbox": data.mailbox, "key": note.property, "status": note.kind,
               "count": note.items, "reason": " | ".join(note.examples)}
    for r in data.runs:
        yield {"record": "run", "mailbox": data.mailbox, "key": r.number, "status": r.outcome,
               "seconds": r.seconds}


def report_csv(data: ReportData) -> str:
    """One table of typed rows (`record`: total, folder, not_moved, skipped, excluded, fidelity, fidelity_note, run)."""
    return _csv(REPORT_COLUMNS, _report_rows(data))


def report_json(data: ReportData) -> str:
    return data.model_dump_json(indent=2) + "\n"


def batch_csv(summary: BatchSummary) -> str:
    def rows() -> Iterator[dict[str, object]]:
        for m in summary.mailboxes:
            r = m.report
            row: dict[str, object] = {"id": m.id, "line": m.line, "mailbox": m.mailbox, "source": m.source,
                                      "state": m.state, "result": m.result, "error": m.error}
            if r is not None:
                row.update(planned=r.totals.planned, moved=r.totals.moved, skipped=r.totals.skipped,
                           failed=r.totals.failed, pending=r.totals.pending, bytes=r.totals.bytes, seconds=r.seconds,
                           problems=r.problems)
            yield row

    return _csv(BATCH_COLUMNS, rows())


def batch_json(summary: BatchSummary) -> str:
    return summary.model_dump_json(indent=2) + "\n"


def guide_json(guide: Guide) -> str:
    return guide.model_dump_json(indent=2) + "\n"
