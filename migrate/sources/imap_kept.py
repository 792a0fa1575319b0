"""What a closed IMAP source leaves for the next one on the same account, in this process.

`run SOURCE --to TARGET` takes an inventory (to make the plan) and then moves the mail: two sources
on one account a moment apart. Without this, the run signs in again and lists every folder a second
time, which for 2,000 messages costs a quarter of a second of our CPU and as much of the server's.
So a source that closes parks its signed-in connections here for a short while, and a source that
only listed (an inventory: it read no bodies) leaves its listings too.

A listing is used once, and only for the folder opened again in the same state: the same
UIDVALIDITY, message count and UIDNEXT (no message added or expunged since), and the same
HIGHESTMODSEQ where the server keeps one (CONDSTORE: no flag changed either). Anything else, or
anything older than KEEP_SECONDS, is listed again as before. A parked connection is used only by a
source with the same secret (compared as a digest: a revoked token or a changed password signs in
anew and hears the server's answer), and only if the server has not closed it meanwhile; what is
still parked at exit is signed out.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import threading
import time
from dataclasses import dataclass, field

from migrate.imapwire import FolderState, Wire
from migrate.model import MessageRef

KEEP_SECONDS = 60.0
KEPT_REFS = 10_000  # listed messages kept per account (about 1 KB each): memory stays flat beyond
PARKED = 2  # connections kept per account

# host, port, user, implicit TLS, sign-in method, insecure, CA file: one signed-in identity
Account = tuple[str, int, str, bool, str, bool, str]


@dataclass
class _Shelf:
    # (parked at, digest of the secret it signed in with, connection)
    wires: list[tuple[float, bytes, Wire]] = field(default_factory=list)
    listings: dict[str, tuple[float, FolderState, list[MessageRef]]] = field(default_factory=dict)


_shelves: dict[Account, _Shelf] = {}
_lock = threading.Lock()


def _fresh(at: float) -> bool:
    return time.monotonic() - at < KEEP_SECONDS


def _sign_out_wire(wire: Wire) -> None:
    with contextlib.suppress(Exception):  # going away either way
        wire.logout()


def credential(secret: str) -> bytes:
    """What a parked connection keeps of the secret it signed in with: a digest, never the secret."""
    return hashlib.sha256(secret.encode("utf-8")).digest()


def park_wire(account: Account, signed_in_with: bytes, wire: Wire) -> None:
    """Keep a signed-in wire with no command under way for the next source on the account."""
    with _lock:
        shelf = _shelves.setdefault(account, _Shelf())
        if len(shelf.wires) < PARKED:
            shelf.wires.append((time.monotonic(), signed_in_with, wire))
            return
    _sign_out_wire(wire)


def take_wire(account: Account, signed_in_with: bytes) -> Wire | None:
    while True:
        with _lock:
            shelf = _shelves.get(account)
            found = [i for i, (_, digest, _) in enumerate(shelf.wires) if digest == signed_in_with] if shelf else []
            if shelf is None or not found:
                return None
            at, _, wire = shelf.wires.pop(found[-1])
        if _fresh(at) and not wire.closed_by_server():
            return wire
        wire.close()
        forget(account)  # the server went away: what it listed may not be what it holds now


def leave_listings(account: Account, listings: dict[str, tuple[FolderState, list[MessageRef]]]) -> None:
    """The complete listings of a source that only listed, within KEPT_REFS messages in all."""
    now = time.monotonic()
    with _lock:
        shelf = _shelves.setdefault(account, _Shelf())
        room = KEPT_REFS - sum(len(refs) for _, _, refs in shelf.listings.values())
        for locator, (state, refs) in listings.items():
            if len(refs) <= room:
                shelf.listings[locator] = (now, state, refs)
                room -= len(refs)


def take_listing(account: Account, locator: str, state: FolderState) -> list[MessageRef] | None:
    """A folder's listing, once, if the folder is in the state it was listed in."""
    if state.uidnext is None:
        return None  # without UIDNEXT an added message and an expunged one could cancel out
    with _lock:
        shelf = _shelves.get(account)
        kept = shelf.listings.pop(locator, None) if shelf is not None else None
    if kept is None:
        return None
    at, listed_in, refs = kept
    return refs if _fresh(at) and listed_in == state else None


def forget(account: Account) -> None:
    """Drop an account's listings."""
    with _lock:
        shelf = _shelves.get(account)
        if shelf is not None:
            shelf.listings.clear()


@atexit.register
def _sign_out_all() -> None:
    """At exit nobody waits for the server's goodbye: each parked wire says LOGOUT and hangs up."""
    with _lock:
        shelves = list(_shelves.values())
        _shelves.clear()
    for shelf in shelves:
        for _, _, wire in shelf.wires:
            wire.leave()
