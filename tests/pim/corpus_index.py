"""The feature tables of ../shared/corpus/{ics,vcf}/INDEX.md, as dicts per file."""

from __future__ import annotations

from pathlib import Path


def read_index(path: Path) -> dict[str, dict[str, str]]:
    """Rows of the first Markdown table, keyed by the file column (backticks taken off)."""
    header: list[str] = []
    rows: dict[str, dict[str, str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not header:
            header = cells
        elif set(cells[0]) <= set("-: "):
            continue
        else:
            rows[cells[0].strip("`")] = dict(zip(header, cells, strict=False))
    return rows
