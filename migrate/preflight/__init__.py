"""Preflight: before anything moves, find out which transport into Microsoft 365 works for this app and mailbox.

For each of EWS, IMAP and Graph: sign in with its scopes, open the mailbox's well-known folders read-only, and
turn every refusal into its reason and the admin's fix. Then read the mailbox's limits, compare them with the
source, and choose a transport for mail, calendars and contacts (or check the one the user chose).
"""

from __future__ import annotations

from migrate.auth.scopes import Transport
from migrate.errors import UsageError
from migrate.model import ItemKind
from migrate.preflight import fixes
from migrate.preflight.checks import Reach, check
from migrate.preflight.endpoints import CARRIES
from migrate.preflight.result import KIND_WORDS, PREFERENCE, WORD_KINDS, Finding, Limits, Preflight, Problem, Status

__all__ = ["Finding", "Limits", "Preflight", "Problem", "Reach", "Status", "parse_transports", "run_preflight"]

GB = 1024 ** 3
MB = 1024 ** 2


def parse_transports(text: str) -> dict[ItemKind, Transport]:
    """`--transport graph` (each kind it can carry) or `--transport mail=imap,calendars=ews,contacts=graph`."""
    chosen: dict[ItemKind, Transport] = {}
    names = {t.value: t for t in Transport}
    for part in [p.strip().lower() for p in text.split(",") if p.strip()]:
        kind_word, _, name = part.rpartition("=")
        if name not in names:
            raise UsageError(f"unknown transport {name!r} in --transport {text!r}", hint="use ews, imap or graph")
        transport = names[name]
        if not kind_word:
            for kind in CARRIES[transport]:
                chosen.setdefault(kind, transport)
            continue
        if kind_word not in WORD_KINDS:
            raise UsageError(f"unknown kind {kind_word!r} in --transport {text!r}",
                             hint="use mail=, calendars= or contacts=")
        kind = WORD_KINDS[kind_word]
        if kind not in CARRIES[transport]:
            raise UsageError(f"{name} cannot carry {kind_word}", hint="calendars and contacts go by ews or graph")
        chosen[kind] = transport
    if not chosen:
        raise UsageError("--transport is empty", hint="e.g. --transport graph, or mail=imap,calendars=graph")
    return chosen


def run_preflight(reach: Reach, kinds: tuple[ItemKind, ...] = tuple(KIND_WORDS), *,
                  chosen: dict[ItemKind, Transport] | None = None, source_bytes: int | None = None,
                  source_largest: int | None = None) -> Preflight:
    """Check every transport `reach` offers for the kinds wanted, read the limits, and choose."""
    result = Preflight(target=reach.target, mailbox=reach.mailbox, app_only=reach.app_only,
                       source_bytes=source_bytes, source_largest=source_largest)
    for transport in (Transport.EWS, Transport.IMAP, Transport.GRAPH):
        if transport not in reach.urls:
            continue
        carried = tuple(k for k in CARRIES[transport] if k in kinds)
        if carried:
            result.findings += check(reach, transport, carried)
    if reach.mailbox and reach.graph_endpoint and result.works(Transport.GRAPH, ItemKind.MAIL):
        from migrate.preflight.limits import read_limits  # httpx: only when Graph is there to ask

        result.limits = read_limits(reach.graph_endpoint, reach.mailbox, reach.token_for(Transport.GRAPH),
                                    reach.tenant, reach.client_id, reach.app_only, reach.ca_file)
    elif reach.mailbox:
        result.limits.notes.append("limits not read: they are read through Graph, which is not available here")
    _choose(result, kinds, chosen or {})
    _compare(result)
    return result


def _choose(result: Preflight, kinds: tuple[ItemKind, ...], chosen: dict[ItemKind, Transport]) -> None:
    offered = {f.transport for f in result.findings}
    for kind in kinds:
        wanted = chosen.get(kind)
        if wanted is not None:
            result.choice[kind] = wanted
            finding = result.finding(wanted, kind)
            if finding is None:
                result.problems.append(Problem(f"{KIND_WORDS[kind]} by {wanted.value}: this target does not offer "
                                               f"{wanted.value}", ["choose another with --transport"]))
            elif finding.status is Status.REFUSED:
                result.problems.append(Problem(f"{KIND_WORDS[kind]} by {wanted.value}: {finding.reason}", finding.fix))
            continue
        usable = [t for t in PREFERENCE[kind] if t in offered and result.works(t, kind)]
        result.choice[kind] = usable[0] if usable else None
        if not usable and result.mailbox is not None and any(f.kind is kind for f in result.findings):
            refused = [f for f in result.findings if f.kind is kind and f.status is Status.REFUSED]
            fix = [line for f in refused for line in f.fix[:2]]
            result.problems.append(Problem(
                f"no transport can carry {KIND_WORDS[kind]} into {result.mailbox}: "
                + "; ".join(f"{f.transport.value}: {f.reason}" for f in refused), fix,
                blocking=kind is ItemKind.MAIL))  # without calendars the mail still moves; they are left out


def _compare(result: Preflight) -> None:
    lim = result.limits
    mailbox = result.mailbox or "<mailbox>"
    if lim.mailbox_full:
        result.problems.append(Problem(f"{mailbox} is full", fixes.quota(mailbox, (lim.quota_bytes or 50 * GB)
                                                                       * 2 / GB)))
    free = lim.free_bytes
    if free is not None and result.source_bytes is not None and result.source_bytes > free:
        needed = ((lim.used_bytes or 0) + result.source_bytes) * 1.1 / GB
        result.problems.append(Problem(
            f"{mailbox} has {free / GB:.2f} GB free of {(lim.quota_bytes or 0) / GB:.2f} GB; the move needs "
            f"{result.source_bytes / GB:.2f} GB", fixes.quota(mailbox, max(needed, 1.0))))
    if (lim.max_message_bytes is not None and result.source_largest is not None
            and result.source_largest > lim.max_message_bytes):
        result.problems.append(Problem(
            f"the largest message ({result.source_largest / MB:.1f} MB) is over what {mailbox} takes "
            f"({lim.max_message_bytes / MB:.0f} MB): larger messages are left out and listed",
            fixes.max_receive(mailbox, result.source_largest * 1.4 / MB), blocking=False))
