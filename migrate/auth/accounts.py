"""What the token cache holds, for `auth status`, and forgetting it, for `auth logout`.

Both read the cache only; neither talks to the network. Nothing here copies a token's value out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import msal

from migrate.auth.cache import CacheInfo, TokenStore
from migrate.auth.scopes import transports_of
from migrate.errors import UserError

Kind = msal.TokenCache.CredentialType


@dataclass(frozen=True)
class CachedToken:
    client_id: str
    tenant: str  # the directory id Entra issued it in
    authority_host: str
    transports: tuple[str, ...]
    scopes: tuple[str, ...]
    expires_at: dt.datetime

    @property
    def expired(self) -> bool:
        return self.expires_at <= dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class CachedAccount:
    address: str
    tenant: str
    authority_host: str
    apps: tuple[str, ...]  # client ids holding a refresh token: they can renew without a new sign-in
    tokens: tuple[CachedToken, ...]


@dataclass(frozen=True)
class AuthStatus:
    cache: CacheInfo
    accounts: tuple[CachedAccount, ...]
    app_tokens: tuple[CachedToken, ...]  # app-only sign-ins (client secret or certificate)


@dataclass(frozen=True)
class Logout:
    addresses: tuple[str, ...]
    app_tokens: int
    cache: CacheInfo


def _token(entry: dict[str, Any]) -> CachedToken:
    scopes = tuple(str(entry.get("target", "")).split())
    return CachedToken(
        client_id=str(entry.get("client_id", "")),
        tenant=str(entry.get("realm", "")),
        authority_host=str(entry.get("environment", "")),
        transports=tuple(t.value for t in transports_of(list(scopes))),
        scopes=scopes,
        expires_at=dt.datetime.fromtimestamp(int(entry.get("expires_on", 0)), dt.UTC),
    )


def status(store: TokenStore | None = None) -> AuthStatus:
    store = store or TokenStore()
    cache = store.cache
    tokens = list(cache.search(Kind.ACCESS_TOKEN))
    refresh = list(cache.search(Kind.REFRESH_TOKEN))
    accounts: dict[str, CachedAccount] = {}
    for entry in cache.search(Kind.ACCOUNT):
        home = entry.get("home_account_id")
        if home in accounts:
            continue
        mine = tuple(sorted((_token(t) for t in tokens if t.get("home_account_id") == home),
                            key=lambda t: (t.client_id, t.transports, t.expires_at)))
        accounts[home] = CachedAccount(
            address=str(entry.get("username", "")),
            tenant=str(entry.get("realm", "")),
            authority_host=str(entry.get("environment", "")),
            apps=tuple(sorted({str(r.get("client_id")) for r in refresh if r.get("home_account_id") == home})),
            tokens=mine,
        )
    app_tokens = tuple(sorted((_token(t) for t in tokens if not t.get("home_account_id")),
                              key=lambda t: (t.client_id, t.tenant, t.scopes)))
    return AuthStatus(cache=store.info(), accounts=tuple(sorted(accounts.values(), key=lambda a: a.address)),
                      app_tokens=app_tokens)


def _remove(store: TokenStore, entries: Iterable[tuple[Any, dict[str, Any]]]) -> None:
    cache = store.cache
    removers = {Kind.ACCESS_TOKEN: cache.remove_at, Kind.REFRESH_TOKEN: cache.remove_rt,
                Kind.ID_TOKEN: cache.remove_idt, Kind.ACCOUNT: cache.remove_account}
    for kind, entry in entries:
        removers[kind](entry)


def logout(address: str | None, store: TokenStore | None = None) -> Logout:
    """Forget one user's sign-ins (every app and tenant), or, with None, everything in the cache."""
    store = store or TokenStore()
    cache = store.cache
    accounts = list(cache.search(Kind.ACCOUNT))
    if address is not None:
        accounts = [a for a in accounts if str(a.get("username", "")).lower() == address.lower()]
        if not accounts:
            raise UserError(f"{address} is not signed in here", hint="see who is: o365-migrate auth status")
    homes = {a.get("home_account_id") for a in accounts}
    doomed: list[tuple[Any, dict[str, Any]]] = []
    app_tokens = 0
    for kind in (Kind.ACCESS_TOKEN, Kind.REFRESH_TOKEN, Kind.ID_TOKEN):
        for entry in cache.search(kind):
            home = entry.get("home_account_id")
            if home in homes or (address is None and not home):
                doomed.append((kind, entry))
                app_tokens += int(kind == Kind.ACCESS_TOKEN and not home)
    doomed += [(Kind.ACCOUNT, a) for a in accounts]
    _remove(store, doomed)
    names = tuple(sorted({str(a.get("username", "")) for a in accounts}))
    return Logout(addresses=names, app_tokens=app_tokens, cache=store.info())
