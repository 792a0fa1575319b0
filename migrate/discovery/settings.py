"""One way into a mailbox as discovery found it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote

Protocol = Literal["imap", "pop"]
Security = Literal["tls", "starttls", "none"]
_SCHEMES = {("imap", "tls"): "imaps", ("imap", "starttls"): "imap", ("imap", "none"): "imap",
            ("pop", "tls"): "pop3s", ("pop", "starttls"): "pop3", ("pop", "none"): "pop3"}
DEFAULT_PORTS = {("imap", "tls"): 993, ("imap", "starttls"): 143, ("pop", "tls"): 995, ("pop", "starttls"): 110}


@dataclass(frozen=True)
class ServerSetting:
    protocol: Protocol
    host: str
    port: int
    security: Security
    username: str
    found_by: str  # "playbook gmail", "autoconfig https://...", "probe", ...
    verified: bool = True  # False: from a secondary source, not confirmed by a probe
    oauth_only: bool = False  # the server takes only OAuth tokens

    def url(self) -> str:
        """The source URL the rest of the tool takes: imaps://user@host:port (never a password)."""
        scheme = _SCHEMES[(self.protocol, self.security)]
        port = "" if DEFAULT_PORTS.get((self.protocol, self.security)) == self.port else f":{self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{quote(self.username, safe='')}@{host}{port}"

    def describe(self) -> str:
        kind = {"imap": "IMAP", "pop": "POP3"}[self.protocol]
        return f"{kind} {self.host}:{self.port} ({self.security}), user {self.username}"
