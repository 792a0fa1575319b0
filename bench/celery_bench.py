"""A tenant move on Celery workers: `batch --engine celery` into the Exchange sandbox with 1, 2 and 4
`o365-migrate worker` processes, Redis as the broker and the journal in PostgreSQL (all on loopback).

The mailboxes: --mailboxes Maildir accounts (default 200) of about --messages each (default 100; the ten
folders of migrate.samplebox), written to /dev/shm when it exists. The target: the EWS sandbox, app-only with
impersonation, its per-mailbox import budget on (--budget-kb per --window seconds), the kind of limit Exchange
Online puts on each mailbox (about 150 MB per 5 minutes, DOMAIN.md), scaled to these small mailboxes so that
a mailbox spends most of its time waiting on its own budget, as a real one does. The window is 2 s and each
mailbox uploads on one lane (--uploads 1), as bench/batch_bench.py explains: with a tight budget, several
lanes starve retried batches.

What it shows: with the budget per mailbox, a tenant move speeds up with mailboxes in parallel, so with
worker processes, until something they share runs out. For each worker count the report gives the wall time,
the speed-up over one worker, its efficiency (speed-up / workers), and the budget's floor: the time the
per-mailbox budget alone allows at that many mailboxes at once. The engine is not the limit while the wall
time stays near that floor. Every worker moves --concurrency mailboxes at once (default 2), each in its own
process; on a machine with few CPUs those processes compete for them, and the report says how many CPUs
there were and how busy they were, so a speed-up short of linear can be told apart from an engine limit.

The sandbox answers each request at once (TCP_NODELAY), as Exchange does: with Nagle's algorithm its second
write (the body after the headers) waited for the client's delayed ACK, up to 40 ms for each of a mailbox's
requests, so mailboxes waited on the sandbox rather than on their budget. And the targets a mailbox opens
(the run's reader and upload lane, then verification) learn its folders once, so a mailbox of ten folders
now takes about 50 requests instead of 94.

    .venv/bin/python -m bench.celery_bench [--mailboxes 200] [--messages 100] [--workers 1,2,4]
                                           [--concurrency 2] [--budget-kb 160] [--window 2]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from migrate import samplebox
from migrate.sandbox.config import SandboxConfig
from migrate.sandbox.server import Sandbox
from tests.servers.postgres import Postgres
from tests.servers.redis import Redis

TENANT, CLIENT, SECRET = "contoso.example", "celery-bench", "bench-Client-Secret-31"


@dataclass
class Outcome:
    workers: int
    seconds: float
    cpu_busy: float  # the machine's CPU use during the run, 0..1
    messages: int
    ok: bool


def make_sources(root: Path, count: int, messages: int) -> tuple[list[Path], int]:
    per_folder = max(1, messages // 10)
    paths, total = [], 0
    for i in range(count):
        folders = samplebox.build(per_folder, seed=1000 + i)
        path = root / f"box{i:03d}"
        samplebox.write_maildir(folders, path)
        paths.append(path)
        total += sum(len(m.raw) for f in folders for m in f.messages)
    return paths, total


def write_csv(path: Path, sources: list[Path], round_tag: str) -> Path:
    lines = ["EmailAddress,SourceKind,Source"]
    lines += [f"{round_tag}{i:03d}@{TENANT},maildir,{source}" for i, source in enumerate(sources)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def wait_until_ready(logs: list[Path], procs: list[subprocess.Popen[bytes]], timeout: float = 180.0) -> None:
    """Until each worker's log says Celery's "ready." (its INFO line once it consumes tasks)."""
    deadline = time.monotonic() + timeout
    while not all(log.exists() and " ready." in log.read_text(errors="replace") for log in logs):
        if any(proc.poll() is not None for proc in procs):
            sys.exit("a worker ended before it was ready: see " + ", ".join(str(log) for log in logs))
        if time.monotonic() > deadline:
            sys.exit(f"the workers were not ready after {timeout:.0f} s: see their logs")
        time.sleep(0.2)


def run_round(workers: int, sources: list[Path], sandbox: Sandbox, redis: Redis, postgres: Postgres, work: Path,
              args: argparse.Namespace) -> Outcome:
    tag = f"w{workers}x"
    for i in range(len(sources)):
        sandbox.add_mailbox(f"{tag}{i:03d}@{TENANT}")
    db = postgres.new_database(f"bench_{workers}")
    env = {**os.environ, "APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(work / "config"),
           "O365M_TOKEN_CACHE": "plaintext", "REQUESTS_CA_BUNDLE": str(sandbox.ca_path)}
    procs = [subprocess.Popen([sys.executable, "-m", "migrate", "worker", "--broker", redis.url, "--journal-db", db,
                               "--concurrency", str(args.concurrency), "--dir", str(work / f"{tag}-{n}"),
                               "--hostname", f"{tag}{n}@bench"],
                              env=env, stdout=subprocess.DEVNULL, stderr=(work / f"{tag}-{n}.log").open("ab"),
                              stdin=subprocess.DEVNULL) for n in range(workers)]
    try:
        # The clock starts when every worker is up, as a consultant's are long before a batch is sent: four
        # workers booting at once on two CPUs would otherwise count against the speed-up.
        wait_until_ready([work / f"{tag}-{n}.log" for n in range(workers)], procs)
        csv = write_csv(work / f"{tag}.csv", sources, tag)
        psutil.cpu_percent()  # starts the machine-wide CPU count
        started = time.monotonic()
        batch = subprocess.run(
            [sys.executable, "-m", "migrate", "batch", str(csv), "--engine", "celery", "--broker", redis.url,
             "--journal-db", db, "--name", tag.rstrip("x"), "--dir", str(work / f"{tag}.batch"), "-q",
             "--to", f"ews://{TENANT}?endpoint={sandbox.ews_url}&impersonate=1", "--uploads", str(args.uploads),
             "--client-id", CLIENT, "--authority", sandbox.url, "--client-secret-env", "APP_SECRET",
             "--auth-ca-file", str(sandbox.ca_path), "--target-ca-file", str(sandbox.ca_path)],
            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        seconds = time.monotonic() - started
        busy = psutil.cpu_percent() / 100
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    if batch.returncode != 0:
        print(batch.stdout[-3000:], batch.stderr[-3000:], file=sys.stderr)
    moved = sum(len(sandbox.received_mime(f"{tag}{i:03d}@{TENANT}")) for i in range(len(sources)))
    return Outcome(workers, seconds, busy, moved, batch.returncode == 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mailboxes", type=int, default=200)
    parser.add_argument("--messages", type=int, default=100, help="about this many a mailbox (ten folders)")
    parser.add_argument("--workers", default="1,2,4", help="worker process counts to compare")
    parser.add_argument("--concurrency", type=int, default=2, help="mailboxes at once in each worker")
    parser.add_argument("--budget-kb", type=int, default=160, help="sandbox import budget per mailbox and window")
    parser.add_argument("--window", type=float, default=2.0, help="the budget's window, seconds")
    parser.add_argument("--uploads", type=int, default=1, help="upload lanes in each mailbox")
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]

    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else None
    work = Path(tempfile.mkdtemp(prefix="o365m-celery-bench-", dir=base))
    redis, postgres = Redis().start(), Postgres().start()
    config = SandboxConfig(validate_schema=False, validate_responses=False, throttle_enabled=True,
                           throttle_bytes=args.budget_kb * 1024, throttle_window_s=args.window,
                           request_log_limit=1000)
    sandbox = Sandbox(work / "sandbox", config=config).start()
    sandbox.add_app(CLIENT, secret=SECRET, permissions=["full_access_as_app"])
    try:
        sources, total = make_sources(work / "sources", args.mailboxes, args.messages)
        per_mailbox = total / len(sources)
        budget_rate = args.budget_kb * 1024 / args.window  # bytes a second one mailbox may import
        cpus = os.cpu_count() or 1
        print(f"{len(sources)} mailboxes, {total / 1e6:.1f} MB in all ({per_mailbox / 1e3:.0f} kB a mailbox); "
              f"sandbox budget {args.budget_kb} kB per {args.window:g} s per mailbox "
              f"(at least {per_mailbox / budget_rate:.1f} s a mailbox); {args.concurrency} mailboxes at once per "
              f"worker")
        print(f"this machine has {cpus} CPU(s): every worker's mailbox processes, the sandbox, Redis and PostgreSQL "
              "share them, so CPU, not the engine, caps the speed-up once they are busy")
        outcomes = []
        for n in counts:
            outcome = run_round(n, sources, sandbox, redis, postgres, work, args)
            outcomes.append(outcome)
            at_once = min(n * args.concurrency, len(sources))
            floor = len(sources) / at_once * per_mailbox / budget_rate
            print(f"  {n} worker(s): {outcome.seconds:7.1f} s, {outcome.messages} messages, "
                  f"budget floor {floor:6.1f} s, CPUs {outcome.cpu_busy:4.0%} busy"
                  + ("" if outcome.ok else "  (the batch FAILED: see above)"), flush=True)
        one = outcomes[0]
        print("speed-up over one worker (efficiency = speed-up / workers; linear is 100%):")
        for o in outcomes:
            speedup = one.seconds / o.seconds
            ideal = o.workers / one.workers
            print(f"  {o.workers} worker(s): x{speedup:.2f}, efficiency {speedup / ideal:.0%}"
                  + ("  (CPU-bound here: the CPUs were busy)" if o.cpu_busy > 0.85 else ""))
    finally:
        sandbox.stop()
        redis.cleanup()
        postgres.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
