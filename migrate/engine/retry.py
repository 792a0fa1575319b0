"""How long to wait before an upload the target refused for now is tried again, and how often.

Only a passing failure (Failure.RETRY: throttling, a dropped connection) is tried again. The wait
doubles at each try; an answer that names its wait (ServerBusy's BackOffMilliseconds, Retry-After)
is waited exactly that long, up to a ceiling: the service knows when its budget frees, a longer wait
only wastes it, and a run must not sleep for hours on one bad answer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5  # tries per message, the first included
    first_wait: float = 2.0  # doubled at each try
    longest_wait: float = 900.0  # a server's own request (Exchange IMAP: about 300 s) is honoured up to this
    # Answers that name a wait (ServerBusy, 429 with Retry-After) are the service pacing the mailbox, not a
    # fault of the message: they are waited out this many times on top of `attempts`, so a message that keeps
    # meeting a full budget is not given up after five unlucky turns while fresh batches take the room.
    throttled_attempts: int = 40

    def wait(self, attempt: int, asked: float | None) -> float:
        """The wait after try number `attempt` (from 1) failed, the server having `asked` for so many seconds."""
        if asked:
            return min(asked, self.longest_wait)
        return min(self.first_wait * 2 ** (attempt - 1), self.longest_wait)
