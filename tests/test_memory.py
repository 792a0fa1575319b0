"""Big buffers go back to the system when freed (see migrate/memory.py)."""

from __future__ import annotations

import platform
import sys

import pytest

from migrate.memory import give_big_buffers_back


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_the_threshold_is_set_on_glibc() -> None:
    assert give_big_buffers_back() is True
