"""How discovery reaches the network: every step's address can be redirected, so tests talk to loopback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dns.resolver


# Thunderbird's order after its bundled files: the domain's own autoconfig host, then its well-known path.
def default_autoconfig_bases(domain: str) -> list[str]:
    return [f"https://autoconfig.{domain}", f"https://{domain}/.well-known/autoconfig"]


def direct(host: str, port: int) -> tuple[str, int]:
    return host, port


@dataclass
class Network:
    """Where discovery's requests go. The defaults are the real internet."""

    autoconfig_bases: Callable[[str], list[str]] = default_autoconfig_bases
    resolver: dns.resolver.Resolver | None = None  # None: the system's resolver
    address_of: Callable[[str, int], tuple[str, int]] = direct  # where a probe of host:port really connects
    ca_file: Path | None = None  # trust this CA for autoconfig HTTPS and probed TLS (a private CA, tests)
    timeout: float = 4.0  # seconds per step: discovery must not keep a person waiting
    steps: frozenset[str] = field(default_factory=lambda: frozenset({"playbook", "autoconfig", "mx", "probe"}))

    def dns(self) -> dns.resolver.Resolver:
        if self.resolver is None:
            self.resolver = dns.resolver.Resolver()
        return self.resolver
