"""Keep the process's memory flat however large the mailbox.

Messages are read and sent as whole bytes objects, some of them megabytes long. glibc's malloc
raises its mmap threshold every time such a buffer is freed (up to 32 MB), after which big
buffers come from the heap, which fragments and is rarely given back: peak RSS crept from 89 MB
to 105 MB when the bench mailbox grew from 2,000 to 20,000 messages. A fixed threshold keeps
every buffer over 256 KB in its own mapping, returned to the system when freed: 92 MB at 20,000
(bench/copy_bench.py, --scale 10).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_MMAP_THRESHOLD = -3  # from glibc's malloc.h
BIG_BUFFER = 256 * 1024


def give_big_buffers_back() -> bool:
    """Fix malloc's mmap threshold (glibc only); whether it was set."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        # glibc's soname first: find_library runs ldconfig in a subprocess, which costs a run 20-30 ms
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        except OSError:
            return False
    try:
        return bool(libc.mallopt(M_MMAP_THRESHOLD, BIG_BUFFER))
    except AttributeError:  # musl and others: no mallopt, nothing to tune
        return False
