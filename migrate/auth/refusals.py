"""Entra ID's refusals and network failures, turned into our error classes with one line and a next step.

msal answers refusals with a dict (`error`, `error_codes`, `error_description`) and lets network failures
escape as requests exceptions; both meet the user here. Messages name tenants, apps and accounts, never a
token or a secret: descriptions from the service are cut to their first sentence and scrubbed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import requests

from migrate.auth.settings import AuthSettings
from migrate.errors import AuthError, MigrateError, Retryable, TLSError, UnreachableError, UsageError

SETUP_DOC = "docs/admin-setup.md"
_AADSTS = re.compile(r"AADSTS(\d+)")
# Refresh-token failures that only a new interactive sign-in cures.
_SIGN_IN_AGAIN = frozenset({50173, 50076, 50078, 50079, 50089, 50132, 54005, 70008, 70043, 700082, 700084})


def _codes(result: Mapping[str, Any]) -> list[int]:
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    return codes or [int(c) for c in _AADSTS.findall(str(result.get("error_description", "")))]


def first_sentence(text: str, secrets: Iterable[str] = ()) -> str:
    """The service's explanation, one line, without trace ids or anything secret."""
    text = _AADSTS.sub("", text, count=1).lstrip(": ").split(" Trace ID:")[0]
    text = " ".join(text.split())
    head, dot, _ = text.partition(". ")
    text = head + ("." if dot else "")
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:300]


def refusal(result: Mapping[str, Any], settings: AuthSettings, *, account: str | None = None,
            secrets: Iterable[str] = ()) -> MigrateError:
    """Our error for an msal result that holds an `error`."""
    error = str(result.get("error", ""))
    codes = set(_codes(result))
    login = settings.login_command()
    who = account or "the signed-in user"

    if 90002 in codes or error == "invalid_tenant":
        return AuthError(f"tenant {settings.tenant!r} was not found at {settings.authority}",
                         hint="check --tenant: the tenant's domain (contoso.onmicrosoft.com) or its directory id")
    if 700016 in codes:
        return AuthError(f"there is no application {settings.client_id} in tenant {settings.tenant!r}",
                         hint="check --client-id (the app registration's Application (client) ID) and --tenant; "
                              f"see {SETUP_DOC}")
    if codes & {7000215, 7000222}:
        expired = "has expired" if 7000222 in codes else "was refused"
        return AuthError(f"the client secret for app {settings.client_id} {expired}",
                         hint="use the secret's Value, not its Secret ID, from Certificates & secrets, "
                              "and check that it has not expired")
    if codes & {700027, 700024, 700021, 700023, 50027}:
        return AuthError(f"the certificate for app {settings.client_id} was refused",
                         hint="upload this certificate (its .cer/.pem part) to the app registration under "
                              "Certificates & secrets, and check the thumbprint `auth login` showed")
    if 65001 in codes or error == "consent_required":
        return AuthError(f"app {settings.client_id} has no consent for {settings.transport.value} in tenant "
                         f"{settings.tenant!r}",
                         hint=f"an administrator must grant admin consent for its API permissions; see {SETUP_DOC}")
    if 7000218 in codes and not settings.app_only:
        return AuthError(f"app {settings.client_id} does not allow device code sign-in",
                         hint='set "Allow public client flows" to Yes under Authentication in the app '
                              f"registration, or sign in with --app-only; see {SETUP_DOC}")
    if 53003 in codes:
        return AuthError(f"a Conditional Access policy in tenant {settings.tenant!r} blocked the sign-in",
                         hint="ask the tenant's administrator to allow this app for the migration")
    if 50034 in codes:
        return AuthError(f"{who} does not exist in tenant {settings.tenant!r}", hint=f"run: {login}")
    if error in ("expired_token", "code_expired") or 70020 in codes:
        return AuthError("the sign-in code expired before it was entered",
                         hint=f"run: {login} and enter the code within the time it shows")
    if error == "authorization_declined":
        return AuthError("the sign-in was declined in the browser", hint=f"run: {login} and accept the request")
    if error == "bad_verification_code":
        return AuthError("the sign-in code was not recognised", hint=f"run: {login}")
    if error in ("invalid_grant", "interaction_required") or codes & _SIGN_IN_AGAIN:
        return AuthError(f"the sign-in of {who} has expired or was revoked", hint=f"run: {login}")
    if error == "invalid_scope" or 1002012 in codes:
        return UsageError(f"the scopes for {settings.transport.value} were refused: "
                          f"{first_sentence(str(result.get('error_description', '')), secrets)}",
                          hint="check --authority and --transport")
    if error in ("temporarily_unavailable", "server_error"):
        return Retryable(f"the sign-in service at {settings.authority_host} is temporarily unavailable", wait=30.0,
                         hint="try again in a minute")
    code = f" (AADSTS{min(codes)})" if codes else ""
    why = first_sentence(str(result.get("error_description", "")), secrets)
    return AuthError(f"sign-in refused: {error or 'unknown error'}{code}{': ' + why if why else ''}",
                     hint=f"see {SETUP_DOC}, or run again with --debug")


def _discovery_failure(exc: ValueError, settings: AuthSettings) -> MigrateError | None:
    """msal's ValueError when the tenant's OpenID configuration cannot be had; None for any other ValueError."""
    text = str(exc)
    if "Unable to get authority configuration" not in text and "OIDC Discovery failed" not in text:
        return None
    detail = f"{text} {exc.__context__ or ''}"
    if "AADSTS90002" in detail or "invalid_tenant" in detail:
        return refusal({"error": "invalid_tenant"}, settings)
    return AuthError(f"{settings.authority} gave no sign-in configuration for tenant {settings.tenant!r}",
                     hint="check --authority and --tenant")


@contextmanager
def reaching(settings: AuthSettings) -> Iterator[None]:
    """Map what escapes msal while it talks to the authority."""
    host = settings.authority_host
    try:
        yield
    except requests.exceptions.SSLError:
        hint = ("check that --ca-file is the CA that signed it" if settings.ca_file
                else "if a proxy inspects TLS here, give its CA with --ca-file")
        raise TLSError(f"the TLS certificate of the sign-in service at {host} is not trusted", hint=hint) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout):
        raise UnreachableError(f"cannot reach the sign-in service at {host}",
                               hint="check the network, any proxy, and --authority") from None
    except requests.exceptions.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else "?"
        raise UnreachableError(f"the sign-in service at {host} answered HTTP {status}",
                               hint="try again later; check --authority") from None
    except ValueError as exc:
        mapped = _discovery_failure(exc, settings)
        if mapped is None:
            raise
        raise mapped from None
