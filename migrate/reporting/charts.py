"""The report's charts as geometry: bars whose lengths follow the data, drawn by the template as inline SVG.

No chart library and no script: the report must be one file that opens anywhere, prints, and
becomes a PDF unchanged, so the bars are plain <rect> elements whose sizes are computed here.

An SVG scales as a picture, its labels with it: drawn 640 units wide and shown on a phone 360 pixels
wide, 11-unit labels would be 6 pixels tall. So each chart with labels comes in two widths, WIDTH for
screens and paper and NARROW for phones (the template shows one by a media query), both drawn close to
one unit a pixel. Labels get the room their text needs at LABEL_FONT, or are left out (a bar's exact
value is always in its tooltip and in the tables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from migrate.reporting.model import ReportData

WIDTH = 640
NARROW = 340  # a phone's column (390 px less the page's margins)
ROW = 22  # height of one horizontal bar's row
ROW_ABOVE = 34  # a narrow chart's row: the folder name above its bar
LABEL = 210  # room for the folder name left of a bar
VALUE = 90  # room for the value right of a bar
TOP_FOLDERS = 12  # more would make the chart a table
LABEL_FONT = 11  # units; the template's svg.chart text size
CHAR = 0.62 * LABEL_FONT  # a generous average advance of DejaVu Sans / Segoe UI digits and letters
YEAR_LABEL = 4 * CHAR + 6  # "2019" and a gap


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    tone: str = "moved"  # the CSS class that colours it
    labelled: bool = True  # its label is drawn (a crowded axis labels every few bars)
    valued: bool = True  # its value is drawn beside it
    label_x: float = 0.0  # vertical bars: the centre of the label below, kept inside the chart


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    more: int = 0  # entries left out of the chart (shown as "N more")
    plot_x: float = 0.0  # where bars start (horizontal charts) or the baseline (vertical ones)
    plot_width: float = 0.0
    label_above: bool = False  # horizontal bars: the name above the bar instead of left of it
    label_chars: int = 34  # longer names are cut to this (with "…")


def _scale(value: int, largest: int, room: float) -> float:
    # A non-zero value gets at least one pixel: a folder of 3 small messages is not nothing.
    if largest <= 0 or value <= 0:
        return 0.0
    return round(max(1.0, room * value / largest), 2)


def size_by_folder(data: ReportData, width: int = WIDTH) -> Chart:
    """Horizontal bars: the bytes moved per folder, largest first. Narrower than LABEL + VALUE + 200 units,
    each folder's name goes above its bar."""
    rows = sorted((f for f in data.folders if f.bytes > 0), key=lambda f: (-f.bytes, f.source))
    shown, more = rows[:TOP_FOLDERS], max(0, len(rows) - TOP_FOLDERS)
    largest = shown[0].bytes if shown else 0
    above = width < LABEL + VALUE + 200
    if above:
        room = width - VALUE
        chart = Chart(width, ROW_ABOVE * len(shown) + 4, more=more, plot_x=0, plot_width=room, label_above=True,
                      label_chars=int(width / CHAR))
        for i, f in enumerate(shown):
            chart.bars.append(Bar(f.target or f.source, f.bytes, 0, i * ROW_ABOVE + 17,
                                  _scale(f.bytes, largest, room), ROW - 8))
        return chart
    room = width - LABEL - VALUE
    chart = Chart(width, ROW * len(shown) + 4, more=more, plot_x=LABEL, plot_width=room,
                  label_chars=int((LABEL - 8) / CHAR))
    for i, f in enumerate(shown):
        chart.bars.append(Bar(f.target or f.source, f.bytes, LABEL, i * ROW + 3, _scale(f.bytes, largest, room),
                              ROW - 8))
    return chart


def items_by_year(data: ReportData, width: int = WIDTH) -> Chart:
    """Vertical bars: the source's messages per year received, oldest left.

    Twenty years of mail on a phone leaves 17 units a year: then every few years gets its label, and
    the counts above the bars are drawn only where the widest of them fits its slot."""
    years = data.years
    height, axis = 180, 24  # plot height, room for the year labels below
    chart = Chart(width, height + axis, plot_x=0, plot_width=width)
    if not years:
        return chart
    slot = width / len(years)
    bar = max(2.0, min(48.0, slot * 0.7))
    largest = max(y.messages for y in years)
    room = height - 18  # room above the tallest bar for its value
    every = max(1, math.ceil(YEAR_LABEL / slot))
    values = len(f"{largest:,}") * CHAR + 4 <= slot  # the longest count, with a thousands separator
    last = len(years) - 1
    for i, y in enumerate(years):
        h = _scale(y.messages, largest, room)
        # Labelled from the newest year back, so the latest is always named.
        centre = i * slot + slot / 2
        label_x = round(min(max(centre, YEAR_LABEL / 2), width - YEAR_LABEL / 2), 2)
        chart.bars.append(Bar(str(y.year), y.messages, round(i * slot + (slot - bar) / 2, 2), round(height - h, 2),
                              round(bar, 2), h, labelled=(last - i) % every == 0, valued=values, label_x=label_x))
    return chart


def outcome(data: ReportData) -> Chart:
    """One stacked bar: moved, already there, not moved (failed or unconfirmed); each part by its count."""
    t = data.totals
    parts = [("moved", t.moved), ("skipped", t.skipped), ("failed", t.failed + t.pending)]
    whole = sum(n for _, n in parts)
    chart = Chart(WIDTH, 34, plot_x=0, plot_width=WIDTH)
    x = 0.0
    for tone, n in parts:
        w = round(WIDTH * n / whole, 2) if whole else 0.0
        chart.bars.append(Bar(tone, n, round(x, 2), 0, w, 28, tone))
        x += w
    return chart
