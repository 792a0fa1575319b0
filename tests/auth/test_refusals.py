"""Entra's refusals as our errors (from the shapes msal returns), and the scope table per transport."""

from __future__ import annotations

import pytest

from migrate.auth import AuthSettings, Transport, client_credential, scopes_for
from migrate.auth.refusals import first_sentence, refusal
from migrate.auth.scopes import transports_of
from migrate.errors import AuthError, Retryable, UsageError

SETTINGS = AuthSettings(Transport.IMAP, "contoso.onmicrosoft.com", "3f2a-app")


def _entra(error: str, code: int, text: str) -> dict[str, object]:
    return {"error": error, "error_codes": [code],
            "error_description": f"AADSTS{code}: {text} Trace ID: 1b2c Correlation ID: 3d4e Timestamp: 2026-11-29"}


def test_missing_consent_points_to_the_admin_setup() -> None:
    err = refusal(_entra("invalid_grant", 65001, "The user or administrator has not consented to use the "
                                                 "application with ID '3f2a-app'. Send an interactive request."),
                  SETTINGS)
    assert isinstance(err, AuthError)
    assert err.message == "app 3f2a-app has no consent for imap in tenant 'contoso.onmicrosoft.com'"
    assert err.hint is not None and "admin consent" in err.hint and "docs/admin-setup.md" in err.hint


def test_declined_and_expired_device_codes() -> None:
    declined = refusal({"error": "authorization_declined", "error_description": "The end user denied."}, SETTINGS)
    assert declined.message == "the sign-in was declined in the browser"
    expired = refusal({"error": "expired_token"}, SETTINGS)
    assert "expired" in expired.message
    for err in (declined, expired):
        assert err.hint is not None and err.hint.startswith("run: o365-migrate auth login --transport imap")


def test_expired_refresh_token_names_the_account_and_the_command() -> None:
    err = refusal(_entra("invalid_grant", 700082, "The refresh token has expired due to inactivity."), SETTINGS,
                  account="anna@contoso.com")
    assert err.message == "the sign-in of anna@contoso.com has expired or was revoked"
    assert err.hint == ("run: o365-migrate auth login --transport imap --tenant contoso.onmicrosoft.com "
                        "--client-id 3f2a-app")


def test_unknown_refusals_keep_one_scrubbed_sentence() -> None:
    secret = "Zq8~leaked-secret"
    err = refusal(_entra("weird_error", 12345, f"Something odd about {secret}.\nSecond line. Third."), SETTINGS,
                  secrets=[secret])
    line = err.one_line()
    assert line.startswith("sign-in refused: weird_error (AADSTS12345): Something odd about ***.")
    assert secret not in line and "\n" not in line and "Trace ID" not in line and "Second" not in line


def test_conditional_access_wrong_scope_and_busy_service() -> None:
    assert "Conditional Access" in refusal(_entra("invalid_grant", 53003, "Blocked by CA."), SETTINGS).message
    assert isinstance(refusal(_entra("invalid_scope", 1002012, "Bad scope."), SETTINGS), UsageError)
    busy = refusal({"error": "temporarily_unavailable"}, SETTINGS)
    assert isinstance(busy, Retryable) and busy.wait > 0


def test_first_sentence() -> None:
    assert first_sentence("AADSTS50034: The user account x does not exist. More. Trace ID: 9") == (
        "The user account x does not exist.")


@pytest.mark.parametrize(("transport", "delegated", "app_only"), [
    (Transport.EWS, ["https://outlook.office365.com/EWS.AccessAsUser.All"], ["https://outlook.office365.com/.default"]),
    (Transport.IMAP, ["https://outlook.office.com/IMAP.AccessAsUser.All"], ["https://outlook.office365.com/.default"]),
    (Transport.GRAPH, ["Mail.ReadWrite", "Calendars.ReadWrite", "Contacts.ReadWrite"],
     ["https://graph.microsoft.com/.default"]),
])
def test_scopes_per_transport(transport: Transport, delegated: list[str], app_only: list[str]) -> None:
    assert scopes_for(transport, app_only=False) == delegated
    assert scopes_for(transport, app_only=True) == app_only
    assert transport in transports_of(delegated)
    assert transport in transports_of(app_only)
    delegated_settings = AuthSettings(transport, "contoso.onmicrosoft.com", "app")
    assert delegated_settings.scopes == delegated
    app_settings = AuthSettings(transport, "contoso.onmicrosoft.com", "app",
                                credential=client_credential("SECRET_VAR", None, None))
    assert app_settings.scopes == app_only


def test_graph_scopes_as_entra_echoes_them() -> None:
    assert transports_of("Mail.ReadWrite Calendars.ReadWrite Contacts.ReadWrite profile openid") == [Transport.GRAPH]
    assert transports_of("https://outlook.office365.com/.default") == [Transport.EWS, Transport.IMAP]
