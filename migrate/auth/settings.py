"""Which app signs in where: tenant, client id, authority, transport, and (for app-only) its credential."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from migrate.auth.credentials import ClientCredential
from migrate.auth.scopes import Transport, scopes_for
from migrate.errors import UsageError

DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
# Hosts that msal's instance discovery knows; anything else (the sandbox, a proxy) skips discovery.
MICROSOFT_AUTHORITY_HOSTS = frozenset({
    "login.microsoftonline.com", "login.microsoft.com", "login.windows.net", "sts.windows.net",
    "login.microsoftonline.us", "login.chinacloudapi.cn", "login.partner.microsoftonline.cn",
})
MULTI_TENANT = frozenset({"common", "organizations", "consumers"})


@dataclass(frozen=True)
class AuthSettings:
    transport: Transport
    tenant: str  # a domain (contoso.onmicrosoft.com) or the directory (tenant) id
    client_id: str
    authority: str = DEFAULT_AUTHORITY
    credential: ClientCredential | None = None  # set: app-only; None: delegated (device code)
    ca_file: Path | None = None  # trust this CA for the authority's TLS certificate (local sandbox)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.authority)
        if parts.scheme != "https" or not parts.hostname:
            raise UsageError(f"--authority {self.authority!r} is not an https URL",
                             hint=f"use the default {DEFAULT_AUTHORITY} or https://host[:port]")
        if not self.tenant or "/" in self.tenant:
            raise UsageError(f"--tenant {self.tenant!r} is not a tenant",
                             hint="give the tenant's domain (contoso.onmicrosoft.com) or its directory id")
        if not self.client_id.strip():
            raise UsageError("--client-id is empty", hint="give the app registration's Application (client) ID")
        if self.app_only and self.tenant.lower() in MULTI_TENANT:
            raise UsageError(f"app-only sign-in needs one tenant, not {self.tenant!r}",
                             hint="give the tenant's domain or directory id with --tenant")
        if self.ca_file is not None and not self.ca_file.is_file():
            raise UsageError(f"--ca-file {self.ca_file} is not a file", hint="check the path")

    @property
    def app_only(self) -> bool:
        return self.credential is not None

    @property
    def authority_url(self) -> str:
        return f"{self.authority.rstrip('/')}/{self.tenant}"

    @property
    def authority_host(self) -> str:
        return urlsplit(self.authority).netloc.lower()

    @property
    def environment(self) -> str:
        """The authority as msal's cache names it: the host name, without the port."""
        return (urlsplit(self.authority).hostname or "").lower()

    @property
    def microsoft_authority(self) -> bool:
        return self.environment in MICROSOFT_AUTHORITY_HOSTS

    @property
    def scopes(self) -> list[str]:
        return scopes_for(self.transport, self.app_only)

    def login_command(self) -> str:
        """The command that signs in again with these settings (it never holds a secret)."""
        words = ["o365-migrate", "auth", "login", "--transport", self.transport.value, "--tenant", self.tenant,
                 "--client-id", self.client_id]
        if self.authority.rstrip("/") != DEFAULT_AUTHORITY:
            words += ["--authority", self.authority]
        if self.ca_file is not None:
            words += ["--ca-file", str(self.ca_file)]
        return " ".join(shlex.quote(w) for w in words)
