"""The demo: the whole move on built-in data, on this machine only.

A Thunderbird-style mbox store made from the sample mailbox is moved into the local Exchange
sandbox through EWS, with a real MSAL sign-in against the sandbox's authority; then verified
and reported. Everything lands in one folder, which the caller names or we make.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from migrate import samplebox
from migrate.engine.journal import journal_for_plan
from migrate.engine.runner import RunResult
from migrate.engine.verify import Verification
from migrate.migration import plan_migration, run_plan, verify_plan
from migrate.plan import Connection, Plan, SignIn, save_plan
from migrate.progress import Reporter, silent
from migrate.sandbox.config import SandboxConfig
from migrate.sandbox.server import Sandbox

TENANT = "contoso.example"
MAILBOX = f"anna@{TENANT}"
CLIENT_ID = "o365-migrate-demo"
SECRET_ENV = "O365M_DEMO_CLIENT_SECRET"


@dataclass
class DemoResult:
    folder: Path
    plan: Plan
    run: RunResult
    verification: Verification
    report: Path | None


def run_demo(folder: Path, report: Reporter = silent, messages_per_folder: int = 25) -> DemoResult:
    folder.mkdir(parents=True, exist_ok=True)
    # The demo's token cache and sign-in stay in its own folder, never in the user's real one.
    os.environ["O365M_CONFIG_DIR"] = str(folder / "config")
    os.environ.setdefault("O365M_TOKEN_CACHE", "plaintext")
    source_dir = folder / "thunderbird-profile" / "Mail" / "Local Folders"
    if not source_dir.exists():
        samplebox.write_mbox_tree(samplebox.build(messages_per_folder, big_message_bytes=3_000_000), source_dir)
    config = SandboxConfig()
    config.validate_schema = config.schema_dir is not None
    with Sandbox(folder / "exchange-sandbox", config=config) as sandbox:
        secret = os.environ.get(SECRET_ENV) or secrets.token_urlsafe(24)
        os.environ[SECRET_ENV] = secret
        sandbox.add_app(CLIENT_ID, secret=secret, permissions=["full_access_as_app"])
        sandbox.add_mailbox(MAILBOX)
        source = Connection(url=f"mbox:{source_dir}")
        target = Connection(
            url=f"ews://{MAILBOX}?endpoint={sandbox.ews_url}&impersonate=1", ca_file=str(sandbox.ca_path),
            sign_in=SignIn(tenant=TENANT, client_id=CLIENT_ID, authority=sandbox.url, client_secret_env=SECRET_ENV,
                           ca_file=str(sandbox.ca_path)),
        )
        plan, _ = plan_migration(source, target, report=report)
        plan_path = folder / "plan.yaml"
        save_plan(plan, plan_path)
        journal = journal_for_plan(plan_path)
        result = run_plan(plan, journal, report=report)
        verification = verify_plan(plan, journal, report=report)
    report_path: Path | None = None
    try:
        from migrate.reporting.model import from_journal
        from migrate.reporting.render import render_html
    except ImportError:  # the report module is optional for the demo's core steps
        pass
    else:
        report_path = folder / "report.html"
        tmp = report_path.with_suffix(".html.tmp")
        tmp.write_text(render_html(from_journal(journal)), encoding="utf-8")
        tmp.replace(report_path)
    return DemoResult(folder, plan, result, verification, report_path)
