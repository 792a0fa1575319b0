"""Where the mail of an address lives: a playbook, then autoconfig, then MX, then probing, as Thunderbird does."""

from __future__ import annotations

from dataclasses import dataclass, field

from migrate.discovery.autoconfig import fetch_autoconfig
from migrate.discovery.mx import mx_hosts
from migrate.discovery.network import Network
from migrate.discovery.playbooks import MailServer, Playbook, by_domain, by_mx
from migrate.discovery.probe import probe_servers
from migrate.discovery.settings import ServerSetting
from migrate.errors import UsageError


@dataclass
class Discovery:
    address: str
    playbook: Playbook | None = None
    matched_by: str | None = None  # "domain" or "mx"
    mx: list[str] = field(default_factory=list)
    servers: list[ServerSetting] = field(default_factory=list)  # best first
    notes: list[str] = field(default_factory=list)  # what was tried and found nothing

    def best(self, protocol: str | None = None) -> ServerSetting | None:
        return next((s for s in self.servers if protocol is None or s.protocol == protocol), None)


def split_address(address: str) -> tuple[str, str]:
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or "." not in domain or " " in address.strip():
        raise UsageError(f"{address!r} is not an e-mail address", hint="write it as name@example.com")
    return local, domain.lower()


def _from_playbook(book: Playbook, address: str) -> list[ServerSetting]:
    local, _ = split_address(address)

    def setting(server: MailServer, protocol: str) -> ServerSetting:
        user = local if server.username == "localpart" else address
        return ServerSetting(protocol, server.host, server.port, server.security, user,  # type: ignore[arg-type]
                             f"playbook {book.name}", verified=server.verified,
                             oauth_only=book.auth.methods == ["oauth"])

    imap = [setting(s, "imap") for s in book.servers.imap]
    pop = [setting(s, "pop") for s in book.servers.pop]
    return imap + pop if book.mail_kind != "pop" else pop + imap


def discover(address: str, books: list[Playbook], network: Network | None = None) -> Discovery:
    """Every step that applies, stopping at the first that yields verified servers."""
    network = network or Network()
    _, domain = split_address(address)
    found = Discovery(address=address)
    if "playbook" in network.steps:
        found.playbook = by_domain(domain, books)
        found.matched_by = "domain" if found.playbook else None
    if found.playbook is not None:
        found.servers = _from_playbook(found.playbook, address)
        if any(s.verified for s in found.servers):
            return found
    if "autoconfig" in network.steps:
        servers, notes = fetch_autoconfig(domain, address, network)
        found.notes.extend(notes)
        if servers:
            found.servers = servers + found.servers
            return found
    if "mx" in network.steps:
        found.mx, note = mx_hosts(domain, network)
        if note:
            found.notes.append(note)
        if found.playbook is None:
            found.playbook = by_mx(found.mx, books)
            found.matched_by = "mx" if found.playbook else None
            if found.playbook is not None:
                # The provider hosts the domain: its servers, with the whole address as user name.
                found.servers = _from_playbook(found.playbook, address)
                if any(s.verified for s in found.servers):
                    return found
    if "probe" in network.steps:
        extra = found.playbook.probe_hosts if found.playbook else []
        probed, probes = probe_servers(domain, address, network, extra)
        found.notes.extend(f"{p.host}:{p.port} {p.detail}" for p in probes if not p.ok and p.detail != "no such host")
        found.servers = probed + [s for s in found.servers if s not in probed]
    return found
