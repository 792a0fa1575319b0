"""The real msal and exchangelib, wired to a sandbox the way the EWS target will wire them to Exchange Online."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import msal
import requests
from exchangelib import (
    DELEGATE,
    IMPERSONATION,
    OAUTH2,
    UTC,
    Account,
    Build,
    Configuration,
    EWSDateTime,
    ExtendedProperty,
    FailFast,
    Identity,
    Message,
    Version,
)
from exchangelib.credentials import OAuth2AuthorizationCodeCredentials
from exchangelib.protocol import RetryPolicy

from migrate.sandbox import Sandbox

APP_ID = "11111111-2222-3333-4444-555555555555"
APP_SECRET = "sandbox-secret-value"
PUBLIC_APP_ID = "99999999-8888-7777-6666-555555555555"
ALICE = "alice@contoso.example"
BOB = "bob@contoso.example"
EWS_APP_SCOPE = ["https://outlook.office365.com/.default"]
EWS_USER_SCOPE = ["https://outlook.office365.com/EWS.AccessAsUser.All"]


class MessageFlags(ExtendedProperty):
    property_tag = 0x0E07  # PR_MESSAGE_FLAGS
    property_type = "Integer"


class DeliveryTime(ExtendedProperty):
    property_tag = 0x0E06  # PR_MESSAGE_DELIVERY_TIME
    property_type = "SystemTime"


class SubmitTime(ExtendedProperty):
    property_tag = 0x0039  # PidTagClientSubmitTime
    property_type = "SystemTime"


EXTENDED = {"pr_message_flags": MessageFlags, "pr_delivery_time": DeliveryTime, "pr_submit_time": SubmitTime}


def msal_session(sandbox: Sandbox) -> requests.Session:
    """msal gets its own session: this machine exports REQUESTS_CA_BUNDLE, which would override `verify`."""
    session = requests.Session()
    session.trust_env = False
    session.verify = str(sandbox.ca_path)
    return session


def confidential_app(sandbox: Sandbox, client_id: str = APP_ID, secret: str = APP_SECRET,
                     authority: str | None = None) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=authority or sandbox.authority,
        http_client=msal_session(sandbox), instance_discovery=False,
    )


def public_app(sandbox: Sandbox, client_id: str = PUBLIC_APP_ID) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        client_id, authority=sandbox.authority, http_client=msal_session(sandbox), instance_discovery=False,
    )


def device_sign_in(sandbox: Sandbox, app: msal.PublicClientApplication, user: str,
                   scopes: list[str] | None = None) -> dict[str, Any]:
    """The device code flow with the person's part done by the test: approve before msal polls."""
    flow = app.initiate_device_flow(scopes=scopes or EWS_USER_SCOPE)
    assert "user_code" in flow, flow
    sandbox.approve_device_code(flow["user_code"], user)
    result: dict[str, Any] = app.acquire_token_by_device_flow(flow)
    return result


class MsalCredentials(OAuth2AuthorizationCodeCredentials):
    """exchangelib credentials that ask msal again whenever exchangelib wants a fresh token.

    Plain OAuth2Credentials(access_token=...) loses the token when exchangelib renews a session and then
    asks login.microsoftonline.com itself; with no client id/secret here, exchangelib can only call refresh().
    """

    def __init__(self, acquire: Callable[[], dict[str, Any]], identity: Identity | None = None):
        self._acquire = acquire
        super().__init__(access_token=self._token(), identity=identity)

    def _token(self) -> dict[str, Any]:
        result = self._acquire()
        if "access_token" not in result:
            raise RuntimeError(f"msal: {result.get('error')}: {result.get('error_description')}")
        expires_in = int(result.get("expires_in", 3600))
        return {
            "access_token": result["access_token"],
            "token_type": "Bearer",
            "expires_in": expires_in,
            "expires_at": dt.datetime.now(dt.UTC).timestamp() + expires_in,
        }

    def refresh(self, session: Any) -> None:
        self.access_token = self._token()


def app_credentials(app: msal.ConfidentialClientApplication, **kwargs: Any) -> MsalCredentials:
    return MsalCredentials(lambda: app.acquire_token_for_client(scopes=EWS_APP_SCOPE, **kwargs))


def user_credentials(app: msal.PublicClientApplication, first: dict[str, Any]) -> MsalCredentials:
    """After a device sign-in: the first token, then silent acquisition (msal's cache and refresh token)."""
    tokens = [first]

    def acquire() -> dict[str, Any]:
        if tokens:
            return tokens.pop()
        accounts = app.get_accounts()
        result = app.acquire_token_silent(EWS_USER_SCOPE, account=accounts[0], force_refresh=True)
        return result or {"error": "no_cached_account"}

    return MsalCredentials(acquire)


def account(sandbox: Sandbox, credentials: MsalCredentials, address: str = ALICE, impersonate: bool = True,
            retry_policy: RetryPolicy | None = None) -> Account:
    config = Configuration(
        service_endpoint=sandbox.ews_url, credentials=credentials, auth_type=OAUTH2,
        version=Version(build=Build(15, 20, 0, 0)), retry_policy=retry_policy or FailFast(),
    )
    return Account(address, config=config, autodiscover=False,
                   access_type=IMPERSONATION if impersonate else DELEGATE)


def message(raw: bytes, is_read: bool = True, received: dt.datetime | None = None,
            flags: int | None = None) -> Message:
    """A Message built the way an importer builds it: MIME plus the properties that make it "received"."""
    kwargs: dict[str, Any] = {"mime_content": raw, "is_read": is_read}
    kwargs["pr_message_flags"] = (1 if is_read else 0) if flags is None else flags
    if received is not None:
        kwargs["pr_delivery_time"] = EWSDateTime.from_datetime(received.astimezone(dt.UTC)).astimezone(UTC)
        kwargs["pr_submit_time"] = kwargs["pr_delivery_time"]
    return Message(**kwargs)
