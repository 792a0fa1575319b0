"""The real msal signs in against the sandbox's authority: both flows, refresh, and Entra-shaped errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from migrate.sandbox import Sandbox, SandboxError

from .helpers import (
    ALICE,
    EWS_APP_SCOPE,
    EWS_USER_SCOPE,
    confidential_app,
    device_sign_in,
    msal_session,
    public_app,
)


def _token_requests(sandbox: Sandbox) -> list[str]:
    return [r.operation for r in sandbox.requests if r.operation.startswith("token")]


def test_client_credentials_with_secret(tenant: Sandbox) -> None:
    app = confidential_app(tenant)
    result = app.acquire_token_for_client(scopes=EWS_APP_SCOPE)
    assert result["token_type"] == "Bearer" and result["access_token"]
    again = app.acquire_token_for_client(scopes=EWS_APP_SCOPE)
    assert again["access_token"] == result["access_token"]  # msal's cache, no second request
    assert _token_requests(tenant) == ["token:client_credentials"]


def test_wrong_secret_is_invalid_client(tenant: Sandbox) -> None:
    result = confidential_app(tenant, secret="not-the-secret").acquire_token_for_client(scopes=EWS_APP_SCOPE)
    assert result["error"] == "invalid_client"
    assert 7000215 in result["error_codes"]
    assert result["error_description"].startswith("AADSTS7000215:")


def test_unknown_client_id(tenant: Sandbox) -> None:
    result = confidential_app(tenant, client_id="00000000-0000-0000-0000-00000000dead").acquire_token_for_client(
        scopes=EWS_APP_SCOPE)
    assert result["error"] == "unauthorized_client"
    assert 700016 in result["error_codes"]


def test_unknown_tenant(tenant: Sandbox) -> None:
    with pytest.raises(ValueError, match="tenant name or GUID") as raised:
        confidential_app(tenant, authority=f"{tenant.url}/no-such-tenant.example")
    assert "AADSTS90002" in str(raised.value.__context__)  # msal rewords Entra's answer, and chains it


def test_client_credentials_need_dot_default(tenant: Sandbox) -> None:
    result = confidential_app(tenant).acquire_token_for_client(scopes=EWS_USER_SCOPE)
    assert result["error"] == "invalid_scope"


def test_certificate_assertion(tenant: Sandbox) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "migration app")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    tenant.add_app("cert-app", certificate_pem=cert_pem, permissions=["full_access_as_app"])

    def sign_in(credential: dict[str, str]) -> dict[str, object]:
        app = msal.ConfidentialClientApplication("cert-app", client_credential=credential,
                                                 authority=tenant.authority, http_client=msal_session(tenant),
                                                 instance_discovery=False)
        result: dict[str, object] = app.acquire_token_for_client(scopes=EWS_APP_SCOPE)
        return result

    # msal signs PS256 with x5t#S256 when it has the certificate, RS256 with x5t from a bare thumbprint.
    assert "access_token" in sign_in({"private_key": key_pem, "public_certificate": cert_pem})
    sha1 = cert.fingerprint(hashes.SHA1()).hex()
    assert "access_token" in sign_in({"private_key": key_pem, "thumbprint": sha1})
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    refused = sign_in({"private_key": other, "thumbprint": sha1})
    assert refused["error"] == "invalid_client"
    assert 700027 in refused["error_codes"]  # type: ignore[operator]


def test_device_flow_and_silent_refresh(tenant: Sandbox) -> None:
    app = public_app(tenant)
    result = device_sign_in(tenant, app, ALICE)
    assert result["token_type"] == "Bearer"
    assert set(result["scope"].split()) == set(EWS_USER_SCOPE)
    assert result["id_token_claims"]["preferred_username"] == ALICE
    assert result["refresh_token"]
    (account,) = app.get_accounts()
    assert account["username"] == ALICE

    # The echoed scope lets msal answer from its cache...
    cached = app.acquire_token_silent(EWS_USER_SCOPE, account=account)
    assert cached is not None and cached["access_token"] == result["access_token"]
    assert _token_requests(tenant) == ["token:device_code"]
    # ...and refresh with the refresh token when asked to.
    refreshed = app.acquire_token_silent(EWS_USER_SCOPE, account=account, force_refresh=True)
    assert refreshed is not None and refreshed["access_token"] != result["access_token"]
    assert _token_requests(tenant) == ["token:device_code", "token:refresh_token"]


def test_device_flow_pending_then_expired(tenant: Sandbox) -> None:
    app = public_app(tenant)
    flow = app.initiate_device_flow(scopes=EWS_USER_SCOPE)
    assert flow["verification_uri"] == f"{tenant.url}/devicelogin" and flow["user_code"] in flow["message"]
    pending = app.acquire_token_by_device_flow(flow, exit_condition=lambda flow: True)
    assert pending["error"] == "authorization_pending"
    assert 70016 in pending["error_codes"]
    tenant.expire_device_codes()
    expired = app.acquire_token_by_device_flow(flow, exit_condition=lambda flow: True)
    assert expired["error"] == "expired_token"


def test_device_code_is_redeemed_once(tenant: Sandbox) -> None:
    app = public_app(tenant)
    flow = app.initiate_device_flow(scopes=EWS_USER_SCOPE)
    tenant.approve_device_code(flow["user_code"], ALICE)
    assert "access_token" in app.acquire_token_by_device_flow(dict(flow))
    again = app.acquire_token_by_device_flow(dict(flow), exit_condition=lambda flow: True)
    assert again["error"] == "invalid_grant"


def test_device_login_page_approves_a_code(tenant: Sandbox) -> None:
    app = public_app(tenant)
    flow = app.initiate_device_flow(scopes=EWS_USER_SCOPE)
    page = msal_session(tenant).post(f"{tenant.url}/devicelogin", data={"code": flow["user_code"], "user": ALICE})
    assert page.status_code == 200 and "Signed in" in page.text
    assert "access_token" in app.acquire_token_by_device_flow(flow)


def test_revoked_refresh_token_is_invalid_grant(tenant: Sandbox) -> None:
    app = public_app(tenant)
    device_sign_in(tenant, app, ALICE)
    tenant.revoke_tokens(ALICE)
    (account,) = app.get_accounts()
    result = app.acquire_token_silent_with_error(EWS_USER_SCOPE, account=account, force_refresh=True)
    assert result is not None and result["error"] == "invalid_grant"
    assert 50173 in result["error_codes"]


def test_userinfo_for_dovecot(tenant: Sandbox) -> None:
    token = device_sign_in(tenant, public_app(tenant), ALICE,
                           scopes=["https://outlook.office.com/IMAP.AccessAsUser.All"])["access_token"]
    session = msal_session(tenant)
    me = session.get(f"{tenant.url}/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["mail"] == ALICE and me.json()["userPrincipalName"] == ALICE
    assert session.get(f"{tenant.url}/v1.0/me", headers={"Authorization": "Bearer nope"}).status_code == 401
    app_token = confidential_app(tenant).acquire_token_for_client(scopes=EWS_APP_SCOPE)["access_token"]
    assert session.get(f"{tenant.url}/v1.0/me", headers={"Authorization": f"Bearer {app_token}"}).status_code == 400


def test_sandbox_refuses_non_loopback(tmp_path: Path) -> None:
    with pytest.raises(SandboxError):
        Sandbox(tmp_path, host="0.0.0.0")


def test_unknown_paths_are_404(tenant: Sandbox) -> None:
    assert msal_session(tenant).get(f"{tenant.url}/nothing/here").status_code == 404
