"""Every .vcf file of ../shared/corpus cut into cards and read, against the corpus's own index."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from migrate.pim import card_fingerprint, parse_card, split_vcards
from migrate.pim.cardlines import read_card
from tests.conftest import shared_dir
from tests.pim.corpus_index import read_index


def _corpus() -> Path:
    return shared_dir("corpus", "vcf")


def _cards(name: str) -> list[bytes]:
    return list(split_vcards((_corpus() / name).read_bytes()))


def test_every_file_matches_its_index() -> None:
    index = read_index(_corpus() / "INDEX.md")
    assert len(index) > 45
    for name, row in index.items():
        cards = _cards(name)
        assert len(cards) == int(row["cards"]), name
        contacts = [parse_card(card) for card in cards]  # never raises
        assert all(read_card(card).version == row["VERSION"] for card in cards), name
        photos = sum(1 for card in cards for p in read_card(card).properties if p.name == "PHOTO")
        assert photos == int(row["PHOTO"]), name
        # every PHOTO is the contact's picture, or dropped with the reason
        accounted = sum(c.photo is not None for c in contacts) + sum(
            1 for c in contacts for prop, _ in c.fidelity.dropped if prop == "PHOTO")
        assert accounted == photos, name
        assert all(c.display_name or c.fidelity.changed[-1][0] == "FN" for c in contacts), name


def test_cards_travel_as_the_file_has_them() -> None:
    data = (_corpus() / "folkerkinzel-vcards/ansi-German.vcf").read_bytes()
    [card] = _cards("folkerkinzel-vcards/ansi-German.vcf")
    assert card == data  # Windows-1252 bytes, LF line ends, untouched
    utf16 = _cards("folkerkinzel-vcards/ansi-v3Utf16Bom.vcf")
    assert len(utf16) == 2 and all(c.startswith(b"\xff\xfe") for c in utf16)


def test_quoted_printable_and_windows_1252() -> None:
    [german] = [parse_card(c) for c in _cards("folkerkinzel-vcards/ansi-German.vcf")]
    assert german.display_name == "Sören Täve Nüßlebaum"
    assert any("Windows-1252" in how or "cp1252" in how for _, how in german.fidelity.changed)
    [greek] = [parse_card(c) for c in _cards("folkerkinzel-vcards/ansi-Greek.vcf")]
    assert greek.display_name == "Βαγγέλης" and greek.family_name == "Παπαθανασίου"
    [qp] = [parse_card(c) for c in _cards("radicale/vcard-quoted-printable1.vcf")]
    assert qp.display_name == "黄世勇"
    [v21] = [parse_card(c) for c in _cards("folkerkinzel-vcards/v2_1.vcf")]
    assert v21.notes is not None and "Kommentar ÄÄÄÄÄÄ äääääää"[:17] in v21.notes  # soft line breaks joined
    assert v21.company == "Firma" and v21.department == "Führungsetage"


def test_photos_inline_base64_and_data_uri() -> None:
    [iphone] = [parse_card(c) for c in _cards("ez-vcard/John_Doe_IPHONE.vcf")]
    assert iphone.photo is not None and iphone.photo.startswith(b"\xff\xd8") and iphone.photo_type == "image/jpeg"
    [data_uri] = [parse_card(c) for c in _cards("radicale/contact_photo_with_data_uri.vcf")]
    assert data_uri.photo is not None and data_uri.photo_type == "image/png"
    [linked] = [parse_card(c) for c in _cards("ez-vcard/fullcontact.vcf")]
    assert linked.photo is None and any("link" in why for p, why in linked.fidelity.dropped if p == "PHOTO")


def test_versions_types_and_dates() -> None:
    [v4] = [parse_card(c) for c in _cards("ez-vcard/rfc6350-example.vcf")]
    assert v4.display_name == "Simon Perreault" and v4.birthday == date(1604, 2, 3)  # --0203: no year
    assert any(prop == "BDAY" for prop, _ in v4.fidelity.changed)
    assert [p.kind for p in v4.phones] == ["work", "mobile"]
    [v3] = [parse_card(c) for c in _cards("ez-vcard/John_Doe_EVOLUTION.vcf")]
    assert v3.birthday == date(1980, 3, 22) and v3.company == "IBM" and v3.emails
    [outlook] = [parse_card(c) for c in _cards("ez-vcard/outlook-2007.vcf")]
    assert {p.kind for p in outlook.phones} >= {"work", "home", "mobile"}
    assert outlook.addresses and outlook.job_title
    [gmail] = [parse_card(c) for c in _cards("ez-vcard/John_Doe_GMAIL.vcf")]  # Apple-style item1. groups
    assert gmail.urls or gmail.addresses


GROUPS = b"""BEGIN:VCARD\r
VERSION:4.0\r
KIND:group\r
FN:Styrelsen\r
MEMBER:mailto:anna@example.org\r
MEMBER:urn:uuid:03a0e51f-d1aa-4385-8a53-e29025acd8af\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
X-ADDRESSBOOKSERVER-KIND:group\r
FN:Apple group\r
X-ADDRESSBOOKSERVER-MEMBER:urn:uuid:B1\r
UID:apple-group\r
END:VCARD\r
"""


def test_groups_vcard4_and_apple() -> None:
    first, second = (parse_card(c) for c in split_vcards(GROUPS))
    assert first.is_group and first.members == ["anna@example.org"]
    assert first.member_uids == ["03a0e51f-d1aa-4385-8a53-e29025acd8af"]
    assert second.is_group and second.member_uids == ["B1"] and second.uid == "apple-group"


def test_fingerprint_ignores_folding_line_ends_and_order() -> None:
    card = b"BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Anna Svensson\r\nEMAIL;TYPE=work:anna@example.org\r\nEND:VCARD\r\n"
    refolded = (b"BEGIN:VCARD\nVERSION:3.0\nEMAIL;TYPE=WORK:anna@exa\n mple.org\nFN:Anna \n Svensson\n"
                b"REV:20240101T000000Z\nEND:VCARD\n")
    assert card_fingerprint(card) == card_fingerprint(refolded)
    assert card_fingerprint(card) != card_fingerprint(card.replace(b"Anna S", b"Anne S"))
    assert card_fingerprint(card).startswith("sha256:")


@pytest.mark.parametrize("data", [b"", b"junk", b"BEGIN:VCARD\r\nFN:cut off", b"BEGIN:VCARD\r\nPHOTO;ENCODING=b:!!!\r\n"
                                  b"BDAY:1999-02-31\r\nN:;;;;;;;;\r\n:novalue\r\nEND:VCARD\r\n", b"\xfe\xff\x00"])
def test_odd_cards_never_raise(data: bytes) -> None:
    for card in split_vcards(data) or [data]:
        contact = parse_card(card)
        assert contact.fidelity is not None
    parse_card(data)
