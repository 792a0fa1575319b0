"""Swedish and English say the same things: same keys, same placeholders."""

from __future__ import annotations

import string

import pytest

from migrate.wizard.strings import EN, SV, Translator, default_lang


def placeholders(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def test_same_keys_and_placeholders() -> None:
    assert set(EN) == set(SV)
    for key in EN:
        assert placeholders(EN[key]) == placeholders(SV[key]), key
        assert SV[key].strip(), key


def test_language_from_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LANG", "sv_SE.UTF-8")
    assert default_lang() == "sv"
    monkeypatch.setenv("LANG", "en_GB.UTF-8")
    assert default_lang() == "en"
    assert Translator("sv")("step", n=2, title="x") == "Steg 2 av 8: x"
