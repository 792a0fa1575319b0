"""Upload pacing under Exchange Online's budget: how much of the allowed upload rate a real run keeps.

Exchange Online counts about 150 MB per mailbox per 5 minutes of uploads (DOMAIN.md "Limits") and answers 429
with Retry-After beyond it. The Graph target paces itself against the same sliding window
(migrate.targets.graph_http.UploadBudget) so that it is never refused. This bench runs the sandbox with that
budget switched on, scaled down in time and bytes by the same factor (default 1/5: 30 MB per 60 s, the same
0.5 MB/s), and moves a mailbox several times the budget through `o365-migrate run maildir:... --to graph://...`,
one process under /usr/bin/time -v, as a user runs it.

The client's pacer reads its budget from graph_http's defaults (150 MB / 300 s); the bench starts the command
through a two-line wrapper that gives it the scaled budget (`set_upload_budget`, the call the tests use) and then
calls the same `migrate.cli.app.main` as `python -m migrate`. The sandbox counts the bytes it charges
against the budget (request bodies of $batch, message, upload-session and item creations), so the figures below
are in the service's own accounting.

The ratio. A sliding window lets a client that starts with an empty window send one whole budget at once, and
after that never more than the budget in any window: B bytes in each whole window. `kept` (target >= 0.90) is
the bytes charged in the run's whole windows, counted from the moment the command starts, over B per window; the
last, partial window is left out (there the mailbox runs out, not the pacer). `paced` is the same counted from the
first upload, without the start-up (Python, sign-in, preflight, inventory, folders).

Why 1/5 and not smaller: what does not scale with the budget weighs more in a shorter window. The start-up (3-10 s
on a loaded machine), the latency of one 20-message `$batch` (the pacer counts a send from its answer, so each
window's turn comes that much later: 0.3-2 s against the sandbox on a shared core), and the 3.3 MB upload-session
chunks (a chunk waits for its room with the others behind it). At 1/10 (`--budget-mb 15 --window 30`) they cost
several points of `kept`; in Exchange Online's 5 minutes they are five times smaller than at 1/5.
`bound` and `naive` are printed for comparison (see the legend).

EWS goes through the same budget with `--transport ews` (or both): the EWS target has no pacer of its own and
relies on the service's ServerBusy answers (BackOffMilliseconds) and the engine's retries.

    .venv/bin/python -m bench.graph_bench [--budget-mb 30] [--window 60] [--multiple 2.5] [--transport graph,ews]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from migrate.sandbox.server import Sandbox

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MB = 1024 * 1024
TENANT, CLIENT, SECRET = "contoso.example", "graph-bench-app", "Bench~client-secret-value"
PERMISSIONS = ["Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite", "full_access_as_app"]
# What the sandbox charges against a mailbox's upload budget, per transport (its `_throttled` / CreateItem).
CHARGED = {
    "graph": {"graph:POST $batch", "graph:POST messages", "graph:PUT upload", "graph:POST events",
              "graph:POST contacts", "graph:POST importMime", "graph:POST attachments"},
    "ews": {"CreateItem"},
}
# The client's pacer gets the scaled budget, then the command line runs exactly as `python -m migrate`.
# At exit it writes how long the pacer held uploads back, to tell a paced run from one short of CPU.
WRAPPER = """import atexit, json, sys
from migrate.targets.budget import set_mailbox_budget
from migrate.targets.graph_http import UploadBudget, set_upload_budget
endpoint, address, budget, window, held_file = sys.argv[1:6]
del sys.argv[1:6]
pacer = UploadBudget(int(budget), float(window))
set_upload_budget(endpoint, address, pacer)  # Graph's client
set_mailbox_budget(endpoint, address, pacer)  # the EWS target
atexit.register(lambda: open(held_file, "w").write(json.dumps(
    {"held": sum(d.waited for d in pacer.decisions), "sends": len(pacer.decisions)})))
from migrate.cli.app import main
main()
"""


@dataclass
class Figures:
    transport: str
    seconds: float  # wall time of the whole command
    span: float  # first to last charged request, as the sandbox saw them
    charged: int  # bytes the sandbox counted against the budget
    windows: int  # whole budget windows from the command's start to the last charged request
    in_windows: int  # bytes charged within those windows
    upload_windows: int  # the same from the first charged request on: the pacer alone, without the start-up
    in_upload_windows: int
    refused: int  # 429 (Graph) or ServerBusy (EWS) answers to uploads
    concurrency_refusals: int  # Graph 429s for a fifth concurrent request
    created: int
    failed: int
    rss_mb: float
    cpu: float  # the command's user + system seconds
    sandbox_cpu: float  # this process's CPU seconds during the run (the sandbox serving it)
    held: float | None  # seconds the client's pacer held uploads back (Graph; EWS has no pacer)
    reasons: list[str]  # why items failed, the first few
    load: tuple[float, float]  # 1-minute load average before and after


def mailbox(multiple: float, budget: int, work: Path) -> tuple[Path, str]:
    """A Maildir of bench.copy_bench's real-looking messages (samplebox folders and shapes, log-normal sizes
    around 19 KB, one 5-10 MB message in 500), `multiple` times the budget in all."""
    from bench.copy_bench import build, describe
    from migrate import samplebox

    average = 37_500  # bytes per message of build() (75 MB for 2,000), big ones included
    count = max(20, int(multiple * budget / average))
    folders = build(count)
    root = work / "maildir"
    samplebox.write_maildir(folders, root)
    return root, describe(folders)


def run_command(argv: list[str], env: dict[str, str], log: Path) -> tuple[float, float, float, int]:
    """Wall seconds, peak RSS (MB), CPU seconds and exit code of one command under GNU time -v."""
    stats = log.with_suffix(".time")
    start = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(["/usr/bin/time", "-v", "-o", str(stats), *argv], stdout=out, stderr=subprocess.STDOUT,
                              env=env, cwd=REPO, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    text = stats.read_text()

    def field(name: str) -> float:
        found = re.search(re.escape(name) + r": ([\d.]+)", text)
        return float(found.group(1)) if found else float("nan")

    return (elapsed, field("Maximum resident set size (kbytes)") / 1024,
            field("User time (seconds)") + field("System time (seconds)"), done.returncode)


def run_transport(transport: str, sb: Sandbox, source: Path, budget: int, window: float, work: Path,
                  workers: int | None, trace: Path | None = None) -> Figures:
    address = f"{transport}@{TENANT}"  # a mailbox per transport: each has its own budget
    sb.add_mailbox(address)
    if transport == "graph":
        target = f"graph://{address}?endpoint={sb.graph_url}"
        program = [sys.executable, "-c", WRAPPER, sb.graph_url, address, str(budget), str(window),
                   str(work / "held.json")]
    else:
        target = f"ews://{address}?endpoint={sb.ews_url}&impersonate=1"
        program = [sys.executable, "-c", WRAPPER, sb.ews_url, address, str(budget), str(window),
                   str(work / "held.json")]
    out = work / f"{transport}.json"
    argv = [*program, "run", f"maildir:{source}", "--to", target, "--journal", str(work / f"{transport}.sqlite"),
            "-q", "--json", str(out), "--tenant", TENANT, "--client-id", CLIENT, "--authority", sb.url,
            "--client-secret-env", "APP_SECRET", "--auth-ca-file", str(sb.ca_path),
            "--target-ca-file", str(sb.ca_path), *(["--workers", str(workers)] if workers else [])]
    env = {**os.environ, "COLUMNS": "160", "APP_SECRET": SECRET, "O365M_CONFIG_DIR": str(work / "config"),
           "O365M_TOKEN_CACHE": "plaintext", "XDG_STATE_HOME": str(work / "state")}
    seen = len(sb.requests)
    refusals_before = sb.graph.concurrency_refusals
    load_before = os.getloadavg()[0]
    cpu_before = time.process_time()
    started = time.time()  # the sandbox stamps its requests with time.time() too
    seconds, rss, cpu, code = run_command(argv, env, work / f"{transport}.log")
    sandbox_cpu = time.process_time() - cpu_before
    if not out.exists():
        raise RuntimeError(f"{transport} run exited {code} without a result:\n"
                           + (work / f"{transport}.log").read_text(errors="replace")[-3000:])
    result = json.loads(out.read_text())
    mine = [r for r in sb.requests[seen:] if r.mailbox is None or r.mailbox.lower() == address]
    charged = [r for r in mine if r.operation in CHARGED[transport] and r.status < 400]
    if transport == "graph":
        refused = sum(1 for r in mine if r.status == 429 and r.operation != "graph:concurrency")
    else:
        refused = sum(1 for r in mine if r.operation == "CreateItem" and r.status >= 500)
    if trace is not None:  # the sandbox's view of the run, for finding where the rate went
        with trace.open("a") as sink:
            for r in mine:
                sink.write(json.dumps({"transport": transport, "at": r.at, "operation": r.operation,
                                      "status": r.status, "bytes": r.bytes_in}) + "\n")
    span = charged[-1].at - charged[0].at if len(charged) > 1 else 0.0
    windows = int((charged[-1].at - started) // window) if charged else 0
    in_windows = sum(r.bytes_in for r in charged if r.at < started + windows * window)
    upload_windows = int(span // window)
    in_upload_windows = sum(r.bytes_in for r in charged if r.at < charged[0].at + upload_windows * window) \
        if charged else 0
    totals = result["totals"]
    held_file = work / "held.json"
    held = float(json.loads(held_file.read_text())["held"]) if transport == "graph" and held_file.exists() else None
    return Figures(transport, seconds, span, sum(r.bytes_in for r in charged), windows, in_windows,
                   upload_windows, in_upload_windows, refused,
                   sb.graph.concurrency_refusals - refusals_before, int(totals.get("created", 0)),
                   max(int(totals.get("failed", 0)), len(result.get("failures", []))), rss, cpu, sandbox_cpu,
                   held, [f"{f.get('failure')}: {f.get('reason')}"[:200] for f in result.get("failures", [])[:3]],
                   (load_before, os.getloadavg()[0]))


def report(rows: list[Figures], budget: int, window: float) -> None:
    rate = budget / window
    print(f"budget: {budget / MB:.1f} MB per {window:.0f} s per mailbox ({rate / MB:.2f} MB/s; Exchange Online's "
          f"150 MB / 300 s scaled by {budget / (150 * MB):g} in bytes, {window / 300:g} in time), "
          f"{os.cpu_count()} CPUs")
    print(f"  {'transport':9} {'wall s':>6} {'span s':>6} {'MB':>5} {'wins':>4} {'kept':>5} {'paced':>5} {'bound':>5} "
          f"{'naive':>5} {'held s':>6} {'429':>4} {'created':>7} {'failed':>6} {'RSS MB':>6} {'CPU s':>5} "
          f"{'sbx CPU':>7} {'cores':>5} {'load':>9}")
    for f in rows:
        kept = f.in_windows / (budget * f.windows) if f.windows else float("nan")
        paced = f.in_upload_windows / (budget * f.upload_windows) if f.upload_windows else float("nan")
        bound = f.charged / (budget * (1 + f.seconds / window))
        naive = f.charged / f.seconds / rate
        cores = (f.cpu + f.sandbox_cpu) / f.charged * rate if f.charged else float("nan")
        held = f"{f.held:6.1f}" if f.held is not None else f"{'-':>6}"
        print(f"  {f.transport:9} {f.seconds:6.1f} {f.span:6.1f} {f.charged / MB:5.1f} {f.windows:4d} {kept:5.2f} "
              f"{paced:5.2f} {bound:5.2f} {naive:5.2f} {held} {f.refused:4d} {f.created:7,d} {f.failed:6d} "
              f"{f.rss_mb:6.1f} {f.cpu:5.1f} {f.sandbox_cpu:7.1f} {cores:5.2f} {f.load[0]:4.1f}>{f.load[1]:<4.1f}")
    print("""  MB: bytes the sandbox charged against the budget. kept (target >= 0.90): of them, those in the run's
    whole windows (wins), counted from the moment the command starts (sign-in, inventory, folders included), / (budget *
    wins); the last, partial window is left out, as there the mailbox runs out, not the pacer. paced: the same
    from the first upload the sandbox answered, without the start-up (Python, sign-in, preflight, inventory, folders),
    which weighs more the shorter the window (see the module doc). bound: all of them /
    (budget * (1 + wall / window)), the most a sliding window allows in the wall time. naive: (MB / wall) / (budget
    / window), lifted above `kept` by the first window's burst. held: seconds the Graph pacer held uploads back.
    429: answers 429 (Graph, upload budget) or ServerBusy (EWS) to uploads. cores: CPU (command + sandbox) per MB
    times the allowed rate, the CPU the run needs to keep up; with the load average well over the CPUs the
    machine may not give it, and then the rate is the CPU's, not the pacer's.""")
    for f in rows:
        for reason in f.reasons:
            print(f"  {f.transport} failed item: {reason}")
        if f.concurrency_refusals:
            print(f"  {f.transport}: {f.concurrency_refusals} answers of 429 for a fifth concurrent request")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--budget-mb", type=float, default=30.0, help="upload budget per window (MB)")
    parser.add_argument("--window", type=float, default=60.0, help="the budget's sliding window (seconds)")
    parser.add_argument("--multiple", type=float, default=2.5, help="the mailbox's size, in budgets")
    parser.add_argument("--transport", default="graph,ews", help="graph, ews, or both (comma-separated)")
    parser.add_argument("--workers", type=int, default=None, help="--workers for the run (default: the target's)")
    parser.add_argument("--trace", type=Path, default=None, help="write every request the sandbox answered "
                        "(time, operation, status, bytes) to this JSON-lines file")
    parser.add_argument("--no-schema", action="store_true", help="the sandbox does not validate request bodies")
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        sys.exit("needs GNU time: apt-get install -y time")

    from migrate.sandbox.config import SandboxConfig, default_schema_dir
    from migrate.sandbox.server import Sandbox

    budget = int(args.budget_mb * MB)
    transports = [t.strip() for t in args.transport.split(",") if t.strip()]
    if not transports or set(transports) - set(CHARGED):
        sys.exit("--transport takes graph, ews or graph,ews")
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(prefix="o365m-graphbench-", dir=shm if shm.is_dir() else None))
    try:
        source, described = mailbox(args.multiple, budget, work)
        print(f"mailbox: {described}", flush=True)
        schema = default_schema_dir()
        config = SandboxConfig(throttle_enabled=True, throttle_bytes=budget, throttle_window_s=args.window,
                               validate_schema=schema is not None and not args.no_schema, schema_dir=schema,
                               request_log_limit=1_000_000)
        sb = Sandbox(work / "sandbox", config=config).start()
        try:
            sb.add_app(CLIENT, secret=SECRET, permissions=PERMISSIONS)
            rows = []
            for transport in transports:
                rows.append(run_transport(transport, sb, source, budget, args.window, work, args.workers, args.trace))
                print(f"  {transport} done in {rows[-1].seconds:.1f} s", flush=True)
            problems = sb.schema_errors
            if problems:
                print(f"  sandbox saw {len(problems)} schema violation(s), first: {problems[0]}")
            print(f"  answers: {dict(Counter((r.operation, r.status) for r in sb.requests).most_common(12))}")
        finally:
            sb.stop()
        report(rows, budget, args.window)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
