"""Every HTML report as a browser lays it out: headless Chromium (Debian's chromium), on file://.

Each template (a mailbox's report with the DNS checklist, a calendar mailbox's report with its fidelity
account, the batch summary, the onboarding guide) is rendered in Swedish and English from real result data
(journals written the way `run` and `verify` write them, a batch run into the Exchange sandbox, a DNS
check against a DNS server on loopback) and loaded at a desktop width (1280 px) and a phone width (390 px).
A script run over DevTools then measures the laid-out page:
- nothing reaches past the viewport and the page never scrolls sideways;
- every table fits inside its container and no cell's content spills out of it;
- no two pieces of text overlap (every line box of every text node, and the charts' SVG labels, which
  must also stay inside their chart);
- every image loaded and every chart has a size; the page asked for nothing but itself, and nothing
  was logged as an error (a blocked resource would be);
- the subject with HTML in it shows as text, with no script element in the page.

Screenshots: each page at 1280 x 2000 is compared loosely with tests/reporting/screenshots/<page>-<lang>.png
(stored at half size in 16 colours; compared as the mean per-pixel difference of the greyscale images
scaled down 8 times, so text reflowing somewhere fails it and antialiasing does not). When a template
changes on purpose, regenerate them, look at them, and commit them:

    O365M_UPDATE_SCREENSHOTS=1 .venv/bin/pytest tests/reporting/test_browser.py

Every full-length page is also written as PNG to the test's tmp folder (pytest prints no path; run with
O365M_SCREENSHOT_DIR=DIR to keep them in DIR) for looking at.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageStat

from migrate.discovery.cutover import check_domain, resolver_at
from migrate.reporting import ReportData, from_journal
from migrate.reporting.batch import batch_summary
from migrate.reporting.guide import guide_from_report
from migrate.reporting.model import FolderRow, YearRow
from migrate.reporting.render import render_batch_html, render_guide_html, render_html
from migrate.reporting.strings import STRINGS
from tests.conftest import IN_CI, shared_dir
from tests.reporting.batchdir import build_batch
from tests.reporting.chromium import DEJAVU, DEJAVU_CORE, Chromium, Page, chromium_binary
from tests.reporting.journals import HOSTILE, write_journal
from tests.reporting.test_dns_check import OLD
from tests.servers.dns import DnsServer

NOW = datetime(2026, 11, 30, 9, 5, tzinfo=UTC)
DESKTOP, PHONE = (1280, 2000), (390, 844)
SHOT = (1280, 2000)
REFERENCES = Path(__file__).parent / "screenshots"
UPDATE = os.environ.get("O365M_UPDATE_SCREENSHOTS") == "1"
SCALE = 8  # compared at 160 x 250: layout, not glyphs
THRESHOLD = 3.0  # mean absolute difference, of 255 (a page whose text moved by a line scores well above it)
PAGES = ("report", "large", "calendar", "batch", "guide")
# A long-kept mailbox for the "large" page: deep folder names, twenty-three years of mail.
LONG_FOLDERS = ("Kunder/Åkesson & Söner/Offerter och avtal 2019–2024", "Projekt/Ombyggnad Storgatan 12/Ritningar",
                "Projekt/Ombyggnad Storgatan 12/Bygglov och myndigheter", "Leverantörer/Öresundskraft",
                "Leverantörer/Bokföringsbyrån Ärlig & Co", "Personal/Löner/2023", "Personal/Löner/2024",
                "Styrelse/Protokoll", "Nyhetsbrev", "Kvitton/Resor", "Kvitton/Kontorsmaterial", "Arkiv/2004–2010",
                "Arkiv/2011–2018", "Försäkringar", "Bank", "Webbshop/Beställningar")
LANGS = ("en", "sv")

LAYOUT_CHECK = r"""
(() => {
  const vw = document.documentElement.clientWidth;
  const problems = [];
  const name = (el) => {
    const classes = typeof el.className === 'string' ? el.className.trim() : '';
    const cls = classes ? '.' + classes.split(/\s+/).join('.') : '';
    return `<${el.tagName.toLowerCase()}${cls}> "${(el.textContent || '').trim().replace(/\s+/g, ' ').slice(0, 50)}"`;
  };
  const px = (n) => Math.round(n * 10) / 10;
  if (document.documentElement.scrollWidth > vw) {
    problems.push(`the page scrolls sideways: ${document.documentElement.scrollWidth}px wide in a ${vw}px viewport`);
  }
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      problems.push(`past the viewport: ${name(el)} spans ${px(r.left)}..${px(r.right)} of ${vw}px`);
    }
  }
  for (const table of document.querySelectorAll('table')) {
    const box = table.parentElement.getBoundingClientRect();
    const r = table.getBoundingClientRect();
    if (r.right > box.right + 0.5 || r.left < box.left - 0.5) {
      problems.push(`table wider than its container: ${name(table)} ${px(r.width)}px in ${px(box.width)}px`);
    }
    for (const cell of table.querySelectorAll('th, td')) {
      if (cell.scrollWidth > cell.clientWidth + 1) {
        problems.push(`content spills out of a cell: ${name(cell)} ${cell.scrollWidth}px in ${cell.clientWidth}px`);
      }
    }
  }
  // Every line box of every text node, and the charts' labels.
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.data.trim() || node.parentElement.closest('svg')) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width > 0.5 && r.height > 0.5) boxes.push({r, el: node.parentElement});
    }
  }
  const small = 9;  // px: smaller is not read on a phone
  const seen = new Set();
  for (const {el} of boxes) {
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < small && !seen.has(el)) { seen.add(el); problems.push(`text too small: ${name(el)} at ${size}px`); }
  }
  for (const text of document.querySelectorAll('svg text')) {
    const r = text.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;  // the chart of the other width, not shown
    const svg = text.closest('svg');
    const chart = svg.getBoundingClientRect();
    const size = parseFloat(getComputedStyle(text).fontSize) * chart.width / svg.viewBox.baseVal.width;
    if (size < small) problems.push(`chart label too small: ${name(text)} at ${px(size)}px`);
    if (r.left < chart.left - 0.5 || r.right > chart.right + 0.5 ||
        r.top < chart.top - 0.5 || r.bottom > chart.bottom + 0.5) {
      problems.push(`chart label outside its chart: ${name(text)} at ${px(r.left)}..${px(r.right)}, ` +
                    `chart ${px(chart.left)}..${px(chart.right)}`);
    }
    boxes.push({r, el: text});
  }
  const slack = 1;  // line boxes that only touch are not overlapping
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r, b = boxes[j].r;
      const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (w > slack && h > slack) {
        problems.push(`text overlaps: ${name(boxes[i].el)} and ${name(boxes[j].el)} (${px(w)} x ${px(h)}px)`);
      }
    }
  }
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0) problems.push(`broken image: ${img.currentSrc || img.src}`);
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (!svg.checkVisibility()) continue;  // the chart of the other width
    const r = svg.getBoundingClientRect();
    if (r.width < 1 || r.height < 1) problems.push(`a chart with no size: ${name(svg)}`);
  }
  return problems;
})()
"""

PAGE_FACTS = r"""
(() => ({
  lang: document.documentElement.lang,
  text: document.body.innerText,
  scripts: document.scripts.length,
  charts: document.querySelectorAll('svg').length,
  bars: [...document.querySelectorAll('svg rect')].filter(r => r.getBoundingClientRect().width > 0).length,
}))()
"""


@dataclass
class Rendered:
    files: dict[tuple[str, str], Path]  # (page, lang) -> HTML file
    hostile: str  # a subject with HTML in it that the report lists


def long_kept(data: ReportData) -> ReportData:
    """The mailbox of a firm that kept everything: sixteen more folders with long, nested names and mail
    from 2004 on, added to a real report's data (as a longer journal would give them)."""
    big = data.model_copy(deep=True)
    for i, name in enumerate(LONG_FOLDERS):
        n = 40 + 97 * i
        big.folders.append(FolderRow(source=name, target=name, planned=n, moved=n, bytes=n * 41_000 + i * 1_000,
                                     verdict="match", source_count=n, target_count=n, matched=n))
    big.years = [YearRow(year=y, messages=120 + (y - 2004) * 577) for y in range(2004, 2027)]
    moved = sum(f.moved for f in big.folders)
    big.totals = big.totals.model_copy(update={
        "planned": sum(f.planned or 0 for f in big.folders), "moved": moved,
        "bytes": sum(f.bytes for f in big.folders)})
    return big


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    binary = chromium_binary()
    if binary is None:
        if IN_CI:
            pytest.fail("chromium is not installed (scripts/dev.sh test installs it)")
        pytest.skip("chromium is not installed: apt-get install chromium")
    if not all((DEJAVU / name).is_file() for name in DEJAVU_CORE[:2]):
        pytest.fail(f"no DejaVu Sans in {DEJAVU}: apt-get install fonts-dejavu-core (scripts/dev.sh installs it)")
    chromium = Chromium(binary, tmp_path_factory.mktemp("chromium"))
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    out = tmp_path_factory.mktemp("pages")
    data = from_journal(write_journal(out / "anna.journal.sqlite"), now=NOW)
    dns = DnsServer(OLD).start()
    try:
        check = check_domain("kontoret.se", resolver_at(f"127.0.0.1:{dns.port}"), tenant="kontoret")
    finally:
        dns.stop()
    check = check.model_copy(update={"checked": NOW})
    with pytest.MonkeyPatch.context() as mp:
        batch = build_batch(tmp_path_factory.mktemp("batch"), tmp_path_factory.mktemp("work"), shared_dir("corpus"),
                            mp)
    summary = batch_summary(batch.root, now=NOW)
    summary.domains = [check]
    calendar = next(m.report for m in summary.mailboxes if m.id == "bo")
    assert calendar is not None and calendar.fidelity
    # The run's temporary folder and the sandbox's port change every time: shown as a customer's would be,
    # so the screenshot holds still.
    calendar = calendar.model_copy(update={"source": "ics:/srv/kalendrar/bo",
                                           "target": "ews://bo@contoso.example?impersonate=1"})
    links = {m.id: f"mailboxes/{m.id}.html" for m in summary.mailboxes if m.report is not None}
    files: dict[tuple[str, str], Path] = {}
    for lang in LANGS:
        pages = {"report": render_html(data, lang, [check]), "large": render_html(long_kept(data), lang),
                 "calendar": render_html(calendar, lang),
                 "batch": render_batch_html(summary, lang, links),
                 "guide": render_guide_html(guide_from_report(data, keep_days=14, now=NOW), lang)}
        for page, html in pages.items():
            path = out / f"{page}-{lang}.html"
            path.write_text(html, encoding="utf-8")
            files[(page, lang)] = path
    return Rendered(files, HOSTILE)


def _open(browser: Chromium, path: Path, size: tuple[int, int], mobile: bool = False) -> Page:
    page = browser.new_page(*size, mobile=mobile)
    page.load(path.as_uri())
    return page


def _keep(name: str, png: bytes, tmp_path: Path) -> None:
    folder = Path(os.environ.get("O365M_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(png)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page_name", PAGES)
@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_layout_is_sane(browser: Chromium, rendered: Rendered, page_name: str, lang: str, width: str,
                        tmp_path: Path) -> None:
    page = _open(browser, rendered.files[(page_name, lang)], DESKTOP if width == "desktop" else PHONE,
                 mobile=width == "phone")
    try:
        problems: list[str] = page.evaluate(LAYOUT_CHECK)
        facts: dict[str, Any] = page.evaluate(PAGE_FACTS)
        _keep(f"{page_name}-{lang}-{width}.png", page.full_screenshot(), tmp_path)
    finally:
        page.close()
    assert problems == [], "\n".join(problems[:30])
    assert page.requests == [rendered.files[(page_name, lang)].as_uri()]  # nothing fetched but the page itself
    assert page.errors == []
    assert facts["lang"] == lang and facts["scripts"] == 0
    if page_name in ("report", "large", "calendar"):
        assert facts["charts"] >= 2 and facts["bars"] >= 3  # the charts drew their bars
    t = STRINGS[lang]
    title = {"report": t["title"], "large": t["title"], "calendar": t["title"], "batch": t["batch_title"],
             "guide": t["guide_title"]}
    assert title[page_name] in facts["text"]


@pytest.mark.parametrize("lang", LANGS)
def test_html_in_a_subject_shows_as_text(browser: Chromium, rendered: Rendered, lang: str) -> None:
    page = _open(browser, rendered.files[("report", lang)], DESKTOP)
    try:
        facts = page.evaluate(PAGE_FACTS)
        cells = page.evaluate("[...document.querySelectorAll('td')].map(td => td.textContent.trim())")
    finally:
        page.close()
    assert rendered.hostile in cells  # the whole subject, as text, in its own cell
    assert facts["scripts"] == 0 and "Kunder/Åkesson & Söner" in facts["text"]
    assert page.errors == []


def _stored(png: bytes) -> Image.Image:
    """A screenshot as stored: half size in 16 colours, enough to see what the page looked like, ~50 KB."""
    half = Image.open(io.BytesIO(png)).convert("RGB").resize((SHOT[0] // 2, SHOT[1] // 2), Image.Resampling.LANCZOS)
    return half.quantize(16)


def _small(half: Image.Image) -> Image.Image:
    """What is compared: greyscale, each pixel the mean of a block (8 x 8 of the screenshot)."""
    return half.convert("L").resize((SHOT[0] // SCALE, SHOT[1] // SCALE), Image.Resampling.BOX)


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("page_name", PAGES)
def test_screenshot_looks_like_the_reference(browser: Chromium, rendered: Rendered, page_name: str, lang: str,
                                             tmp_path: Path) -> None:
    page = _open(browser, rendered.files[(page_name, lang)], SHOT)
    try:
        png = page.screenshot()
    finally:
        page.close()
    assert Image.open(io.BytesIO(png)).size == SHOT
    _keep(f"{page_name}-{lang}-shot.png", png, tmp_path)
    reference = REFERENCES / f"{page_name}-{lang}.png"
    if UPDATE:
        REFERENCES.mkdir(exist_ok=True)
        _stored(png).save(reference, optimize=True)
        return
    assert reference.is_file(), f"no reference screenshot {reference}: run with O365M_UPDATE_SCREENSHOTS=1"
    difference = ImageStat.Stat(ImageChops.difference(_small(_stored(png)), _small(Image.open(reference)))).mean[0]
    assert difference < THRESHOLD, (f"{page_name} ({lang}) differs from {reference.name} by {difference:.2f} "
                                    f"(limit {THRESHOLD}); look at {tmp_path / f'{page_name}-{lang}-shot.png'}")
