"""Talking to Microsoft Graph for one mailbox: tokens, the 4-request limit, throttling answers, `$batch`, and the
upload budget (DOMAIN.md "Limits": per app and mailbox 4 concurrent requests, 150 MB uploaded per 5 minutes,
429/503 with Retry-After, 20 requests per `$batch`).

The limits are the service's per mailbox, not per connection: the engine opens one target per upload thread,
so the request gate and the budget are shared by every client of the same mailbox in this process.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from migrate.errors import AuthError, ProtocolError, Retryable, TLSError, UnreachableError
from migrate.targets.budget import UPLOAD_BUDGET_BYTES, UPLOAD_BUDGET_WINDOW_S, Pacing, Send, UploadBudget

__all__ = ["UPLOAD_BUDGET_BYTES", "UPLOAD_BUDGET_WINDOW_S", "Pacing", "Send", "UploadBudget"]

log = logging.getLogger(__name__)

MB = 1024 * 1024
GRAPH_CONCURRENCY = 4
BATCH_LIMIT = 20
DEFAULT_RETRY_AFTER = 30.0  # seconds, when a 429/503 names none
READ_RETRIES = 5


class Throttled(Retryable):
    """Graph answered 429 or 503: wait `wait` seconds (its Retry-After) before the next try."""


class GraphError(ProtocolError):
    """A Graph error answer: `status` and Graph's `code` (ErrorItemNotFound, ErrorInvalidRequest, ...)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"Graph answered {status} {code}: {message}")
        self.status, self.code, self.detail = status, code, message


@dataclass
class _Mailbox:
    gate: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(GRAPH_CONCURRENCY))
    budget: UploadBudget = field(default_factory=UploadBudget)


_MAILBOXES: dict[str, _Mailbox] = {}
_MAILBOXES_LOCK = threading.Lock()


def mailbox_limits(endpoint: str, mailbox: str) -> _Mailbox:
    """The request gate and upload budget of one mailbox at one Graph endpoint, shared in this process."""
    key = f"{endpoint.rstrip('/').lower()}|{mailbox.lower()}"
    with _MAILBOXES_LOCK:
        return _MAILBOXES.setdefault(key, _Mailbox())


def set_upload_budget(endpoint: str, mailbox: str, budget: UploadBudget) -> None:
    """Use `budget` for this mailbox (tests and benchmarks: a smaller budget, a fake clock)."""
    mailbox_limits(endpoint, mailbox).budget = budget


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("Retry-After", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return DEFAULT_RETRY_AFTER


def _error(status: int, body: Any) -> tuple[str, str]:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or status), str(error.get("message") or "")
    return str(status), ""


class GraphClient:
    """JSON over HTTPS (HTTP/2 where the server offers it) to `{endpoint}/users/{mailbox}`."""

    def __init__(self, endpoint: str, mailbox: str, token: Callable[[], str], renew: Callable[[], str] | None,
                 ca_file: Path | None = None, insecure: bool = False, timeout: float = 120.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.mailbox = mailbox
        self._token = token
        self._renew = renew or token
        self._current: str | None = None
        verify: ssl.SSLContext | bool = True
        if insecure:
            verify = False
        elif ca_file is not None:
            verify = ssl.create_default_context(cafile=str(ca_file))
        # trust_env=False: a proxy or CA bundle from the environment must not reroute a mailbox's traffic.
        self._http = httpx.Client(http2=True, verify=verify, timeout=timeout, trust_env=False,
                                  headers={"Accept": "application/json"})
        self.limits = mailbox_limits(self.endpoint, mailbox)

    @property
    def user_path(self) -> str:
        return f"/users/{self.mailbox}"

    def close(self) -> None:
        self._http.close()

    def clean(self, text: str) -> str:
        return text.replace(self._current, "<token>") if self._current else text

    @contextmanager
    def _gate(self) -> Iterator[None]:
        with self.limits.gate:
            yield

    def _send(self, method: str, url: str, body: bytes | None, headers: dict[str, str], auth: bool) -> httpx.Response:
        if auth:
            if self._current is None:
                self._current = self._token()
            headers = {**headers, "Authorization": f"Bearer {self._current}"}
        try:
            with self._gate():
                return self._http.request(method, url, content=body, headers=headers)
        except httpx.ConnectError as exc:
            if isinstance(exc.__cause__, ssl.SSLError) or "CERTIFICATE" in str(exc).upper():
                raise TLSError(f"TLS with {self.endpoint} failed: certificate not trusted or TLS refused",
                               hint="give the CA with --target-ca-file") from None
            raise UnreachableError(f"cannot reach {self.endpoint}") from None
        except httpx.TimeoutException:
            raise Retryable(f"{self.endpoint} did not answer in time", wait=5.0) from None
        except httpx.TransportError as exc:
            raise Retryable(f"connection to {self.endpoint} broke ({type(exc).__name__})", wait=2.0) from None

    def request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json",
                url: str | None = None, auth: bool = True, extra: dict[str, str] | None = None,
                raw: bool = False, paced: bool = False) -> Any:
        """One Graph call; the answer's JSON (None when empty). 401 renews the token once; 429/503 raise
        Throttled with the wait the service asked for; other errors raise GraphError.
        `paced`: the body counts against the mailbox's upload budget (it creates items), from the answer on."""
        headers = {"Content-Type": content_type, **(extra or {})} if body is not None else dict(extra or {})
        target = url or f"{self.endpoint}{path}"
        for attempt in range(READ_RETRIES + 1):
            send = self.limits.budget.reserve(len(body)) if paced and body else None
            counted = True  # a request that broke on the way may have been counted: assume it was
            try:
                response = self._send(method, target, body, headers, auth)
                if response.status_code == 401 and auth:
                    log.info("Graph refused the token for %s; asking for a new one", self.mailbox)
                    self._current = self._renew()
                    response = self._send(method, target, body, headers, auth)
                counted = response.status_code not in (401, 429, 503)
            finally:
                if send is not None:
                    self.limits.budget.settle(send, counted)
            try:
                return self._answer(response, raw)
            except Throttled as exc:
                # A read has no item to hand back as RETRY (folders, dedupe listings): wait here, a few times.
                if method != "GET" or attempt == READ_RETRIES:
                    raise
                log.info("Graph throttled a read for %s; waiting %.0f s", self.mailbox, exc.wait)
                time.sleep(min(exc.wait, 300.0))
        raise AssertionError("unreachable")

    def _answer(self, response: httpx.Response, raw: bool = False) -> Any:
        status = response.status_code
        try:
            data = response.json() if response.content and (status >= 400 or not raw) else None
        except ValueError:
            data = None
        if status in (429, 503):
            raise Throttled(f"{self.mailbox}: Graph is throttling ({status})", wait=_retry_after(response))
        if status == 401:
            raise AuthError(f"{self.mailbox}: Microsoft Graph refused the token",
                            hint="check the app's Graph permissions and admin consent: o365-migrate preflight")
        if status >= 400:
            code, message = _error(status, data)
            raise GraphError(status, code, self.clean(message))
        return response.content if raw else data

    def json(self, method: str, path: str, payload: Any = None) -> Any:
        import json

        body = None if payload is None else json.dumps(payload, ensure_ascii=False).encode()
        return self.request(method, path, body)

    def upload(self, method: str, path: str, payload: Any) -> Any:
        """A call whose body counts against the upload budget (message and attachment creation)."""
        import json

        body = json.dumps(payload, ensure_ascii=False).encode()
        return self.request(method, path, body, paced=True)

    def batch(self, calls: Sequence[dict[str, Any]], paced: bool = False) -> list[dict[str, Any]]:
        """JSON `$batch` of at most 20 calls per request; answers in the calls' order (each with its status).
        `paced`: the request's bytes count against the upload budget (it creates items)."""
        answers: list[dict[str, Any]] = []
        for start in range(0, len(calls), BATCH_LIMIT):
            chunk = [dict(call, id=str(n)) for n, call in enumerate(calls[start:start + BATCH_LIMIT])]
            if paced:
                data = self.upload("POST", "/$batch", {"requests": chunk}) or {}
            else:
                data = self.json("POST", "/$batch", {"requests": chunk}) or {}
            by_id = {str(r.get("id")): r for r in data.get("responses", [])}
            for n in range(len(chunk)):
                answers.append(by_id.get(str(n), {"status": 500, "body": {"error": {"code": "NoAnswer"}}}))
        return answers
