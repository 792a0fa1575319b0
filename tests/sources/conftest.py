"""Helpers for the file sources' own tests: the sample mailbox, ../shared, and one comparison."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from migrate import samplebox
from migrate.model import FolderRole, MessageRef
from migrate.samplebox import SampleFolder
from migrate.sources import Source
from tests.corpus import normalise

# /work/main/tests/sources/conftest.py -> /work/main -> /work/shared
SHARED = Path(__file__).resolve().parents[2] / ".." / "shared"


def shared(*parts: str) -> Path:
    """A path under ../shared: a test skips without it, but fails in CI, where it must be there."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{path} is missing, and CI must have ../shared next to the repository")
        pytest.skip(f"{path} is not here")
    return path


def refuse_to_open(monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
    """Make one file unreadable (chmod is no use: the tests may run as root)."""
    real_open = Path.open

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", refuse)


@pytest.fixture(scope="session")
def sample() -> list[SampleFolder]:
    return samplebox.build(12, big_message_bytes=300_000)


def read_everything(source: Source) -> dict[tuple[str, ...], list[tuple[MessageRef, bytes]]]:
    return {
        folder.path: list(source.read(folder, list(source.messages(folder))))
        for folder in source.folders()
        if folder.selectable
    }


def assert_same_as_sample(source: Source, sample: list[SampleFolder]) -> None:
    """Folders with roles and nesting, counts, bytes (CRLF-normalised), and what the capabilities promise."""
    folders = source.folders()
    assert {f.path: f.role for f in folders if f.selectable} == {f.path: f.role for f in sample}
    paths = {f.path for f in folders}
    assert all(f.path[:-1] in paths for f in folders if len(f.path) > 1), "every parent is listed"
    assert [f.role for f in folders].count(FolderRole.INBOX) == 1
    assert folders[0].path == ("INBOX",)
    by_path = {f.path: f for f in sample}
    for folder in folders:
        refs = list(source.messages(folder))
        expected = by_path[folder.path].messages
        assert len(refs) == len(expected), folder.path
        assert len({r.key for r in refs}) == len(refs), "keys are unique in a folder"
        got = list(source.read(folder, refs))
        assert [r for r, _ in got] == refs
        for (ref, raw), want in zip(got, expected, strict=True):
            assert normalise(raw) == normalise(want.raw), ref.key
            assert ref.size == len(raw)
            assert ref.subject is not None
            if source.capabilities.flags:
                assert ref.flags == want.flags, ref.key
            if source.capabilities.internal_dates:
                assert ref.internal_date == want.internal_date, ref.key
    assert source.problems == []
