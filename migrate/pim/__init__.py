"""Calendars and contacts: iCalendar and vCard bytes split into items and read into the neutral model.

Every event and contact travels through the engine as bytes, like a mail message: one standalone
iCalendar object per event (its time zones, the series and its changed occurrences), one vCard per
contact. These modules cut files into such items and read an item into `migrate.model.Event` or
`migrate.model.Contact`, with a `Fidelity` account of what could not be kept as it was.
"""

from migrate.pim.ical import CalendarNote, parse_event, split_calendar
from migrate.pim.vcard import card_fingerprint, parse_card, split_vcards

__all__ = ["CalendarNote", "card_fingerprint", "parse_card", "parse_event", "split_calendar", "split_vcards"]
