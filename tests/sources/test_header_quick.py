"""The quick ways a listing decodes subjects and dates (migrate.sources.headers) give exactly what the email
package gives, on real mail from the corpus and on generated encoded words and dates; what they cannot do
they leave to it."""

from __future__ import annotations

import base64
import email.header
import email.utils
import mailbox
from datetime import UTC, datetime

from hypothesis import example, given, settings
from hypothesis import strategies as st

from migrate.sources import headers
from migrate.sources.headers import _encoded_words, _plain_date, header_block, header_facts
from tests.conftest import shared_dir


def general(text: str) -> str | None:
    """What the email package makes of it; None where it gives up (the listing then keeps the text)."""
    try:
        return str(email.header.make_header(email.header.decode_header(text)))
    except (LookupError, UnicodeDecodeError, ValueError, email.errors.HeaderParseError):
        return None


def general_date(text: str) -> datetime | None:
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


CHARSETS = ["utf-8", "UTF-8", "iso-8859-1", "ISO-8859-15", "windows-1252", "us-ascii", "koi8-r", "utf-8*sv", ""]


@st.composite
def encoded_words(draw: st.DrawFn) -> str:
    words = []
    for _ in range(draw(st.integers(1, 4))):
        charset = draw(st.sampled_from(CHARSETS))
        text = draw(st.text(alphabet="aåäöé€ _=?x\u00a0\u4e2d", max_size=12))
        raw = text.encode("utf-8" if "utf" in charset.lower() else "latin-1", "replace")
        if draw(st.booleans()):
            encoded = base64.b64encode(raw).decode()
            if draw(st.booleans()):
                encoded = encoded.rstrip("=")  # Postel's law: missing padding
            words.append(f"=?{charset}?{draw(st.sampled_from('bB'))}?{encoded}?=")
        else:
            encoded = "".join(chr(b) if chr(b).isalnum() and b < 128 else
                              ("_" if b == 32 and draw(st.booleans()) else f"={b:02{draw(st.sampled_from('Xx'))}}")
                              for b in raw)
            words.append(f"=?{charset}?{draw(st.sampled_from('qQ'))}?{encoded}?=")
        words.append(draw(st.sampled_from([" ", "  ", "\t", "", " plain ", "x"])))
    return "".join(words).strip()


@settings(max_examples=1500, deadline=None)
@given(encoded_words())
@example("=?utf-8?q?=C3?= =?utf-8?q?=A5?=")  # one character split over two words
@example("=?utf-8?q?broken=ZZ?=")
@example("=?utf-8?b?w6U?=")
@example("=?utf-8?b?!!!?=")
@example("=?iso-8859-1?q?a?= =?utf-8?q?b?=")
@example("Re: =?utf-8?q?=C3=A5?=")
def test_encoded_words_decode_as_the_email_package_does(text: str) -> None:
    quick = _encoded_words(text)
    if quick is not None:
        assert quick == general(text)


def test_the_common_forms_take_the_quick_way() -> None:
    """Else the quick way would be dead code that the equivalence test passes by never running."""
    assert _encoded_words("=?UTF-8?Q?=C3=84rende_1996?=") == "Ärende 1996"
    assert _encoded_words("=?utf-8?b?w4RyZW5kZQ==?= =?utf-8?b?IDE5OTY=?=") == "Ärende 1996"
    assert _encoded_words("=?iso-8859-1?q?V=E4der?=") == "Väder"
    assert _plain_date("Mon, 02 Mar 2015 10:50:00 +0100") == datetime.fromisoformat("2015-03-02T10:50:00+01:00")
    assert _plain_date("2 Mar 2015 10:50:00 -0530") == datetime.fromisoformat("2015-03-02T10:50:00-05:30")


@settings(max_examples=1500, deadline=None)
@given(st.builds(
    lambda day_name, day, month, year, clock, zone: f"{day_name}{day} {month} {year} {clock} {zone}",
    st.sampled_from(["", "Mon, ", "Tue, ", "Xyz, ", "Sun,"]),
    st.integers(0, 32).map(str) | st.just("02"),
    st.sampled_from(["Jan", "feb", "MAR", "Dec", "Foo", "June"]),
    st.integers(0, 2100).map(lambda y: f"{y:04d}") | st.integers(0, 99).map(str),
    st.builds(lambda h, m, s: f"{h:02d}:{m:02d}:{s:02d}", st.integers(0, 25), st.integers(0, 61), st.integers(0, 61)),
    st.sampled_from(["+0000", "-0000", "+0100", "-0530", "+1400", "+0099", "GMT", "+01:00"]),
))
@example("Mon, 02 Mar 2015 10:50:00 +0000")
@example("Mon, 29 Feb 2015 10:50:00 +0000")
@example("Mon, 02 Mar 2015 24:00:00 +0000")
def test_plain_dates_parse_as_email_utils_does(text: str) -> None:
    quick = _plain_date(text)
    if quick is not None:
        expected = general_date(text)
        assert quick == expected
        assert quick.utcoffset() == expected.utcoffset()  # type: ignore[union-attr]
    assert headers.parse_date(text) == general_date(text)


def test_the_corpus_lists_as_the_email_package_reads_it() -> None:
    """Every message of the corpus's mbox files: the subject and date the listing takes are the email
    package's (or the raw text, where the email package gives up)."""
    seen = 0
    for path in sorted(shared_dir("corpus", "mbox").glob("*.mbox")):
        for message in mailbox.mbox(path):
            raw = message.as_bytes()
            facts = header_facts(header_block(raw))
            for name, value in message.items():
                if name.lower() == "subject" and isinstance(value, str) and value.isascii():
                    unfolded = " ".join(part.strip() for part in value.splitlines())
                    assert facts.subject == (general(unfolded) if "=?" in unfolded else unfolded) or (
                        general(unfolded) is None and facts.subject == unfolded)
                    seen += 1
                    break
    assert seen > 50
