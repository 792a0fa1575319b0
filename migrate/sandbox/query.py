"""FindItem/FindFolder restrictions, sort orders and paging over stored rows.

Dedupe before upload (`folder.filter(message_id=...).exists()`) and verification after it both run through
here, so restrictions are evaluated for real rather than matched as canned requests. Strings compare without
regard to case, as Exchange's restrictions do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from lxml import etree

from .items import ItemError, ItemRenderer, parse_bool, parse_datetime
from .soap import t
from .store import FolderRow, ItemRow

Value = str | int | bool | dt.datetime | None
Row = TypeVar("Row")

_ITEM_COLUMNS: dict[str, Callable[[ItemRow], Value]] = {
    "message:InternetMessageId": lambda i: i.internet_message_id,
    "item:Subject": lambda i: i.subject,
    "item:DateTimeReceived": lambda i: parse_datetime(i.date_received),
    "item:DateTimeSent": lambda i: parse_datetime(i.date_sent or i.date_received),
    "item:DateTimeCreated": lambda i: parse_datetime(i.date_created),
    "message:IsRead": lambda i: i.is_read,
    "item:IsDraft": lambda i: i.is_draft,
    "item:ItemClass": lambda i: i.item_class,
    "item:Size": lambda i: i.size,
    "item:HasAttachments": lambda i: i.has_attachments,
    "item:ItemId": lambda i: i.id,
}
_FOLDER_COLUMNS: dict[str, Callable[[FolderRow], Value]] = {
    "folder:DisplayName": lambda f: f.display_name,
    "folder:FolderClass": lambda f: f.folder_class,
    "folder:FolderId": lambda f: f.id,
}
_COMPARISONS = {
    "IsEqualTo": lambda a, b: a == b,
    "IsNotEqualTo": lambda a, b: a != b,
    "IsGreaterThan": lambda a, b: a > b,
    "IsGreaterThanOrEqualTo": lambda a, b: a >= b,
    "IsLessThan": lambda a, b: a < b,
    "IsLessThanOrEqualTo": lambda a, b: a <= b,
}


def item_value(item: ItemRow, path: etree._Element) -> Value:
    kind = etree.QName(path).localname
    if kind == "ExtendedFieldURI":
        text = ItemRenderer.extended_value(item, path)
        if text is None:
            return None
        ptype = path.get("PropertyType", "")
        if ptype == "SystemTime":
            return parse_datetime(text)
        if ptype in ("Integer", "Long", "Short"):
            return int(text)
        if ptype == "Boolean":
            return parse_bool(text)
        return text
    uri = path.get("FieldURI", "")
    if kind == "FieldURI" and uri in _ITEM_COLUMNS:
        return _ITEM_COLUMNS[uri](item)
    # Anything else the client stored explicitly, e.g. calendar:Start or contacts:DisplayName.
    stored = etree.fromstring(item.props)
    name = uri.split(":")[-1]
    if kind == "IndexedFieldURI":
        index = path.get("FieldIndex", "")
        for entry in stored.iter(t("Entry")):
            if entry.get("Key") == index:
                return entry.text
        return None
    el = stored.find(t(name))
    if el is None or el.text is None:
        return None
    return parse_datetime(el.text) if "T" in el.text and parse_datetime(el.text) else el.text


def folder_value(folder: FolderRow, path: etree._Element) -> Value:
    getter = _FOLDER_COLUMNS.get(path.get("FieldURI", ""))
    return getter(folder) if getter else None


def _coerce(sample: Value, constant: str) -> Value:
    """The restriction's constant, typed like the field it is compared with."""
    if isinstance(sample, bool):
        return parse_bool(constant)
    if isinstance(sample, int):
        try:
            return int(constant)
        except ValueError:
            return None
    if isinstance(sample, dt.datetime):
        return parse_datetime(constant)
    return constant.casefold()


def _norm(value: Value) -> Value:
    return value.casefold() if isinstance(value, str) else value


class Restriction(Generic[Row]):
    """A parsed t:Restriction, evaluated against rows with a field getter."""

    def __init__(self, el: etree._Element | None, getter: Callable[[Row, etree._Element], Value]):
        self._root = next((c for c in el if isinstance(c.tag, str)), None) if el is not None else None
        self._get = getter

    def matches(self, row: Row) -> bool:
        return self._root is None or self._eval(self._root, row)

    def _eval(self, el: etree._Element, row: Row) -> bool:
        name = etree.QName(el).localname
        children = [c for c in el if isinstance(c.tag, str)]
        if name == "And":
            return all(self._eval(c, row) for c in children)
        if name == "Or":
            return any(self._eval(c, row) for c in children)
        if name == "Not":
            return not self._eval(children[0], row)
        if name == "Exists":
            return self._get(row, children[0]) is not None
        if name in _COMPARISONS:
            left = self._get(row, children[0])
            right_el = children[1][0] if len(children) > 1 and len(children[1]) else None
            if left is None or right_el is None:
                return name == "IsNotEqualTo" and left is None
            if etree.QName(right_el).localname == "Constant":
                right = _coerce(left, right_el.get("Value", ""))
            else:
                right = _norm(self._get(row, right_el))
            if right is None:
                return False
            try:
                return bool(_COMPARISONS[name](_norm(left), right))
            except TypeError:
                return False
        if name == "Contains":
            return self._contains(el, children, row)
        if name == "Excludes":
            value = self._get(row, children[0])
            mask = children[1].get("Value", "0") if len(children) > 1 else "0"
            return isinstance(value, int) and (value & int(mask, 0)) == 0
        raise ItemError("ErrorUnsupportedQueryFilter", f"The restriction {name} is not supported by the sandbox.")

    def _contains(self, el: etree._Element, children: Sequence[etree._Element], row: Row) -> bool:
        value = self._get(row, children[0])
        constant = children[1].get("Value", "") if len(children) > 1 else ""
        if value is None:
            return False
        text = str(value)
        if "IgnoreCase" in el.get("ContainmentComparison", "Exact"):
            text, constant = text.casefold(), constant.casefold()
        mode = el.get("ContainmentMode", "FullString")
        if mode == "FullString":
            return text == constant
        if mode == "Prefixed":
            return text.startswith(constant)
        if mode == "PrefixOnWords":
            return any(word.startswith(constant) for word in text.split())
        return constant in text


def sort_rows(rows: list[Row], order: etree._Element | None, getter: Callable[[Row, etree._Element], Value]) -> None:
    """Apply t:SortOrder in place; later FieldOrders are tie-breakers, so sort by them first (sort is stable)."""
    if order is None:
        return
    for field_order in reversed([c for c in order if isinstance(c.tag, str)]):
        path = next((c for c in field_order if isinstance(c.tag, str)), None)
        if path is None:
            continue
        descending = field_order.get("Order") == "Descending"
        present = [r for r in rows if getter(r, path) is not None]
        absent = [r for r in rows if getter(r, path) is None]
        present.sort(key=lambda r: _norm(getter(r, path)), reverse=descending)  # type: ignore[arg-type,return-value]
        rows[:] = present + absent


@dataclass(frozen=True)
class Page:
    offset: int
    max_entries: int | None
    from_end: bool

    @classmethod
    def parse(cls, view: etree._Element | None) -> Page:
        if view is None:
            return cls(0, None, False)
        max_entries = view.get("MaxEntriesReturned")
        return cls(int(view.get("Offset", "0")), int(max_entries) if max_entries else None,
                   view.get("BasePoint") == "End")

    def apply(self, rows: list[Row], limit: int) -> tuple[list[Row], int, bool]:
        """(rows in this page, IndexedPagingOffset for the next page, IncludesLastItemInRange)"""
        size = min(self.max_entries or limit, limit)
        if self.from_end:
            end = max(len(rows) - self.offset, 0)
            start = max(end - size, 0)
            return rows[start:end], self.offset + (end - start), start == 0
        page = rows[self.offset:self.offset + size]
        next_offset = self.offset + len(page)
        return page, next_offset, next_offset >= len(rows)
