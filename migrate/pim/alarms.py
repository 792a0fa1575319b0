"""VALARM components read into Exchange's one reminder per event.

Exchange keeps a single reminder, some minutes before the start. The first alarm that can be
said that way becomes it (a display or sound alarm, relative to the start or the end, or at a
fixed time before a single event's start); every other alarm is dropped with the reason, so the
account of an event names each of its alarms once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar

from migrate.model import Event, Fidelity


def read_alarms(component: icalendar.Component, event: Event, fidelity: Fidelity) -> None:
    for alarm in (sub for sub in component.subcomponents if sub.name == "VALARM"):
        if event.reminder_minutes is not None:
            fidelity.drop("VALARM", "Exchange keeps one reminder per event; the first is carried")
            continue
        try:
            minutes, how = _minutes(alarm, event)
        except Exception:  # a TRIGGER icalendar could not read
            minutes, how = None, "an alarm whose time cannot be read"
        if minutes is None:
            fidelity.drop("VALARM", how)
            continue
        event.reminder_minutes = minutes
        if how:
            fidelity.change("VALARM", how)
        else:
            fidelity.carry("VALARM")


def _minutes(alarm: icalendar.Component, event: Event) -> tuple[int | None, str]:
    """Minutes before the start, and how the alarm was changed to say it ('' when it was not)."""
    action = str(alarm.get("ACTION") or "DISPLAY").strip().upper()
    trigger: Any = alarm.get("TRIGGER")
    if isinstance(trigger, list):
        trigger = trigger[0] if trigger else None
    if trigger is None:
        return None, "an alarm without a time (TRIGGER)"
    if action not in ("DISPLAY", "AUDIO"):
        return None, f"an alarm that would {'send an e-mail' if action == 'EMAIL' else action.lower()}: " \
                     "Exchange only shows reminders"
    how = "" if action == "DISPLAY" else "a sound alarm carried as a reminder"
    value = trigger.dt
    if isinstance(value, timedelta):
        if str(trigger.params.get("RELATED", "START")).upper() == "END":
            if event.start is None or event.end is None:
                return None, "an alarm relative to the end of an event without an end"
            value = value + (event.end - event.start)
            how = "an alarm relative to the end carried as minutes before the start"
        before = -value
    elif isinstance(value, datetime):
        if event.recurrence is not None:
            return None, "an alarm at a fixed time in a series: Exchange reminds each occurrence alike"
        start = event.start
        if not isinstance(start, datetime):
            return None, "an alarm at a fixed time on an all-day event"
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        before = start - moment
        how = "an alarm at a fixed time carried as minutes before the start"
    else:
        return None, "an alarm whose time cannot be read"
    if before < timedelta(0):
        return None, "an alarm after the start: Exchange reminds only before it"
    return int(before.total_seconds() // 60), how
