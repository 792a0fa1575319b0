"""The sandbox's series expansion against the EWS target's: two independent readings of one Exchange pattern.

The target finds an occurrence's index (for EXDATE and RECURRENCE-ID) by expanding the rule with dateutil;
the sandbox expands the t:Recurrence element exchangelib sends, by hand, as Exchange documents it. If they
disagree, changes land on the wrong occurrence; so any rule the target can express must give the same dates.
"""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from pathlib import Path

from exchangelib import Build, Version
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from migrate.sandbox.recurrence import occurrence_dates, parse_pattern, windows_zone
from migrate.sandbox.store import SCHEMA_VERSION, Store
from migrate.targets.ews_recurrence import DAYS, NotExpressible, parse_rule

VERSION = Version(build=Build(15, 20, 0, 0))


def _sandbox_dates(rrule: str, start: dt.datetime, limit: int) -> list[dt.date]:
    rule = parse_rule(rrule, start)
    element = etree.fromstring(etree.tostring(rule.recurrence(start.date()).to_xml(version=VERSION)))
    return [day for _, day in itertools.islice(occurrence_dates(parse_pattern(element)), limit)]


def _target_dates(rrule: str, start: dt.datetime, limit: int) -> list[dt.date]:
    return [when.date() for when in itertools.islice(parse_rule(rrule, start).occurrences(start), limit)]


day_lists = st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True).map(",".join)
rules = st.one_of(
    st.builds(lambda i: f"FREQ=DAILY;INTERVAL={i}", st.integers(1, 40)),
    st.builds(lambda i, d, w: f"FREQ=WEEKLY;INTERVAL={i};BYDAY={d};WKST={w}", st.integers(1, 5), day_lists,
              st.sampled_from(DAYS)),
    st.builds(lambda i, d: f"FREQ=MONTHLY;INTERVAL={i};BYMONTHDAY={d}", st.integers(1, 13),
              st.sampled_from([1, 2, 15, 28, 29, 30, 31, -1])),
    st.builds(lambda i, n, d: f"FREQ=MONTHLY;INTERVAL={i};BYDAY={n}{d}", st.integers(1, 6),
              st.sampled_from([1, 2, 3, 4, -1]), st.sampled_from(DAYS)),
    st.builds(lambda n, s: f"FREQ=MONTHLY;BYDAY={s};BYSETPOS={n}", st.sampled_from([1, 2, 3, 4, -1]),
              st.sampled_from(["MO,TU,WE,TH,FR", "SA,SU", "MO,TU,WE,TH,FR,SA,SU"])),
    st.builds(lambda m, d: f"FREQ=YEARLY;BYMONTH={m};BYMONTHDAY={d}", st.integers(1, 12), st.integers(1, 31)),
    st.builds(lambda m, n, d: f"FREQ=YEARLY;BYMONTH={m};BYDAY={n}{d}", st.integers(1, 12),
              st.sampled_from([1, 2, 3, 4, -1]), st.sampled_from(DAYS)),
    st.builds(lambda i: f"FREQ=YEARLY;INTERVAL={i}", st.integers(2, 8)),
)
starts = st.datetimes(min_value=dt.datetime(1995, 1, 1), max_value=dt.datetime(2040, 12, 31)).map(
    lambda d: d.replace(second=0, microsecond=0))


@settings(max_examples=300, deadline=None)
@given(rrule=rules, start=starts, count=st.one_of(st.none(), st.integers(1, 30)))
def test_the_sandbox_and_the_target_count_occurrences_alike(rrule: str, start: dt.datetime, count: int | None
                                                            ) -> None:
    if count is not None:
        rrule += f";COUNT={count}"
    try:
        parse_rule(rrule, start)
    except NotExpressible:
        return
    assert _sandbox_dates(rrule, start, 40) == _target_dates(rrule, start, 40)


def test_series_ends_by_date_alike() -> None:
    start = dt.datetime(2024, 1, 31, 9)
    rrule = "FREQ=MONTHLY;BYMONTHDAY=31;UNTIL=20240701"
    assert _sandbox_dates(rrule, start, 99) == _target_dates(rrule, start, 99) == [
        dt.date(2024, m, d) for m, d in ((1, 31), (2, 29), (3, 31), (4, 30), (5, 31), (6, 30))]


def test_windows_zones_the_target_sends_are_known() -> None:
    from exchangelib.winzone import IANA_TO_MS_TIMEZONE_MAP

    assert all(windows_zone(ms_id) is not None for ms_id, _ in IANA_TO_MS_TIMEZONE_MAP.values())
    assert windows_zone("Mars Standard Time") is None


def test_state_from_before_calendars_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store(path).close()
    db = sqlite3.connect(path)
    db.executescript("ALTER TABLE items DROP COLUMN data; UPDATE meta SET value = '1' WHERE key = 'schema_version';")
    db.close()
    store = Store(path)
    try:
        row = store._one("SELECT value FROM meta WHERE key='schema_version'")
        assert row is not None and int(row["value"]) == SCHEMA_VERSION == 2
    finally:
        store.close()
