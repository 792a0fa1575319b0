"""Numbers, sizes, durations and dates written the way each language writes them.

Swedish groups digits with a no-break space and uses a decimal comma ("1 234,5"), abbreviates
months in lower case with a full stop where the word is cut ("30 nov. 2026"), and writes the
time of day with a colon; English uses "1,234.5" and "Nov 30, 2026". A no-break space keeps a
number and its unit on one line in the HTML and the PDF alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

NBSP = "\u00a0"

# CLDR's abbreviated month names (format context): Swedish cuts only the long names.
_MONTHS = {
    "en": ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    "sv": ("jan.", "feb.", "mars", "apr.", "maj", "juni", "juli", "aug.", "sep.", "okt.", "nov.", "dec."),
}


@dataclass(frozen=True)
class Formats:
    """The formatting rules of one language; the templates reach them as filters."""

    lang: str
    group: str
    decimal: str

    def num(self, value: float, decimals: int | None = None) -> str:
        """1234 -> '1,234' / '1 234'; 1234.5 -> '1,234.5' / '1 234,5' (floats keep at most `decimals`, default 1)."""
        if isinstance(value, int) and decimals is None:
            text = f"{value:,}"
        else:
            places = 1 if decimals is None else decimals
            text = f"{value:,.{places}f}"
            if decimals is None and "." in text:
                text = text.rstrip("0").rstrip(".")
        return text.replace(",", "\0").replace(".", self.decimal).replace("\0", self.group)

    def size(self, n: float) -> str:
        units = ("B", "kB", "MB", "GB", "TB") if self.lang == "sv" else ("B", "KB", "MB", "GB", "TB")
        value = float(n)
        for unit in units:
            if value < 1024 or unit == units[-1]:
                if unit == "B":
                    return f"{self.num(int(value))}{NBSP}{unit}"
                return f"{self.num(value, 1)}{NBSP}{unit}"
            value /= 1024
        raise AssertionError("unreachable")

    def duration(self, seconds: float) -> str:
        s = round(seconds)
        if s < 60:
            return f"{s}{NBSP}s"
        if s < 3600:
            return f"{s // 60}{NBSP}min {s % 60:02d}{NBSP}s"
        hours = "tim" if self.lang == "sv" else "h"
        return f"{s // 3600}{NBSP}{hours} {s % 3600 // 60:02d}{NBSP}min"

    def day(self, moment: date) -> str:
        """30 nov. 2026 / Nov 30, 2026."""
        if isinstance(moment, datetime):
            moment = moment.astimezone(UTC).date()
        month = _MONTHS[self.lang][moment.month - 1]
        if self.lang == "sv":
            return f"{moment.day} {month} {moment.year}"
        return f"{month} {moment.day}, {moment.year}"

    def when(self, moment: datetime) -> str:
        """A moment in UTC, said so: '30 nov. 2026 09:00 UTC' / 'Nov 30, 2026, 09:00 UTC'."""
        moment = moment.astimezone(UTC)
        sep = " " if self.lang == "sv" else ", "
        return f"{self.day(moment)}{sep}{moment:%H:%M} UTC"

    def percent(self, part: float, whole: float) -> str:
        if not whole:
            return f"0{NBSP}%" if self.lang == "sv" else "0%"
        value = self.num(round(100 * part / whole, 1))
        return f"{value}{NBSP}%" if self.lang == "sv" else f"{value}%"


FORMATS: dict[str, Formats] = {
    "en": Formats("en", group=",", decimal="."),
    "sv": Formats("sv", group=NBSP, decimal=","),
}
