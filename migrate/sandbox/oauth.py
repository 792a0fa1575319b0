"""An OAuth 2.0 authority shaped like Microsoft Entra ID's v2.0 endpoints, for the real msal to sign in against.

Covers what o365-migrate uses: client credentials (secret or certificate assertion), the device code flow and
refresh tokens. Errors carry Entra's error codes and AADSTS numbers, because msal and our own error
classification read them. Tokens are opaque random strings kept in the store; id_tokens are unsigned JWTs,
which msal accepts because it never validates id_tokens it got straight from the token endpoint.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import html
import json
import time
import uuid
from collections.abc import Callable
from urllib.parse import urlparse

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .config import SandboxConfig
from .store import App, Store, Tenant
from .web import Request, Response, json_response

RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
# Tenant aliases that Entra resolves from the client or the user rather than from the URL.
MULTI_TENANT_ALIASES = frozenset({"common", "organizations"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthError(Exception):
    def __init__(self, status: int, error: str, aadsts: int, description: str):
        super().__init__(description)
        self.status, self.error, self.aadsts, self.description = status, error, aadsts, description

    def response(self, client_id: str | None) -> Response:
        now = dt.datetime.now(dt.UTC)
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        text = (f"AADSTS{self.aadsts}: {self.description} Trace ID: {trace} Correlation ID: {correlation} "
                f"Timestamp: {now:%Y-%m-%d %H:%M:%SZ}")
        return json_response(self.status, {
            "error": self.error,
            "error_description": text,
            "error_codes": [self.aadsts],
            "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.aadsts}",
        }, operation="token-error", client_id=client_id)


def _tenant_not_found(name: str) -> OAuthError:
    return OAuthError(400, "invalid_tenant", 90002,
                      f"Tenant '{name}' not found. Check to make sure you have the correct tenant ID and are "
                      "signing into the correct cloud.")


def _unknown_client(client_id: str, tenant: str) -> OAuthError:
    return OAuthError(400, "unauthorized_client", 700016,
                      f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                      "This can happen if the application has not been installed by the administrator of the "
                      "tenant or consented to by any user in the tenant. You may have sent your authentication "
                      "request to the wrong tenant.")


class Authority:
    def __init__(self, store: Store, config: SandboxConfig, base_url: Callable[[], str]):
        self._store = store
        self._config = config
        self._base_url = base_url

    # routing

    def handle(self, request: Request) -> Response | None:
        """Answer an authority request, or None when the path is not ours."""
        parts = [p for p in request.path.split("/") if p]
        if request.method == "GET" and parts[1:] == ["v2.0", ".well-known", "openid-configuration"]:
            return self._openid_configuration(parts[0])
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "token"]:
            return self._guard(request, parts[0], self._token)
        if request.method == "POST" and parts[1:] == ["oauth2", "v2.0", "devicecode"]:
            return self._guard(request, parts[0], self._devicecode)
        if request.method == "GET" and parts == ["common", "discovery", "instance"]:
            return self._instance_discovery(request)
        if parts == ["devicelogin"]:
            return self._device_login_page(request)
        if request.method == "GET" and parts == ["v1.0", "me"]:
            return self._me(request)
        return None

    def _guard(self, request: Request, tenant_name: str,
               endpoint: Callable[[Request, Tenant | None, str], Response]) -> Response:
        client_id = request.form().get("client_id")
        try:
            return endpoint(request, self._resolve_tenant(tenant_name), tenant_name)
        except OAuthError as exc:
            return exc.response(client_id)

    def _resolve_tenant(self, name: str) -> Tenant | None:
        """None for the multi-tenant aliases; the tenant then comes from the client application."""
        if name.lower() in MULTI_TENANT_ALIASES:
            return None
        tenant = self._store.tenant(name)
        if tenant is None:
            raise _tenant_not_found(name)
        return tenant

    # discovery

    def _openid_configuration(self, tenant_name: str) -> Response:
        if tenant_name.lower() in MULTI_TENANT_ALIASES:
            segment, issuer_tenant = tenant_name.lower(), "{tenantid}"
        else:
            tenant = self._store.tenant(tenant_name)
            if tenant is None:
                err = _tenant_not_found(tenant_name)
                return json_response(400, {"error": err.error, "error_description": f"AADSTS{err.aadsts}: "
                                           f"{err.description}"}, operation="openid-configuration")
            segment = issuer_tenant = tenant.id
        base = f"{self._base_url()}/{segment}"
        return json_response(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": f"{self._base_url()}/{issuer_tenant}/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": f"{self._base_url()}/v1.0/me",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "name", "oid", "preferred_username",
                                 "tid", "ver"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
        }, operation="openid-configuration")

    def _instance_discovery(self, request: Request) -> Response:
        endpoint = request.form().get("authorization_endpoint", "")
        path = [p for p in urlparse(endpoint).path.split("/") if p]
        tenant = path[0] if path else "common"
        host = urlparse(self._base_url()).netloc
        return json_response(200, {
            "tenant_discovery_endpoint": f"{self._base_url()}/{tenant}/v2.0/.well-known/openid-configuration",
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        }, operation="instance-discovery")

    # client authentication

    def _client(self, form: dict[str, str], request: Request, tenant: Tenant | None, tenant_name: str) -> App:
        client_id = form.get("client_id", "")
        secret = form.get("client_secret")
        basic = request.header("authorization")
        if basic.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise OAuthError(401, "invalid_client", 7000215, "Invalid client secret provided.") from exc
            client_id, secret = client_id or user, password
        if not client_id:
            raise OAuthError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'client_id'.")
        app = self._store.app(client_id)
        if app is None or (tenant is not None and app.tenant_id != tenant.id):
            raise _unknown_client(client_id, tenant.id if tenant else tenant_name)
        if secret is not None:
            if app.secret is None or secret != app.secret:
                raise OAuthError(401, "invalid_client", 7000215,
                                 "Invalid client secret provided. Ensure the secret being sent in the request is "
                                 f"the client secret value, not the client secret ID, for a secret added to app "
                                 f"'{app.client_id}'.")
        elif form.get("client_assertion_type") == JWT_BEARER:
            self._verify_assertion(app, form.get("client_assertion", ""), request)
        elif app.secret is not None or app.certificate_pem is not None:
            raise OAuthError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        return app

    def _verify_assertion(self, app: App, assertion: str, request: Request) -> None:
        """private_key_jwt (RFC 7523) as msal builds it: RS256 with x5t, or PS256 with x5t#S256."""
        def bad(code: int, text: str) -> OAuthError:
            return OAuthError(401, "invalid_client", code, text)

        if app.certificate_pem is None:
            raise bad(700027, "The certificate with identifier used to sign the client assertion is not "
                              "registered on application.")
        try:
            head_b64, body_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(body_b64))
            signature = _b64url_decode(sig_b64)
        except ValueError as exc:
            raise bad(50027, "JWT token is invalid or malformed.") from exc
        cert = x509.load_pem_x509_certificate(app.certificate_pem.encode())
        thumbprints = {
            "x5t": _b64url(cert.fingerprint(hashes.SHA1())),
            "x5t#S256": _b64url(cert.fingerprint(hashes.SHA256())),
        }
        # msal pads its base64url thumbprints, RFC 7515 does not: compare without the padding.
        if not any(str(header.get(k, "")).rstrip("=") == v for k, v in thumbprints.items()):
            raise bad(700027, "The certificate with identifier used to sign the client assertion is not "
                              "registered on application.")
        signed = f"{head_b64}.{body_b64}".encode()
        key = cert.public_key()
        alg = header.get("alg")
        try:
            if alg == "RS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256" and isinstance(key, rsa.RSAPublicKey):
                key.verify(signature, signed, padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.AUTO),
                           hashes.SHA256())
            elif alg == "ES256" and isinstance(key, ec.EllipticCurvePublicKey) and len(signature) == 64:
                der = encode_dss_signature(int.from_bytes(signature[:32], "big"),
                                           int.from_bytes(signature[32:], "big"))
                key.verify(der, signed, ec.ECDSA(hashes.SHA256()))
            else:
                raise InvalidSignature
        except InvalidSignature as exc:
            raise bad(700027, "Client assertion failed signature validation.") from exc
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise bad(700021, "Client assertion application identifier doesn't match 'client_id' parameter.")
        now = time.time()
        if not (claims.get("nbf", now) - 300 <= now < claims.get("exp", 0) + 300):
            raise bad(700024, "Client assertion is not within its valid time range.")
        audience = claims.get("aud")
        if not isinstance(audience, str) or not audience.endswith(request.path):
            raise bad(700212, "No matching federated identity record found for presented assertion audience.")

    # endpoints

    def _devicecode(self, request: Request, tenant: Tenant | None, tenant_name: str) -> Response:
        form = request.form()
        client_id = form.get("client_id", "")
        app = self._store.app(client_id)
        if app is None or (tenant is not None and app.tenant_id != tenant.id):
            raise _unknown_client(client_id, tenant.id if tenant else tenant_name)
        scopes = form.get("scope", "").split()
        code = self._store.create_device_code(app.client_id, app.tenant_id, scopes,
                                              self._config.device_code_lifetime_s)
        uri = f"{self._base_url()}/devicelogin"
        return json_response(200, {
            "user_code": code.user_code,
            "device_code": code.device_code,
            "verification_uri": uri,
            "expires_in": self._config.device_code_lifetime_s,
            "interval": self._config.device_code_interval_s,
            "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                       f"{code.user_code} to authenticate.",
        }, operation="devicecode", client_id=app.client_id)

    def _token(self, request: Request, tenant: Tenant | None, tenant_name: str) -> Response:
        form = request.form()
        grant = form.get("grant_type", "")
        app = self._client(form, request, tenant, tenant_name)
        if grant == "client_credentials":
            return self._client_credentials(app, form)
        if grant == DEVICE_CODE_GRANT:
            return self._device_code_grant(app, form)
        if grant == "refresh_token":
            return self._refresh_grant(app, form)
        raise OAuthError(400, "unsupported_grant_type", 70003,
                         f"The app requested an unsupported grant type '{grant}'.")

    def _client_credentials(self, app: App, form: dict[str, str]) -> Response:
        scopes = form.get("scope", "").split()
        if not scopes:
            raise OAuthError(400, "invalid_request", 900144,
                             "The request body must contain the following parameter: 'scope'.")
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            raise OAuthError(400, "invalid_scope", 1002012,
                             f"The provided value for scope {' '.join(scopes)} is not valid. Client credential "
                             "flows must have a scope value with /.default suffixed to the resource identifier "
                             "(application ID URI).")
        if app.secret is None and app.certificate_pem is None:
            raise OAuthError(401, "invalid_client", 7000218,
                             "The request body must contain the following parameter: 'client_assertion' or "
                             "'client_secret'.")
        lifetime = self._config.access_token_lifetime_s
        token = self._store.issue_token("access", app.client_id, app.tenant_id, "app", app.client_id, scopes,
                                        lifetime)
        return json_response(200, {"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                                   "access_token": token}, operation="token:client_credentials",
                             client_id=app.client_id)

    def _device_code_grant(self, app: App, form: dict[str, str]) -> Response:
        code = self._store.device_code(device_code=form.get("device_code") or form.get("code", ""))
        if code is None or code.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant", 70000, "The provided value for the input parameter "
                                                          "'device_code' is not valid.")
        if code.consumed:
            raise OAuthError(400, "invalid_grant", 54005, "OAuth2 Authorization code was already redeemed, please "
                                                          "retry with a new valid code or use an existing refresh "
                                                          "token.")
        if code.expires_at <= time.time():
            raise OAuthError(400, "expired_token", 70020, "The provided value for the input parameter "
                                                          "'device_code' is not valid. This device code has "
                                                          "expired.")
        if code.approved_user is None:
            raise OAuthError(400, "authorization_pending", 70016, "OAuth 2.0 device flow error. Authorization is "
                                                                  "pending. Continue polling.")
        self._store.consume_device_code(code.device_code)
        return self._user_tokens(app, code.approved_user, list(code.scopes), "token:device_code")

    def _refresh_grant(self, app: App, form: dict[str, str]) -> Response:
        token = self._store.token(form.get("refresh_token", ""), "refresh")
        if token is None or token.client_id != app.client_id:
            raise OAuthError(400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid.")
        if token.revoked:
            raise OAuthError(400, "invalid_grant", 50173,
                             "The provided grant has expired due to it being revoked, a fresh auth token is "
                             "needed. The user might have changed or reset their password.")
        if token.expired:
            raise OAuthError(400, "invalid_grant", 700082,
                             "The refresh token has expired due to inactivity.")
        scopes = form.get("scope", "").split() or list(token.scopes)
        return self._user_tokens(app, token.subject, scopes, "token:refresh_token")

    def _user_tokens(self, app: App, address: str, requested: list[str], operation: str) -> Response:
        mailbox = self._store.mailbox(address)
        if mailbox is None:
            raise OAuthError(400, "invalid_grant", 50034, f"The user account {address} does not exist in the "
                                                          "directory.")
        # Entra answers with the resource scopes granted, not the OpenID ones; msal keys its cache on them,
        # so acquire_token_silent only hits when they echo what was asked for.
        granted = [s for s in requested if s.lower() not in RESERVED_SCOPES] or requested
        lifetime = self._config.access_token_lifetime_s
        access = self._store.issue_token("access", app.client_id, mailbox.tenant_id, "user", mailbox.address,
                                         granted, lifetime)
        refresh = self._store.issue_token("refresh", app.client_id, mailbox.tenant_id, "user", mailbox.address,
                                          requested, self._config.refresh_token_lifetime_s)
        now = int(time.time())
        claims = {
            "aud": app.client_id, "iss": f"{self._base_url()}/{mailbox.tenant_id}/v2.0", "iat": now, "nbf": now,
            "exp": now + lifetime, "name": mailbox.display_name, "oid": mailbox.object_id,
            "preferred_username": mailbox.address, "sub": hashlib.sha256(mailbox.object_id.encode()).hexdigest(),
            "tid": mailbox.tenant_id, "ver": "2.0",
        }
        id_token = ".".join([_b64url(b'{"typ":"JWT","alg":"none"}'), _b64url(json.dumps(claims).encode()), ""])
        client_info = _b64url(json.dumps({"uid": mailbox.object_id, "utid": mailbox.tenant_id}).encode())
        return json_response(200, {
            "token_type": "Bearer", "scope": " ".join(granted), "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": access, "refresh_token": refresh, "id_token": id_token, "client_info": client_info,
        }, operation=operation, client_id=app.client_id, mailbox=mailbox.address)

    # the person's side of the device flow, for demos and rehearsals

    def approve(self, user_code: str, address: str) -> None:
        code = self._store.device_code(user_code=user_code)
        if code is None:
            raise KeyError(f"unknown device code {user_code!r}")
        if self._store.mailbox(address) is None:
            raise KeyError(f"no such user {address!r}")
        self._store.approve_device_code(code.user_code, address)

    def _device_login_page(self, request: Request) -> Response:
        note = ""
        if request.method == "POST":
            form = request.form()
            try:
                self.approve(form.get("code", "").strip(), form.get("user", "").strip())
                note = "<p>Signed in. You can close this window and return to o365-migrate.</p>"
            except KeyError as exc:
                note = f"<p>Sign-in failed: {html.escape(str(exc))}</p>"
        page = ("<!doctype html><meta charset=utf-8><title>Sandbox sign-in</title><h1>Sandbox sign-in</h1>"
                f"{note}<form method=post><label>Code <input name=code></label> "
                "<label>User <input name=user type=email></label> <button>Sign in</button></form>")
        response = Response(200, page.encode(), content_type="text/html; charset=utf-8")
        response.operation = "devicelogin"
        return response

    # a userinfo endpoint, Graph-shaped, for Dovecot's oauth2 introspection

    def _me(self, request: Request) -> Response:
        value = request.bearer()
        token = self._store.token(value, "access") if value else None
        if token is None or token.revoked or token.expired:
            return json_response(401, {"error": {"code": "InvalidAuthenticationToken",
                                                 "message": "Access token is empty or invalid or has expired."}},
                                 operation="me")
        if token.subject_kind != "user":
            return json_response(400, {"error": {"code": "BadRequest", "message": "/me request is only valid with "
                                                 "delegated authentication flow."}}, operation="me",
                                 client_id=token.client_id)
        mailbox = self._store.mailbox(token.subject)
        if mailbox is None:
            return json_response(404, {"error": {"code": "Request_ResourceNotFound",
                                                 "message": "Resource does not exist."}}, operation="me")
        return json_response(200, {
            "id": mailbox.object_id, "displayName": mailbox.display_name, "mail": mailbox.address,
            "userPrincipalName": mailbox.address,
        }, operation="me", client_id=token.client_id, mailbox=mailbox.address)
