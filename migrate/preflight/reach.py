"""From a plan's target Connection to what preflight and the targets need: a token source per transport and the
URL per transport. No secret is held here: tokens come from the MSAL layer when asked."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from migrate.auth.scopes import Transport
from migrate.plan import Connection
from migrate.preflight.checks import Reach
from migrate.preflight.endpoints import EXCHANGE_URL_SCHEMES, GRAPH_ENDPOINT, mailbox_of, parse_m365


def token_provider(conn: Connection, transport: Transport) -> Callable[[], str]:
    """The token source for a target and transport: one per process for the same app, mailbox and secret.
    A mailbox's move opens its target many times (preflight, the run's connections, verification), and each
    new MSAL application asks the authority for its OpenID configuration again before its first token."""
    from migrate.auth import AuthSettings, TokenProvider, client_credential
    from migrate.auth.credentials import ClientSecret
    from migrate.errors import MigrateError

    assert conn.sign_in is not None
    s = conn.sign_in
    credential = None
    if s.client_secret_env or s.client_secret_file or s.certificate:
        credential = client_credential(s.client_secret_env, Path(s.client_secret_file) if s.client_secret_file
                                       else None, Path(s.certificate) if s.certificate else None)
    settings = AuthSettings(transport, tenant=s.tenant, client_id=s.client_id, authority=s.authority,
                            credential=credential, ca_file=Path(s.ca_file) if s.ca_file else None)
    mailbox = mailbox_of(conn.url)
    try:
        # The secret's digest, not the secret, tells a changed secret apart: a new provider signs in with it.
        secret = hashlib.sha256(credential.value().encode()).hexdigest() if isinstance(credential, ClientSecret) \
            else (str(s.certificate), Path(s.certificate).stat().st_mtime_ns) if s.certificate else None
    except (MigrateError, OSError):
        return TokenProvider(settings, mailbox=mailbox)  # the sign-in says what is wrong, as before
    key = (transport, s.tenant, s.client_id, s.authority, s.ca_file, mailbox, secret)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            provider = _providers[key] = TokenProvider(settings, mailbox=mailbox)
    return provider


_providers: dict[object, Callable[[], str]] = {}
_providers_lock = threading.Lock()


def is_microsoft_365(conn: Connection) -> bool:
    """A target preflight can check: m365://, or ews/graph/imap with a Microsoft 365 sign-in."""
    scheme = conn.url.partition(":")[0].lower()
    return conn.sign_in is not None and (scheme == "m365" or scheme in EXCHANGE_URL_SCHEMES)


def reach_for(conn: Connection) -> Reach:
    assert conn.sign_in is not None
    scheme = conn.url.partition(":")[0].lower()
    if scheme == "m365":
        where = parse_m365(conn.url)
        urls = {t: (where.transport_url(t) if where.mailbox else "") for t in where.offered}
        graph: str | None = where.graph
        mailbox = where.mailbox
    else:
        transport = EXCHANGE_URL_SCHEMES[scheme]
        urls = {transport: conn.url}
        graph = _graph_endpoint(conn.url) if transport is Transport.GRAPH else None
        mailbox = mailbox_of(conn.url)

    @cache
    def token_for(transport: Transport) -> Callable[[], str]:
        return token_provider(conn, transport)

    app_only = bool(conn.sign_in.client_secret_env or conn.sign_in.client_secret_file or conn.sign_in.certificate)
    return Reach(target=conn.url, mailbox=mailbox, tenant=conn.sign_in.tenant, client_id=conn.sign_in.client_id,
                 app_only=app_only, urls=urls, token_for=token_for,
                 ca_file=Path(conn.ca_file) if conn.ca_file else None, insecure=conn.insecure, graph_endpoint=graph)


def _graph_endpoint(url: str) -> str:
    found = parse_qs(urlsplit(url).query).get("endpoint")
    return found[-1].rstrip("/") if found else GRAPH_ENDPOINT
