"""Mailbox processes forked from the batch's fork server (migrate.batch.forked) behave as the fresh
`python -m migrate.batch.worker` they replace: the batch's environment and folder at the start, a session
of their own, SIGINT as KeyboardInterrupt, stdin's end seen, exit codes as subprocess gives them."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import IO

import pytest

from migrate.batch import forked
from migrate.batch.forked import ForkedWorker

pytestmark = pytest.mark.skipif(not forked.available(), reason="no fork server on this platform")


def start(tmp_path: Path) -> tuple[ForkedWorker, int, IO[str], Path]:
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    log = tmp_path / "worker.log"
    with log.open("ab") as err:
        worker = ForkedWorker(stdin_r, stdout_w, err.fileno(), main="tests.batch.forked_probe:main")
    os.close(stdin_r)
    os.close(stdout_w)
    return worker, stdin_w, open(stdout_r, encoding="utf-8"), log


def test_a_forked_worker_sees_the_batch_as_a_fresh_one_would(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O365M_PROBE", "first")
    warm, stdin, out, _ = start(tmp_path)  # the fork server runs from here on, with the environment of now
    os.close(stdin)
    assert json.loads(out.read())["env"] == "first"
    assert warm.wait() == 3
    monkeypatch.setenv("O365M_PROBE", "changed since the fork server started")
    monkeypatch.chdir(tmp_path)
    worker, stdin, stdout, log = start(tmp_path)
    os.write(stdin, b"job line\n")
    seen = json.loads(stdout.readline())
    assert seen == {"env": "changed since the fork server started", "cwd": str(tmp_path), "leads_session": True,
                    "sigint_raises": True, "first_line": "job line", "exchangelib_warm": True}
    os.close(stdin)  # the batch is gone: the worker reads its end
    assert worker.wait() == 3
    assert worker.returncode == 3
    assert "to the log" in log.read_text()


def test_sigint_and_sigkill_reach_it_and_show_in_the_exit_code(tmp_path: Path) -> None:
    worker, stdin, stdout, _ = start(tmp_path)
    os.write(stdin, b"x\n")
    stdout.readline()
    worker.send_signal(signal.SIGINT)
    assert worker.wait() == 130
    worker.send_signal(signal.SIGINT)  # ended: nothing is sent to a pid that may be another's now

    worker, stdin, stdout, _ = start(tmp_path)
    os.write(stdin, b"x\n")
    stdout.readline()
    worker.kill()
    assert worker.wait() == -signal.SIGKILL
    os.close(stdin)


def test_a_sigint_before_the_worker_handles_it_ends_it_by_that_signal(tmp_path: Path) -> None:
    """As a fresh interpreter would end; multiprocessing alone reports 1, which reads as a crash."""
    stdin_r, stdin_w = os.pipe()
    stdout_r, stdout_w = os.pipe()
    with (tmp_path / "worker.log").open("ab") as err:
        worker = ForkedWorker(stdin_r, stdout_w, err.fileno(), main="tests.batch.forked_probe:unguarded")
    os.close(stdin_r)
    os.close(stdout_w)
    with open(stdout_r, encoding="utf-8") as out:
        assert out.readline().strip() == "waiting"
        worker.send_signal(signal.SIGINT)
        assert worker.wait() == -signal.SIGINT
    os.close(stdin_w)
