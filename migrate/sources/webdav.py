"""WebDAV reading for CalDAV and CardDAV: PROPFIND and REPORT over httpx, nothing that writes.

One small client serves both protocols: discovery (RFC 6764 `.well-known`, RFC 5397
current-user-principal, the calendar/address book home set) and listing are the same WebDAV
requests with other property names. The `caldav` package was left out on purpose: every release
since 2.1 requires niquests, whose urllib3-future replaces the `urllib3` package that requests,
exchangelib and msal run on (python-caldav/caldav#530 and #611, jawah/niquests#267).

The password is sent only to the server the user named: httpx drops the Authorization header
on a redirect to another host, and a redirect from https to http is refused outright. XML from
the server is parsed without entities or network access.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import unquote, urljoin, urlsplit

import httpx
from lxml import etree

from migrate.errors import AuthError, ProtocolError, TLSError, UnreachableError, UsageError, UserError
from migrate.sources.base import SourceOptions
from migrate.sources.connect import is_loopback, tls_context

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
CS = "http://calendarserver.org/ns/"
NAMESPACES = {"d": DAV, "c": CALDAV, "a": CARDDAV, "cs": CS}
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_blank_text=True)
READ_METHODS = frozenset({"PROPFIND", "REPORT", "GET", "OPTIONS"})


def tag(namespace: str, name: str) -> str:
    return f"{{{namespace}}}{name}"


@dataclass
class Resource:
    """One <response> of a multistatus: its href and the properties found (status 200)."""

    href: str
    props: dict[str, etree._Element] = field(default_factory=dict)

    def text(self, namespace: str, name: str) -> str | None:
        element = self.props.get(tag(namespace, name))
        if element is None:
            return None
        return "".join(element.itertext()).strip()

    def href_in(self, namespace: str, name: str) -> str | None:
        element = self.props.get(tag(namespace, name))
        found = element.find("d:href", NAMESPACES) if element is not None else None
        return unquote(found.text.strip()) if found is not None and found.text else None

    def is_a(self, namespace: str, name: str) -> bool:
        kinds = self.props.get(tag(DAV, "resourcetype"))
        return kinds is not None and kinds.find(tag(namespace, name)) is not None


def _body(root: str, namespace: str, props: list[tuple[str, str]], extra: bytes = b"") -> bytes:
    prefixes = {DAV: "d", CALDAV: "c", CARDDAV: "a", CS: "cs"}
    names = "".join(f"<{prefixes[ns]}:{name}/>" for ns, name in props)
    xmlns = " ".join(f'xmlns:{p}="{ns}"' for ns, p in prefixes.items())
    return (f'<?xml version="1.0" encoding="utf-8"?><{root} {xmlns}><d:prop>{names}</d:prop>').encode() + extra + \
        f"</{root.split(' ')[0]}>".encode()


class DavClient:
    """An httpx client that may only read, signed in as the URL's user."""

    def __init__(self, base: str, user: str, options: SourceOptions) -> None:
        parts = urlsplit(base)
        self.base = base
        self.host = parts.hostname or ""
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.secure = parts.scheme == "https"
        self.user = user
        self.options = options
        verify: ssl.SSLContext | bool = tls_context(options) if self.secure else False
        self._password: str | None = None
        self.http = httpx.Client(
            verify=verify,
            timeout=options.timeout,
            follow_redirects=True,
            trust_env=False,  # no proxy or CA settings from the environment slip in unseen
            headers={"User-Agent": "o365-migrate"},
            event_hooks={"request": [self._only_safe]},
        )
        self._auth: httpx.Auth | None = None

    def _only_safe(self, request: httpx.Request) -> None:
        if request.method not in READ_METHODS:
            raise ProtocolError(f"refused to send {request.method}: this source only reads")
        if not _same_site(request.url.host, self.host):
            # a multistatus or a redirect names another server: the password does not go there
            raise ProtocolError(f"{self.host} sent us on to {request.url.host}, another site; refused",
                                hint="give the URL of that server itself if it is really yours")
        if self.secure and request.url.scheme != "https":
            raise TLSError(f"{self.host} redirected to plain http ({request.url.host})",
                           hint="the password would travel unencrypted; check the server's address")

    def _credentials(self) -> httpx.Auth:
        if self._auth is None:
            if self._password is None:
                self._password = self.options.secret() if self.options.secret else ""
            self._auth = httpx.BasicAuth(self.user, self._password)
        return self._auth

    def close(self) -> None:
        self.http.close()

    def request(self, method: str, url: str, body: bytes | None = None, depth: str | None = None) -> httpx.Response:
        headers = {"Content-Type": "application/xml; charset=utf-8"} if body else {}
        if depth is not None:
            headers["Depth"] = depth
        target = urljoin(self.base, url)
        response = self._send(method, target, body, headers)
        if response.status_code == 401 and "digest" in response.headers.get("www-authenticate", "").lower() \
                and isinstance(self._auth, httpx.BasicAuth):
            self._auth = httpx.DigestAuth(self.user, self._password or "")
            response = self._send(method, target, body, headers)
        if response.status_code == 401:
            raise AuthError(f"{self.host} refused the login for {self.user}",
                            hint="check the user name and password; iCloud, Google and Fastmail need an "
                                 "app password")
        return response

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str]) -> httpx.Response:
        try:
            return self.http.request(method, url, content=body, headers=headers, auth=self._credentials())
        except httpx.ConnectError as exc:
            cause = _ssl_cause(exc)
            if isinstance(cause, ssl.SSLCertVerificationError):
                raise TLSError(f"the TLS certificate of {self.host}:{self.port} is not trusted "
                               f"({cause.verify_message})",
                               hint="if the server uses a private CA, pass it with --ca-file PATH") from None
            if isinstance(cause, ssl.SSLError):
                raise TLSError(f"TLS with {self.host}:{self.port} failed", hint="check the port and scheme") \
                    from None
            raise UnreachableError(f"cannot reach {self.host}:{self.port} ({_reason(exc)})",
                                   hint="check the host, port and that the server is up") from None
        except httpx.TimeoutException:
            raise UnreachableError(f"{self.host}:{self.port} did not answer in time",
                                   hint="check the host, port and firewall") from None
        except httpx.TransportError as exc:
            raise UnreachableError(f"the connection to {self.host}:{self.port} failed ({_reason(exc)})",
                                   hint="run the command again; it resumes") from None

    def multistatus(self, method: str, url: str, body: bytes, depth: str) -> list[Resource]:
        response = self.request(method, url, body, depth)
        if response.status_code in (403, 404, 405):
            raise UserError(f"{urljoin(self.base, url)} answered {response.status_code} to {method}",
                            hint="check the path in the URL; leave it out to let the server say where "
                                 "the calendars are")
        if response.status_code != 207:
            raise ProtocolError(f"{self.host} answered {response.status_code} to {method} {url}")
        return list(_responses(response.content, self.host))

    def propfind(self, url: str, props: list[tuple[str, str]], depth: str = "0") -> list[Resource]:
        return self.multistatus("PROPFIND", url, _body("d:propfind", DAV, props), depth)

    def report(self, url: str, root: str, props: list[tuple[str, str]], extra: bytes) -> list[Resource]:
        return self.multistatus("REPORT", url, _body(root, DAV, props, extra), "1")


def _same_site(host: str, home: str) -> bool:
    """The same host, or one under the same domain (caldav.icloud.com and p52-caldav.icloud.com)."""
    if host == home:
        return True
    if is_loopback(host) or is_loopback(home) or host.replace(".", "").isdigit():
        return False
    return host.split(".")[-2:] == home.split(".")[-2:] and host.count(".") >= 1


def _ssl_cause(exc: BaseException) -> BaseException | None:
    """The TLS error under httpx's and httpcore's own wrappers, if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def _reason(exc: Exception) -> str:
    return (str(exc) or exc.__class__.__name__)[:120]


def _responses(content: bytes, host: str) -> Iterator[Resource]:
    try:
        root = etree.fromstring(content, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise ProtocolError(f"{host} sent a multistatus that is not XML ({exc.msg})") from None
    for response in root.findall("d:response", NAMESPACES):
        href_element = response.find("d:href", NAMESPACES)
        if href_element is None or not href_element.text:
            continue
        resource = Resource(unquote(href_element.text.strip()))
        for propstat in response.findall("d:propstat", NAMESPACES):
            status = propstat.findtext("d:status", default="", namespaces=NAMESPACES)
            if " 200 " not in f"{status} ":
                continue
            prop = propstat.find("d:prop", NAMESPACES)
            for child in prop if prop is not None else []:
                resource.props[child.tag] = child
        yield resource


def http_url(url: str, insecure: bool) -> tuple[str, str]:
    """`caldav+https://user@host/p` as `https://host/p` and the user; plain http only to loopback."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower().partition("+")[2]
    if scheme not in ("https", "http") or not parts.hostname:
        raise UserError(f"{url!r} is not a CalDAV/CardDAV URL", hint="write it as caldav+https://user@host/")
    if not parts.username:
        raise UserError(f"{url!r} names no user", hint=f"write it as {parts.scheme}://user@{parts.hostname}/")
    if scheme == "http" and not (insecure and is_loopback(parts.hostname)):
        raise UserError("plain http (no TLS) is allowed only with --insecure to a server on this machine",
                        hint="use caldav+https:// or carddav+https://")
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise UsageError(f"{url!r} has a bad port number", hint="use host:PORT with a number") from None
    return f"{scheme}://{host}{port}{parts.path or '/'}", unquote(parts.username)
