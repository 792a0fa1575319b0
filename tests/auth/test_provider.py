"""TokenProvider with the real msal against the sandbox: device code, cache reuse, refresh, app-only, refusals."""

from __future__ import annotations

import datetime as dt
import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from migrate.auth import AuthSettings, TokenProvider, TokenStore, Transport, client_credential
from migrate.errors import AuthError, ExitCode, TLSError, UnreachableError, UsageError
from migrate.sandbox import Sandbox
from migrate.targets.base import TargetOptions

from .conftest import (
    ALICE,
    APP_SECRET,
    CONFIDENTIAL_APP,
    Approve,
    accepted,
    cached_secrets,
    settings,
    token_requests,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _signed_in(sb: Sandbox, approve: Approve) -> TokenProvider:
    provider = TokenProvider(settings(sb))
    on_code, _ = approve()
    provider.login(on_code)
    return provider


def test_device_code_login_is_kept_private_and_reused_silently(tenant: Sandbox, config_dir: Path,
                                                               approve: Approve) -> None:
    provider = TokenProvider(settings(tenant))
    on_code, shown = approve()
    result = provider.login(on_code)

    (prompt,) = shown
    assert prompt.user_code in prompt.message and prompt.verification_uri == f"{tenant.url}/devicelogin"
    assert prompt.expires_at > dt.datetime.now(dt.UTC)
    assert result.account == ALICE and not result.app_only and result.transport is Transport.EWS
    assert result.scopes == ("https://outlook.office365.com/EWS.AccessAsUser.All",)
    cache_file = config_dir / "token-cache.json"
    assert result.cache.path == cache_file and not result.cache.encrypted
    assert _mode(cache_file) == 0o600 and _mode(config_dir) == 0o700
    token = provider.token()
    assert accepted(tenant, token) == 200
    assert token in cached_secrets(cache_file)

    # Another process: a new cache object read from the same file, a new provider; no sign-in, no request.
    later = TokenProvider(settings(tenant), mailbox=ALICE, store=TokenStore())
    assert later.account == ALICE
    assert later.token() == token
    assert TargetOptions(token=later).token is not None
    assert later() == token  # usable as TargetOptions.token
    assert token_requests(tenant) == ["token:device_code"]


def test_refresh_after_the_server_expired_the_token(tenant: Sandbox, config_dir: Path, approve: Approve) -> None:
    provider = _signed_in(tenant, approve)
    old = provider.token()
    tenant.expire_tokens()
    assert accepted(tenant, old) == 401  # msal's clock still says valid: only the server knows

    fresh = provider.refresh()
    assert fresh != old and accepted(tenant, fresh) == 200
    assert token_requests(tenant) == ["token:device_code", "token:refresh_token"]
    # The renewed token was persisted: a new process starts with it.
    assert TokenProvider(settings(tenant), store=TokenStore()).token() == fresh
    assert _mode(config_dir / "token-cache.json") == 0o600


def test_other_transport_comes_from_the_same_refresh_token(tenant: Sandbox, config_dir: Path, approve: Approve) -> None:
    _signed_in(tenant, approve)
    imap = TokenProvider(settings(tenant, Transport.IMAP))
    assert accepted(tenant, imap.token()) == 200
    assert token_requests(tenant) == ["token:device_code", "token:refresh_token"]


def test_revoked_sign_in_asks_for_auth_login(tenant: Sandbox, config_dir: Path, approve: Approve) -> None:
    provider = _signed_in(tenant, approve)
    tenant.revoke_tokens(ALICE)
    with pytest.raises(AuthError) as raised:
        provider.refresh()
    assert "expired or was revoked" in raised.value.message
    assert raised.value.hint is not None and "o365-migrate auth login" in raised.value.hint
    assert f"--client-id {settings(tenant).client_id}" in raised.value.hint
    assert "\n" not in raised.value.one_line()


def test_without_sign_in_the_hint_is_auth_login(tenant: Sandbox, config_dir: Path) -> None:
    with pytest.raises(AuthError) as raised:
        TokenProvider(settings(tenant), mailbox=ALICE).token()
    assert ALICE in raised.value.message
    assert raised.value.hint is not None and raised.value.hint.startswith("run: o365-migrate auth login")
    assert raised.value.exit_code == ExitCode.AUTH
    assert TokenProvider(settings(tenant)).account is None


def test_expired_device_code(tenant: Sandbox, config_dir: Path) -> None:
    with pytest.raises(AuthError, match="expired before it was entered") as raised:
        TokenProvider(settings(tenant)).login(lambda prompt: tenant.expire_device_codes())
    assert raised.value.hint is not None and "auth login" in raised.value.hint


def test_signing_in_as_someone_else_than_the_user_asked_for(tenant: Sandbox, config_dir: Path,
                                                             approve: Approve) -> None:
    tenant.add_mailbox("bob@contoso.example")
    on_code, _ = approve("bob@contoso.example")
    with pytest.raises(AuthError, match=f"signed in as bob@contoso.example, not {ALICE}"):
        TokenProvider(settings(tenant), user=ALICE).login(on_code)


def test_an_admin_sign_in_serves_other_mailboxes(tenant: Sandbox, config_dir: Path, approve: Approve) -> None:
    tenant.add_mailbox("bob@contoso.example")
    _signed_in(tenant, approve)
    for_bob = TokenProvider(settings(tenant), mailbox="bob@contoso.example")
    assert for_bob.account == ALICE and accepted(tenant, for_bob.token()) == 200
    with pytest.raises(AuthError, match=r"bob@contoso\.example is not signed in"):
        TokenProvider(settings(tenant), user="bob@contoso.example").token()


def test_device_code_with_a_confidential_app_says_allow_public_client_flows(tenant: Sandbox,
                                                                            config_dir: Path, approve: Approve) -> None:
    on_code, _ = approve()
    with pytest.raises(AuthError, match="does not allow device code") as raised:
        TokenProvider(settings(tenant, client_id=CONFIDENTIAL_APP)).login(on_code)
    assert raised.value.hint is not None and "Allow public client flows" in raised.value.hint


def test_client_secret_login_and_reuse(tenant: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATION_SECRET", APP_SECRET)
    secret = client_credential("MIGRATION_SECRET", None, None)
    app_only = settings(tenant, client_id=CONFIDENTIAL_APP, credential=secret)
    result = TokenProvider(app_only).login(lambda prompt: pytest.fail("app-only shows no code"))
    assert result.app_only and result.account is None
    assert result.scopes == ("https://outlook.office365.com/.default",)

    later = TokenProvider(app_only, mailbox=ALICE, store=TokenStore())
    assert later.account == ALICE
    token = later.token()
    assert token in cached_secrets(config_dir / "token-cache.json")
    assert token_requests(tenant) == ["token:client_credentials"]
    assert later.refresh() != token
    assert token_requests(tenant) == ["token:client_credentials"] * 2


def test_client_secret_from_a_file(tenant: Sandbox, config_dir: Path, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(APP_SECRET + "\n")
    secret_file.chmod(0o600)
    app_only = settings(tenant, client_id=CONFIDENTIAL_APP, credential=client_credential(None, secret_file, None))
    assert TokenProvider(app_only).token()


def _certificate_pem(tmp_path: Path) -> tuple[Path, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "o365-migrate")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA256()))
    path = tmp_path / "app.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    path.chmod(0o600)
    return path, cert


def test_certificate_login(tenant: Sandbox, config_dir: Path, tmp_path: Path) -> None:
    pem, cert = _certificate_pem(tmp_path)
    tenant.add_app("cert-app", certificate_pem=cert.public_bytes(serialization.Encoding.PEM))
    app_only = settings(tenant, Transport.GRAPH, client_id="cert-app", credential=client_credential(None, None, pem))
    result = TokenProvider(app_only).login(lambda prompt: None)
    assert result.thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()
    assert result.scopes == ("https://graph.microsoft.com/.default",)


def test_certificate_not_registered_is_refused(tenant: Sandbox, config_dir: Path, tmp_path: Path) -> None:
    pem, _ = _certificate_pem(tmp_path)
    (tmp_path / "other").mkdir()
    _, registered = _certificate_pem(tmp_path / "other")
    tenant.add_app("cert-app", certificate_pem=registered.public_bytes(serialization.Encoding.PEM))
    with pytest.raises(AuthError, match="certificate for app cert-app was refused"):
        TokenProvider(settings(tenant, client_id="cert-app", credential=client_credential(None, None, pem))).token()


@pytest.mark.parametrize(("change", "expected"), [
    ({"secret": "not-the-secret"}, "client secret for app .* was refused"),
    ({"client_id": "00000000-0000-0000-0000-00000000dead"}, "there is no application 00000000-"),
    ({"tenant": "no-such-tenant.example"}, "tenant 'no-such-tenant.example' was not found"),
])
def test_refusals_are_one_line_auth_errors(tenant: Sandbox, config_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                           change: dict[str, str], expected: str) -> None:
    monkeypatch.setenv("MIGRATION_SECRET", change.get("secret", APP_SECRET))
    app_only = settings(tenant, client_id=change.get("client_id", CONFIDENTIAL_APP),
                        tenant=change.get("tenant", "contoso.example"),
                        credential=client_credential("MIGRATION_SECRET", None, None))
    with pytest.raises(AuthError, match=expected) as raised:
        TokenProvider(app_only).login(lambda prompt: None)
    line = raised.value.one_line()
    assert "\n" not in line and raised.value.hint
    assert APP_SECRET not in line and "not-the-secret" not in line
    assert raised.value.exit_code == ExitCode.AUTH


def test_untrusted_certificate_is_a_tls_error(tenant: Sandbox, config_dir: Path) -> None:
    with pytest.raises(TLSError) as raised:
        TokenProvider(settings(tenant, ca=False)).login(lambda prompt: None)
    assert raised.value.exit_code == ExitCode.TLS and "--ca-file" in (raised.value.hint or "")


def test_unreachable_authority(config_dir: Path) -> None:
    dead = AuthSettings(Transport.EWS, "contoso.example", "app", authority="https://127.0.0.1:9")
    with pytest.raises(UnreachableError, match=r"cannot reach the sign-in service at 127\.0\.0\.1:9"):
        TokenProvider(dead).login(lambda prompt: None)


def test_cache_folder_and_file_are_tightened_after_a_write(tenant: Sandbox, config_dir: Path, approve: Approve) -> None:
    config_dir.mkdir(mode=0o755)
    os.chmod(config_dir, 0o755)
    (config_dir / "token-cache.json").write_text("")
    os.chmod(config_dir / "token-cache.json", 0o644)
    _signed_in(tenant, approve)
    assert _mode(config_dir) == 0o700 and _mode(config_dir / "token-cache.json") == 0o600


def test_settings_are_checked_before_any_request() -> None:
    with pytest.raises(UsageError, match="not an https URL"):
        AuthSettings(Transport.EWS, "contoso.example", "app", authority="http://login.example")
    with pytest.raises(UsageError, match="needs one tenant"):
        AuthSettings(Transport.EWS, "organizations", "app", credential=client_credential("X", None, None))
    with pytest.raises(UsageError, match="both given"):
        client_credential("X", Path("/etc/hostname"), None)
