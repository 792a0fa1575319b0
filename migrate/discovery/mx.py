"""MX records: who receives the domain's mail says which provider holds the mailbox."""

from __future__ import annotations

import dns.exception
import dns.resolver

from migrate.discovery.network import Network


def mx_hosts(domain: str, network: Network) -> tuple[list[str], str | None]:
    """The domain's MX hosts, most preferred first, and a note when there are none."""
    try:
        answer = network.dns().resolve(domain, "MX", lifetime=network.timeout)
    except dns.resolver.NXDOMAIN:
        return [], f"the domain {domain} does not exist in DNS"
    except dns.resolver.NoAnswer:
        return [], f"{domain} has no MX record"
    except dns.resolver.NoNameservers:
        return [], "no DNS server answered"
    except dns.exception.Timeout:
        return [], "the DNS lookup timed out"
    except dns.exception.DNSException as exc:
        return [], f"DNS: {type(exc).__name__}"
    records = sorted(answer, key=lambda r: (r.preference, str(r.exchange)))
    return [str(r.exchange).rstrip(".").lower() for r in records if str(r.exchange) != "."], None
