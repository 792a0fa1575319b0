"""Exchange Online's upload budget per mailbox (DOMAIN.md "Limits": about 150 MB per 5 minutes), paced on the
client so the service never has to refuse: Graph's client (graph_http) and the EWS target share this pacer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

MB = 1024 * 1024
UPLOAD_BUDGET_BYTES = 150 * MB
UPLOAD_BUDGET_WINDOW_S = 300.0


@dataclass
class Pacing:
    """One decision of the upload budget: how long a send of `size` bytes waited, and why."""

    size: int
    waited: float
    used_before: int  # bytes counted in the window when the send asked


@dataclass(eq=False)
class Send:
    """Bytes counted in the window: from `at`, or, while `landed` is false, until the service has answered."""

    at: float
    size: int
    landed: bool = True
    waited: float = 0.0  # seconds the sender waited for room


class UploadBudget:
    """Bytes sent per mailbox over a sliding window, kept under the service's budget so it never answers 429.

    A token bucket that starts full lets twice the budget through in the first window (the full bucket plus
    its refill), which a service counting a sliding window refuses; so this counts the same window the
    service does and waits until the oldest sends leave it.

    The service counts a request when it arrives, which is after the client asked to send it (a new connection's
    TLS handshake, the body on the wire, four requests in parallel) and before its answer. A send counted from
    the moment it was asked leaves the client's window before it leaves the service's, and the next send is
    refused at every window's turn. So `reserve` holds the bytes in the window while the request is under way,
    and `settle` counts them from the answer: never earlier than the service does. A request the service refused
    (429/503) was not counted there and leaves the window at once.

    Senders take turns, so a large send (an upload-session chunk) is not passed by small ones forever.
    `sleep` and `clock` are injectable so tests assert the decisions (`decisions`), not wall time.
    """

    POLL_S = 0.2  # the room needed is held by requests still under way: look again this soon

    def __init__(self, budget_bytes: int = UPLOAD_BUDGET_BYTES, window_s: float = UPLOAD_BUDGET_WINDOW_S,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = budget_bytes
        self.window = window_s
        self._clock = clock
        self._sleep = sleep
        self._turn = threading.Lock()  # one sender waits for room at a time
        self._lock = threading.Lock()  # the window itself; never held while sleeping
        self._sent: list[Send] = []
        self.decisions: list[Pacing] = []

    def _used(self, now: float) -> int:
        self._sent = [s for s in self._sent if not s.landed or s.at > now - self.window]
        return sum(s.size for s in self._sent)

    def _wait_for(self, now: float, size: int) -> float:
        used = self._used(now)
        if not self._sent or used + size <= self.budget:
            return 0.0  # a send larger than the whole budget goes alone into an empty window
        freed = 0
        for send in sorted((s for s in self._sent if s.landed), key=lambda s: s.at):
            freed += send.size
            if used - freed + size <= self.budget:
                return send.at + self.window - now
        return self.POLL_S  # only the answers of requests under way can make room

    def reserve(self, size: int) -> Send:
        """Wait until `size` bytes fit in the window and hold them there until `settle`."""
        waited = 0.0
        with self._turn:
            with self._lock:
                used_before = self._used(self._clock())
            while True:
                with self._lock:
                    now = self._clock()
                    wait = self._wait_for(now, size)
                    if wait <= 0:
                        send = Send(now, size, landed=False, waited=waited)
                        self._sent.append(send)
                        break
                # A small margin: the service's clock and ours start the window at slightly different moments.
                pause = wait + 0.05
                self._sleep(pause)
                waited += pause
            self.decisions.append(Pacing(size, waited, used_before))
        if waited:
            log.info("paced %d bytes for %.1f s to stay within the upload budget", size, waited)
        return send

    def settle(self, send: Send, counted: bool = True) -> None:
        """The service answered: count the bytes from now, or drop them when it refused the request uncounted."""
        with self._lock:
            if counted:
                send.at, send.landed = max(send.at, self._clock()), True
            else:
                self._sent = [s for s in self._sent if s is not send]

    def take(self, size: int) -> float:
        """Wait until `size` bytes fit in the window and count them as sent now; returns the seconds waited.
        (A caller that cannot tell when the service answered; `reserve` and `settle` are exact.)"""
        send = self.reserve(size)
        self.settle(send)
        return send.waited


_BUDGETS: dict[str, UploadBudget] = {}
_BUDGETS_LOCK = threading.Lock()


def _key(endpoint: str, mailbox: str) -> str:
    return f"{endpoint.rstrip('/').lower()}|{mailbox.lower()}"


def mailbox_budget(endpoint: str, mailbox: str, default: bool) -> UploadBudget | None:
    """The budget shared by every client of this mailbox at this endpoint in this process: Exchange Online's
    when `default` (an Exchange Online endpoint), else only one a test or bench set (an on-premises server
    publishes none)."""
    with _BUDGETS_LOCK:
        found = _BUDGETS.get(_key(endpoint, mailbox))
        if found is None and default:
            found = _BUDGETS.setdefault(_key(endpoint, mailbox), UploadBudget())
        return found


def set_mailbox_budget(endpoint: str, mailbox: str, budget: UploadBudget) -> None:
    """Use `budget` for this mailbox at this endpoint (tests and benchmarks: a smaller budget, a fake clock)."""
    with _BUDGETS_LOCK:
        _BUDGETS[_key(endpoint, mailbox)] = budget
