"""XOAUTH2 sign-in to IMAP and POP3 sources, checked by a real Dovecot.

Dovecot's oauth2 passdb asks an introspection URL who owns the bearer token; a small
loopback endpoint answers for one token, as Google's or Microsoft's userinfo would.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from migrate import samplebox
from migrate.errors import AuthError
from migrate.sources import SourceOptions, open_source
from tests import corpus
from tests.servers.dovecot import Dovecot, free_port

USER, PASSWORD, TOKEN = "oauth-user", "unused-Password1", "ya29.test-token-0001"


class _Introspection(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        ok = self.headers.get("Authorization", "") == f"Bearer {TOKEN}"
        body = json.dumps({"email": USER} if ok else {"error": "invalid_token"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def oauth_dovecot() -> Iterator[Dovecot]:
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Introspection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dovecot = Dovecot(oauth2_introspection_url=f"http://127.0.0.1:{port}/userinfo")
    dovecot.start()
    corpus.load_into_dovecot(dovecot, USER, PASSWORD, samplebox.build(3)[:2])
    try:
        yield dovecot
    finally:
        dovecot.cleanup()
        server.shutdown()
        thread.join()


@pytest.mark.parametrize("scheme", ["imaps", "pop3s"])
def test_xoauth2_login_reads_the_mailbox(oauth_dovecot: Dovecot, scheme: str) -> None:
    options = SourceOptions(secret=lambda: TOKEN, auth="xoauth2", ca_file=oauth_dovecot.ca_path)
    with open_source(f"{scheme}://{USER}@127.0.0.1:{oauth_dovecot.ports[scheme]}", options) as source:
        inbox = source.folders()[0]
        refs = list(source.messages(inbox))
        assert len(refs) == 3
        assert all(raw for _, raw in source.read(inbox, refs))


@pytest.mark.parametrize("scheme", ["imaps", "pop3s"])
def test_a_refused_token_is_an_auth_error_without_the_token(oauth_dovecot: Dovecot, scheme: str) -> None:
    bad = "ya29.revoked-token-9999"
    options = SourceOptions(secret=lambda: bad, auth="xoauth2", ca_file=oauth_dovecot.ca_path)
    with pytest.raises(AuthError) as caught, open_source(
        f"{scheme}://{USER}@127.0.0.1:{oauth_dovecot.ports[scheme]}", options
    ) as source:
        source.folders() if scheme == "imaps" else list(source.messages(source.folders()[0]))
    assert bad not in caught.value.one_line()
