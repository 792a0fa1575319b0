"""The DNS side of a cut-over: what Microsoft 365 needs for a domain, what the domain has now, and
a verdict per record (already right, to change, missing).

What Microsoft 365 needs (learn.microsoft.com: defender-office-365/email-authentication-spf-configure,
-dkim-configure, -dmarc-configure; the admin center's DNS records page):
- MX `0 <domain with dots as dashes>.mail.protection.outlook.com` (tenants with DNSSEC-secured mail get
  a host under `mx.microsoft` instead; both count as Microsoft 365);
- one SPF TXT record holding `include:spf.protection.outlook.com`;
- CNAME `autodiscover.<domain>` -> `autodiscover.outlook.com`;
- CNAMEs `selector1._domainkey` / `selector2._domainkey` -> `selectorN-<domain key>._domainkey.<initial
  domain>` (the initial domain is NAME.onmicrosoft.com; newer tenants are given targets under
  `dkim.mail.microsoft`, which count too);
- one DMARC TXT record at `_dmarc.<domain>`.

Advice is a code, not text: the report and the CLI say it in the reader's language.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Literal

import dns.exception
import dns.resolver
from pydantic import BaseModel, Field

from migrate.errors import UsageError

MICROSOFT_MX = (".mail.protection.outlook.com", ".mx.microsoft")
SPF_INCLUDE = "include:spf.protection.outlook.com"
AUTODISCOVER = "autodiscover.outlook.com"
QUICK_TTL = 300  # seconds: what the MX TTL is lowered to before the switch
LONG_TTL = 3600  # above this the TTL must be lowered ahead of the switch
DOCS = (
    "https://learn.microsoft.com/defender-office-365/email-authentication-spf-configure",
    "https://learn.microsoft.com/defender-office-365/email-authentication-dkim-configure",
    "https://learn.microsoft.com/defender-office-365/email-authentication-dmarc-configure",
    "https://learn.microsoft.com/powershell/module/exchange/new-dkimsigningconfig",
)

Verdict = Literal["right", "change", "missing", "unknown"]
RecordName = Literal["mx", "spf", "autodiscover", "dkim1", "dkim2", "dmarc"]


class RecordCheck(BaseModel):
    record: RecordName
    name: str  # the full DNS name, without the trailing dot
    type: Literal["MX", "TXT", "CNAME"]
    current: list[str] = Field(default_factory=list)  # what the domain has now, as DNS texts
    ttl: int | None = None
    wanted: str  # the value to set (a pattern with <...> where only the admin center knows it)
    verdict: Verdict
    advice: str  # a key of the strings table: advice_<...>
    count: int = 0  # records of this kind found (SPF and DMARC must be exactly one)
    detail: str | None = None  # why a lookup failed


class DomainCheck(BaseModel):
    """Versioned JSON for `dns-check --json`."""

    version: Literal[1] = 1
    domain: str
    tenant: str | None  # the initial domain, NAME.onmicrosoft.com, when known
    checked: datetime
    records: list[RecordCheck]

    @property
    def mx_ttl(self) -> int | None:
        return self.records[0].ttl if self.records and self.records[0].record == "mx" else None

    @property
    def ready(self) -> bool:
        return all(r.verdict == "right" for r in self.records)


def domain_key(domain: str) -> str:
    """contoso.se -> contoso-se: how Microsoft 365 names the domain in its MX host and DKIM selectors."""
    return domain.replace(".", "-")


def check_domain(domain: str, resolver: dns.resolver.Resolver | None = None, tenant: str | None = None,
                 timeout: float = 4.0, now: datetime | None = None) -> DomainCheck:
    domain = normalise_domain(domain)
    if tenant is not None:
        # "contoso" and "contoso.onmicrosoft.com" name the same tenant.
        name = tenant.strip().rstrip(".").lower()
        tenant = normalise_domain(name if name.endswith(".onmicrosoft.com") else f"{name}.onmicrosoft.com")
    ask = _Lookup(resolver or dns.resolver.Resolver(), timeout)
    return DomainCheck(domain=domain, tenant=tenant, checked=now or datetime.now(UTC), records=[
        _mx(domain, ask), _spf(domain, ask), _autodiscover(domain, ask),
        _dkim(domain, tenant, 1, ask), _dkim(domain, tenant, 2, ask), _dmarc(domain, ask),
    ])


_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_domain(text: str) -> str:
    domain = text.strip().rstrip(".").lower()
    if "@" in domain:
        domain = domain.rpartition("@")[2]
    try:
        domain = domain.encode("idna").decode("ascii")  # åäö domains are looked up in their xn-- form
    except UnicodeError:
        raise UsageError(f"{text!r} is not a domain name", hint="give a domain such as contoso.se") from None
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise UsageError(f"{text!r} is not a domain name", hint="give a domain such as contoso.se")
    return domain


class _Lookup:
    """Answers as texts and a TTL; 'none' for a name or type that does not exist, an error text otherwise."""

    def __init__(self, resolver: dns.resolver.Resolver, timeout: float) -> None:
        self.resolver = resolver
        self.timeout = timeout

    def __call__(self, name: str, kind: str) -> tuple[list[str], int | None, str | None]:
        try:
            answer = self.resolver.resolve(name, kind, lifetime=self.timeout)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return [], None, None
        except dns.resolver.NoNameservers:
            return [], None, "no DNS server answered"
        except dns.exception.Timeout:
            return [], None, "the DNS lookup timed out"
        except dns.exception.DNSException as exc:
            return [], None, f"DNS: {type(exc).__name__}"
        ttl = answer.rrset.ttl if answer.rrset is not None else None
        if kind == "TXT":
            texts = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
        elif kind == "MX":
            texts = [f"{r.preference} {str(r.exchange).rstrip('.').lower()}" for r in answer]
        else:
            texts = [r.to_text().rstrip(".").lower() for r in answer]
        return sorted(texts), ttl, None


def _failed(record: RecordName, name: str, kind: Literal["MX", "TXT", "CNAME"], wanted: str,
            detail: str) -> RecordCheck:
    return RecordCheck(record=record, name=name, type=kind, wanted=wanted, verdict="unknown",
                       advice="dns_lookup_failed", detail=detail)


def _mx(domain: str, ask: _Lookup) -> RecordCheck:
    wanted = f"0 {domain_key(domain)}.mail.protection.outlook.com"
    found, ttl, error = ask(domain, "MX")
    if error:
        return _failed("mx", domain, "MX", wanted, error)
    hosts = [text.partition(" ")[2] for text in found]
    verdict: Verdict
    ours = [h for h in hosts if h.endswith(MICROSOFT_MX)]
    if not hosts:
        verdict, advice = "missing", "advice_mx_missing"
    elif len(ours) == len(hosts):
        verdict, advice = "right", "advice_mx_right"
    elif ours:
        verdict, advice = "change", "advice_mx_mixed"
    else:
        verdict, advice = "change", "advice_mx_old"
    return RecordCheck(record="mx", name=domain, type="MX", current=found, ttl=ttl, wanted=wanted,
                       verdict=verdict, advice=advice, count=len(found))


def spf_with_microsoft(record: str) -> str:
    """The SPF record with Microsoft 365 added right after the version, everything else kept."""
    terms = record.split()
    if SPF_INCLUDE in (t.lower() for t in terms):
        return " ".join(terms)
    return " ".join([terms[0], SPF_INCLUDE, *terms[1:]])


def _spf(domain: str, ask: _Lookup) -> RecordCheck:
    plain = f"v=spf1 {SPF_INCLUDE} -all"
    found, ttl, error = ask(domain, "TXT")
    if error:
        return _failed("spf", domain, "TXT", plain, error)
    spf = [t for t in found if t.lower().split()[:1] == ["v=spf1"]]
    if not spf:
        return RecordCheck(record="spf", name=domain, type="TXT", ttl=ttl, wanted=plain, verdict="missing",
                           advice="advice_spf_missing")
    if len(spf) > 1:
        return RecordCheck(record="spf", name=domain, type="TXT", current=spf, ttl=ttl,
                           wanted=spf_with_microsoft(spf[0]), verdict="change", advice="advice_spf_many",
                           count=len(spf))
    has = SPF_INCLUDE in (t.lower() for t in spf[0].split())
    return RecordCheck(record="spf", name=domain, type="TXT", current=spf, ttl=ttl, wanted=spf_with_microsoft(spf[0]),
                       verdict="right" if has else "change", advice="advice_spf_right" if has else "advice_spf_add",
                       count=1)


def _cname(name: str, ask: _Lookup) -> tuple[list[str], int | None, str | None]:
    """The CNAME at a name; where there is none but an address, the address (a record that must change)."""
    found, ttl, error = ask(name, "CNAME")
    if error or found:
        return found, ttl, error
    addresses, ttl, error = ask(name, "A")
    return [f"A {a}" for a in addresses], ttl, error


def _autodiscover(domain: str, ask: _Lookup) -> RecordCheck:
    name = f"autodiscover.{domain}"
    found, ttl, error = _cname(name, ask)
    verdict: Verdict
    if error:
        return _failed("autodiscover", name, "CNAME", AUTODISCOVER, error)
    if not found:
        verdict, advice = "missing", "advice_autodiscover_missing"
    elif found == [AUTODISCOVER]:
        verdict, advice = "right", "advice_autodiscover_right"
    else:
        verdict, advice = "change", "advice_autodiscover_old"
    return RecordCheck(record="autodiscover", name=name, type="CNAME", current=found, ttl=ttl, wanted=AUTODISCOVER,
                       verdict=verdict, advice=advice, count=len(found))


def _dkim(domain: str, tenant: str | None, n: int, ask: _Lookup) -> RecordCheck:
    record: RecordName = "dkim1" if n == 1 else "dkim2"
    name = f"selector{n}._domainkey.{domain}"
    prefix = f"selector{n}-{domain_key(domain)}._domainkey."
    wanted = prefix + (tenant or "<tenant>.onmicrosoft.com")
    found, ttl, error = _cname(name, ask)
    verdict: Verdict
    if error:
        return _failed(record, name, "CNAME", wanted, error)
    if not found:
        verdict, advice = "missing", "advice_dkim_missing"
    elif all(_is_microsoft_dkim(target, prefix, tenant) for target in found):
        verdict, advice = "right", "advice_dkim_right"
    else:
        verdict, advice = "change", "advice_dkim_old"
    return RecordCheck(record=record, name=name, type="CNAME", current=found, ttl=ttl, wanted=wanted,
                       verdict=verdict, advice=advice, count=len(found))


def _is_microsoft_dkim(target: str, prefix: str, tenant: str | None) -> bool:
    if not target.startswith(prefix):
        return False
    rest = target[len(prefix):]
    if rest.endswith(".dkim.mail.microsoft"):
        return True
    return rest == tenant if tenant else rest.endswith(".onmicrosoft.com")


def _dmarc(domain: str, ask: _Lookup) -> RecordCheck:
    name = f"_dmarc.{domain}"
    wanted = f"v=DMARC1; p=none; rua=mailto:dmarc-reports@{domain}"
    found, ttl, error = ask(name, "TXT")
    if error:
        return _failed("dmarc", name, "TXT", wanted, error)
    dmarc = [t for t in found if t.replace(" ", "").lower().startswith("v=dmarc1")]
    if not dmarc:
        return RecordCheck(record="dmarc", name=name, type="TXT", ttl=ttl, wanted=wanted, verdict="missing",
                           advice="advice_dmarc_missing")
    if len(dmarc) > 1:
        return RecordCheck(record="dmarc", name=name, type="TXT", current=dmarc, ttl=ttl, wanted=dmarc[0],
                           verdict="change", advice="advice_dmarc_many", count=len(dmarc))
    tags = {k.strip().lower(): v.strip().lower() for k, _, v in (p.partition("=") for p in dmarc[0].split(";"))}
    advice = "advice_dmarc_none" if tags.get("p") == "none" else "advice_dmarc_right"
    return RecordCheck(record="dmarc", name=name, type="TXT", current=dmarc, ttl=ttl, wanted=dmarc[0],
                       verdict="right", advice=advice, count=1)


def resolver_at(server: str | None) -> dns.resolver.Resolver | None:
    """A resolver that asks one server (`HOST` or `HOST:PORT`, `[v6]:PORT`), or None for the system's."""
    if not server:
        return None
    host, port = server, 53
    if server.startswith("["):
        host, _, rest = server[1:].partition("]")
        if rest.startswith(":"):
            port = _port(rest[1:], server)
    elif server.count(":") == 1:
        host, _, text = server.partition(":")
        port = _port(text, server)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--dns-server {server!r}: give the server's IP address, not a name",
                         hint="write HOST or HOST:PORT, e.g. 1.1.1.1 or 127.0.0.1:5353") from None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = port
    return resolver


def _port(text: str, server: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"--dns-server {server!r}: the port is not a number from 1 to 65535",
                         hint="write HOST or HOST:PORT, e.g. 1.1.1.1 or 127.0.0.1:5353")
    return int(text)
