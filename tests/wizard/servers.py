"""Loopback stand-ins for the internet that discovery asks: a DNS server and an autoconfig HTTPS server."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import trustme

from tests.servers.dns import DnsServer

__all__ = ["AutoconfigServer", "DnsServer", "config_xml"]


class AutoconfigServer:
    """HTTPS on 127.0.0.1 with a trustme certificate; `pages` maps a request path to XML (else 404)."""

    def __init__(self, ca: trustme.CA, folder: Path) -> None:
        self.pages: dict[str, bytes] = {}
        self.requests: list[str] = []
        pages, requests = self.pages, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                body = pages.get(self.path.split("?", 1)[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/xml")
                self.end_headers()
                self.wfile.write(body or b"not here")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        cert = ca.issue_cert("127.0.0.1", "localhost")
        chain = folder / "autoconfig-cert.pem"
        cert.private_key_and_cert_chain_pem.write_to_path(str(chain))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(str(chain))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self.base = f"https://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> AutoconfigServer:
        self._thread.start()
        return self

    def bases(self) -> Callable[[str], list[str]]:
        """Discovery's two places for a domain, both on this server: /d/<domain> and /w/<domain>."""
        return lambda domain: [f"{self.base}/d/{domain}", f"{self.base}/w/{domain}/.well-known/autoconfig"]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def config_xml(host: str, port: int, kind: str = "imap", socket_type: str = "SSL",
               username: str = "%EMAILADDRESS%") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="example.test">
    <domain>example.test</domain>
    <incomingServer type="{kind}">
      <hostname>{host}</hostname>
      <port>{port}</port>
      <socketType>{socket_type}</socketType>
      <authentication>password-cleartext</authentication>
      <username>{username}</username>
    </incomingServer>
  </emailProvider>
</clientConfig>
""".encode()
