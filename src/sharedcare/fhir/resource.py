"""Pure helpers on resources as JSON: ids, meta stamping and the one serialisation of a stored version."""

from __future__ import annotations

import re
import uuid
from typing import Any

import orjson

from sharedcare.errors import InvalidRequest
from sharedcare.types import JSON

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def check_id(id: str, where: str = "id") -> None:
    if not ID_PATTERN.fullmatch(id):
        raise InvalidRequest(
            f"Invalid resource id '{id[:80]}': must match [A-Za-z0-9-.]{{1,64}}", expression=where
        )


def new_id() -> str:
    return str(uuid.uuid4())


def stamp(resource: JSON, id: str, version: int, last_updated: str) -> tuple[JSON, bytes]:
    """Set the server-owned `id` and `meta` fields and serialise once; these bytes are what every read returns.

    Returns the stamped resource too, so callers (indexing, hooks) need not parse the bytes again."""
    meta: dict[str, Any] = {
        k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")
    }
    meta = {"versionId": str(version), "lastUpdated": last_updated, **meta}
    rest = {k: v for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    stamped = {"resourceType": resource["resourceType"], "id": id, "meta": meta, **rest}
    return stamped, orjson.dumps(stamped)


def parse_json(body: bytes | None, *, what: str = "request body") -> Any:
    if not body:
        raise InvalidRequest(f"The {what} is empty; a FHIR JSON resource was expected")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"The {what} is not valid JSON: {exc}") from None


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """True when nesting is deeper than `limit`; iterative so hostile input cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, dict | list))
    return False
