"""Transport-neutral request and response records shared by the OAuth authority and the EWS endpoint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def form(self) -> dict[str, str]:
        """An x-www-form-urlencoded body (or query string for GET), one value per field."""
        text = self.body.decode("utf-8", "replace") if self.method == "POST" else self.query
        return {k: v[0] for k, v in parse_qs(text, keep_blank_values=True).items()}

    def bearer(self) -> str | None:
        scheme, _, value = self.header("authorization").partition(" ")
        return value.strip() or None if scheme.lower() == "bearer" else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = "application/json; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    # What the request log records about the request; filled in by whoever answered it.
    operation: str = ""
    mailbox: str | None = None
    client_id: str | None = None


def json_response(status: int, payload: object, **log: str | None) -> Response:
    response = Response(status, json.dumps(payload).encode(), headers=[("Cache-Control", "no-store, no-cache")])
    response.operation = log.get("operation") or ""
    response.client_id = log.get("client_id")
    response.mailbox = log.get("mailbox")
    return response
