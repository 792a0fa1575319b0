"""A small set of calendars and address books that every calendar/contact source must see alike."""

from __future__ import annotations

from pathlib import Path

ARBETE = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//o365-migrate tests//EN\r
X-WR-CALNAME:Arbete\r
BEGIN:VTIMEZONE\r
TZID:W. Europe Standard Time\r
BEGIN:STANDARD\r
DTSTART:16010101T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:16010101T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:veckom\xc3\xb6te-1@example.se\r
DTSTAMP:20240101T090000Z\r
DTSTART;TZID=W. Europe Standard Time:20240304T100000\r
DTEND;TZID=W. Europe Standard Time:20240304T103000\r
RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=10\r
EXDATE;TZID=W. Europe Standard Time:20240318T100000\r
SUMMARY:Veckom\xc3\xb6te\r
ATTENDEE;CN=Anna;PARTSTAT=ACCEPTED:mailto:anna@example.se\r
BEGIN:VALARM\r
ACTION:DISPLAY\r
TRIGGER:-PT10M\r
END:VALARM\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:veckom\xc3\xb6te-1@example.se\r
DTSTAMP:20240101T090000Z\r
RECURRENCE-ID;TZID=W. Europe Standard Time:20240325T100000\r
DTSTART;TZID=W. Europe Standard Time:20240325T130000\r
DTEND;TZID=W. Europe Standard Time:20240325T133000\r
SUMMARY:Veckom\xc3\xb6te (flyttat)\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:kickoff@example.se\r
DTSTAMP:20240101T090000Z\r
DTSTART:20240412T070000Z\r
DTEND:20240412T150000Z\r
SUMMARY:Kickoff\r
LOCATION:Stora salen\r
END:VEVENT\r
END:VCALENDAR\r
"""

HELGDAGAR = b"""BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//o365-migrate tests//EN\r
X-WR-CALNAME:Helgdagar\r
BEGIN:VEVENT\r
UID:nationaldagen@example.se\r
DTSTAMP:20240101T090000Z\r
DTSTART;VALUE=DATE:20240606\r
DTEND;VALUE=DATE:20240607\r
SUMMARY:Sveriges nationaldag\r
TRANSP:TRANSPARENT\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:midsommar@example.se\r
DTSTAMP:20240101T090000Z\r
DTSTART;VALUE=DATE:20240621\r
DTEND;VALUE=DATE:20240622\r
SUMMARY:Midsommarafton\r
END:VEVENT\r
BEGIN:VTODO\r
UID:todo@example.se\r
SUMMARY:not carried\r
END:VTODO\r
END:VCALENDAR\r
"""

KUNDER = b"""BEGIN:VCARD\r
VERSION:3.0\r
UID:kund-1@example.se\r
FN:Anna Andersson\r
N:Andersson;Anna;;;\r
ORG:Andersson AB;Ekonomi\r
EMAIL;TYPE=WORK:anna@example.se\r
TEL;TYPE=CELL:+46 70 123 45 67\r
ADR;TYPE=WORK:;;Storgatan 1;Stockholm;;111 22;Sverige\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
UID:kund-2@example.se\r
FN:Bj\xc3\xb6rn Berg\r
N:Berg;Bj\xc3\xb6rn;;;\r
EMAIL;TYPE=HOME:bjorn@example.se\r
BDAY:1980-05-17\r
PHOTO;ENCODING=b;TYPE=PNG:iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r
END:VCARD\r
"""

PRIVAT = b"""BEGIN:VCARD\r
VERSION:4.0\r
UID:urn:uuid:6f0c3a52-8c8e-4d3a-9a55-0c2a8f0c2e11\r
FN:Cecilia Carlsson\r
N:Carlsson;Cecilia;;;\r
EMAIL:cecilia@example.se\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:4.0\r
UID:urn:uuid:0b6a1d1e-2f9b-4f0a-8d52-3c1f1b9d7a01\r
KIND:group\r
FN:Familjen\r
MEMBER:urn:uuid:6f0c3a52-8c8e-4d3a-9a55-0c2a8f0c2e11\r
END:VCARD\r
"""

CALENDARS = {"Arbete": ARBETE, "Helgdagar": HELGDAGAR}
ADDRESS_BOOKS = {"Kunder": KUNDER, "Privat": PRIVAT}
# What every source must list: folder name -> {message_id: subject}
EVENTS = {
    "Arbete": {"veckomöte-1@example.se": "Veckomöte", "kickoff@example.se": "Kickoff"},
    "Helgdagar": {"nationaldagen@example.se": "Sveriges nationaldag", "midsommar@example.se": "Midsommarafton"},
}
CONTACTS = {
    "Kunder": {"kund-1@example.se": "Anna Andersson", "kund-2@example.se": "Björn Berg"},
    "Privat": {"urn:uuid:6f0c3a52-8c8e-4d3a-9a55-0c2a8f0c2e11": "Cecilia Carlsson",
               "urn:uuid:0b6a1d1e-2f9b-4f0a-8d52-3c1f1b9d7a01": "Familjen"},
}


def write_files(root: Path, calendars: bool) -> Path:
    """The sample as .ics or .vcf files, one calendar or address book per file."""
    root.mkdir(parents=True, exist_ok=True)
    for name, data in (CALENDARS if calendars else ADDRESS_BOOKS).items():
        (root / f"{name}.{'ics' if calendars else 'vcf'}").write_bytes(data)
    return root
