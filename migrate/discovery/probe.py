"""Probing imap., pop. and mail.<domain>: does a mail server answer, and does its TLS certificate hold?

The last resort of discovery, as in Thunderbird: implicit TLS on 993/995 and STARTTLS on 143/110. A server
counts only when its certificate is trusted for the name asked; a plaintext-only server is reported, never
offered, because the password would cross the network in clear.
"""

from __future__ import annotations

import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from migrate.discovery.network import Network
from migrate.discovery.settings import Protocol, Security, ServerSetting

_CANDIDATES: tuple[tuple[str, Protocol, int, Security], ...] = (
    ("imap", "imap", 993, "tls"), ("mail", "imap", 993, "tls"),
    ("pop", "pop", 995, "tls"), ("mail", "pop", 995, "tls"),
    ("imap", "imap", 143, "starttls"), ("mail", "imap", 143, "starttls"),
    ("pop", "pop", 110, "starttls"), ("mail", "pop", 110, "starttls"),
)


@dataclass(frozen=True)
class Probe:
    host: str
    protocol: Protocol
    port: int
    security: Security
    ok: bool
    detail: str  # why it failed, or what answered


def candidates(domain: str, extra_hosts: list[str]) -> list[tuple[str, Protocol, int, Security]]:
    seen: list[tuple[str, Protocol, int, Security]] = []
    for host in extra_hosts:
        for protocol, port, security in (("imap", 993, "tls"), ("pop", 995, "tls"), ("imap", 143, "starttls"),
                                         ("pop", 110, "starttls")):
            seen.append((host, protocol, port, security))  # type: ignore[arg-type]
    for prefix, protocol, port, security in _CANDIDATES:
        item = (f"{prefix}.{domain}", protocol, port, security)
        if item not in seen:
            seen.append(item)
    return seen


def _context(network: Network) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(network.ca_file) if network.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _line(sock: socket.socket | ssl.SSLSocket) -> bytes:
    data = b""
    while not data.endswith(b"\n") and len(data) < 4096:
        chunk = sock.recv(1024)
        if not chunk:
            break
        data += chunk
    return data


def _greeting_ok(protocol: Protocol, line: bytes) -> bool:
    return line.startswith(b"* OK") if protocol == "imap" else line.startswith(b"+OK")


def probe_one(host: str, protocol: Protocol, port: int, security: Security, network: Network) -> Probe:
    def failed(detail: str) -> Probe:
        return Probe(host, protocol, port, security, False, detail)

    address = network.address_of(host, port)
    try:
        raw = socket.create_connection(address, timeout=network.timeout)
    except socket.gaierror:
        return failed("no such host")
    except ConnectionRefusedError:
        return failed("refused")
    except TimeoutError:
        return failed("no answer")
    except OSError as exc:
        return failed(exc.strerror or type(exc).__name__)
    sock: socket.socket | ssl.SSLSocket = raw
    try:
        if security == "tls":
            sock = _context(network).wrap_socket(raw, server_hostname=host)
        greeting = _line(sock)
        if not _greeting_ok(protocol, greeting):
            return failed("not a mail server of this kind")
        if security == "starttls":
            sock.sendall(b"a1 STARTTLS\r\n" if protocol == "imap" else b"STLS\r\n")
            answer = _line(sock)
            if not answer.startswith(b"a1 OK" if protocol == "imap" else b"+OK"):
                return failed("offers no STARTTLS: it would take the password in clear")
            sock = _context(network).wrap_socket(raw, server_hostname=host)
            if protocol == "imap":
                sock.sendall(b"a2 NOOP\r\n")
                _line(sock)
        return Probe(host, protocol, port, security, True, greeting.decode("ascii", "replace").strip()[:80])
    except ssl.SSLCertVerificationError as exc:
        if exc.verify_code == 62:  # X509_V_ERR_HOSTNAME_MISMATCH
            return failed("the certificate is for another name (a shared host: ask for its own server name)")
        return failed(f"certificate not trusted ({exc.verify_message})")
    except ssl.SSLError as exc:
        return failed(f"TLS failed ({exc.reason or exc})")
    except TimeoutError:
        return failed("no answer")
    except OSError as exc:
        return failed(exc.strerror or type(exc).__name__)
    finally:
        sock.close()


def probe_servers(domain: str, address: str, network: Network, extra_hosts: list[str] | None = None,
                  username: str | None = None) -> tuple[list[ServerSetting], list[Probe]]:
    """Every candidate at once (each within the timeout); the working ones as settings, TLS first."""
    todo = candidates(domain, extra_hosts or [])
    with ThreadPoolExecutor(max_workers=min(8, len(todo))) as pool:
        probes = list(pool.map(lambda c: probe_one(c[0], c[1], c[2], c[3], network), todo))
    found = [ServerSetting(p.protocol, p.host, p.port, p.security, username or address, "probe")
             for p in probes if p.ok]
    return found, probes
