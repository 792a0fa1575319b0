"""A private PostgreSQL on a free loopback port, in a temporary data folder, for tests and bench/.

PostgreSQL refuses to run as root, and CI runs as root: then the server (and initdb) run as the Debian
package's `postgres` user through runuser, with a data folder this fixture makes and hands over to it.
Sign-in is `trust` on loopback only (the server listens on 127.0.0.1 and no socket elsewhere), and the
server is stopped by its own pid, so it never touches a system cluster.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers.dovecot import free_port

RUN_AS = "postgres"


def postgres_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class Postgres:
    def __init__(self) -> None:
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="o365m-postgres-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._databases = 0

    def _as_owner(self) -> list[str]:
        """As root, run the server's programs as `postgres`; otherwise as ourselves."""
        return ["runuser", "-u", RUN_AS, "--"] if os.geteuid() == 0 else []

    def start(self) -> Postgres:
        os.chmod(self.root, 0o755)
        self.data.mkdir(mode=0o700)
        if os.geteuid() == 0:
            owner = pwd.getpwnam(RUN_AS)
            os.chown(self.data, owner.pw_uid, owner.pw_gid)
        subprocess.run([*self._as_owner(), str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth=trust", "--encoding=UTF8", "--no-sync"], check=True, capture_output=True)
        # fsync off: nothing here must outlive the test run; the journal's own commits are still whole.
        self.proc = subprocess.Popen(
            [*self._as_owner(), str(self.bindir / "postgres"), "-D", str(self.data), "-h", "127.0.0.1",
             "-p", str(self.port), "-k", "", "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=200"],
            stdout=subprocess.DEVNULL, stderr=(self.root / "postgres.log").open("ab"))
        deadline = time.monotonic() + 60
        while True:
            ready = subprocess.run([str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                                   capture_output=True)
            if ready.returncode == 0:
                return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.root / "postgres.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start:\n{log}")
            time.sleep(0.2)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, stem: str = "journal") -> str:
        """A fresh empty database, its URL: one per test keeps tests apart on one server."""
        import psycopg

        self._databases += 1
        name = f"{stem}_{self._databases}_{os.getpid()}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for clients). runuser does not pass
            # signals on, so the signal goes to the server itself, whose pid its data folder records.
            try:
                server = int((self.data / "postmaster.pid").read_text().split()[0])
            except (OSError, ValueError, IndexError):
                server = self.proc.pid
            os.kill(server, signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
