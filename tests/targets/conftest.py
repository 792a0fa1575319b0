"""Fixtures the target tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private config folder with a plain-file token cache (no keyring on a test machine)."""
    path = tmp_path / "config"
    monkeypatch.setenv("O365M_CONFIG_DIR", str(path))
    monkeypatch.setenv("O365M_TOKEN_CACHE", "plaintext")
    return path
