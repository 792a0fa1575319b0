"""Time zones of an iCalendar item, resolved to zones Exchange knows (IANA names).

Exchange keeps an event's zone by name from its own list, which maps one to one onto IANA
zones. Sources name zones in four ways: IANA names (Google, Apple, Thunderbird), Windows names
(Outlook, Exchange: "W. Europe Standard Time"), their own names with a VTIMEZONE that defines
them ("(UTC-03:00) Brasília", "Canberra, Melbourne, Sydney", "custom_Pacific/Fiji"), and
names with no definition at all. The first two map directly; an own zone is matched to the IANA
zone with the same offsets around the event's dates; a zone that matches none, or that nothing
defines, is read as a fixed offset or as the default zone, and the event's fidelity says so.

Each item gets its own resolver: icalendar caches zones built from VTIMEZONE components by
name for the whole process, so two files that define "Eastern" differently would read alike.
Only the wall-clock time icalendar parsed is used; the zone comes from here.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from datetime import tzinfo as TzInfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

import icalendar
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

_FIXED = re.compile(r"^\(?\s*(?:UTC|GMT)\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?\s*\)?")


@dataclass(frozen=True)
class Zone:
    tzinfo: TzInfo
    name: str | None  # the IANA name Exchange can take, or None (kept as UTC instants)
    change: str | None = None  # how the source's zone was read, when not as it was named
    source: TzInfo | None = None  # the source's own zone, when `tzinfo` only nearly matches it

    def localise(self, wall: datetime) -> datetime:
        """A wall-clock time of the source made aware: the same instant the source meant."""
        if self.source is not None:
            return wall.replace(tzinfo=self.source).astimezone(self.tzinfo)
        return wall.replace(tzinfo=self.tzinfo)


@functools.cache
def _iana() -> frozenset[str]:
    return frozenset(available_timezones() - {"localtime", "Factory"})


@functools.cache
def _canonical() -> frozenset[str]:
    """IANA zones that Windows zones map to: the ones Exchange's own list is built from."""
    return frozenset(WINDOWS_TO_OLSON.values())


def iana_zone(name: str) -> ZoneInfo | None:
    if name not in _iana():
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _words(text: str) -> set[str]:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().casefold()
    return {w for w in re.split(r"[^a-z]+", plain) if len(w) > 2}


def _samples(around: datetime) -> list[datetime]:
    """A daily instant over two years from the year before the event: daylight-saving rules
    differ by days (Europe and America by weeks), so a coarser grid would call them alike."""
    start = datetime(around.year - 1, 1, 1, 12, tzinfo=UTC)
    return [start + timedelta(days=i) for i in range(2 * 366)]


def _offsets(zone: TzInfo, instants: list[datetime]) -> tuple[timedelta | None, ...]:
    return tuple(t.astimezone(zone).utcoffset() for t in instants)


def _defined_offsets(definition: icalendar.Timezone, instants: list[datetime]) -> tuple[timedelta | None, ...]:
    """The offsets a VTIMEZONE gives at each instant, from its transitions (dateutil's own zone
    object answers the same, a thousand times slower)."""
    moments, info = definition.get_transitions()
    if not moments:
        raise ValueError("a VTIMEZONE without observances")
    before = info[1][0] if len(info) > 1 else info[0][0]  # Outlook's zones start with the other observance
    result: list[timedelta | None] = []
    for instant in instants:
        i = bisect.bisect_right(moments, instant.replace(tzinfo=None)) - 1
        result.append(info[i][0] if i >= 0 else before)
    return tuple(result)


@functools.lru_cache(maxsize=64)
def _equivalent(offsets: tuple[timedelta | None, ...], year: int, hint: str) -> tuple[str, int] | None:
    """The IANA zone with the offsets closest to `offsets`, and at how many samples it differs.

    Outlook's own zones state today's daylight-saving rules; a zone whose rules moved by a week
    some year (Brazil's did every few years) still matches at all but a few samples, and is
    taken when it differs at no more than one sample in twenty.
    """
    instants = _samples(datetime(year, 6, 1, tzinfo=UTC))
    probes = [len(instants) * k // 24 for k in range(24)]
    words = _words(hint)
    best: tuple[int, int, str] | None = None
    for name in _iana():
        zone = ZoneInfo(name)
        if sum(instants[i].astimezone(zone).utcoffset() != offsets[i] for i in probes) > 3:
            continue
        differ = sum(a != b for a, b in zip(_offsets(zone, instants), offsets, strict=True))
        if differ * 20 > len(instants):
            continue
        rank = (differ, -(len(words & _words(name)) * 2 + (name in _canonical())), name)
        if best is None or rank < (best[0], best[1], best[2]):
            best = rank
    return (best[2], best[0]) if best else None


def _fixed(tzid: str) -> timezone | None:
    found = _FIXED.match(tzid.strip())
    if not found:
        return None
    sign, hours, minutes = found.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
    return timezone(-delta if sign == "-" else delta)


class ZoneResolver:
    """Zones for one item: its VTIMEZONE components, and the zone for floating times."""

    def __init__(self, definitions: dict[str, icalendar.Timezone], default: str | None) -> None:
        self.definitions = definitions
        self.default_name = default if default and iana_zone(default) else None
        self._cache: dict[str, Zone] = {}

    def floating(self) -> Zone:
        """The zone for a time without one: the calendar's X-WR-TIMEZONE or the default, else UTC."""
        if self.default_name:
            return Zone(ZoneInfo(self.default_name), self.default_name,
                        f"a time without a zone (floating) read in {self.default_name}")
        return Zone(UTC, "UTC", "a time without a zone (floating) read as UTC")

    def resolve(self, tzid: str, around: datetime) -> Zone:
        key = tzid.strip().strip('"')
        if key not in self._cache:
            self._cache[key] = self._resolve(key, around)
        return self._cache[key]

    def _resolve(self, tzid: str, around: datetime) -> Zone:
        cleaned = tzid.strip("/").strip()
        if cleaned.upper() in ("UTC", "GMT", "Z", "ETC/UTC"):
            return Zone(UTC, "UTC")
        if (zone := iana_zone(cleaned)) is not None:
            return Zone(zone, cleaned)
        if cleaned in WINDOWS_TO_OLSON and (zone := iana_zone(WINDOWS_TO_OLSON[cleaned])) is not None:
            return Zone(zone, zone.key)  # the same zone in Exchange's own naming: nothing changes
        if tzid.startswith("/"):  # RFC 5545 globally unique id: /vendor/.../Europe/Berlin
            parts = cleaned.split("/")
            for i in range(1, len(parts)):
                if (zone := iana_zone("/".join(parts[i:]))) is not None:
                    return Zone(zone, zone.key, f"zone {tzid!r} read as {zone.key}")
        definition = self.definitions.get(tzid) or self.definitions.get(cleaned)
        if definition is not None:
            found = self._from_definition(tzid, definition, around)
            if found is not None:
                return found
        if (fixed := _fixed(cleaned)) is not None:
            name = _etc_name(fixed)
            if name:
                return Zone(ZoneInfo(name), name, f"zone {tzid!r} read as the fixed offset {name}")
            return Zone(fixed, None, f"zone {tzid!r} read as the fixed offset {fixed}; kept as UTC times")
        fallback = self.floating()
        what = "has no definition in the file" if definition is None else "could not be read"
        return Zone(fallback.tzinfo, fallback.name, f"zone {tzid!r} {what}; read as {fallback.name}")

    def _from_definition(self, tzid: str, definition: icalendar.Timezone, around: datetime) -> Zone | None:
        try:
            offsets = _defined_offsets(definition, _samples(around))
        except Exception:  # a VTIMEZONE icalendar cannot read: treat the zone as undefined
            return None
        location = str(definition.get("X-LIC-LOCATION") or "")
        if location and (zone := iana_zone(location)) is not None and _offsets(zone, _samples(around)) == offsets:
            return Zone(zone, zone.key, f"own zone {tzid!r} read as {zone.key} (its X-LIC-LOCATION)")
        fixed = _fixed(tzid)
        if fixed is not None and set(offsets) == {fixed.utcoffset(None)} and (etc := _etc_name(fixed)):
            return Zone(ZoneInfo(etc), etc, f"own zone {tzid!r} read as the fixed offset {etc}")
        years = f"{around.year - 1}-{around.year}"
        found = _equivalent(offsets, around.year, tzid)
        if found is not None and found[1] == 0:
            return Zone(ZoneInfo(found[0]), found[0], f"own zone {tzid!r} matched to {found[0]}: the same "
                                                      f"offsets {years}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                own = definition.to_tz(lookup_tzid=False)
        except Exception:
            return None
        if found is not None:
            name = found[0]
            return Zone(ZoneInfo(name), name, f"own zone {tzid!r} matched to {name}: the same offsets {years} "
                                              f"but on {found[1]} day(s) around daylight-saving "
                                              "changes; this event's own times are kept exactly", source=own)
        return Zone(own, None, f"own zone {tzid!r} matches no zone Exchange knows; times kept as UTC instants, "
                               "so a series may be an hour off across daylight-saving changes")


def _etc_name(fixed: timezone) -> str | None:
    """Etc/GMT-11 for UTC+11 (the Etc names count the other way round)."""
    offset = fixed.utcoffset(None)
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    if rest or not -14 <= hours <= 12:
        return None
    return "UTC" if hours == 0 else f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"
