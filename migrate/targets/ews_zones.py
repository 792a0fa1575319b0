"""Time zones as Exchange knows them: an event's zone becomes an exchangelib EWSTimeZone (a Windows zone id).

An IANA name (`Europe/Stockholm`) or a Windows name as Outlook writes it (`W. Europe Standard Time`) maps
through exchangelib's CLDR tables and keeps its rules: carried as it was. Anything else (Outlook's display
names such as `(UTC+01:00) Amsterdam, Berlin, ...`, a VTIMEZONE made up by some client, a fixed offset, a
zone newer than the tables) is matched by its behaviour: the zone Exchange knows whose UTC offset is the
same on every day of the event's year. That is a change the user is told about, never a silent one.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from dataclasses import dataclass

from exchangelib import UTC, EWSTimeZone
from exchangelib.errors import UnknownTimeZone
from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP, MS_TIMEZONE_TO_IANA_MAP


@dataclass(frozen=True)
class Zone:
    tz: EWSTimeZone
    change: str | None = None  # how the source's zone was mapped, when it was not carried as it was


def _by_name(name: str) -> EWSTimeZone | None:
    name = name.strip()
    if not name:
        return None
    if name.upper() in ("UTC", "GMT", "Z", "ETC/UTC", "ETC/GMT"):
        return UTC
    try:
        if name in MS_TIMEZONE_TO_IANA_MAP:
            return EWSTimeZone.from_ms_id(name)
        if name in IANA_TO_MS_TIMEZONE_MAP:
            return EWSTimeZone(name)
    except (UnknownTimeZone, zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return None


def _key_of(tzinfo: dt.tzinfo | None) -> str | None:
    """The IANA key a tzinfo carries (zoneinfo, exchangelib), if any."""
    key = getattr(tzinfo, "key", None) or getattr(tzinfo, "zone", None)
    return key if isinstance(key, str) else None


def _days(year: int) -> list[dt.datetime]:
    start = dt.datetime(year, 1, 1, 12, tzinfo=dt.UTC)
    return [start + dt.timedelta(days=n) for n in range(366)]


def _offsets(tzinfo: dt.tzinfo, year: int) -> tuple[float, ...]:
    return tuple((day.astimezone(tzinfo).utcoffset() or dt.timedelta()).total_seconds() for day in _days(year))


@functools.lru_cache(maxsize=8)
def _known_offsets(year: int) -> dict[str, tuple[float, ...]]:
    """Every zone exchangelib can name for Exchange, with its offset on each day of the year."""
    known: dict[str, tuple[float, ...]] = {}
    preferred = set(MS_TIMEZONE_TO_IANA_MAP.values())
    # The zone Microsoft lists first for a Windows id comes first, so a match names the usual city.
    for key in sorted(IANA_TO_MS_TIMEZONE_MAP, key=lambda k: (k not in preferred, k)):
        try:
            known[key] = _offsets(zoneinfo.ZoneInfo(key), year)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return known


def nearest(tzinfo: dt.tzinfo, year: int) -> tuple[EWSTimeZone, bool]:
    """The known zone that behaves like `tzinfo` in `year`: (zone, whether every day's offset matched)."""
    wanted = _offsets(tzinfo, year)
    best_key, best_misses = "UTC", len(wanted) + 1
    for key, offsets in _known_offsets(year).items():
        misses = sum(1 for a, b in zip(wanted, offsets, strict=True) if a != b)
        if misses < best_misses:
            best_key, best_misses = key, misses
            if misses == 0:
                break
    return (UTC if best_key == "UTC" else EWSTimeZone(best_key)), best_misses == 0


def zone_for(name: str | None, sample: dt.datetime | None, fallback: EWSTimeZone) -> Zone:
    """The Exchange zone for an event's time. `name` is the zone as the source named it (TZID), `sample`
    a time in it (its tzinfo knows the rules), `fallback` the mailbox's zone for floating times."""
    for candidate in (name, _key_of(sample.tzinfo) if sample is not None else None):
        if candidate:
            found = _by_name(candidate)
            if found is not None:
                return Zone(found)
    if sample is None or sample.tzinfo is None or sample.utcoffset() is None:
        label = f"{name!r}" if name else "no zone (floating time)"
        if name:
            return Zone(fallback, f"time zone {label} is unknown and its rules were not given: "
                                  f"taken as {fallback.key} ({fallback.ms_id})")
        return Zone(fallback, f"{label}: pinned to the mailbox's zone {fallback.key} ({fallback.ms_id})")
    if sample.utcoffset() == dt.timedelta() and name is None and _key_of(sample.tzinfo) is None:
        return Zone(UTC)  # a plain UTC time (DTSTART:...Z)
    zone, exact = nearest(sample.tzinfo, sample.year)
    label = repr(name) if name else f"UTC offset {sample.strftime('%z')}"
    how = "has the same UTC offset on every day of" if exact else "is the nearest in UTC offsets over"
    return Zone(zone, f"time zone {label} is not one Exchange knows: mapped to {zone.key} ({zone.ms_id}), which "
                      f"{how} {sample.year}")
