"""Bundles assembled from stored bytes: each resource is spliced in as stored, never re-serialised."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from sharedcare.types import JSON


@dataclass(frozen=True, slots=True)
class Entry:
    """One Bundle entry: the envelope fields as JSON plus the resource's bytes, kept apart for splicing."""

    fields: JSON  # fullUrl, request, response, search ...
    resource: bytes | None = None


def bundle_bytes(
    type: str,
    entries: Sequence[Entry],
    *,
    total: int | None = None,
    links: Sequence[tuple[str, str]] = (),
    timestamp: str | None = None,
    extra: JSON | None = None,
) -> bytes:
    head: JSON = {"resourceType": "Bundle", "id": str(uuid.uuid4()), "type": type}
    if timestamp:
        head["meta"] = {"lastUpdated": timestamp}
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": rel, "url": url} for rel, url in links]
    if extra:
        head.update(extra)
    if not entries:
        return orjson.dumps(head)
    parts = [orjson.dumps(head)[:-1], b',"entry":[']
    for n, entry in enumerate(entries):
        if n:
            parts.append(b",")
        envelope = orjson.dumps(entry.fields)
        if entry.resource is None:
            parts.append(envelope)
        else:
            sep = b"," if len(envelope) > 2 else b""
            parts += [envelope[:-1], sep, b'"resource":', entry.resource, b"}"]
    parts.append(b"]}")
    return b"".join(parts)
