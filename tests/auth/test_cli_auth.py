"""`o365-migrate auth login | status | logout` through the real entry point, config folder in tmp_path."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from migrate.errors import ExitCode
from migrate.sandbox import Sandbox

from .conftest import ALICE, APP_SECRET, CONFIDENTIAL_APP, PUBLIC_APP, TENANT, cached_secrets

REPO = Path(__file__).resolve().parents[2]


def _env(config_dir: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {**os.environ, "COLUMNS": "200", "O365M_CONFIG_DIR": str(config_dir), "O365M_TOKEN_CACHE": "plaintext",
            **(extra or {})}


def run(config_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "migrate", *args], capture_output=True, text=True, cwd=REPO,
                          env=_env(config_dir, env), stdin=subprocess.DEVNULL, timeout=120)


def _sandbox_args(sb: Sandbox, client_id: str = PUBLIC_APP, tenant: str = TENANT) -> list[str]:
    return ["--tenant", tenant, "--client-id", client_id, "--authority", sb.url, "--ca-file", str(sb.ca_path)]


def _no_secret_outside_the_cache(config_dir: Path, outputs: list[str], extra: tuple[str, ...] = ()) -> None:
    cache_file = config_dir / "token-cache.json"
    secrets = cached_secrets(cache_file) | set(extra)
    assert secrets, "the test must know some secrets to look for"
    for path in config_dir.rglob("*"):
        if path.is_file() and path != cache_file:
            content = path.read_text(errors="replace")
            assert not any(s in content for s in secrets), path
    for text in outputs:
        assert not any(s in text for s in secrets)


def _device_login(sb: Sandbox, config_dir: Path, *extra: str) -> tuple[str, str, int, str]:
    """`auth login` in a subprocess; this test plays the person and approves the code it prints."""
    process = subprocess.Popen([sys.executable, "-m", "migrate", *extra, "auth", "login", "--transport", "ews",
                                *_sandbox_args(sb)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=REPO, env=_env(config_dir), stdin=subprocess.DEVNULL)
    assert process.stderr is not None and process.stdout is not None
    seen: list[str] = []
    code = None
    for line in process.stderr:
        seen.append(line)
        found = re.search(r"Code:\s+([A-Z0-9]{9})\b", line)
        if found:
            code = found.group(1)
            threading.Timer(0.3, sb.approve_device_code, (code, ALICE)).start()
            break
    assert code is not None, "".join(seen)
    pending = sb.store.device_code(user_code=code)
    assert pending is not None
    stdout, rest = process.communicate(timeout=60)
    return stdout, "".join(seen) + rest, process.returncode, pending.device_code


def test_device_login_status_and_logout(tenant: Sandbox, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    stdout, stderr, code, device_code = _device_login(tenant, config_dir, "--debug")
    assert code == 0, stderr
    assert "POST" in stderr and "event=" in stderr  # the debug log is on, msal's included
    assert device_code not in stderr
    assert "Sign in with a browser" in stderr and f"{tenant.url}/devicelogin" in stderr
    assert f"Signed in as {ALICE} for ews in tenant {TENANT}" in stdout
    assert "https://outlook.office365.com/EWS.AccessAsUser.All" in stdout
    assert f"{config_dir / 'token-cache.json'} (plaintext file, file 0600, folder 0700)" in stdout

    shown = run(config_dir, "auth", "status")
    assert shown.returncode == 0, shown.stderr
    assert f"  {ALICE}  tenant " in shown.stdout
    assert f"    app {PUBLIC_APP}: ews, access token until " in shown.stdout and "(renewable)" in shown.stdout
    assert "plaintext because: O365M_TOKEN_CACHE=plaintext" in shown.stdout
    doc = json.loads(run(config_dir, "auth", "status", "--json").stdout)
    assert doc["version"] == 1
    assert doc["cache"] == {"path": str(config_dir / "token-cache.json"), "encrypted": False,
                            "storage": "plaintext file", "plaintext_reason": "O365M_TOKEN_CACHE=plaintext",
                            "file_mode": "0600", "dir_mode": "0700"}
    (account,) = doc["accounts"]
    assert account["address"] == ALICE and account["renewable_for_apps"] == [PUBLIC_APP]
    (token,) = account["tokens"]
    assert token["transports"] == ["ews"] and not token["expired"]
    _no_secret_outside_the_cache(config_dir, [stdout, stderr, shown.stdout, shown.stderr, json.dumps(doc)])

    gone = run(config_dir, "auth", "logout", ALICE)
    assert gone.returncode == 0, gone.stderr
    assert f"Signed out: {ALICE}" in gone.stdout
    after = json.loads(run(config_dir, "auth", "status", "--json").stdout)
    assert after["accounts"] == [] and after["cache"]["file_mode"] == "0600"
    assert cached_secrets(config_dir / "token-cache.json") == set()
    again = run(config_dir, "auth", "logout", ALICE)
    assert again.returncode == ExitCode.BAD_INPUT and "is not signed in here" in again.stderr


def test_app_only_login_with_debug_logging_leaks_nothing(tenant: Sandbox, tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    login = run(config_dir, "--debug", "auth", "login", "--transport", "imap", "--app-only", "--client-secret-env",
                "MIGRATION_SECRET", *_sandbox_args(tenant, CONFIDENTIAL_APP), env={"MIGRATION_SECRET": APP_SECRET})
    assert login.returncode == 0, login.stderr
    assert f"Signed in as app {CONFIDENTIAL_APP} for imap" in login.stdout
    shown = run(config_dir, "auth", "status")
    assert "App-only sign-ins" in shown.stdout
    assert f"  app {CONFIDENTIAL_APP}  tenant " in shown.stdout and ": ews, imap, access token until" in shown.stdout
    _no_secret_outside_the_cache(config_dir, [login.stdout, login.stderr, shown.stdout], extra=(APP_SECRET,))
    assert APP_SECRET not in (config_dir / "token-cache.json").read_text()

    gone = run(config_dir, "auth", "logout", "--all")
    assert gone.returncode == 0 and "Forgot 1 app-only token(s)" in gone.stdout
    assert json.loads(run(config_dir, "auth", "status", "--json").stdout)["app_tokens"] == []


@pytest.mark.parametrize(("args", "env", "exit_code", "expected"), [
    (["--app-only", "--client-secret-env", "S"], {"S": "wrong-secret-value"}, ExitCode.AUTH,
     "error: the client secret for app 0a0b0c0d-confidential-app was refused (use the secret's Value"),
    (["--app-only", "--client-secret-env", "S", "--tenant", "nowhere.example"], {"S": APP_SECRET}, ExitCode.AUTH,
     "error: tenant 'nowhere.example' was not found at"),
    (["--client-secret-env", "S"], {"S": APP_SECRET}, ExitCode.USAGE,
     "error: a client secret or certificate is for app-only sign-in (add --app-only)"),
    (["--app-only"], {}, ExitCode.USAGE, "error: --app-only needs the app's credential"),
    (["--app-only", "--client-secret-env", "UNSET_VAR"], {}, ExitCode.BAD_INPUT,
     "error: the environment variable UNSET_VAR is not set or empty"),
])
def test_login_errors_are_one_line(tenant: Sandbox, tmp_path: Path, args: list[str], env: dict[str, str],
                                   exit_code: int, expected: str) -> None:
    base = _sandbox_args(tenant, CONFIDENTIAL_APP)
    if "--tenant" in args:
        base = base[2:]
    result = run(tmp_path / "config", "auth", "login", "--transport", "ews", *base, *args, env=env)
    assert result.returncode == exit_code, result.stderr
    assert result.stderr.startswith(expected), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert APP_SECRET not in result.stderr and "wrong-secret-value" not in result.stderr


def test_usage_errors(tmp_path: Path) -> None:
    config_dir = tmp_path / "config"
    plain = run(config_dir, "auth", "login", "--transport", "ews", "--tenant", "t.example", "--client-id", "a",
                "--authority", "http://login.example")
    assert plain.returncode == ExitCode.USAGE and "is not an https URL" in plain.stderr
    in_argv = run(config_dir, "auth", "login", "--transport", "ews", "--tenant", "t.example", "--client-id", "a",
                  "--client-secret", "s3cret")
    assert in_argv.returncode == ExitCode.USAGE  # there is no option that takes a secret in argv
    neither = run(config_dir, "auth", "logout")
    assert neither.returncode == ExitCode.USAGE and "--all" in neither.stderr
    nobody = run(config_dir, "auth", "status")
    assert nobody.returncode == 0 and "Nobody is signed in" in nobody.stdout
