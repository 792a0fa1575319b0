"""Access tokens for a target: sign in once (device code, or app-only), then silently from the cache.

    provider = TokenProvider(AuthSettings(Transport.EWS, tenant, client_id), mailbox="anna@contoso.com")
    TargetOptions(token=provider)  # or provider.token: each call gives a token valid for minutes more

msal renews an access token from the refresh token (delegated) or the client credential (app-only) when
it nears expiry; every renewal lands in the persisted cache, so the next process starts silently too.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import msal
import requests

from migrate.auth.cache import CacheInfo, TokenStore, shared_store
from migrate.auth.credentials import ClientCertificate, ClientSecret, load_certificate
from migrate.auth.refusals import reaching, refusal
from migrate.auth.scopes import Transport
from migrate.auth.settings import MICROSOFT_AUTHORITY_HOSTS, AuthSettings
from migrate.errors import AuthError, MigrateError, ProtocolError, UsageError


class _NoTokenEventPayload(logging.Filter):
    """msal logs every token answer at DEBUG with its request data; it masks tokens and secrets, not the device
    code or a client assertion. Keep the line, drop the payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.startswith("event="):
            record.msg, record.args = "event=(a token answer; payload not logged)", ()
        return True


logging.getLogger("msal.token_cache").addFilter(_NoTokenEventPayload())


@dataclass(frozen=True)
class DeviceCodePrompt:
    """What the person has to do in a browser; the CLI shows it, nothing below the CLI prints."""

    message: str  # Entra's own sentence, naming the page and the code
    verification_uri: str
    user_code: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class SignIn:
    transport: Transport
    tenant: str
    client_id: str
    account: str | None  # the signed-in user; None for app-only
    app_only: bool
    scopes: tuple[str, ...]
    expires_at: dt.datetime  # of the access token just obtained
    thumbprint: str | None  # of the certificate, for app-only sign-in with one
    cache: CacheInfo


class _Session(requests.Session):
    """msal's HTTP client: one timeout for every call (requests has no session-wide timeout)."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(*args, **kwargs)


def http_session(settings: AuthSettings) -> requests.Session:
    session = _Session(settings.timeout)
    if settings.ca_file is not None:
        # requests lets REQUESTS_CA_BUNDLE from the environment override Session.verify; with a CA of our
        # own, the environment must not count (and a proxy from it would not reach a local sandbox anyway).
        session.trust_env = False
        session.verify = str(settings.ca_file)
    return session


def _expiry(result: Mapping[str, Any]) -> dt.datetime:
    return dt.datetime.now(dt.UTC) + dt.timedelta(seconds=int(result.get("expires_in", 0)))


def _same_host(entry_host: str, host: str, microsoft: bool) -> bool:
    entry_host = entry_host.lower()
    return entry_host == host or (microsoft and entry_host in MICROSOFT_AUTHORITY_HOSTS)


class TokenProvider:
    """Gives access tokens for one transport, as a signed-in user (delegated) or as the app (app-only).

    `mailbox` is the mailbox the target opens. Delegated, the token is the signed-in user's: the mailbox's own
    sign-in when there is one, else the one user signed in for this app (an admin with FullAccess to it).
    `user` insists on one signed-in user.
    """

    def __init__(self, settings: AuthSettings, mailbox: str | None = None, user: str | None = None,
                 store: TokenStore | None = None) -> None:
        self.settings = settings
        self.mailbox = mailbox
        self.user = user
        self.store = store or shared_store()
        self._client: msal.ClientApplication | None = None
        self._thumbprint: str | None = None
        self._lock = threading.Lock()

    # what targets use

    def token(self) -> str:
        """A valid access token: from the cache, renewed silently, or (app-only) asked for afresh."""
        if self.settings.app_only:
            return str(self._app_token()["access_token"])
        return self._user_token(force_refresh=False)

    __call__ = token

    def refresh(self) -> str:
        """A new access token, not the cached one: for a target whose token the server refused (HTTP 401)
        although msal's clock says it is still valid (revoked, or expired early on the server's side)."""
        if self.settings.app_only:
            self._forget_app_tokens()
            return str(self._app_token()["access_token"])
        return self._user_token(force_refresh=True)

    @property
    def account(self) -> str | None:
        """The signed-in user's address (delegated), or the mailbox the app acts for (app-only)."""
        if self.settings.app_only:
            return self.mailbox
        try:
            return str(self._cached_account().get("username"))
        except MigrateError:
            return None

    # signing in

    def login(self, on_code: Callable[[DeviceCodePrompt], None]) -> SignIn:
        """Sign in: the device code flow (delegated), or one token request with the app's credential."""
        if self.settings.app_only:
            self._forget_app_tokens()  # a cached token would prove nothing about the credential given now
            return self._sign_in(None, self._app_token())
        with reaching(self.settings):
            app = self._app()
            flow = app.initiate_device_flow(scopes=self.settings.scopes)
        if "user_code" not in flow:
            raise refusal(flow, self.settings, secrets=self._secrets())
        expires = dt.datetime.fromtimestamp(float(flow.get("expires_at", 0)), dt.UTC)
        on_code(DeviceCodePrompt(message=str(flow.get("message", "")),
                                 verification_uri=str(flow.get("verification_uri", "")),
                                 user_code=str(flow["user_code"]), expires_at=expires))
        with reaching(self.settings):
            result = app.acquire_token_by_device_flow(flow)
        if "error" in result:
            raise refusal(result, self.settings, secrets=self._secrets())
        claims = result.get("id_token_claims") or {}
        username = claims.get("preferred_username") or claims.get("upn") or claims.get("email")
        if not username:
            raise ProtocolError("the sign-in answer named no user", hint="run again with --debug")
        if self.user and str(username).lower() != self.user.lower():
            raise AuthError(f"signed in as {username}, not {self.user}",
                            hint=f"run: {self.settings.login_command()} and sign in as {self.user}")
        return self._sign_in(str(username), result)

    # internals

    def _sign_in(self, username: str | None, result: Mapping[str, Any]) -> SignIn:
        granted = str(result.get("scope") or " ".join(self.settings.scopes)).split()
        return SignIn(transport=self.settings.transport, tenant=self.settings.tenant,
                      client_id=self.settings.client_id, account=username, app_only=self.settings.app_only,
                      scopes=tuple(granted), expires_at=_expiry(result), thumbprint=self._thumbprint,
                      cache=self.store.info())

    def _user_token(self, force_refresh: bool) -> str:
        account = self._cached_account()
        with reaching(self.settings):
            result = self._app().acquire_token_silent_with_error(self.settings.scopes, account=account,
                                                                 force_refresh=force_refresh)
        if result is None:  # the account is known but its refresh token is gone
            raise self._not_signed_in(account.get("username"))
        if "error" in result:
            raise refusal(result, self.settings, account=account.get("username"), secrets=self._secrets())
        return str(result["access_token"])

    def _app_token(self) -> Mapping[str, Any]:
        # acquire_token_for_client looks in the cache first (msal >= 1.23) and asks Entra only on a miss:
        # this is the "silent first" for app-only, where acquire_token_silent has no account to go by.
        with reaching(self.settings):
            result = self._app().acquire_token_for_client(scopes=self.settings.scopes)
        if "error" in result:
            raise refusal(result, self.settings, secrets=self._secrets())
        return dict(result)

    def _forget_app_tokens(self) -> None:
        cache = self.store.cache
        for entry in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=self.settings.scopes,
                                       query={"client_id": self.settings.client_id})):
            if not entry.get("home_account_id") and _same_host(str(entry.get("environment", "")),
                                                              self.settings.environment,
                                                              self.settings.microsoft_authority):
                cache.remove_at(entry)

    def _app(self) -> msal.ClientApplication:
        with self._lock:
            if self._client is None:
                self._client = self._build()
            return self._client

    def _build(self) -> msal.ClientApplication:
        s = self.settings
        common: dict[str, Any] = {
            "authority": s.authority_url,
            "token_cache": self.store.cache,
            "http_client": http_session(s),
            "instance_discovery": None if s.microsoft_authority else False,
        }
        if isinstance(s.credential, ClientSecret):
            return msal.ConfidentialClientApplication(s.client_id, client_credential=s.credential.value(), **common)
        if isinstance(s.credential, ClientCertificate):
            cert = load_certificate(s.credential.path)
            self._thumbprint = cert.thumbprint
            credential = {"private_key": cert.private_key_pem, "thumbprint": cert.thumbprint}
            return msal.ConfidentialClientApplication(s.client_id, client_credential=credential, **common)
        return msal.PublicClientApplication(s.client_id, **common)

    def _secrets(self) -> list[str]:
        credential = self.settings.credential
        return [credential.value()] if isinstance(credential, ClientSecret) else []

    def _accounts(self) -> list[dict[str, Any]]:
        """The cached users this app holds a refresh token for, at this authority."""
        cache = self.store.cache
        host, microsoft = self.settings.environment, self.settings.microsoft_authority
        holders = {
            rt.get("home_account_id")
            for rt in cache.search(msal.TokenCache.CredentialType.REFRESH_TOKEN,
                                   query={"client_id": self.settings.client_id})
            if _same_host(str(rt.get("environment", "")), host, microsoft)
        }
        found: dict[str, dict[str, Any]] = {}
        for entry in cache.search(msal.TokenCache.CredentialType.ACCOUNT):
            if entry.get("home_account_id") not in holders:
                continue
            if not _same_host(str(entry.get("environment", "")), host, microsoft):
                continue
            found.setdefault(str(entry.get("home_account_id")), entry)
        return list(found.values())

    def _cached_account(self) -> dict[str, Any]:
        accounts = self._accounts()
        wanted = self.user or self.mailbox
        if wanted:
            for account in accounts:
                if str(account.get("username", "")).lower() == wanted.lower():
                    return account
            if self.user:
                raise self._not_signed_in(self.user)
        if len(accounts) == 1:
            return accounts[0]
        if not accounts:
            raise self._not_signed_in(self.mailbox)
        names = ", ".join(sorted(str(a.get("username")) for a in accounts))
        raise UsageError(f"several users are signed in for app {self.settings.client_id} ({names}) and none is "
                         f"{self.mailbox or 'named'}", hint="sign the others out: o365-migrate auth logout ADDRESS")

    def _not_signed_in(self, who: str | None) -> AuthError:
        whom = f"{who} is not" if who else "nobody is"
        return AuthError(f"{whom} signed in for {self.settings.transport.value} with app {self.settings.client_id} "
                         f"at tenant {self.settings.tenant!r}",
                         hint=f"run: {self.settings.login_command()}")
