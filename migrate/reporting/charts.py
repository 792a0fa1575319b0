"""The report's charts as geometry: bars whose lengths follow the data, drawn by the template as inline SVG.

No chart library and no script: the report must be one file that opens anywhere, prints, and
becomes a PDF unchanged, so the bars are plain <rect> elements whose sizes are computed here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.reporting.model import ReportData

WIDTH = 640
ROW = 22  # height of one horizontal bar's row
LABEL = 210  # room for the folder name left of a bar
VALUE = 90  # room for the value right of a bar
TOP_FOLDERS = 12  # more would make the chart a table


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    x: float
    y: float
    width: float
    height: float
    tone: str = "moved"  # the CSS class that colours it


@dataclass
class Chart:
    width: int
    height: int
    bars: list[Bar] = field(default_factory=list)
    more: int = 0  # entries left out of the chart (shown as "N more")
    plot_x: float = 0.0  # where bars start (horizontal charts) or the baseline (vertical ones)
    plot_width: float = 0.0


def _scale(value: int, largest: int, room: float) -> float:
    # A non-zero value gets at least one pixel: a folder of 3 small messages is not nothing.
    if largest <= 0 or value <= 0:
        return 0.0
    return round(max(1.0, room * value / largest), 2)


def size_by_folder(data: ReportData) -> Chart:
    """Horizontal bars: the bytes moved per folder, largest first."""
    rows = sorted((f for f in data.folders if f.bytes > 0), key=lambda f: (-f.bytes, f.source))
    shown, more = rows[:TOP_FOLDERS], max(0, len(rows) - TOP_FOLDERS)
    room = WIDTH - LABEL - VALUE
    largest = shown[0].bytes if shown else 0
    chart = Chart(WIDTH, ROW * len(shown) + 4, more=more, plot_x=LABEL, plot_width=room)
    for i, f in enumerate(shown):
        chart.bars.append(Bar(f.target or f.source, f.bytes, LABEL, i * ROW + 3, _scale(f.bytes, largest, room),
                              ROW - 8))
    return chart


def items_by_year(data: ReportData) -> Chart:
    """Vertical bars: the source's messages per year received, oldest left."""
    years = data.years
    height, axis = 180, 24  # plot height, room for the year labels below
    chart = Chart(WIDTH, height + axis, plot_x=0, plot_width=WIDTH)
    if not years:
        return chart
    slot = WIDTH / len(years)
    width = max(2.0, min(48.0, slot * 0.7))
    largest = max(y.messages for y in years)
    room = height - 18  # room above the tallest bar for its value
    for i, y in enumerate(years):
        h = _scale(y.messages, largest, room)
        chart.bars.append(Bar(str(y.year), y.messages, round(i * slot + (slot - width) / 2, 2), round(height - h, 2),
                              round(width, 2), h))
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
