"""`o365-migrate report` and `guide`: the client's report, a batch's summary and the users' guides,
rendered from the journals alone (and DNS lookups, when asked for the cut-over checklist)."""

from __future__ import annotations

import contextlib
import enum
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from migrate.errors import UsageError, UserError

if TYPE_CHECKING:
    from migrate.discovery.cutover import DomainCheck
    from migrate.reporting.batch import BatchSummary
    from migrate.reporting.model import ReportData


class Lang(enum.StrEnum):
    sv = "sv"
    en = "en"


class Format(enum.StrEnum):
    html = "html"
    pdf = "pdf"
    json = "json"
    csv = "csv"


class GuideFormat(enum.StrEnum):
    html = "html"
    pdf = "pdf"
    json = "json"


LangOpt = Annotated[Lang, typer.Option("--lang", help="The language of the report and guides.")]
KeepDays = Annotated[int, typer.Option("--keep-days", min=1, max=365, metavar="N",
                                       help="Days the guide tells users to keep the old account, read-only.")]
Tenant = Annotated[str | None, typer.Option("--tenant", metavar="NAME",
                                            help="The tenant's initial domain (NAME.onmicrosoft.com), for DKIM.")]
DnsServer = Annotated[str | None, typer.Option("--dns-server", metavar="HOST[:PORT]",
                                               help="Ask this DNS server instead of the system's resolver.")]


def report(
    journal: Annotated[Path | None, typer.Argument(metavar="[JOURNAL_OR_PLAN]",
                                                   help="The run's journal, or the plan it sits beside.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE|DIR",
                                                help="Write here: a file ('-' for stdout with json/csv); with "
                                                     "--batch a folder (default: BATCH_DIR/report).")] = None,
    lang: LangOpt = Lang.en,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="html (one self-contained file), pdf, json or csv.")]
    = Format.html,
    batch: Annotated[Path | None, typer.Option("--batch", metavar="BATCH_DIR",
                                               help="Report on a whole batch: a summary and a report per mailbox.")]
    = None,
    guides: Annotated[bool, typer.Option("--guides", help="Also write each user's onboarding guide.")] = False,
    keep_days: KeepDays = 30,
    dns: Annotated[bool, typer.Option("--dns", help="Add the DNS cut-over checklist of the mailboxes' domains "
                                                    "(looks the domains up now).")] = False,
    tenant: Tenant = None,
    dns_server: DnsServer = None,
    json_file: Annotated[Path | None, typer.Option("--json", metavar="FILE",
                                                   help="Also write the report's data as JSON ('-' for stdout).")]
    = None,
) -> None:
    """Write the client's report: what moved, what did not and why, the verification, timings and fidelity."""
    from migrate.reporting import render  # Jinja2 loads only for this command

    if batch is not None:
        if journal is not None:
            raise UsageError("give a journal or --batch, not both", hint="o365-migrate report --batch BATCH_DIR")
        folder, summary = _report_batch(batch, output, lang, fmt, guides, keep_days, dns, tenant, dns_server)
        typer.echo(f"wrote {folder}")
        _echo_unfinished(summary)
        return
    if journal is None:
        raise UsageError("which migration? give its journal or plan, or --batch BATCH_DIR",
                         hint="o365-migrate report plan.yaml -o report.html")
    if output is None:
        raise UsageError("where to? give -o FILE", hint=f"o365-migrate report {journal} -o report.{fmt.value}")
    from migrate.reporting.model import from_path

    data = from_path(journal)
    checks = _dns_checks([data.mailbox], tenant, dns_server) if dns else []
    to_stdout = str(output) == "-" or (json_file is not None and str(json_file) == "-")
    _write_report(data, output, lang, fmt, checks)
    if json_file is not None:
        _write(json_file, render.report_json(data))
    if guides:
        from migrate.reporting.guide import guide_from_report

        guide_fmt = GuideFormat.pdf if fmt is Format.pdf else GuideFormat.html
        target = output.with_name(f"{output.stem if str(output) != '-' else 'report'}.guide.{guide_fmt.value}")
        _write_guide(guide_from_report(data, keep_days), target, lang, guide_fmt)
    if str(output) != "-":
        typer.echo(f"wrote {output}: {data.verdict}", err=to_stdout)


def guide(
    journal: Annotated[Path | None, typer.Argument(metavar="[JOURNAL_OR_PLAN]",
                                                   help="The run's journal, or the plan it sits beside.")] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE|DIR",
                                                help="Write here: a file; with --batch a folder "
                                                     "(default: BATCH_DIR/guides).")] = None,
    lang: LangOpt = Lang.en,
    fmt: Annotated[GuideFormat, typer.Option("--format", "-f", help="html, pdf or json.")] = GuideFormat.html,
    batch: Annotated[Path | None, typer.Option("--batch", metavar="BATCH_DIR",
                                               help="One guide per mailbox of a batch.")] = None,
    keep_days: KeepDays = 30,
) -> None:
    """Write the onboarding guide for the mailbox's user: how to reach it, what changed, the old account."""
    from migrate.reporting.guide import guide_from_report

    if batch is not None:
        from migrate.reporting.batch import batch_summary

        if journal is not None:
            raise UsageError("give a journal or --batch, not both", hint="o365-migrate guide --batch BATCH_DIR")
        summary = batch_summary(batch)
        folder = _folder(output or batch / "guides")
        written = 0
        for mb in summary.mailboxes:
            if mb.report is not None:
                _write_guide(guide_from_report(mb.report, keep_days), folder / f"{_safe(mb.id)}.{fmt.value}", lang,
                             fmt)
                written += 1
        typer.echo(f"wrote {written} guide(s) in {folder}")
        _echo_unfinished(summary)
        return
    if journal is None or output is None:
        raise UsageError("give the journal or plan and -o FILE, or --batch BATCH_DIR",
                         hint="o365-migrate guide plan.yaml -o guide.html --lang sv")
    from migrate.reporting.model import from_path

    _write_guide(guide_from_report(from_path(journal), keep_days), output, lang, fmt)
    typer.echo(f"wrote {output}")


def dns_check(
    domains: Annotated[list[str], typer.Argument(metavar="DOMAIN...", help="The domain(s) moving to Microsoft 365.")],
    tenant: Tenant = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    lang: LangOpt = Lang.en,
    dns_server: DnsServer = None,
) -> None:
    """Compare a domain's MX, SPF, Autodiscover, DKIM and DMARC records with what Microsoft 365 needs.

    Exit 0 when every record is already right, 1 when something is to change or missing,
    5 when no lookup got an answer."""
    import json

    from migrate.errors import ExitCode
    from migrate.reporting import render

    checks = _dns_checks(domains, tenant, dns_server, skip_microsoft=False)
    if json_out:
        typer.echo(json.dumps([c.model_dump(mode="json") for c in checks], indent=2, ensure_ascii=False))
    else:
        typer.echo(render.render_dns_text(checks, lang.value), nl=False)
    records = [r for c in checks for r in c.records]
    if records and all(r.verdict == "unknown" for r in records):
        raise typer.Exit(int(ExitCode.UNREACHABLE))
    if not all(c.ready for c in checks):
        raise typer.Exit(int(ExitCode.FAILED))


# --- the work behind the commands --------------------------------------------------------------


def _dns_checks(names: list[str], tenant: str | None, server: str | None,
                skip_microsoft: bool = True) -> list[DomainCheck]:
    from migrate.discovery.cutover import check_domain, normalise_domain, resolver_at

    resolver = resolver_at(server)
    domains: list[str] = []
    for name in names:
        if not name:
            continue
        domain = normalise_domain(name)
        # Microsoft's own domains (NAME.onmicrosoft.com) need no DNS work from anyone.
        if skip_microsoft and domain.endswith(".onmicrosoft.com"):
            continue
        if domain not in domains:
            domains.append(domain)
    return [check_domain(d, resolver, tenant) for d in domains]


def _report_batch(batch: Path, output: Path | None, lang: Lang, fmt: Format, guides: bool, keep_days: int,
                  dns: bool, tenant: str | None, dns_server: str | None) -> tuple[Path, BatchSummary]:
    from migrate.reporting import render
    from migrate.reporting.batch import batch_summary
    from migrate.reporting.guide import guide_from_report

    summary = batch_summary(batch)
    if dns:
        summary.domains = _dns_checks(summary.mailbox_domains(), tenant, dns_server)
    folder = _folder(output or batch / "report")
    links: dict[str, str] = {}
    for mb in summary.mailboxes:
        if mb.report is None:
            continue
        name = f"mailboxes/{_safe(mb.id)}.{fmt.value}"
        _folder(folder / "mailboxes")
        _write_report(mb.report, folder / name, lang, fmt, [])
        links[mb.id] = name
        if guides:
            guide_fmt = GuideFormat.pdf if fmt is Format.pdf else GuideFormat.html
            _folder(folder / "guides")
            guide_file = folder / "guides" / f"{_safe(mb.id)}.{guide_fmt.value}"
            _write_guide(guide_from_report(mb.report, keep_days), guide_file, lang, guide_fmt)
    if fmt is Format.json:
        _write(folder / "summary.json", render.batch_json(summary))
    elif fmt is Format.csv:
        _write(folder / "summary.csv", render.batch_csv(summary))
    else:
        html = render.render_batch_html(summary, lang.value, links)
        if fmt is Format.pdf:
            _write_bytes(folder / "summary.pdf", render.render_pdf(html))
        else:
            _write(folder / "index.html", html)
    return folder, summary


def _echo_unfinished(summary: BatchSummary, shown: int = 10) -> None:
    """The mailboxes whose report is a snapshot (still moving) or missing (not started), named."""
    for ids, what in ((summary.moving, "still moving"), (summary.not_started, "not started yet")):
        if ids:
            more = f" and {len(ids) - shown} more" if len(ids) > shown else ""
            typer.echo(f"{len(ids)} mailbox(es) {what}: {', '.join(ids[:shown])}{more}")


def _write_report(data: ReportData, output: Path, lang: Lang, fmt: Format, checks: list[DomainCheck]) -> None:
    from migrate.reporting import render

    if fmt is Format.json:
        _write(output, render.report_json(data))
    elif fmt is Format.csv:
        _write(output, render.report_csv(data))
    else:
        html = render.render_html(data, lang.value, checks)
        if fmt is Format.pdf:
            _write_bytes(output, render.render_pdf(html))
        else:
            _write(output, html)


def _write_guide(guide: object, output: Path, lang: Lang, fmt: GuideFormat) -> None:
    from migrate.reporting import render
    from migrate.reporting.guide import Guide

    assert isinstance(guide, Guide)
    if fmt is GuideFormat.json:
        _write(output, render.guide_json(guide))
        return
    html = render.render_guide_html(guide, lang.value)
    if fmt is GuideFormat.pdf:
        _write_bytes(output, render.render_pdf(html))
    else:
        _write(output, html)


def _safe(name: str) -> str:
    """A mailbox id as a file name: letters, digits, '.', '@', '-' and '_' only."""
    return re.sub(r"[^\w.@-]", "_", name).lstrip(".") or "_"


def _folder(path: Path) -> Path:
    if path.exists() and not path.is_dir():
        raise UserError(f"{path} is a file", hint="give a folder for a batch's reports: -o reports/")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot make the folder {path}: {exc.strerror}", hint="check the path is writable") from None
    return path


def _write(path: Path, text: str) -> None:
    if str(path) == "-":
        typer.echo(text, nl=False)
        return
    write_atomically(path, text.encode("utf-8"))


def _write_bytes(path: Path, data: bytes) -> None:
    if str(path) == "-":
        raise UsageError("a PDF is not written to stdout", hint="give a file: -o report.pdf")
    write_atomically(path, data)


def write_atomically(path: Path, data: bytes | str) -> None:
    """A reader sees the old file or the new one, never half of one."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if path.is_dir():
        raise UserError(f"{path} is a folder", hint="give a file name, e.g. -o report.html")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror}",
                        hint="check the folder exists and is writable") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
