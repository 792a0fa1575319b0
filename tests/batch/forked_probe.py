"""A stand-in for migrate.batch.worker's main, run in a forked mailbox process by test_forked.py."""

from __future__ import annotations

import json
import os
import signal
import sys


def main() -> int:
    seen = {
        "env": os.environ.get("O365M_PROBE"),
        "cwd": os.getcwd(),
        "leads_session": os.getsid(0) == os.getpid(),
        "sigint_raises": signal.getsignal(signal.SIGINT) is signal.default_int_handler,
        "first_line": sys.stdin.readline().strip(),
        "exchangelib_warm": "exchangelib" in sys.modules,
    }
    print("to the log", file=sys.stderr, flush=True)
    try:  # the test's SIGINT may come as soon as the line is out
        print(json.dumps(seen), flush=True)
        rest = sys.stdin.read()  # until the batch closes the pipe (or a SIGINT)
    except KeyboardInterrupt:
        return 130
    return 3 if rest == "" else 4


def unguarded() -> int:
    """A worker that a SIGINT reaches before it handles one."""
    print("waiting", flush=True)
    sys.stdin.read()
    return 0
