"""`o365-migrate sandbox` through the real entry point: it serves, answers MSAL's discovery, stops on Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path


def test_sandbox_command_serves_and_stops_cleanly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "migrate", "sandbox", "--port", "0", "--state-dir", str(tmp_path),
         "--mailbox", "anna@contoso.example"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "COLUMNS": "200"},
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        while not lines or not lines[-1].startswith("Press Ctrl-C"):  # what the command prints, up to ready
            lines.append(proc.stdout.readline())
            assert lines[-1], lines  # not the end of its output before it is ready
        authority = re.search(r"authority:\s+(\S+)", "".join(lines))
        ca = re.search(r"CA to trust:\s+(\S+)", "".join(lines))
        assert authority and ca, lines
        target = re.search(r"target:\s+(m365://anna@contoso.example\?ews=https://127.0.0.1:\d+/EWS/Exchange.asmx"
                           r"&graph=https://127.0.0.1:\d+/v1.0&imap=none)", "".join(lines))
        assert target, lines  # a target to paste into plan, run and preflight
        context = ssl.create_default_context(cafile=ca.group(1))
        with urllib.request.urlopen(f"{authority.group(1)}/v2.0/.well-known/openid-configuration",
                                    context=context, timeout=10) as answer:
            doc = json.load(answer)
        assert doc["token_endpoint"].startswith("https://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert (tmp_path / "ca.pem").exists()
