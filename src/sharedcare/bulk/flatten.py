"""Turn a transaction Bundle into plain resources with literal references, the shape of NDJSON bulk data.

Used to make NDJSON test and benchmark data from the Synthea patient Bundles: each entry's `urn:uuid:` full URL
becomes `Type/id` (the resource's own id, or the uuid when it has none), and references to it are rewritten.
Conditional references (`Practitioner?identifier=...`) are left as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sharedcare.bundles import rewrite_references
from sharedcare.types import JSON


def flatten_bundle(bundle: JSON, id_suffix: str = "") -> Iterator[JSON]:
    """The entries' resources with `urn:uuid:` references made literal; `id_suffix` makes a distinct copy."""
    entries = [e for e in bundle.get("entry", []) if isinstance(e, dict) and isinstance(e.get("resource"), dict)]
    targets: dict[str, str] = {}
    for e in entries:
        res, url = e["resource"], e.get("fullUrl", "")
        rid = str(res.get("id") or url.rsplit(":", 1)[-1]) + id_suffix
        res["id"] = rid
        if url:
            targets[url] = f"{res['resourceType']}/{rid}"
    for e in entries:
        res = e["resource"]
        rewrite_references(res, lambda ref: _literal(ref, targets, id_suffix))
        yield res


def _literal(ref: str, targets: dict[str, str], suffix: str) -> str:
    if ref in targets:
        return targets[ref]
    if suffix and "/" in ref and "?" not in ref and not ref.startswith(("urn:", "http", "#")):
        return ref + suffix
    return ref


def resource_key(resource: Any) -> tuple[str, str]:
    return str(resource.get("resourceType")), str(resource.get("id"))
