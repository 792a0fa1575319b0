"""A 12 MB message inside a much bigger mbox: memory follows the largest message, not the file."""

from __future__ import annotations

import hashlib
import tracemalloc
from pathlib import Path

from migrate import samplebox
from migrate.sources import open_source
from migrate.sources.base import chunked

BIG = 12 * 1024 * 1024


def _filler(n: int) -> bytes:
    """A 10 MB message of long lines: it makes the file big without making the test slow."""
    line = (b"%d " % n) + b"lorem ipsum dolor sit amet " * 36 + b"\n"
    return (b"From MAILER-DAEMON Mon Jan  1 10:00:00 2024\nSubject: filler %d\nMessage-ID: <filler.%d@example.se>\n\n"
            % (n, n)) + line * (10_000_000 // len(line)) + b"\n"


def test_memory_stays_near_the_largest_message(tmp_path: Path) -> None:
    sample = samplebox.build(12, big_message_bytes=BIG)
    samplebox.write_mbox_tree(sample, tmp_path / "tree")
    path = tmp_path / "big.mbox"
    with path.open("wb") as fh:  # the big message among fillers and the rest of the sample
        for n in range(3):
            fh.write(_filler(n))
        fh.write((tmp_path / "tree" / "Inbox").read_bytes())
        for n in range(3, 6):
            fh.write(_filler(n))
        fh.write((tmp_path / "tree" / "Arkiv").read_bytes())
    big = next(m.raw for m in sample[0].messages if b"big.1@" in m.raw)
    assert path.stat().st_size > 4 * len(big)
    big_digest = hashlib.sha256(big).digest()  # compared by hash: a copy would count against the peak

    tracemalloc.start()
    try:
        with open_source(f"mbox:{path}") as source:
            [folder] = source.folders()
            count = largest = 0
            # Listing and reading interleaved, as the engine streams: no list of every message.
            for batch in chunked(source.messages(folder), max_bytes=4 * 1024 * 1024):
                for ref, raw in source.read(folder, batch):
                    assert len(raw) == ref.size
                    if ref.message_id == "<big.1@sample.example.se>":
                        assert hashlib.sha256(raw).digest() == big_digest
                    count += 1
                    largest = max(largest, len(raw))
                    del raw
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 6 + 2 * 12 + 1
    assert largest == len(big)
    assert peak < 3 * largest, f"peak {peak / 1e6:.1f} MB for a {largest / 1e6:.1f} MB message"
