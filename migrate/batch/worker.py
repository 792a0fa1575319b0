"""The worker process of one batch mailbox: `python -m migrate.batch.worker`, started by the batch (forked
from its fork server, warm, where the system has one: migrate.batch.forked).

Why a process per mailbox and not a thread: a crash (a corrupt PST in libpff's C code) or a leak ends one
mailbox, not the batch; the GIL does not serialise MIME work across mailboxes; and exchangelib keeps
process-wide state (cached protocols per endpoint and credentials, the CA trust of each endpoint, released
when a target closes) that mailboxes in one process would share and tear down under each other.

Protocol: stdin gives a Job line and a Secrets line, then stays open: its end means the batch is gone (even
killed with SIGKILL), and the worker stops as if interrupted. SIGINT from the batch stops it cleanly. Events
go out as JSON lines on stdout; everything else (logs, a traceback) goes to stderr, which the batch keeps as
worker.log. Every line out, on either stream, has the secrets replaced by asterisks first.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from migrate.batch.job import Job, Secrets
from migrate.batch.mailbox import Outcome, journal_place, journal_totals, move_mailbox
from migrate.engine.journal import journal_exists
from migrate.errors import ExitCode, MigrateError

MASK = "********"
GRACE = 30.0  # seconds a stop may take (a batch in flight finishing) before the worker exits hard
LOCK_WAIT = 60.0  # an earlier worker of this mailbox, left by a killed batch, is given this long to stop


class Scrub:
    """Replace every secret in text. Secrets shorter than 4 characters are replaced too: a mangled
    message is better than a leaked password."""

    def __init__(self, secrets: list[str]) -> None:
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def value(self, value: Any) -> Any:
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value


class _ScrubbedStream:
    """stderr with the secrets masked (logging handlers and tracebacks write through it)."""

    def __init__(self, stream: TextIO, scrub: Scrub) -> None:
        self.stream = stream
        self.scrub = scrub

    def write(self, text: str) -> int:
        self.stream.write(self.scrub(text))
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self.stream.fileno()


class Events:
    def __init__(self, out: TextIO, scrub: Scrub) -> None:
        self.out = out
        self.scrub = scrub
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any]) -> None:
        line = json.dumps(self.scrub.value({"time": round(time.time(), 3), **event}), ensure_ascii=False,
                          default=str)
        with self.lock, contextlib.suppress(BrokenPipeError):
            self.out.write(line + "\n")
            self.out.flush()


def _watch_batch(stdin: TextIO) -> None:
    """The batch holds our stdin open while it lives; its end is the batch's end: stop as if interrupted."""
    with contextlib.suppress(Exception):
        while stdin.read(65536):
            pass
    os.kill(os.getpid(), signal.SIGINT)
    hard = threading.Timer(GRACE, os._exit, args=(int(ExitCode.INTERRUPTED),))
    hard.daemon = True
    hard.start()


@contextlib.contextmanager
def _mailbox_lock(folder: Path, emit: Events) -> Iterator[None]:
    """One worker per mailbox at a time: a killed batch's worker may still be stopping when it runs again."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    with (folder / "lock").open("a") as fh:
        deadline = time.monotonic() + LOCK_WAIT
        told = False
        while True:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise MigrateError("an earlier run of this mailbox is still going",
                                       hint="wait for it to end, then run the batch again") from None
                if not told:
                    emit({"event": "progress", "phase": "inventory", "items": 0, "bytes": 0,
                          "note": "waiting for an earlier run of this mailbox to stop"})
                    told = True
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def main() -> int:
    # Events get their own copy of stdout; fd 1 then points at stderr, so nothing else can corrupt them.
    out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    job = Job.model_validate_json(sys.stdin.readline())
    secrets = Secrets.model_validate_json(sys.stdin.readline() or "{}")
    scrub = Scrub(secrets.values())
    sys.stderr = _ScrubbedStream(sys.stderr, scrub)
    sys.stdout = sys.stderr
    logging.basicConfig(level=logging.DEBUG if job.debug else logging.WARNING, stream=sys.stderr,
                        format=f"%(asctime)s {job.id} %(levelname)s: %(message)s")
    emit = Events(out, scrub)
    threading.Thread(target=_watch_batch, args=(sys.stdin,), name="watch-batch", daemon=True).start()
    try:
        with _mailbox_lock(Path(job.folder), emit):
            outcome = move_mailbox(job, secrets, emit)
    except KeyboardInterrupt:
        journal = journal_place(job, secrets)
        outcome = Outcome("stopped", "stopped before the end; the next batch run resumes it",
                          journal_totals(journal, None) if journal_exists(journal) else {})
    except MigrateError as exc:
        if job.debug:
            traceback.print_exc()
        outcome = Outcome("failed", exc.one_line())
    except Exception as exc:  # a bug must end this mailbox with its story told, not the batch
        traceback.print_exc()
        outcome = Outcome("failed", f"internal error: {exc.__class__.__name__}: {exc} (see worker.log)")
    emit({"event": "end", "state": outcome.state, "error": outcome.error, "totals": outcome.totals})
    return int(ExitCode.INTERRUPTED) if outcome.state == "stopped" else 0


if __name__ == "__main__":
    sys.exit(main())
