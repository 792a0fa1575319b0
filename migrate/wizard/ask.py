"""Questions through questionary, or answered from the answers file when the wizard runs unattended.

One code path for both: every question names the answer it fills, so `--yes` takes the saved answer (or the
question's default) and stops with the answer's name when there is neither.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Sequence
from typing import Any

import questionary

from migrate.errors import UsageError
from migrate.wizard.strings import Translator

Check = Callable[[str], str | None]  # None when the text is good, else what is wrong with it


class Asker:
    def __init__(self, t: Translator, unattended: bool) -> None:
        self.t = t
        self.unattended = unattended

    def _missing(self, key: str) -> UsageError:
        return UsageError(self.t("missing_answer", key=key), hint=self.t("missing_answer_hint"))

    def select(self, key: str, message: str, choices: Sequence[tuple[str, str]], current: str | None = None,
               default: str | None = None) -> str:
        start = current if current is not None and any(v == current for v, _ in choices) else default
        if self.unattended:
            if current is not None:
                return current
            if default is not None:
                return default
            raise self._missing(key)
        options = [questionary.Choice(title=label, value=value) for value, label in choices]
        picked: str = questionary.select(message, choices=options, default=start).unsafe_ask()
        return picked

    def text(self, key: str, message: str, current: str | None = None, default: str | None = None,
             check: Check | None = None) -> str:
        start = current if current is not None else default
        if self.unattended:
            if start is None:
                raise self._missing(key)
            problem = check(start) if check else None
            if problem:
                raise UsageError(f"{key}: {problem}", hint=self.t("missing_answer_hint"))
            return start

        def validate(value: str) -> bool | str:
            problem = check(value.strip()) if check else None
            return problem or True

        answer: str = questionary.text(message, default=start or "", validate=validate).unsafe_ask()
        return answer.strip()

    def confirm(self, key: str, message: str, current: bool | None = None, default: bool = True) -> bool:
        if self.unattended:
            return current if current is not None else default
        answer: bool = questionary.confirm(message, default=current if current is not None else default).unsafe_ask()
        return answer

    def checkbox(self, key: str, message: str, choices: Sequence[tuple[str, str, bool]]) -> list[str]:
        """Several of a list; unattended, the ones checked from the start."""
        if self.unattended:
            return [value for value, _, checked in choices if checked]
        options = [questionary.Choice(title=label, value=value, checked=checked) for value, label, checked in choices]
        picked: list[Any] = questionary.checkbox(message, choices=options).unsafe_ask()
        return [str(p) for p in picked]

    def secret(self, message: str) -> str:
        """A password typed now; never stored. Unattended, only with a terminal to type it on."""
        if self.unattended:
            if not sys.stdin.isatty():
                raise UsageError(self.t("secret_needs_terminal"), hint=self.t("secret_needs_terminal_hint"))
            return getpass.getpass(message + " ")
        answer: str = questionary.password(message).unsafe_ask()
        return answer
