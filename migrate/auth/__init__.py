"""Signing in to Microsoft 365: MSAL flows, the persisted token cache, scopes per transport.

Only this package imports msal. A target gets its access tokens from a `TokenProvider`:

    settings = AuthSettings(Transport.EWS, tenant="contoso.onmicrosoft.com", client_id="...")
    TargetOptions(token=TokenProvider(settings, mailbox="anna@contoso.com"))
"""

import importlib
from typing import TYPE_CHECKING, Any

# Names load on first use (PEP 562): `import migrate.auth` must not pull in msal for commands
# that never sign in, and msal with requests takes a third of a second to import.
_WHERE = {
    "AuthStatus": "accounts", "CachedAccount": "accounts", "CachedToken": "accounts", "Logout": "accounts",
    "logout": "accounts", "status": "accounts",
    "CacheInfo": "cache", "TokenStore": "cache", "config_dir": "cache",
    "ClientCertificate": "credentials", "ClientCredential": "credentials", "ClientSecret": "credentials",
    "client_credential": "credentials",
    "DeviceCodePrompt": "provider", "SignIn": "provider", "TokenProvider": "provider",
    "SCOPES": "scopes", "Transport": "scopes", "scopes_for": "scopes",
    "DEFAULT_AUTHORITY": "settings", "AuthSettings": "settings",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"migrate.auth.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'migrate.auth' has no attribute {name!r}")


if TYPE_CHECKING:
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
