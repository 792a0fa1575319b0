"""A Microsoft 365 mailbox reached by the transport preflight chose for each kind of item.

URL: `m365://mailbox@domain[?ews=URL][&graph=URL][&imap=host:port]` (migrate.preflight.endpoints). The routes
come in TargetOptions.extra `routes` ("mail=imap,calendars=ews,contacts=graph", as the plan records them) and
the tokens per transport in TargetOptions.tokens. Each folder goes to the target of its kind; a folder handle
carries its kind, so uploads, listings and reads follow the same route.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import SplitResult

from migrate.auth.scopes import Transport
from migrate.errors import UsageError
from migrate.model import Folder, ItemKind
from migrate.preflight.endpoints import CARRIES, parse_m365
from migrate.preflight.result import KIND_WORDS, WORD_KINDS
from migrate.targets.base import (
    ExistingMessage,
    Target,
    TargetCapabilities,
    TargetFolder,
    TargetOptions,
    UploadItem,
    UploadResult,
    open_target,
    register,
)


def routes_text(routes: dict[ItemKind, Transport]) -> str:
    return ",".join(f"{KIND_WORDS[k]}={t.value}" for k, t in routes.items())


def parse_routes(text: str) -> dict[ItemKind, Transport]:
    routes: dict[ItemKind, Transport] = {}
    for part in [p for p in text.split(",") if p]:
        word, _, name = part.partition("=")
        kind, transport = WORD_KINDS[word], Transport(name)
        if kind not in CARRIES[transport]:
            raise UsageError(f"{name} cannot carry {word}", hint="calendars and contacts go by ews or graph")
        routes[kind] = transport
    return routes


class RoutedTarget(Target):
    def __init__(self, url: str, routes: dict[ItemKind, Transport], targets: dict[Transport, Target]) -> None:
        self.url = url
        self._routes = routes
        self._targets = targets
        mail = targets.get(routes.get(ItemKind.MAIL, Transport.GRAPH)) or next(iter(targets.values()))
        used = list(targets.values())
        self.capabilities = TargetCapabilities(
            keeps_raw_bytes=mail.capabilities.keeps_raw_bytes,
            keeps_internal_date=mail.capabilities.keeps_internal_date,
            calendars=ItemKind.EVENT in routes, contacts=ItemKind.CONTACT in routes,
            max_message_bytes=mail.capabilities.max_message_bytes,
            max_batch_bytes=min(t.capabilities.max_batch_bytes for t in used),
            max_batch_items=min(t.capabilities.max_batch_items for t in used),
            concurrency=min(t.capabilities.concurrency for t in used),
        )

    def _for(self, kind: ItemKind) -> Target:
        transport = self._routes.get(kind)
        if transport is None:
            raise UsageError(f"no transport was chosen for {KIND_WORDS[kind]} into {self.url}",
                             hint="run o365-migrate preflight --to " + self.url + ", or give --transport")
        return self._targets[transport]

    def ensure_folder(self, path: tuple[str, ...], source: Folder | None = None) -> TargetFolder:
        return self._for(source.kind if source is not None else ItemKind.MAIL).ensure_folder(path, source)

    def upload(self, folder: TargetFolder, items: Sequence[UploadItem]) -> list[UploadResult]:
        return self._for(folder.kind).upload(folder, items)

    def existing(self, folder: TargetFolder) -> Iterator[ExistingMessage]:
        return self._for(folder.kind).existing(folder)

    def find(self, folder: TargetFolder, message_ids: Iterable[str]) -> dict[str, list[ExistingMessage]]:
        return self._for(folder.kind).find(folder, message_ids)

    def read_back(self, folder: TargetFolder, target_id: str) -> bytes:
        return self._for(folder.kind).read_back(folder, target_id)

    def close(self) -> None:
        for target in self._targets.values():
            target.close()


@register("m365", kinds=frozenset({ItemKind.MAIL, ItemKind.EVENT, ItemKind.CONTACT}))
def _open_target(parts: SplitResult, url: str, options: TargetOptions) -> Target:
    where = parse_m365(url)
    routes = parse_routes(options.extra.get("routes", ""))
    if not routes:
        raise UsageError(f"no transport chosen for {url}",
                         hint="make a plan (o365-migrate plan runs preflight and records the choice), or give "
                              "--transport")
    targets: dict[Transport, Target] = {}
    try:
        for transport in dict.fromkeys(routes.values()):
            token = options.tokens.get(transport.value)
            if token is None:
                raise UsageError(f"no sign-in for {transport.value} into {url}", hint="give --tenant and --client-id")
            extra = {k: v for k, v in options.extra.items() if k != "routes"}
            targets[transport] = open_target(where.transport_url(transport), TargetOptions(
                token=token, insecure=options.insecure, ca_file=options.ca_file, timeout=options.timeout, extra=extra))
    except BaseException:
        for made in targets.values():
            made.close()
        raise
    return RoutedTarget(url, routes, targets)
