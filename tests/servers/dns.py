"""A tiny authoritative DNS server over UDP on 127.0.0.1, built from dnspython's own message classes, for the
tests of discovery (MX to a provider) and of the cut-over checklist (the records and their TTLs)."""

from __future__ import annotations

import socket
import threading

import dns.flags
import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

DEFAULT_TTL = 300
# (name, type) -> the record texts, or (TTL, the record texts): ("example.test.", "MX") -> ["10 mx.example.test."]
Zone = dict[tuple[str, str], list[str] | tuple[int, list[str]]]


class DnsServer:
    """A name not in the zone at all gets NXDOMAIN, a known name without that type an empty answer."""

    def __init__(self, zone: Zone) -> None:
        self.zone = zone
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.queries: list[tuple[str, str]] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stop = False

    def start(self) -> DnsServer:
        self.sock.settimeout(0.2)
        self._thread.start()
        return self

    def _serve(self) -> None:
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = dns.message.from_wire(data)
            answer = dns.message.make_response(query)
            answer.flags |= dns.flags.AA
            question = query.question[0]
            name, kind = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
            self.queries.append((name, kind))
            found = self.zone.get((name, kind))
            ttl, records = found if isinstance(found, tuple) else (DEFAULT_TTL, found or [])
            if records:
                answer.answer.append(dns.rrset.from_text_list(question.name, ttl, dns.rdataclass.IN, kind, records))
            elif not any(known == name for known, _ in self.zone):
                answer.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(answer.to_wire(), peer)

    def stop(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.sock.close()
