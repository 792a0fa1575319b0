"""Checks every Graph JSON body the sandbox receives against Microsoft's metadata as JSON Schema
(../shared/graph-schema/graph-v1.0-outlook-subset.schema.json, see its README).

Entity types there are closed except the few with derived types (message, event, contact); polymorphic values
name their type with `@odata.type` (a fileAttachment inside `attachments`), and are checked against that type.
The bodies Microsoft's metadata does not describe (createUploadSession's AttachmentItem, `$batch` itself) get
their own small checks here, written from the Graph reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_FILE = "graph-v1.0-outlook-subset.schema.json"
ODATA_PREFIX = "#microsoft.graph."
# A segment that names an entity rather than a collection or a well-known folder.
_COLLECTIONS = {"mailFolders", "childFolders", "messages", "events", "calendars", "contactFolders", "contacts",
                "calendar", "attachments", "instances"}


class GraphSchema:
    def __init__(self, schema_dir: Path) -> None:
        self.document: dict[str, Any] = json.loads((schema_dir / SCHEMA_FILE).read_text(encoding="utf-8"))
        self._registry = Registry().with_resource("urn:graph", Resource.from_contents(self.document))
        self._validators: dict[str, Draft202012Validator] = {}
        self._paths = [(self._pattern(p["path"]), p["type"]) for p in self.document.get("x-paths", [])]

    @staticmethod
    def _pattern(path: str) -> re.Pattern[str]:
        parts = [r"[^/]+" if part.startswith("{") else re.escape(part) for part in path.strip("/").split("/")]
        return re.compile("^/" + "/".join(parts) + "$")

    @cached_property
    def types(self) -> set[str]:
        return set(self.document["$defs"])

    def _validator(self, type_name: str) -> Draft202012Validator:
        found = self._validators.get(type_name)
        if found is None:
            found = Draft202012Validator({"$ref": f"urn:graph#/$defs/{type_name}"}, registry=self._registry)
            self._validators[type_name] = found
        return found

    def type_for(self, method: str, path: str) -> str | None:
        """The entity type a body sent to `path` must be (a collection for POST, an entity for PATCH)."""
        path = "/" + path.strip("/")
        for pattern, type_name in self._paths:
            if pattern.match(path):
                return str(type_name)
        parts = path.strip("/").split("/")
        if method == "POST" and parts[-1] == "attachments":
            return "attachment"
        if method == "PATCH" and len(parts) >= 2:
            collection = parts[-2]
            return {"messages": "message", "events": "event", "contacts": "contact", "mailFolders": "mailFolder",
                    "calendars": "calendar", "contactFolders": "contactFolder",
                    "childFolders": None}.get(collection)
        return None

    def problems(self, type_name: str, body: Any, where: str = "") -> Iterator[str]:
        """What is wrong with `body` as a `type_name`: each problem one line naming its place."""
        if not isinstance(body, dict):
            yield f"{where or '/'}: a {type_name} must be a JSON object"
            return
        odata = body.get("@odata.type")
        if isinstance(odata, str) and odata.startswith(ODATA_PREFIX):
            named = odata.removeprefix(ODATA_PREFIX)
            if named not in self.types:
                yield f"{where or '/'}: unknown @odata.type {odata!r}"
                return
            type_name = named
        nested: list[tuple[str, Any]] = []
        if isinstance(body.get("attachments"), list):
            body = dict(body)
            nested = [(f"{where}/attachments/{n}", a) for n, a in enumerate(body.pop("attachments"))]
        for error in sorted(self._validator(type_name).iter_errors(body), key=lambda e: list(e.absolute_path)):
            place = "/".join(str(p) for p in error.absolute_path)
            yield f"{where}/{place}: {error.message}"[:400]
        for place, attachment in nested:
            yield from self.problems("attachment", attachment, place)


def upload_session_problems(body: Any) -> Iterator[str]:
    """createUploadSession: {"AttachmentItem": {attachmentType, name, size, contentType?, isInline?, contentId?}}."""
    item = body.get("AttachmentItem") if isinstance(body, dict) else None
    if not isinstance(item, dict) or set(body) != {"AttachmentItem"}:
        yield "/: the body must be {\"AttachmentItem\": {...}} and nothing else"
        return
    allowed = {"attachmentType": str, "name": str, "size": int, "contentType": str, "isInline": bool, "contentId": str}
    for key, value in item.items():
        kind = allowed.get(key)
        if kind is None:
            yield f"/AttachmentItem/{key}: not a property of attachmentItem"
        elif not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            yield f"/AttachmentItem/{key}: must be {kind.__name__}"
    for key in ("attachmentType", "name", "size"):
        if key not in item:
            yield f"/AttachmentItem: {key} is required"
    if item.get("attachmentType") not in (None, "file", "item", "reference"):
        yield f"/AttachmentItem/attachmentType: {item.get('attachmentType')!r} is not file, item or reference"


def batch_problems(body: Any) -> Iterator[str]:
    """`$batch`: {"requests": [{id, method, url, headers?, body?, dependsOn?}, ...]} with at most 20 requests."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        yield "/requests: a non-empty list is required"
        return
    if len(requests) > 20:
        yield f"/requests: {len(requests)} requests; a batch holds at most 20"
    ids = set()
    for n, request in enumerate(requests):
        if not isinstance(request, dict):
            yield f"/requests/{n}: must be an object"
            continue
        for key in ("id", "method", "url"):
            if not isinstance(request.get(key), str):
                yield f"/requests/{n}/{key}: a string is required"
        if request.get("id") in ids:
            yield f"/requests/{n}/id: {request.get('id')!r} appears twice"
        ids.add(request.get("id"))
        unknown = set(request) - {"id", "method", "url", "headers", "body", "dependsOn"}
        if unknown:
            yield f"/requests/{n}: unknown member(s) {', '.join(sorted(unknown))}"
        if "body" in request and not any(k.lower() == "content-type" for k in (request.get("headers") or {})):
            yield f"/requests/{n}/headers: a request with a body needs a Content-Type header"
        if str(request.get("url", "")).startswith(("http:", "https:")):
            yield f"/requests/{n}/url: must be relative to the version (\"/users/...\")"
