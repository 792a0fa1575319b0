"""Every rendering of a report: both languages, self-contained HTML with charts sized by the data,
PDF text, and JSON/CSV that carry the same data back."""

from __future__ import annotations

import csv
import io
import itertools
import json
import re
import string
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pypdf
import pytest

from migrate.reporting import ReportData, from_journal
from migrate.reporting.formats import FORMATS
from migrate.reporting.guide import guide_from_report
from migrate.reporting.model import mailbox_of
from migrate.reporting.render import (
    render_guide_html,
    render_html,
    render_pdf,
    report_csv,
    report_json,
    uncell,
)
from migrate.reporting.strings import STRINGS
from tests.reporting.journals import CUSTOMERS, write_journal

NOW = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)


@pytest.fixture
def data(tmp_path: Path) -> ReportData:
    return from_journal(write_journal(tmp_path / "plan.journal.sqlite"), now=NOW)


def _placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text.replace("%(", "{").replace(")s", "}"))
            if name}


def test_every_language_has_the_same_keys_and_placeholders() -> None:
    en, sv = STRINGS["en"], STRINGS["sv"]
    assert set(en) == set(sv), (set(en) ^ set(sv))
    for key in en:
        assert _placeholders(en[key]) == _placeholders(sv[key]), key
        assert en[key].count("|") == sv[key].count("|"), key  # the same number of steps in a guide list


def test_numbers_and_dates_per_language() -> None:
    sv, en = FORMATS["sv"], FORMATS["en"]
    assert sv.num(1234.5) == "1\u00a0234,5" and en.num(1234.5) == "1,234.5"
    assert sv.num(1234567) == "1\u00a0234\u00a0567"
    assert sv.day(datetime(2026, 11, 30, tzinfo=UTC)) == "30 nov. 2026"
    assert sv.day(datetime(2026, 5, 3, tzinfo=UTC)) == "3 maj 2026"
    assert en.day(datetime(2026, 11, 30, tzinfo=UTC)) == "Nov 30, 2026"
    assert sv.size(1536) == "1,5\u00a0kB" and en.size(3 * 1024**3) == "3.0\u00a0GB"
    assert sv.when(NOW) == "30 nov. 2026 09:05 UTC"


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_both_languages_render_escaped_and_formatted(data: ReportData, lang: str) -> None:
    html = render_html(data, lang)
    t = STRINGS[lang]
    assert f'<html lang="{lang}">' in html
    assert t["title"] in html and t["verdict_problems"] % {"n": 2} in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Åäö" in html and "<script" not in html.lower()
    assert CUSTOMERS.replace("&", "&amp;") in html
    assert FORMATS[lang].when(NOW) in html
    assert ("0,14" if lang == "sv" else "0.14") in html  # messages per second, in the language's decimals


def external_references(html: str) -> list[str]:
    """Every http(s) or protocol-relative src/href/srcset/action, url(...) and @import in a page."""
    found: list[str] = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            for name, value in attrs:
                if (name in ("src", "href", "srcset", "action", "xlink:href", "data", "poster") and value
                        and re.match(r"\s*(https?:)?//", value, re.IGNORECASE)):
                    found.append(f"{tag} {name}={value}")
            if tag in ("link", "img", "script", "iframe", "object", "embed"):
                found.append(f"<{tag}>")

    Refs().feed(html)
    found += re.findall(r"url\([^)]*\)", html, re.IGNORECASE)
    found += re.findall(r"@import[^;]*", html, re.IGNORECASE)
    return found


def test_report_and_guide_are_self_contained(data: ReportData) -> None:
    for lang in ("en", "sv"):
        assert external_references(render_html(data, lang)) == []
        assert external_references(render_guide_html(guide_from_report(data), lang)) == []


def _rects(html: str, caption: str) -> list[tuple[float, int]]:
    """(width, value) of the bars of the chart with this caption."""
    figure = html[html.index(f"<figcaption>{caption}</figcaption>"):]
    figure = figure[: figure.index("</figure>")]
    return [(float(w), int(v)) for w, v in re.findall(r'<rect[^>]*width="([\d.]+)"[^>]*data-value="(\d+)"', figure)]


def _heights(html: str, caption: str) -> list[tuple[float, int]]:
    figure = html[html.index(f"<figcaption>{caption}</figcaption>"):]
    figure = figure[: figure.index("</figure>")]
    return [(float(h), int(v)) for h, v in re.findall(r'<rect[^>]*height="([\d.]+)"[^>]*data-value="(\d+)"', figure)]


def test_charts_are_inline_svg_sized_by_the_data(data: ReportData) -> None:
    html = render_html(data, "en")
    # The outcome bar once; size and years twice each: for screens and paper, and for phones (the CSS shows one).
    assert html.count("<svg") == 5
    sizes = _rects(html, "Size by folder")
    assert sorted(v for _, v in sizes) == sorted(f.bytes for f in data.folders if f.bytes)
    (w1, v1), (w2, v2) = sizes  # largest first: widths in proportion to bytes
    assert v1 >= v2 and w1 == pytest.approx(w2 * v1 / v2, rel=0.01)
    years = _heights(html, "Messages by year (as the source held them)")
    assert [v for _, v in years] == [1, 5, 3]  # 2019, 2024 (INBOX 2 + Kunder 3), 2026
    assert years[1][0] == pytest.approx(5 * years[0][0], rel=0.01)
    outcome = _rects(html, "Moved, already there and not moved")
    assert [v for _, v in outcome] == [7, 1, 1]
    assert outcome[0][0] == pytest.approx(7 * outcome[1][0], rel=0.01)


def test_pdf_text_holds_mailbox_totals_and_verdict(data: ReportData, tmp_path: Path) -> None:
    for lang, verdict in (("en", "2 problem(s) to look at"), ("sv", "2 problem att titta på")):
        pdf = render_pdf(render_html(data, lang))
        assert pdf.startswith(b"%PDF-")
        (tmp_path / f"{lang}.pdf").write_bytes(pdf)
        text = "\n".join(p.extract_text() for p in pypdf.PdfReader(tmp_path / f"{lang}.pdf").pages)
        assert "anna@contoso.onmicrosoft.com" in text
        assert verdict in text
        assert "the target refused it: malformed header" in text
        assert "<script>alert(1)</script> Åäö" in text  # escaped in HTML, shown as text on paper
        assert "Offert 2" in text
    guide = render_pdf(render_guide_html(guide_from_report(data), "sv"))
    (tmp_path / "guide.pdf").write_bytes(guide)
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(tmp_path / "guide.pdf").pages)
    assert "Din nya brevlåda i Microsoft 365" in text and "outlook.office.com" in text


def test_json_round_trip(data: ReportData) -> None:
    again = ReportData.model_validate_json(report_json(data))
    assert again == data
    assert json.loads(report_json(data))["version"] == 1


def test_csv_carries_the_same_data(data: ReportData) -> None:
    rows = [{k: uncell(v) for k, v in r.items()} for r in csv.DictReader(io.StringIO(report_csv(data)))]
    total = next(r for r in rows if r["record"] == "total")
    assert (int(total["moved"]), int(total["failed"]), int(total["bytes"])) == (7, 1, data.totals.bytes)
    assert total["status"] == data.verdict and total["mailbox"] == data.mailbox
    folders = [r for r in rows if r["record"] == "folder"]
    assert [(r["folder"], r["target_folder"], int(r["moved"]), r["status"]) for r in folders] == \
        [(f.source, f.target, f.moved, f.verdict) for f in data.folders]
    not_moved = [r for r in rows if r["record"] == "not_moved"]
    assert [(r["folder"], r["key"], r["subject"], r["status"], r["reason"]) for r in not_moved] == \
        [(n.folder, n.key, n.subject or "", n.status, n.reason) for n in data.not_moved]
    assert [(r["folder"], int(r["count"])) for r in rows if r["record"] == "skipped"] == [("INBOX", 1)]


def test_csv_guards_cells_a_spreadsheet_would_run(data: ReportData) -> None:
    evil = data.model_copy(deep=True)
    evil.not_moved[0].subject = '=HYPERLINK("http://x","click")'
    text = report_csv(evil)
    assert "'=HYPERLINK" in text
    row = next(r for r in csv.DictReader(io.StringIO(text)) if r["record"] == "not_moved")
    assert uncell(row["subject"]) == '=HYPERLINK("http://x","click")'


@pytest.mark.parametrize("lang", ["en", "sv"])
def test_guides_in_both_languages(data: ReportData, lang: str) -> None:
    guide = guide_from_report(data, keep_days=14, now=NOW)
    html = render_guide_html(guide, lang)
    t = STRINGS[lang]
    assert t["guide_title"] in html and "anna@contoso.onmicrosoft.com" in html
    for key in ("web", "windows", "mac", "applemail", "iphone", "android"):
        assert t[f"guide_{key}_title"] in html
    assert "https://outlook.office.com" in html and "learn.microsoft.com" in html
    assert t["guide_old_server"] % {"old": "mail.example.se"} in html
    assert FORMATS[lang].day(datetime(2026, 12, 14, tzinfo=UTC)) in html  # kept read-only until then
    assert t["guide_old_unverified"] in html  # this move has problems: keep everything
    assert t["guide_changed_no_pim"] in html  # mail only
    assert "Inbox" in html and "Kunder/Åkesson &amp; Söner" in html


def test_a_verified_pop_move_tells_to_keep_the_local_copy(tmp_path: Path) -> None:
    data = from_journal(write_journal(tmp_path / "j.sqlite", problems=False), now=NOW)
    data.source = "pop3s://anna@pop.example.se"
    guide = guide_from_report(data)
    html = render_guide_html(guide, "en")
    assert guide.verified and guide.local_copy
    assert STRINGS["en"]["guide_old_pop"] in html and STRINGS["en"]["guide_old_unverified"] not in html


def test_mailbox_of_target_urls() -> None:
    assert mailbox_of("ews://anna@contoso.se?endpoint=https://x/EWS/Exchange.asmx") == "anna@contoso.se"
    assert mailbox_of("imaps://anna%40contoso.se@outlook.office365.com") == "anna@contoso.se"
    assert mailbox_of("graph://bo@contoso.se") == "bo@contoso.se"
    assert mailbox_of("maildir:/tmp/x") == ""


def test_charts_for_phones_keep_their_labels_readable(data: ReportData) -> None:
    """Twenty-three years on a phone: every few years named (the latest always), counts left to the tooltips;
    folder names above their bars, cut to the width."""
    from migrate.reporting import charts
    from migrate.reporting.model import FolderRow, YearRow

    crowded = data.model_copy(deep=True)
    crowded.years = [YearRow(year=y, messages=1000 + y) for y in range(2004, 2027)]
    crowded.folders.append(FolderRow(source="x", target="Projekt/Ombyggnad Storgatan 12/Bygglov och myndigheter",
                                     moved=1, bytes=10**9))
    wide, narrow = charts.items_by_year(crowded), charts.items_by_year(crowded, charts.NARROW)
    for chart in (wide, narrow):
        named = [b for b in chart.bars if b.labelled]
        assert named[-1].label == "2026" and len(named) < len(chart.bars)
        gaps = [b.label_x - a.label_x for a, b in itertools.pairwise(named)]
        assert min(gaps) >= charts.YEAR_LABEL - 0.01  # labels never touch
        assert all(charts.YEAR_LABEL / 2 - 0.01 <= b.label_x <= chart.width - charts.YEAR_LABEL / 2 + 0.01
                   for b in named)
        assert not any(b.valued for b in chart.bars)  # "3,030" is wider than a year's slot
    sizes = charts.size_by_folder(crowded, charts.NARROW)
    assert sizes.label_above and sizes.plot_x == 0 and sizes.width == charts.NARROW
    assert max(b.x + b.width for b in sizes.bars) <= charts.NARROW - charts.VALUE + 0.01
    html = render_html(crowded, "en")
    assert "Projekt/Ombyggnad Storgatan …" in html  # the wide chart's label, cut to its room (29 characters)
