"""Inventory and full read of a 10,000-message IMAP mailbox: o365-migrate against the floor.

The floor is a plain imapclient loop that FETCHes the same data. Each measurement runs in a
fresh process (peak RSS is that process's own), alternating ours and the floor, best of N.
The Dovecot mail store sits on /dev/shm when it exists, so disk noise does not drown the ratio.

    .venv/bin/python -m bench.sources_bench [--messages 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

USER, PASSWORD = "bench", "bench-pw"
BIG = 20 * 1024 * 1024


def fill(maildir: Path, messages: int) -> None:
    """Write the mailbox straight into Dovecot's Maildir: APPENDing 10,000 messages takes longer."""
    from migrate import samplebox

    per_folder = messages // 10
    folders = samplebox.build(per_folder, big_message_bytes=BIG)
    samplebox.write_maildir(folders, maildir)


def worker(kind: str, port: int, ca: str) -> dict[str, float]:
    start = time.perf_counter()
    count = 0
    nbytes = 0
    if kind.startswith("ours"):
        from migrate.inventory import take_inventory
        from migrate.sources import SourceOptions, open_source

        options = SourceOptions(secret=lambda: PASSWORD, ca_file=Path(ca))
        with open_source(f"imaps://{USER}@127.0.0.1:{port}", options) as source:
            if kind == "ours-inventory":
                inv = take_inventory(source)
                count, nbytes = inv.messages, inv.bytes
            else:
                from migrate.sources.base import chunked

                for folder in source.folders():
                    for batch in chunked(source.messages(folder), options.fetch_bytes):
                        for _, raw in source.read(folder, batch):
                            count += 1
                            nbytes += len(raw)
    else:
        import imapclient

        client = imapclient.IMAPClient("127.0.0.1", port=port,
                                       ssl_context=ssl.create_default_context(cafile=ca))
        client.login(USER, PASSWORD)
        for _, _, name in client.list_folders():
            info = client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            # The same items ours fetches: what a migration needs to know of each message.
            items = [b"UID", b"RFC822.SIZE", b"FLAGS", b"INTERNALDATE",
                     b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID DATE SUBJECT)]"]
            sizes = {}
            for i in range(0, len(uids), 1000):
                data = client.fetch(uids[i:i + 1000], items)
                sizes.update(data)
                if kind == "floor-inventory":
                    count += len(data)
                    nbytes += sum(d[b"RFC822.SIZE"] for d in data.values())
            if kind == "floor-read":
                batch: list[int] = []
                size = 0
                for uid in uids:
                    batch.append(uid)
                    size += sizes[uid][b"RFC822.SIZE"]
                    if size > 8 * 1024 * 1024:
                        for d in client.fetch(batch, [b"BODY.PEEK[]"]).values():
                            count += 1
                            nbytes += len(d[b"BODY[]"])
                        batch, size = [], 0
                if batch:
                    for d in client.fetch(batch, [b"BODY.PEEK[]"]).values():
                        count += 1
                        nbytes += len(d[b"BODY[]"])
            del info
        client.logout()
    elapsed = time.perf_counter() - start
    rss_mb = peak_rss_mb()
    return {"seconds": elapsed, "messages": count, "bytes": nbytes, "rss_mb": rss_mb}


def peak_rss_mb() -> float:
    """This process's own peak RSS (VmHWM): ru_maxrss would include the parent's from before exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, port: int, ca: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "bench.sources_bench", "--worker", kind, "--port", str(port),
                          "--ca", ca], capture_output=True, text=True, cwd=REPO, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker")
    parser.add_argument("--port", type=int)
    parser.add_argument("--ca")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.port, args.ca)))
        return

    from tests.servers.dovecot import Dovecot

    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="o365m-bench-", dir=shm if shm.is_dir() else None))
    dovecot = Dovecot(root=root)
    dovecot.add_user(USER, PASSWORD)
    fill(dovecot.maildir(USER), args.messages)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(dovecot.mail_root)], check=True)
    dovecot.start()
    try:
        port, ca = dovecot.ports["imaps"], str(dovecot.ca_path)
        measure("floor-inventory", port, ca)  # warm Dovecot's index and cache once
        results: dict[str, list[dict[str, float]]] = {}
        for _ in range(args.rounds):
            for kind in ("floor-inventory", "ours-inventory", "floor-read", "ours-read"):
                results.setdefault(kind, []).append(measure(kind, port, ca))
        best = {kind: min(runs, key=lambda r: r["seconds"]) for kind, runs in results.items()}
        print(f"mailbox: {best['ours-inventory']['messages']:.0f} messages, "
              f"{best['ours-inventory']['bytes'] / 1e6:.1f} MB, one of {BIG / 1e6:.0f} MB; "
              f"best of {args.rounds}, Dovecot store on {'tmpfs' if shm.is_dir() else 'disk'}")
        for phase in ("inventory", "read"):
            ours, floor = best[f"ours-{phase}"], best[f"floor-{phase}"]
            for name, r in (("o365-migrate", ours), ("imapclient floor", floor)):
                print(f"  {phase:9} {name:17} {r['seconds']:7.2f} s  {r['messages'] / r['seconds']:8.0f} msg/s  "
                      f"{r['bytes'] / 1e6 / r['seconds']:7.1f} MB/s  peak RSS {r['rss_mb']:6.1f} MB")
            print(f"  {phase:9} ratio ours/floor: {ours['seconds'] / floor['seconds']:.2f} "
                  f"(target {'1.5' if phase == 'inventory' else '1.2'}); peak RSS {ours['rss_mb']:.0f} MB "
                  "(target < 150 MB)")
    finally:
        dovecot.cleanup()


if __name__ == "__main__":
    main()
