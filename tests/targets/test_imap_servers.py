"""The IMAP target against Dovecots set up otherwise: XOAUTH2 sign-in (the Exchange Online path,
with a token Dovecot checks at a loopback introspection endpoint), and "." as the separator."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest

from migrate.errors import AuthError
from migrate.targets import Outcome, TargetOptions, UploadItem, open_target
from tests.servers.dovecot import Dovecot, free_port
from tests.targets.cases import PASSWORD, add_users, drop_sessions

USER, TOKEN = "oauth-target", "eyJ0eXAiOiJKV1QifQ.target-token-0001.sig"


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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), _Introspection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    dovecot = Dovecot(oauth2_introspection_url=f"http://127.0.0.1:{server.server_port}/userinfo")
    dovecot.start()
    add_users(dovecot, [USER], "not-the-way-in-1")  # the mailbox must exist; the password is never used
    try:
        yield dovecot
    finally:
        dovecot.cleanup()
        server.shutdown()
        thread.join()


def test_xoauth2_signs_in_and_the_token_is_asked_again_on_reconnect(oauth_dovecot: Dovecot) -> None:
    asked: list[str] = []

    def token() -> str:
        asked.append(TOKEN)
        return TOKEN

    url = f"imaps://{USER}@127.0.0.1:{oauth_dovecot.ports['imaps']}"
    with open_target(url, TargetOptions(token=token, ca_file=oauth_dovecot.ca_path)) as target:
        folder = target.ensure_folder(("Inbox", "Från Gmail"))
        raw = b"Message-ID: <x@example.se>\r\nSubject: hej\r\n\r\nhej\r\n"
        [first] = target.upload(folder, [UploadItem("a", raw, frozenset({"\\Seen"}), None)])
        assert len(asked) == 2  # folders and uploads go on two connections, each signed in
        drop_sessions(oauth_dovecot, USER)
        oauth_dovecot.restart()
        [second] = target.upload(folder, [UploadItem("b", raw, frozenset(), None)])
        held = list(target.existing(folder))
    assert first.outcome is second.outcome is Outcome.CREATED
    assert len(held) == 2 and len(asked) == 4  # a fresh token for each new connection (MSAL refreshes)


def test_a_refused_token_is_an_auth_error_without_the_token(oauth_dovecot: Dovecot) -> None:
    revoked = "eyJ0eXAiOiJKV1QifQ.revoked-9999.sig"
    target = open_target(f"imaps://{USER}@127.0.0.1:{oauth_dovecot.ports['imaps']}",
                         TargetOptions(token=lambda: revoked, ca_file=oauth_dovecot.ca_path))
    with pytest.raises(AuthError) as caught:
        target.ensure_folder(("Inbox",))
    assert "OAuth token" in caught.value.message and revoked not in caught.value.one_line()


@pytest.fixture(scope="module")
def dotted_dovecot() -> Iterator[Dovecot]:
    dovecot = Dovecot(separator=".")
    dovecot.start()
    add_users(dovecot, ["punkt"])
    try:
        yield dovecot
    finally:
        dovecot.cleanup()


def test_the_separator_comes_from_the_server(dotted_dovecot: Dovecot) -> None:
    url = f"imaps://punkt@127.0.0.1:{dotted_dovecot.ports['imaps']}"
    with open_target(url, TargetOptions(secret=lambda: PASSWORD, ca_file=dotted_dovecot.ca_path)) as target:
        nested = target.ensure_folder(("Kunder", "Åkesson & Söner", "Bokslut 2023.12"))
        assert nested.id == "Kunder.Åkesson & Söner.Bokslut 2023_12"
        assert nested.note is not None and "'.'" in nested.note
        slashed = target.ensure_folder(("Inbox", "A/B"))  # Dovecot refuses "/" here too
        assert slashed.id == "INBOX.A_B" and slashed.note is not None and "'/'" in slashed.note
        for folder in (nested, slashed):
            [result] = target.upload(folder, [UploadItem("k", b"Subject: x\r\n\r\ny\r\n", frozenset(), None)])
            assert result.outcome is Outcome.CREATED
