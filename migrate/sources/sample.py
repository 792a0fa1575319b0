"""`sample:` - the built-in sample mailbox as a source, so every command can be tried at once.

`sample:` gives 12 messages a folder; `sample:?messages=N&big=BYTES` more, or a large one.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar
from urllib.parse import SplitResult, parse_qs

from migrate import samplebox
from migrate.errors import UsageError
from migrate.model import Folder, MessageRef
from migrate.sources.base import Capabilities, Source, SourceOptions, register
from migrate.sources.headers import header_block, header_facts


class SampleSource(Source):
    capabilities: ClassVar[Capabilities] = Capabilities(flags=True, internal_dates=True, folders=True)

    def __init__(self, url: str, messages: int, big: int) -> None:
        super().__init__()
        self.url = url
        self._folders = samplebox.build(messages, big)

    def folders(self) -> list[Folder]:
        return [Folder(f.path, "/", f.role, locator=str(i)) for i, f in enumerate(self._folders)]

    def messages(self, folder: Folder) -> Iterator[MessageRef]:
        for i, msg in enumerate(self._folders[int(folder.locator)].messages):
            facts = header_facts(header_block(msg.raw))
            yield MessageRef(f"{folder.locator}:{i}", len(msg.raw), msg.flags, msg.internal_date,
                             facts.message_id, facts.date, facts.subject, facts.problems)

    def read(self, folder: Folder, refs: Sequence[MessageRef]) -> Iterator[tuple[MessageRef, bytes]]:
        messages = self._folders[int(folder.locator)].messages
        for ref in refs:
            yield ref, messages[int(ref.key.partition(":")[2])].raw


@register("sample")
def _open(parts: SplitResult, url: str, options: SourceOptions) -> Source:
    query = parse_qs(parts.query)
    try:
        messages = int(query.get("messages", ["12"])[0])
        big = int(query.get("big", ["0"])[0])
    except ValueError:
        raise UsageError(f"{url!r}: messages and big take whole numbers", hint="sample:?messages=50") from None
    return SampleSource(url, messages, big)
