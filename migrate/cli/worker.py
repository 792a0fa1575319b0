"""`o365-migrate worker`: take mailboxes of distributed batches from the broker and move them (Celery's
worker, with this project's task and settings)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Annotated

import typer

from migrate.batch.needs import require_distributed

BROKER_EXAMPLE = "redis://HOST:6379/0"
DATABASE_EXAMPLE = "postgresql://USER@HOST/DATABASE"


def _default_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "o365-migrate" / "worker"


def worker(
    broker: Annotated[str, typer.Option("--broker", metavar="URL", help=f"The broker the batches send to: "
                                        f"{BROKER_EXAMPLE} (or env:VAR holding the URL).")],
    journal_db: Annotated[str, typer.Option("--journal-db", metavar="URL", help=f"The shared journal: "
                                            f"{DATABASE_EXAMPLE} (or env:VAR; a password in PGPASSWORD or "
                                            "~/.pgpass).")],
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1, max=64, help="Mailboxes at once on "
                                             "this machine (each its own process).")] = 4,
    folder: Annotated[Path | None, typer.Option("--dir", metavar="DIR", help="Where this worker keeps the plans, "
                                                "results and logs of the mailboxes it moves (default: "
                                                "~/.local/state/o365-migrate/worker).")] = None,
    lease: Annotated[float, typer.Option("--lease", min=5.0, metavar="SECONDS", help="How long a mailbox stays "
                                         "this worker's without renewal: after a crash, another worker resumes it "
                                         "about this long after (with Redis, its task too goes back to the queue "
                                         "once this worker has been silent this long).")] = 60.0,
    node: Annotated[str | None, typer.Option("--hostname", "-n", help="This worker's name (default: "
                                             "o365-migrate-PID@HOST).")] = None,
) -> None:
    """Move mailboxes that `batch --engine celery` sends, until Ctrl-C (which stops them cleanly: another
    worker resumes them). Run one on each machine; each moves --concurrency mailboxes at once."""
    require_distributed("o365-migrate worker")
    from migrate.batch.remote import BROKER_SCHEMES, DATABASE_SCHEMES, resolve_url
    from migrate.batch.shared import SharedBatch
    from migrate.batch.tasks import QUEUE, WorkerSettings, make_app

    broker_url = resolve_url(broker, "--broker", BROKER_SCHEMES, BROKER_EXAMPLE)
    db = resolve_url(journal_db, "--journal-db", DATABASE_SCHEMES, DATABASE_EXAMPLE)
    SharedBatch(db).close()  # reachable, and its schema in place, before any task is taken
    home = (folder or _default_dir()).resolve()
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    app = make_app(broker_url, WorkerSettings(journal_db=db, folder=home, lease=lease))
    # Threads, not forked children: each mailbox already runs in a process of its own, which a thread starts
    # and follows; a worker killed outright leaves those processes to stop on their own (their stdin ends).
    app.worker_main(["worker", f"--concurrency={concurrency}", "--pool=threads", "--loglevel=INFO",
                     "--without-gossip", "--without-mingle", "-Q", QUEUE,
                     "-n", node or f"o365-migrate-{os.getpid()}@{socket.gethostname()}"])
