"""IMAP to IMAP copy of one mailbox: o365-migrate's `run` against mbsync (isync), on loopback Dovecot.

The mailbox: 2,000 messages, about 75 MB, median about 20 KB, four of 5-10 MB, in the ten folders
of migrate.samplebox (Swedish and nested names, flags, old dates, no Message-ID, bare LF, 8-bit
headers). It is written straight into the source account's Maildir before Dovecot starts; the
store sits on /dev/shm when it exists, so disk noise does not drown the ratio.

Each copy is one process of each tool as a user runs it, under /usr/bin/time -v (peak RSS is that
process's "Maximum resident set size", measured the same way for both): `python -m migrate run
SOURCE --to TARGET` (inventory and planning included: they are part of a real run) and `mbsync`
with a Pull channel. Both go over TLS to the same Dovecot, into a fresh target account each run;
runs alternate, best of N. Then every copy is checked per folder against the source: sha256 of
each message's bytes, its flags and INTERNALDATE. mbsync adds an X-TUID header to what it stores,
so its copies are compared a second time with that header taken out. Last, a mailbox ten times
the size goes through ours alone, to show that peak RSS stays flat.

Our package's bytecode is compiled before the runs, as pip compiles a package it installs: an editable
install (pip install -e) has none until a first import writes it, and never where PYTHONDONTWRITEBYTECODE
is set, which would make every run compile our modules again (a tenth of a second of the startup).

    .venv/bin/python -m bench.copy_bench [--messages 2000] [--rounds 3] [--scale 10] [--scale-rounds 1]
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import os
import random
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import imapclient

if TYPE_CHECKING:
    from migrate.samplebox import SampleFolder
    from tests.servers.dovecot import Dovecot

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCE_PW, TARGET_PW = "bench-pw", "target-pw"
MEDIAN = 19_000  # bytes, of the ordinary messages
BIG_SIZES = (5_000_000, 6_500_000, 8_000_000, 10_000_000)  # one of each per 2,000 messages
BIG_EVERY = 500
KEPT = {"\\seen", "\\flagged", "\\answered", "\\draft", "\\deleted"}
_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.IGNORECASE | re.MULTILINE)


# --- the mailbox ----------------------------------------------------------------------------

def build(messages: int, seed: int = 75) -> list[SampleFolder]:
    """samplebox's folders and message shapes, with sizes that look like a real mailbox.

    samplebox.build's messages are 1-17 KB; here each one carries an attachment sized so that the
    whole message follows a log-normal around MEDIAN bytes, and one in BIG_EVERY is 5-10 MB.
    """
    from migrate import samplebox

    rng = random.Random(seed)
    folders = [samplebox.SampleFolder(path, role) for path, role in samplebox.FOLDERS]
    start = datetime(2004, 3, 1, 9, 30, tzinfo=UTC)
    for n in range(1, messages + 1):
        folder_index = (n - 1) * len(folders) // messages  # the same count in each folder
        when = start + timedelta(days=n * 37 % 7000, minutes=n * 13)
        message_id: str | None = f"{n:06d}.{folder_index}@bench.example.se"
        if n % 11 == 5:
            message_id = None
        if n in (4, 17, 58):  # the same Message-ID three times
            message_id = "shared.dup@bench.example.se"
        if n % BIG_EVERY == BIG_EVERY // 2:
            size = BIG_SIZES[(n // BIG_EVERY) % len(BIG_SIZES)]
        else:
            size = int(min(max(rng.lognormvariate(0, 0.5) * MEDIAN, 1_500), 400_000))
        # base64 makes 3 bytes 4 (plus CRLF every 76); the text part and headers take about 1.2 KB.
        attachment = rng.randbytes(int((size - 1_200) * 57 / 78)) if size > 3_000 else None
        raw = samplebox._message(rng, n, when, message_id=message_id, subject=f"Ärende {n}",
                                 attachment=attachment, bare_lf=(n % 9 == 8), eight_bit=(n % 10 == 6))
        flags = set()
        if n % 3 != 0:
            flags.add("\\Seen")
        if n % 8 == 1:
            flags.add("\\Flagged")
        if n % 6 == 2:
            flags.add("\\Answered")
        if folders[folder_index].role.value == "drafts":
            flags.add("\\Draft")
        folders[folder_index].messages.append(
            samplebox.SampleMessage(raw, frozenset(flags), when + timedelta(minutes=2)))
    return folders


def describe(folders: list[SampleFolder]) -> str:
    sizes = sorted(len(m.raw) for f in folders for m in f.messages)
    big = [s for s in sizes if s >= 1_000_000]
    return (f"{len(sizes):,} messages, {sum(sizes) / 1e6:.1f} MB, median {sizes[len(sizes) // 2] / 1e3:.1f} KB, "
            + (f"{len(big)} of {big[0] / 1e6:.0f}-{big[-1] / 1e6:.0f} MB, " if big else "")
            + f"largest {sizes[-1] / 1e6:.1f} MB, {len(folders)} folders")


# --- checking a copy ------------------------------------------------------------------------

def connect(port: int, ca: str, user: str, password: str) -> imapclient.IMAPClient:
    client = imapclient.IMAPClient("127.0.0.1", port=port, ssl_context=ssl.create_default_context(cafile=ca))
    client.login(user, password)
    client.normalise_times = False
    return client


def digests(port: int, ca: str, user: str, password: str) -> dict[str, list[tuple[str, str, str, tuple, float]]]:
    """Every folder's messages as (sha256, sha256 without X-TUID, size, flags, INTERNALDATE), sorted."""
    client = connect(port, ca, user, password)
    result: dict[str, list[tuple[str, str, str, tuple, float]]] = {}
    try:
        for flags, _, name in client.list_folders():
            if any(f.lower() in (b"\\noselect", b"\\nonexistent") for f in flags):
                continue
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            sizes = client.fetch(uids, [b"RFC822.SIZE"]) if uids else {}
            rows = []
            batch: list[int] = []
            total = 0
            for i, uid in enumerate(uids):
                batch.append(uid)
                total += sizes[uid][b"RFC822.SIZE"]
                if total < 16 * 1024 * 1024 and i + 1 < len(uids):
                    continue
                for data in client.fetch(batch, [b"BODY.PEEK[]", b"FLAGS", b"INTERNALDATE"]).values():
                    body = data[b"BODY[]"]
                    kept = tuple(sorted(f.decode().lower() for f in data[b"FLAGS"] if f.lower().decode() in KEPT))
                    rows.append((hashlib.sha256(body).hexdigest(), hashlib.sha256(_TUID.sub(b"", body)).hexdigest(),
                                 str(len(body)), kept, data[b"INTERNALDATE"].timestamp()))
                batch, total = [], 0
            result["INBOX" if name.upper() == "INBOX" else name] = sorted(rows)
    finally:
        client.logout()
    return result


def compare(source: dict, target: dict) -> tuple[str, str, int]:
    """Per folder: identical bytes / identical without X-TUID; and how many stored messages carry X-TUID."""
    def verdict(index: int) -> str:
        bad = []
        for folder, rows in source.items():
            theirs = target.get(folder)
            if theirs is None:
                bad.append(f"{folder}: missing")
                continue
            mine = Counter((r[index], r[3], r[4]) for r in rows)
            got = Counter((r[index], r[3], r[4]) for r in theirs)
            if mine != got:
                lost = sum((mine - got).values())
                extra = sum((got - mine).values())
                same_bytes = Counter(r[index] for r in rows) == Counter(r[index] for r in theirs)
                bad.append(f"{folder}: {lost} source messages without an identical copy, {extra} extra"
                           + (" (bytes equal: flags or dates differ)" if same_bytes else ""))
        extra_folders = sorted(set(target) - set(source))
        if extra_folders:
            bad.append(f"extra folders {extra_folders}")
        n = len(source)
        return f"yes, all {n} folders" if not bad else f"NO, {len(bad)} of {n} folders differ: " + "; ".join(bad[:2])

    tuid = sum(1 for rows in target.values() for r in rows if r[0] != r[1])
    return verdict(0), verdict(1), tuid


# --- running the tools ----------------------------------------------------------------------

def timed(argv: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    """Wall seconds, peak RSS (MB) and CPU seconds (user + system) of one command, under GNU time -v."""
    stats = log.with_suffix(".time")
    start = time.perf_counter()
    with log.open("wb") as out:
        done = subprocess.run(["/usr/bin/time", "-v", "-o", str(stats), *argv], stdout=out, stderr=subprocess.STDOUT,
                              env=env, cwd=REPO)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {done.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
    text = stats.read_text()

    def field(name: str) -> float:
        found = re.search(re.escape(name) + r": ([\d.]+)", text)
        return float(found.group(1)) if found else float("nan")

    return {"seconds": elapsed, "rss_mb": field("Maximum resident set size (kbytes)") / 1024,
            "cpu": field("User time (seconds)") + field("System time (seconds)")}


def server_cpu(pid: int) -> float:
    """CPU seconds of Dovecot's master and of the children it has reaped (imap, login, auth)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def measured(tool: Callable[..., dict[str, float]], dovecot: Dovecot, *args: object) -> dict[str, float]:
    """One run of a tool, with the CPU that Dovecot spent serving it."""
    assert dovecot.proc is not None
    pid = dovecot.proc.pid
    before = server_cpu(pid)
    result = tool(*args)
    time.sleep(0.3)  # let the master reap the imap processes of the run
    result["server_cpu"] = server_cpu(pid) - before
    return result


def run_ours(port: int, ca: str, source: str, target: str, work: Path) -> dict[str, float]:
    env = {**os.environ, "SRC_PW": SOURCE_PW, "TGT_PW": TARGET_PW}
    # O365M_BENCH_PROFILE=DIR keeps a cProfile of each of our runs there (for finding where time goes).
    # O365M_BENCH_PYSPY=DIR samples every thread with py-spy (flame-graph input, idle time left out).
    profile = os.environ.get("O365M_BENCH_PROFILE")
    spy = os.environ.get("O365M_BENCH_PYSPY")
    runner = ["-m", "cProfile", "-o", str(Path(profile) / f"{target}.prof")] if profile else []
    wrapper = ([shutil.which("py-spy") or "py-spy", "record", "-f", "raw", "-r", "250", "-o",
                str(Path(spy) / f"{target}.txt"), "--"] if spy else [])
    argv = [*wrapper, sys.executable, *runner, "-m", "migrate", "run", f"imaps://{source}@127.0.0.1:{port}",
            "--to", f"imaps://{target}@127.0.0.1:{port}", "--journal", str(work / f"{target}.sqlite"), "-q",
            "--password-env", "SRC_PW", "--ca-file", ca, "--target-password-env", "TGT_PW", "--target-ca-file", ca]
    return timed(argv, env, work / f"{target}.log")


def run_mbsync(port: int, ca: str, source: str, target: str, work: Path) -> dict[str, float]:
    state = work / f"{target}.state"
    state.mkdir()
    config = work / f"{target}.mbsyncrc"
    accounts = ""
    for name, user, password in (("src", source, SOURCE_PW), ("tgt", target, TARGET_PW)):
        # isync 1.4 checks DNS names in the certificate only, not IP addresses: "localhost" (127.0.0.1).
        accounts += (f"IMAPAccount {name}\nHost localhost\nPort {port}\nUser {user}\nPass {password}\n"
                     f"SSLType IMAPS\nCertificateFile {ca}\nAuthMechs LOGIN\n\n"
                     f"IMAPStore {name}\nAccount {name}\n\n")
    config.write_text(accounts + "Channel copy\nFar :src:\nNear :tgt:\nPatterns *\nCreate Near\nSync Pull\n"
                      f"CopyArrivalDate yes\nExpunge None\nRemove None\nSyncState {state}/\n")
    config.chmod(0o600)
    return timed([shutil.which("mbsync") or "mbsync", "-q", "-c", str(config), "copy"], dict(os.environ),
                 work / f"{target}.log")


def fresh_target(dovecot: Dovecot, user: str) -> None:
    """A new account with its special-use folders there already, as on a real server: both tools use them."""
    from tests.servers.dovecot import SPECIAL_USE

    dovecot.add_user(user, TARGET_PW)
    maildir = dovecot.maildir(user)
    from migrate.samplebox import imap_utf7_encode

    for name in ("", *("." + imap_utf7_encode(n) for n in SPECIAL_USE)):
        for sub in ("cur", "new", "tmp"):
            (maildir / name / sub).mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(maildir.parent)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=10, help="the large mailbox, as a multiple (0: none)")
    parser.add_argument("--scale-rounds", type=int, default=1)
    args = parser.parse_args()
    if shutil.which("mbsync") is None or not Path("/usr/bin/time").exists():
        sys.exit("needs mbsync and GNU time: apt-get install -y isync time")

    import migrate
    from tests.servers.dovecot import Dovecot

    compileall.compile_dir(str(Path(migrate.__file__).parent), quiet=1)  # as `pip install` does
    shm = Path("/dev/shm")
    root = Path(tempfile.mkdtemp(prefix="o365m-copybench-", dir=shm if shm.is_dir() else None))
    work = Path(tempfile.mkdtemp(prefix="o365m-copybench-state-"))  # journals and SyncState: on disk, as in use
    dovecot = Dovecot(root=root)
    small = build(args.messages)
    dovecot.add_user("source", SOURCE_PW)
    from migrate import samplebox

    samplebox.write_maildir(small, dovecot.maildir("source"))
    print(f"mailbox: {describe(small)}", flush=True)
    del small
    large_desc = None
    if args.scale:
        large = build(args.messages * args.scale)
        dovecot.add_user("source10", SOURCE_PW)
        samplebox.write_maildir(large, dovecot.maildir("source10"))
        large_desc = describe(large)
        del large
    if os.geteuid() == 0:
        subprocess.run(["chown", "-R", "dovecot:dovecot", str(dovecot.mail_root)], check=True)
    dovecot.start()
    try:
        port, ca = dovecot.ports["imaps"], str(dovecot.ca_path)
        reference = digests(port, ca, "source", SOURCE_PW)  # also warms Dovecot's index and cache
        total = sum(int(r[2]) for rows in reference.values() for r in rows)
        count = sum(len(rows) for rows in reference.values())
        tools = {"o365-migrate": run_ours, "mbsync": run_mbsync}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in tools}
        checks: dict[str, tuple[str, str, int]] = {}
        for r in range(args.rounds):
            order = list(tools) if r % 2 == 0 else list(reversed(tools))
            for name in order:
                user = f"{'ours' if name == 'o365-migrate' else 'mbsync'}{r + 1}"
                fresh_target(dovecot, user)
                run = measured(tools[name], dovecot, port, ca, "source", user, work)
                results[name].append(run)
                check = compare(reference, digests(port, ca, user, TARGET_PW))
                if name not in checks or not check[0].startswith("yes"):
                    checks[name] = check  # a bad run is reported rather than a good one
                print(f"  round {r + 1} {name:12} {line(run, count, total)}  identical: {check[0]}", flush=True)
                shutil.rmtree(dovecot.mail_root / user, ignore_errors=True)
        print(f"copy of {count:,} messages, {total / 1e6:.1f} MB, imaps on loopback, Dovecot store on "
              f"{'tmpfs' if shm.is_dir() else 'disk'}, {os.cpu_count()} CPUs, best of {args.rounds} (alternating), "
              f"mbsync {mbsync_version()}")
        best = {name: min(runs, key=lambda run: run["seconds"]) for name, runs in results.items()}
        for name, run in best.items():
            print(f"  {name:12} {line(run, count, total)}")
        print(f"  ratio ours/mbsync: {best['o365-migrate']['seconds'] / best['mbsync']['seconds']:.2f} "
              "(target <= 1.0)")
        for name, (identical, without_tuid, tuid) in checks.items():
            print(f"  {name:12} byte-identical per folder (sha256 + flags + INTERNALDATE): {identical}")
            if name == "mbsync":
                print(f"  {name:12} {tuid:,} of {count:,} stored messages carry an X-TUID header; "
                      f"with it stripped: {without_tuid}")
        if args.scale:
            big_ref = digests(port, ca, "source10", SOURCE_PW)
            big_total = sum(int(r[2]) for rows in big_ref.values() for r in rows)
            big_count = sum(len(rows) for rows in big_ref.values())
            print(f"large mailbox: {large_desc}; o365-migrate only", flush=True)
            for r in range(args.scale_rounds):
                user = f"ours10x{r + 1}"
                fresh_target(dovecot, user)
                run = measured(run_ours, dovecot, port, ca, "source10", user, work)
                identical = compare(big_ref, digests(port, ca, user, TARGET_PW))[0]
                shutil.rmtree(dovecot.mail_root / user, ignore_errors=True)
                print(f"  o365-migrate {line(run, big_count, big_total)}  identical: {identical}")
            print(f"  peak RSS target < 150 MB, flat: {args.messages:,} messages "
                  f"{max(r['rss_mb'] for r in results['o365-migrate']):.1f} MB (max of runs), "
                  f"{big_count:,} messages {run['rss_mb']:.1f} MB", flush=True)
    finally:
        dovecot.cleanup()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def line(run: dict[str, float], count: int, total: int) -> str:
    return (f"{run['seconds']:7.2f} s  {count / run['seconds']:6.0f} msg/s  {total / 1e6 / run['seconds']:5.1f} MB/s  "
            f"peak RSS {run['rss_mb']:6.1f} MB  CPU {run['cpu']:5.2f} s (Dovecot {run['server_cpu']:5.2f} s)")


def mbsync_version() -> str:
    out = subprocess.run(["mbsync", "--version"], capture_output=True, text=True)
    return out.stdout.strip().split()[-1] if out.stdout.strip() else "?"


if __name__ == "__main__":
    main()
