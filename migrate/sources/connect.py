"""What IMAP and POP3 sources share: where to connect, TLS, and turning socket errors into advice."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote

from migrate.errors import AuthError, TLSError, UnreachableError, UsageError
from migrate.sources.base import SourceOptions


@dataclass(frozen=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    user: str
    implicit_tls: bool  # imaps/pop3s: TLS from the first byte; else STARTTLS/STLS

    def __str__(self) -> str:
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def endpoint(parts: SplitResult, url: str, tls_port: int, plain_port: int, options: SourceOptions) -> Endpoint:
    scheme = parts.scheme.lower()
    host = parts.hostname
    if not host:
        raise UsageError(f"{url!r} names no server", hint=f"write it as {scheme}://user@host")
    if not parts.username:
        raise UsageError(f"{url!r} names no user", hint=f"write it as {scheme}://user@{host}")
    try:
        port = parts.port
    except ValueError:
        raise UsageError(f"{url!r} has a bad port number", hint="use host:PORT with a number") from None
    implicit = scheme.endswith("s")
    if options.insecure and not is_loopback(host):
        raise UsageError(
            "--insecure (plaintext, no TLS) is allowed only to a server on this machine",
            hint=f"use {scheme.rstrip('s')}s:// or STARTTLS for {host}",
        )
    return Endpoint(scheme, host, port or (tls_port if implicit else plain_port), unquote(parts.username), implicit)


def tls_context(options: SourceOptions) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(options.ca_file) if options.ca_file else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@contextmanager
def network_errors(where: Endpoint) -> Iterator[None]:
    """Say what went wrong while talking to a server, in one line with the way out."""
    try:
        yield
    except ssl.SSLCertVerificationError as exc:
        raise TLSError(
            f"the TLS certificate of {where.host}:{where.port} is not trusted ({exc.verify_message})",
            hint="if the server uses a private CA, pass it with --ca-file PATH",
        ) from None
    except ssl.SSLError as exc:
        raise TLSError(
            f"TLS with {where.host}:{where.port} failed ({exc.reason or exc})",
            hint="check that the port speaks TLS (993/995) or use the plain port with STARTTLS",
        ) from None
    except socket.gaierror:
        raise UnreachableError(
            f"cannot find the server {where.host!r}", hint="check the host name in the source URL"
        ) from None
    except ConnectionRefusedError:
        raise UnreachableError(
            f"{where.host}:{where.port} refused the connection",
            hint="check the port, and that the server is up",
        ) from None
    except TimeoutError:
        raise UnreachableError(
            f"{where.host}:{where.port} did not answer in time", hint="check the host, port and firewall"
        ) from None
    except ConnectionError as exc:
        raise UnreachableError(
            f"the connection to {where.host}:{where.port} was lost ({exc.__class__.__name__})",
            hint="run the command again; it resumes",
        ) from None
    except OSError as exc:
        if exc.errno is None:
            raise
        raise UnreachableError(
            f"cannot reach {where.host}:{where.port}: {exc.strerror}", hint="check the host, port and network"
        ) from None


def login_refused(where: Endpoint, server_text: str) -> AuthError:
    return AuthError(
        f"{where.host} refused the login for {where.user}" + (f": {server_text}" if server_text else ""),
        hint="check the user name and password; Gmail, iCloud, Yahoo and AOL need an app password, "
        "Outlook.com needs --auth xoauth2",
    )
