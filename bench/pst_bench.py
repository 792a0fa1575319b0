"""Every corpus PST read end to end, round after round, in one process: items/s and peak RSS.

A leak in the PST source (libpff handles left open, items kept alive) shows as RSS that grows
with the rounds; flat RSS after 1, 50 and 200 rounds is the target (issue #9). Each round opens
every file with `open_source("pst:...")`, lists every folder and reads every item, as a run does,
and closes it.

    .venv/bin/python -m bench.pst_bench [--rounds 200] [--report 1,50,200] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    """The process's current RSS (peak RSS only grows: the current one shows a leak as it happens)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def one_round(files: list[Path]) -> tuple[int, int]:
    from migrate.sources.base import open_source

    items = size = 0
    for path in files:
        with open_source(f"pst:{path}") as source:
            for folder in source.folders():
                refs = list(source.messages(folder))
                for _, raw in source.read(folder, refs):
                    items += 1
                    size += len(raw)
    return items, size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--report", default="1,50,200", help="rounds after which to print (comma-separated)")
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "corpus" / "pst")
    args = parser.parse_args()
    files = sorted(args.corpus.glob("*.pst"))
    if not files:
        sys.exit(f"no .pst files in {args.corpus}")
    checkpoints = {int(n) for n in args.report.split(",") if n.strip()} | {args.rounds}
    print(f"{len(files)} PST files from {args.corpus}", flush=True)
    total_items = total_bytes = 0
    started = time.perf_counter()
    first_rss: float | None = None
    for round_no in range(1, args.rounds + 1):
        items, size = one_round(files)
        total_items += items
        total_bytes += size
        if round_no in checkpoints:
            elapsed = time.perf_counter() - started
            now = rss_mb()
            first_rss = first_rss or now
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"  after {round_no:4d} rounds: {total_items:7,d} items, {total_items / elapsed:7.1f} items/s, "
                  f"{total_bytes / elapsed / 2**20:6.2f} MB/s, RSS {now:6.1f} MB (peak {peak:6.1f} MB, "
                  f"{now - first_rss:+.1f} MB since the first report)", flush=True)


if __name__ == "__main__":
    main()
