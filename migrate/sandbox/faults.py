"""Scripted faults and the Exchange Online throttle budget.

Exchange Online sheds load in several shapes, and each one reaches a client along a different code path in
exchangelib: a SOAP fault `ErrorServerBusy` with `BackOffMilliseconds`, a per-item `ErrorServerBusy` inside an
otherwise successful CreateItem answer (exchangelib then resends the whole chunk), a bare HTTP 503 with
`Retry-After`, and HTTP 401. Tests script these here instead of hoping a real server misbehaves on cue.
"""

from __future__ import annotations

import enum
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass


class FaultKind(enum.Enum):
    SERVER_BUSY = "server_busy"  # whole request: HTTP 500 SOAP fault ErrorServerBusy (capture s02)
    ITEM_ERROR = "item_error"  # one item of a CreateItem answer fails with `code`
    HTTP_401 = "http_401"
    HTTP_503 = "http_503"
    HTTP_429 = "http_429"  # Graph's throttling answer, with Retry-After


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour, consumed by the first EWS request it matches.

    `operation` limits the fault to one EWS operation (e.g. "CreateItem"); None matches any EWS request.
    """

    kind: FaultKind
    operation: str | None = None
    back_off_ms: int = 1500
    retry_after_s: int = 5
    item_index: int = 0
    code: str = "ErrorServerBusy"

    @classmethod
    def server_busy(cls, back_off_ms: int = 1500, operation: str | None = None) -> Fault:
        return cls(FaultKind.SERVER_BUSY, operation=operation, back_off_ms=back_off_ms)

    @classmethod
    def item_busy(cls, item_index: int = 0, back_off_ms: int = 1500) -> Fault:
        return cls(FaultKind.ITEM_ERROR, operation="CreateItem", item_index=item_index, back_off_ms=back_off_ms)

    @classmethod
    def item_error(cls, code: str, item_index: int = 0) -> Fault:
        return cls(FaultKind.ITEM_ERROR, operation="CreateItem", item_index=item_index, code=code)

    @classmethod
    def http_401(cls, operation: str | None = None) -> Fault:
        return cls(FaultKind.HTTP_401, operation=operation)

    @classmethod
    def http_503(cls, retry_after_s: int = 5, operation: str | None = None) -> Fault:
        return cls(FaultKind.HTTP_503, operation=operation, retry_after_s=retry_after_s)

    @classmethod
    def http_429(cls, retry_after_s: int = 5, operation: str | None = None) -> Fault:
        """Graph only: `operation` as the sandbox logs Graph requests, e.g. "graph:POST $batch"."""
        return cls(FaultKind.HTTP_429, operation=operation, retry_after_s=retry_after_s)


class FaultPlan:
    """A thread-safe queue of scripted faults plus the optional "busy every N requests" rule."""

    def __init__(self, faults: Iterable[Fault] = (), busy_every_n_requests: int = 0, busy_back_off_ms: int = 1500):
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque(faults)
        self._every_n = busy_every_n_requests
        self._back_off_ms = busy_back_off_ms
        self._count = 0

    def add(self, *faults: Fault) -> None:
        with self._lock:
            self._queue.extend(faults)

    def clear(self) -> None:
        with self._lock:
            self._queue.clear()

    @property
    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._queue)

    def next_for(self, operation: str) -> Fault | None:
        """The fault this EWS request must suffer, if any. Scripted faults go first, in order; a fault waiting
        for another operation stays queued and does not block those behind it."""
        with self._lock:
            self._count += 1
            for fault in self._queue:
                if fault.operation is None or fault.operation == operation:
                    self._queue.remove(fault)
                    return fault
            if self._every_n > 0 and self._count % self._every_n == 0:
                return Fault.server_busy(back_off_ms=self._back_off_ms)
        return None


class ThrottleBudget:
    """Bytes imported per mailbox in a sliding window, like the ~150 MB per 5 minutes reported for Exchange
    Online imports. Answers with the back-off a busy server would suggest."""

    def __init__(self, budget_bytes: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self._budget = budget_bytes
        self._window = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._spent: dict[str, deque[tuple[float, int]]] = {}

    def charge(self, mailbox: str, size: int) -> int:
        """Record `size` bytes for `mailbox`. Returns 0 when accepted, else the back-off in milliseconds.

        A request bigger than the whole budget is accepted when the window is empty, or it could never pass."""
        now = self._clock()
        with self._lock:
            spent = self._spent.setdefault(mailbox.lower(), deque())
            while spent and spent[0][0] <= now - self._window:
                spent.popleft()
            used = sum(n for _, n in spent)
            if spent and used + size > self._budget:
                # Wait until enough of the oldest charges leave the window.
                freed, wait_until = 0, spent[-1][0] + self._window
                for at, n in spent:
                    freed += n
                    if used - freed + size <= self._budget:
                        wait_until = at + self._window
                        break
                return max(1, int((wait_until - now) * 1000))
            spent.append((now, size))
            return 0
