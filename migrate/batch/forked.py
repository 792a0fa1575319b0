"""Mailbox processes forked from a warm process instead of started cold.

A fresh interpreter spends about a CPU-second importing what a mailbox needs (exchangelib, msal, pydantic,
the sources and targets) before it moves a byte; in a tenant of small mailboxes that is most of the work.
So mailbox processes come from multiprocessing's fork server: one process, started once per batch (or
Celery worker), imports those modules and nothing else (no thread, no connection, no secret), then forks
a child per mailbox. Each child is still a process of its own, as migrate.batch.worker wants: a crash, a
leak or exchangelib's process-wide state stays with its mailbox.

The child is made to look like the `python -m migrate.batch.worker` it replaces: stdin, stdout and stderr
are the pipes and log the batch gave it, the environment and working folder are the batch's at the moment
of the start (the fork server's are from when it started), and it leads a session of its own, so Ctrl-C on
the terminal reaches the batch alone. The handle answers what the batch asks of a subprocess.Popen: the
pid, a signal, a kill, and the exit code (negative: the signal that ended it).
"""

from __future__ import annotations

import contextlib
import importlib
import io
import multiprocessing
import os
import signal
import sys
from multiprocessing import reduction
from typing import Any

# What a mailbox imports, warmed once. A module missing here (libpff absent) is skipped by the fork server.
PRELOAD = [
    "migrate.batch.worker", "migrate.batch.mailbox", "migrate.migration", "migrate.engine.runner",
    "migrate.engine.journal_pg", "migrate.sources.imap", "migrate.sources.pop3", "migrate.sources.maildir",
    "migrate.sources.mbox", "migrate.sources.pst", "migrate.targets.imap", "migrate.targets.ews",
    "migrate.targets.graph", "migrate.targets.m365", "migrate.preflight", "migrate.auth.accounts", "migrate.pim",
    "migrate.engine.verify", "exchangelib", "msal", "psycopg",
]

_context: Any = None


def available() -> bool:
    return "forkserver" in multiprocessing.get_all_start_methods() and reduction.HAVE_SEND_HANDLE


def _forkserver() -> Any:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


class ForkedWorker:
    """A running mailbox process: `pid`, `send_signal`, `kill`, `wait`, like subprocess.Popen's."""

    def __init__(self, stdin: int, stdout: int, stderr: int, main: str = "migrate.batch.worker:main") -> None:
        self._process = _forkserver().Process(
            target=_child, name="mailbox", daemon=False,
            args=(reduction.DupFd(stdin), reduction.DupFd(stdout), reduction.DupFd(stderr), dict(os.environ),
                  os.getcwd(), main))
        self._process.start()
        self.pid: int = self._process.pid

    @property
    def returncode(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:  # not to a pid the system may have given to another process
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self) -> int:
        self._process.join()
        code = self._process.exitcode
        assert code is not None
        return int(code)


def _child(stdin: Any, stdout: Any, stderr: Any, environ: dict[str, str], cwd: str, main: str) -> None:
    """In the forked child: become `python -m migrate.batch.worker` as the batch would have started it."""
    os.setsid()
    # SIGINT is how the batch stops a mailbox cleanly: a KeyboardInterrupt, whatever the fork server inherited.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    for wrapped, fd in ((stdin, 0), (stdout, 1), (stderr, 2)):
        given = wrapped.detach()
        os.dup2(given, fd)
        os.close(given)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", line_buffering=True)
    os.environ.clear()
    os.environ.update(environ)
    with contextlib.suppress(OSError):
        os.chdir(cwd)
    module, _, function = main.partition(":")
    try:
        code = getattr(importlib.import_module(module), function)()
    except KeyboardInterrupt:
        # A SIGINT before the worker's own handling began: a fresh interpreter then ends by that signal,
        # where multiprocessing would report exit code 1 as for a crash.
        sys.stdout.flush()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        raise
    sys.exit(code)
