"""A private Radicale (CalDAV and CardDAV) on a free loopback port, with TLS from a test CA.

It runs as our own child process (`python -m radicale`) with its storage in a temporary folder,
users in a plain htpasswd file, and is stopped by its own pid. Collections are made with
MKCOL and filled with plain PUTs, as a client would, so what the sources read is what a real
server stored.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import trustme

from tests.servers.dovecot import free_port

_MKCOL = """<?xml version="1.0" encoding="utf-8"?>
<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:a="urn:ietf:params:xml:ns:carddav">
 <d:set><d:prop>
  <d:resourcetype><d:collection/>{kind}</d:resourcetype>
  <d:displayname>{name}</d:displayname>{components}
 </d:prop></d:set>
</d:mkcol>"""


class Radicale:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="o365m-radicale-"))
        self.port = free_port()
        self.host = "127.0.0.1"
        self.users: dict[str, str] = {}
        self.ca = trustme.CA()
        self.ca_path = self.root / "ca.pem"
        self.ca.cert_pem.write_to_path(str(self.ca_path))
        cert = self.ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.root / "key.pem"))
        cert.cert_chain_pems[0].write_to_path(str(self.root / "cert.pem"))
        (self.root / "users").write_text("")
        self.config = self.root / "radicale.conf"
        self.config.write_text(f"""[server]
hosts = {self.host}:{self.port}
ssl = True
certificate = {self.root}/cert.pem
key = {self.root}/key.pem
[auth]
type = htpasswd
htpasswd_filename = {self.root}/users
htpasswd_encryption = plain
delay = 0
[rights]
type = owner_only
[storage]
filesystem_folder = {self.root}/collections
[web]
type = none
[logging]
level = warning
""")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def add_user(self, name: str, password: str) -> None:
        self.users[name] = password
        with (self.root / "users").open("a") as fh:
            fh.write(f"{name}:{password}\n")

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise RuntimeError(f"radicale exited: {err}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex((self.host, self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("radicale did not start listening")

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

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # --- seeding, as a client would ------------------------------------------------------

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, auth=(user, self.users[user]),
                            verify=ssl.create_default_context(cafile=str(self.ca_path)),
                            trust_env=False, timeout=30)

    def make_collection(self, user: str, slug: str, name: str, calendar: bool) -> str:
        path = f"/{user}/{slug}/"
        kind = "<c:calendar/>" if calendar else "<a:addressbook/>"
        components = ('<c:supported-calendar-component-set><c:comp name="VEVENT"/><c:comp name="VTODO"/>'
                      "</c:supported-calendar-component-set>") if calendar else ""
        with self.client(user) as http:
            http.request("PROPFIND", f"/{user}/", headers={"Depth": "0"})  # Radicale makes the principal
            answer = http.request("MKCOL", path, content=_MKCOL.format(kind=kind, name=name, components=components))
            answer.raise_for_status()
        return path

    def put(self, user: str, collection: str, data: bytes, calendar: bool) -> str:
        """One item into a collection, under a new name."""
        href = f"{collection}{uuid.uuid4().hex}.{'ics' if calendar else 'vcf'}"
        content_type = "text/calendar" if calendar else "text/vcard"
        with self.client(user) as http:
            answer = http.put(href, content=data, headers={"Content-Type": f"{content_type}; charset=utf-8"})
            answer.raise_for_status()
        return href

    def load(self, user: str, slug: str, name: str, data: bytes, calendar: bool) -> str | None:
        """A whole .ics or .vcf file PUT as a collection (Radicale splits it into items), then
        named with PROPPATCH; None when Radicale refuses the file."""
        path = f"/{user}/{slug}/"
        content_type = "text/calendar" if calendar else "text/vcard"
        with self.client(user) as http:
            http.request("PROPFIND", f"/{user}/", headers={"Depth": "0"})
            answer = http.put(path, content=data, headers={"Content-Type": f"{content_type}; charset=utf-8"})
            if answer.status_code >= 400:
                return None
            body = (f'<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:"><d:set><d:prop>'
                    f"<d:displayname>{name}</d:displayname></d:prop></d:set></d:propertyupdate>")
            http.request("PROPPATCH", path, content=body.encode()).raise_for_status()
        return path

    def state(self, user: str, collection: str) -> list[tuple[str, str]]:
        """The collection's CTag/sync-token and every member's ETag, read with plain httpx."""
        body = ('<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:cs="http://calendarserver.org/ns/">'
                "<d:prop><d:getetag/><cs:getctag/><d:sync-token/></d:prop></d:propfind>")
        with self.client(user) as http:
            answer = http.request("PROPFIND", collection, content=body, headers={"Depth": "1"})
        answer.raise_for_status()
        from lxml import etree

        root = etree.fromstring(answer.content)
        result = []
        for response in root.iter("{DAV:}response"):
            href = response.findtext("{DAV:}href") or ""
            values = [el.text or "" for el in response.iter() if el.tag in (
                "{DAV:}getetag", "{http://calendarserver.org/ns/}getctag", "{DAV:}sync-token")]
            result.append((href, "|".join(values)))
        return sorted(result)


def radicale_available() -> bool:
    try:
        import radicale  # noqa: F401
    except ImportError:
        return False
    return True
