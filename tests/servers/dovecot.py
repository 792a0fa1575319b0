"""A private Dovecot (IMAP, IMAPS, POP3, POP3S) on free loopback ports, for tests and bench/.

It runs in the foreground as our own child process and is stopped by its own pid, so it
never touches a system Dovecot. Mail is Maildir under a private folder; users live in a
passwd-file per user, read on every login, so users can be added while it runs.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import trustme

SPECIAL_USE = {
    "Skickat": "\\Sent",
    "Utkast": "\\Drafts",
    "Papperskorgen": "\\Trash",
    "Skräppost": "\\Junk",
    "Arkiv": "\\Archive",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dovecot_binary() -> str | None:
    return shutil.which("dovecot") or (
        "/usr/sbin/dovecot" if Path("/usr/sbin/dovecot").exists() else None
    )


class Dovecot:
    def __init__(
        self,
        root: Path | None = None,
        mail_root: Path | None = None,
        separator: str = "/",
        oauth2_introspection_url: str | None = None,
    ) -> None:
        binary = dovecot_binary()
        if binary is None:
            raise RuntimeError("dovecot is not installed: apt-get install dovecot-imapd dovecot-pop3d")
        self.binary = binary
        self.root = root or Path(tempfile.mkdtemp(prefix="o365m-dovecot-"))
        self._own_root = root is None
        # Mail is owned by the 'dovecot' user when we are root; it must reach the folder.
        os.chmod(self.root, 0o755)
        self.mail_root = mail_root or self.root / "home"
        self.mail_root.mkdir(parents=True, exist_ok=True)
        self.separator = separator
        # XOAUTH2/OAUTHBEARER logins: Dovecot asks this URL, with the bearer token, who the user is.
        self.oauth2_url = oauth2_introspection_url
        self.ports = {name: free_port() for name in ("imap", "imaps", "pop3", "pop3s")}
        self.host = "127.0.0.1"
        self.users: dict[str, str] = {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.ca = trustme.CA()
        self.ca_path = self.root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        cert = self.ca.issue_cert("127.0.0.1", "localhost", "::1")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        os.chmod(self.root / "key.pem", 0o600)
        self._write_config()

    @property
    def _uids(self) -> tuple[int, int, str, str]:
        if os.geteuid() == 0:
            mail = pwd.getpwnam("dovecot")
            return mail.pw_uid, mail.pw_gid, "dovecot", "dovenull"
        me = pwd.getpwuid(os.geteuid())
        return me.pw_uid, me.pw_gid, me.pw_name, me.pw_name

    def _write_config(self) -> None:
        uid, gid, internal, login = self._uids
        for sub in ("run", "state", "log"):
            (self.root / sub).mkdir(exist_ok=True)
        os.chown(self.mail_root, uid, gid) if os.geteuid() == 0 else None
        mailboxes = "\n".join(
            f'  mailbox "{name}" {{\n    special_use = {use}\n  }}' for name, use in SPECIAL_USE.items()
        )
        p = self.ports
        conf = f"""
base_dir = {self.root}/run
state_dir = {self.root}/state
log_path = {self.root}/log/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.root}/cert.pem
ssl_key = <{self.root}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = plain login{" xoauth2 oauthbearer" if self.oauth2_url else ""}
default_internal_user = {internal}
default_internal_group = {"dovecot" if internal == "dovecot" else internal}
default_login_user = {login}
first_valid_uid = {min(uid, 100)}
first_valid_gid = 0
mail_location = maildir:~/Maildir
mail_max_userip_connections = 200
mail_fsync = never
pop3_uidl_format = %08Xu%08Xv
imap_max_line_length = 1M
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.root}/users.d/%u
}}
{self._oauth2_passdb()}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.mail_root}/%u
}}
namespace inbox {{
  inbox = yes
  separator = {self.separator}
{mailboxes}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {p["imap"]}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {p["imaps"]}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {p["pop3"]}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {p["pop3s"]}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 256
}}
service anvil {{
  chroot =
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""
        self.config = self.root / "dovecot.conf"
        self.config.write_text(conf)
        (self.root / "users.d").mkdir(exist_ok=True)

    def _oauth2_passdb(self) -> str:
        if not self.oauth2_url:
            return ""
        conf = self.root / "oauth2.conf"
        conf.write_text(
            f"introspection_mode = auth\nintrospection_url = {self.oauth2_url}\n"
            "username_attribute = email\n"
        )
        return f"passdb {{\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = {conf}\n}}"

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        # One passwd-file per user: Dovecot notices a changed file only when its mtime moves by a
        # whole second, so users added in quick succession to one file would not be seen; a new
        # file for each user is always read fresh.
        path = self.root / "users.d" / name
        path.write_text(f"{name}:{{PLAIN}}{password}\n")
        stamp = int(time.time()) + 1
        os.utime(path, (stamp, stamp))

    def maildir(self, user: str) -> Path:
        return self.mail_root / user / "Maildir"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"dovecot exited: {err}\n{self.log()}")
            if all(self._listening(port) for port in self.ports.values()):
                return
            time.sleep(0.05)
        raise RuntimeError("dovecot did not start listening: " + self.log())

    def _listening(self, port: int) -> bool:
        with socket.socket() as s:
            s.settimeout(0.2)
            return s.connect_ex((self.host, port)) == 0

    def log(self) -> str:
        path = self.root / "log" / "dovecot.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        self.stop()
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
