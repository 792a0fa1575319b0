"""Signing in to Microsoft 365: MSAL flows, the persisted token cache, scopes per transport.

Only this package imports msal. A target gets its access tokens from a `TokenProvider`:

    settings = AuthSettings(Transport.EWS, tenant="contoso.onmicrosoft.com", client_id="...")
    TargetOptions(token=TokenProvider(settings, mailbox="anna@contoso.com"))
"""

from migrate.auth.accounts import AuthStatus, CachedAccount, CachedToken, Logout, logout, status
from migrate.auth.cache import CacheInfo, TokenStore, config_dir
from migrate.auth.credentials import ClientCertificate, ClientCredential, ClientSecret, client_credential
from migrate.auth.provider import DeviceCodePrompt, SignIn, TokenProvider
from migrate.auth.scopes import SCOPES, Transport, scopes_for
from migrate.auth.settings import DEFAULT_AUTHORITY, AuthSettings

__all__ = [
    "DEFAULT_AUTHORITY",
    "SCOPES",
    "AuthSettings",
    "AuthStatus",
    "CacheInfo",
    "CachedAccount",
    "CachedToken",
    "ClientCertificate",
    "ClientCredential",
    "ClientSecret",
    "DeviceCodePrompt",
    "Logout",
    "SignIn",
    "TokenProvider",
    "TokenStore",
    "Transport",
    "client_credential",
    "config_dir",
    "logout",
    "scopes_for",
    "status",
]
