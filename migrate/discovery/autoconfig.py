"""Thunderbird-style autoconfig: the domain publishes its servers in config-v1.1.xml.

Only HTTPS with a verified certificate: an answer over plain HTTP could be forged on the way and send the
password to someone else's server.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from migrate.discovery.network import Network
from migrate.discovery.settings import Protocol, Security, ServerSetting

log = logging.getLogger(__name__)
CONFIG_PATH = "/mail/config-v1.1.xml"
_MAX_BYTES = 256 * 1024
_SECURITY: dict[str, Security] = {"ssl": "tls", "tls": "tls", "starttls": "starttls", "plain": "none"}
_PROTOCOLS: dict[str, Protocol] = {"imap": "imap", "pop3": "pop"}


def _session(network: Network) -> requests.Session:
    session = requests.Session()
    if network.ca_file is not None:
        session.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override the CA we were given
        session.verify = str(network.ca_file)
    return session


def fetch_autoconfig(domain: str, address: str, network: Network) -> tuple[list[ServerSetting], list[str]]:
    """The incoming servers the domain publishes, and a note per place that had none."""
    notes: list[str] = []
    with _session(network) as session:
        for base in network.autoconfig_bases(domain):
            url = f"{base.rstrip('/')}{CONFIG_PATH}?emailaddress={quote(address, safe='@')}"
            try:
                answer = session.get(url, timeout=network.timeout, allow_redirects=True, stream=True)
                body = answer.raw.read(_MAX_BYTES + 1, decode_content=True)
            except requests.exceptions.SSLError:
                notes.append(f"{base}: TLS certificate not trusted")
                continue
            except requests.RequestException as exc:
                notes.append(f"{base}: {type(exc).__name__}")
                continue
            if answer.status_code != 200:
                notes.append(f"{base}: HTTP {answer.status_code}")
                continue
            if len(body) > _MAX_BYTES:
                notes.append(f"{base}: answer too large")
                continue
            found = parse_autoconfig(body, address, f"autoconfig {base}")
            if found:
                return found, notes
            notes.append(f"{base}: no IMAP or POP server in the answer")
    return [], notes


def parse_autoconfig(data: bytes, address: str, found_by: str) -> list[ServerSetting]:
    """The incomingServer entries of a config-v1.1.xml, with %EMAILADDRESS% and friends filled in."""
    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        log.debug("autoconfig answer is not usable XML: %s", exc)
        return []
    local, _, domain = address.partition("@")
    fill = {"%EMAILADDRESS%": address, "%EMAILLOCALPART%": local, "%EMAILDOMAIN%": domain}
    found: list[ServerSetting] = []
    for server in root.iter("incomingServer"):
        protocol = _PROTOCOLS.get((server.get("type") or "").lower())
        host = (server.findtext("hostname") or "").strip()
        port_text = (server.findtext("port") or "").strip()
        security = _SECURITY.get((server.findtext("socketType") or "").strip().lower())
        if protocol is None or not host or not port_text.isdigit() or security is None:
            continue
        username = (server.findtext("username") or "%EMAILADDRESS%").strip()
        for placeholder, value in fill.items():
            username = username.replace(placeholder, value)
            host = host.replace(placeholder, value)
        methods = tuple(m.text.strip() for m in server.findall("authentication") if m.text)
        found.append(ServerSetting(protocol, host, int(port_text), security, username, found_by,
                                   oauth_only=bool(methods) and all(m.lower() == "oauth2" for m in methods)))
    return found
