"""MAPI properties of one PST item, read by tag or by name, decoded defensively.

libpff gives each item's properties as raw (tag, type, bytes) entries; named properties
(everything Outlook keeps about appointments and contacts) carry a per-file tag from 0x8000 up,
so their meaning comes from the file's name-to-id map, which pypff does not decode: this module
reads that map ([MS-PST] 2.4.7) once per file. An embedded message (an attached e-mail, an
exception of a recurring appointment) is not reachable as an item through pypff; its attachment
data is the raw heap-on-node of its property context ([MS-PST] 2.3.1, 2.3.3), decoded here, so
its inline properties are readable while values kept in sub-nodes are not (they are reported).
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

# Property types ([MS-OXCDATA] 2.11.1).
PT_SHORT, PT_LONG, PT_FLOAT, PT_DOUBLE, PT_CURRENCY, PT_APPTIME = 0x2, 0x3, 0x4, 0x5, 0x6, 0x7
PT_ERROR, PT_BOOLEAN, PT_OBJECT, PT_I8, PT_STRING8, PT_UNICODE = 0xA, 0xB, 0xD, 0x14, 0x1E, 0x1F
PT_SYSTIME, PT_CLSID, PT_BINARY, MV_FLAG = 0x40, 0x48, 0x102, 0x1000

_FIXED_SIZE = {PT_SHORT: 2, PT_LONG: 4, PT_FLOAT: 4, PT_DOUBLE: 8, PT_CURRENCY: 8, PT_APPTIME: 8, PT_ERROR: 4,
               PT_BOOLEAN: 1, PT_I8: 8, PT_SYSTIME: 8, PT_CLSID: 16}

PS_MAPI = "00020328-0000-0000-c000-000000000046"
PS_PUBLIC_STRINGS = "00020329-0000-0000-c000-000000000046"
PSETID_APPOINTMENT = "00062002-0000-0000-c000-000000000046"
PSETID_TASK = "00062003-0000-0000-c000-000000000046"
PSETID_ADDRESS = "00062004-0000-0000-c000-000000000046"
PSETID_COMMON = "00062008-0000-0000-c000-000000000046"
PSETID_MEETING = "6ed8da90-450b-101b-98da-00aa003f1305"

_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=UTC)
# Outlook writes 4501-01-01 (and 0) for "no date".
_NO_DATE_AFTER = datetime(4500, 1, 1, tzinfo=UTC)

Key = int | tuple[str, int] | tuple[str, str]  # a tag, or (property set, LID), or (property set, name)


def filetime(value: int) -> datetime | None:
    """A FILETIME (100 ns since 1601) as an aware UTC datetime; None for Outlook's "none"."""
    if value <= 0:
        return None
    try:
        when = _EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None
    return None if when >= _NO_DATE_AFTER else when


def minutes_1601(value: int) -> datetime:
    """Minutes since 1601 (the unit of recurrence blobs), as a naive datetime."""
    return datetime(1601, 1, 1) + timedelta(minutes=value)


class RecordEntry(Protocol):
    entry_type: int
    value_type: int
    data: bytes | None


@dataclass
class NamedMap:
    """The file's map from named properties to the tags it gave them ([MS-PST] 2.4.7)."""

    tags: dict[tuple[str, int | str], int] = field(default_factory=dict)

    @classmethod
    def from_entries(cls, entries: Iterable[RecordEntry]) -> NamedMap:
        streams: dict[int, bytes] = {}
        for entry in entries:
            if entry.entry_type in (0x0002, 0x0003, 0x0004):
                streams[entry.entry_type] = entry.data or b""
        guids, names, table = streams.get(0x0002, b""), streams.get(0x0004, b""), streams.get(0x0003, b"")
        found: dict[tuple[str, int | str], int] = {}
        for offset in range(0, len(table) - 7, 8):
            ident, guid_field, index = struct.unpack_from("<IHH", table, offset)
            is_string, guid_index = guid_field & 1, guid_field >> 1
            if guid_index == 1:
                guid = PS_MAPI
            elif guid_index == 2:
                guid = PS_PUBLIC_STRINGS
            elif 16 * (guid_index - 3) + 16 <= len(guids):
                guid = str(uuid.UUID(bytes_le=guids[16 * (guid_index - 3):16 * (guid_index - 2)]))
            else:
                continue
            name: int | str = ident
            if is_string:
                if ident + 4 > len(names):
                    continue
                (length,) = struct.unpack_from("<I", names, ident)
                name = names[ident + 4:ident + 4 + length].decode("utf-16-le", "replace")
            found[(guid, name)] = 0x8000 + index
        return cls(found)

    def tag(self, key: Key) -> int | None:
        if isinstance(key, int):
            return key
        guid, name = key
        return self.tags.get((guid, name))


@dataclass
class Props:
    """An item's properties: tag -> (type, raw bytes). Values never raise: bad data reads as None."""

    values: dict[int, tuple[int, bytes | None]]
    names: NamedMap
    codepage: str = "cp1252"
    unreachable: set[int] = field(default_factory=set)  # embedded values kept in sub-nodes

    @classmethod
    def from_record_sets(cls, record_sets: Iterable[Any], names: NamedMap, codepage: str = "cp1252") -> Props:
        values: dict[int, tuple[int, bytes | None]] = {}
        for record_set in record_sets:
            for entry in record_set.entries:
                try:
                    data = entry.data
                except OSError:
                    data = None
                values.setdefault(entry.entry_type, (entry.value_type, data))
        props = cls(values, names, codepage)
        props.codepage = _codepage(props.int(0x3FFD)) or codepage  # PR_MESSAGE_CODEPAGE
        return props

    def __contains__(self, key: Key) -> bool:
        tag = self.names.tag(key)
        return tag is not None and tag in self.values and self.values[tag][1] is not None

    def raw(self, key: Key) -> tuple[int, bytes] | None:
        tag = self.names.tag(key)
        if tag is None or tag not in self.values:
            return None
        kind, data = self.values[tag]
        return None if data is None else (kind, data)

    def text(self, key: Key) -> str | None:
        found = self.raw(key)
        if found is None:
            return None
        kind, data = found
        if kind == PT_UNICODE:
            return data.decode("utf-16-le", "replace").rstrip("\x00")
        if kind == PT_STRING8:
            return data.decode(self.codepage, "replace").rstrip("\x00")
        return None

    def int(self, key: Key) -> int | None:
        found = self.raw(key)
        if found is None:
            return None
        kind, data = found
        fmt = {PT_SHORT: "<h", PT_LONG: "<i", PT_ERROR: "<I", PT_I8: "<q", PT_BOOLEAN: "<B"}.get(kind)
        if fmt is None or len(data) < struct.calcsize(fmt):
            return None
        return int(struct.unpack_from(fmt, data)[0])

    def bool(self, key: Key) -> bool | None:
        value = self.int(key)
        return None if value is None else bool(value)

    def time(self, key: Key) -> datetime | None:
        found = self.raw(key)
        if found is None or found[0] != PT_SYSTIME or len(found[1]) < 8:
            return None
        return filetime(struct.unpack_from("<q", found[1])[0])

    def binary(self, key: Key) -> bytes | None:
        found = self.raw(key)
        return found[1] if found is not None and found[0] in (PT_BINARY, PT_OBJECT) else None

    def texts(self, key: Key) -> list[str]:
        """A multi-valued string property (PT_MV_UNICODE or PT_MV_STRING8)."""
        found = self.raw(key)
        if found is None or found[0] not in (MV_FLAG | PT_UNICODE, MV_FLAG | PT_STRING8):
            return []
        encoding = "utf-16-le" if found[0] == MV_FLAG | PT_UNICODE else self.codepage
        return [v.decode(encoding, "replace").rstrip("\x00") for v in _multi(found[1])]

    def binaries(self, key: Key) -> list[bytes]:
        found = self.raw(key)
        if found is None or found[0] != MV_FLAG | PT_BINARY:
            return []
        return _multi(found[1])


def _multi(data: bytes) -> list[bytes]:
    """Variable-size multi-values as a PST stores them: count, offsets, then the values."""
    if len(data) < 4:
        return []
    (count,) = struct.unpack_from("<I", data)
    if count > (len(data) - 4) // 4:
        return []
    offsets = [*list(struct.unpack_from(f"<{count}I", data, 4)), len(data)]
    return [data[offsets[i]:offsets[i + 1]] for i in range(count) if offsets[i] <= offsets[i + 1] <= len(data)]


_CODEPAGES = {1200: "utf-16-le", 20127: "ascii", 28591: "latin-1", 65001: "utf-8", 50220: "iso2022_jp",
              51932: "euc_jp", 932: "cp932", 936: "gbk", 949: "cp949", 950: "cp950", 20866: "koi8_r",
              28592: "iso8859_2", 28605: "iso8859_15"}


def _codepage(number: int | None) -> str | None:
    """A Windows code page number as a Python codec name, if Python knows it."""
    if not number:
        return None
    name = _CODEPAGES.get(number, f"cp{number}")
    try:
        "".encode(name)
    except LookupError:
        return None
    return name


def codepage_name(number: int | None) -> str | None:
    return _codepage(number)


# --- embedded messages: the heap-on-node of a property context --------------------------------


class HeapError(ValueError):
    """The bytes are not a property context heap."""


@dataclass
class _Heap:
    blocks: list[bytes]

    def get(self, hid: int) -> bytes:
        if hid & 0x1F:
            raise HeapError(f"0x{hid:x} is a node id, not a heap id")
        index, block_index = (hid >> 5) & 0x7FF, hid >> 16
        if block_index >= len(self.blocks) or index == 0:
            raise HeapError(f"heap id 0x{hid:x} is out of range")
        block = self.blocks[block_index]
        (map_offset,) = struct.unpack_from("<H", block)
        if map_offset + 4 > len(block):
            raise HeapError("heap page map is out of range")
        count = struct.unpack_from("<H", block, map_offset)[0]
        if index > count:
            raise HeapError(f"heap id 0x{hid:x} is out of range")
        start, end = struct.unpack_from("<HH", block, map_offset + 4 + 2 * (index - 1))
        if not start <= end <= len(block):
            raise HeapError("heap allocation is out of range")
        return block[start:end]


def embedded_props(data: bytes, names: NamedMap, block_size: int, codepage: str = "cp1252") -> Props:
    """The properties of an embedded message from its raw property-context heap."""
    blocks = [data[i:i + block_size] for i in range(0, len(data), block_size)] or [b""]
    if len(blocks[0]) < 12 or blocks[0][2] != 0xEC or blocks[0][3] != 0xBC:
        raise HeapError("not a property context")
    heap = _Heap(blocks)
    (user_root,) = struct.unpack_from("<I", blocks[0], 4)
    header = heap.get(user_root)
    if len(header) < 8 or header[0] != 0xB5:
        raise HeapError("not a B-tree-on-heap")
    key_size, entry_size, levels, root = header[1], header[2], header[3], struct.unpack_from("<I", header, 4)[0]
    if key_size != 2 or entry_size != 6:
        raise HeapError("not a property context B-tree")
    values: dict[int, tuple[int, bytes | None]] = {}
    unreachable: set[int] = set()
    for record in _bth_records(heap, root, levels):
        tag, kind, hnid = struct.unpack("<HHI", record)
        size = _FIXED_SIZE.get(kind)
        if size is not None and size <= 4:
            values[tag] = (kind, struct.pack("<I", hnid)[:size])
            continue
        if hnid == 0:
            values[tag] = (kind, b"")
            continue
        try:
            values[tag] = (kind, heap.get(hnid))
        except HeapError:
            unreachable.add(tag)
            values[tag] = (kind, None)
    props = Props(values, names, codepage, unreachable)
    props.codepage = _codepage(props.int(0x3FFD)) or codepage
    return props


def _bth_records(heap: _Heap, hid: int, levels: int) -> list[bytes]:
    if hid == 0:
        return []
    data = heap.get(hid)
    if levels == 0:
        return [data[i:i + 8] for i in range(0, len(data) - 7, 8)]
    records: list[bytes] = []
    for i in range(0, len(data) - 5, 6):
        (child,) = struct.unpack_from("<I", data, i + 2)
        records.extend(_bth_records(heap, child, levels - 1))
    return records
