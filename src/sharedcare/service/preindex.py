"""Index rows computed before a write transaction opens, finished inside it.

Indexing needs the resource's final `meta.versionId` and `meta.lastUpdated`, known only inside the write transaction
(the version from the current one, the time from the transaction). Indexing is the largest piece of work per
resource, and inside the transaction it holds the write lock (SQLite: of the whole file) while other requests wait.
So a resource is indexed beforehand with provisional server meta, and inside the transaction only the rows those two
fields give are swapped: found by indexing a resource that holds nothing else, once with each pair of values.

That is exact when no search parameter except the standard `_lastUpdated` reads those fields or could reach them
(through descendants(), children() or repeat()), as for every type in R4's own set. A type with a custom parameter
that might is indexed inside the transaction, as before.
"""

from __future__ import annotations

import copy
from typing import Any

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.fhir.resource import stamp
from sharedcare.types import JSON

PROVISIONAL_VERSION = 1
PROVISIONAL_TIME = "2000-01-01T00:00:00.000000Z"
ROW_LISTS = ("strings", "tokens", "references", "dates", "numbers", "quantities", "uris", "composites", "compartments")
_REACHES_SERVER_META = ("versionId", "lastUpdated", "descendants", "children", "repeat")
_STANDARD = ("_lastUpdated", "Resource.meta.lastUpdated")

Diff = dict[str, tuple[frozenset[Any], list[Any]]]  # row list -> (rows to drop, rows to add)


class Preindexer:
    """Early indexing for one indexer; `diffs` memoises per (type, version, time) within one transaction."""

    def __init__(self, indexer: Any) -> None:
        self.indexer = indexer
        self._safe: dict[tuple[str, int], bool] = {}

    def early(self, type: str, id: str, resource: JSON) -> IndexRows | None:
        """The rows of `resource` with provisional server meta, or None when the type must be indexed late."""
        if not self.safe(type):
            return None
        stamped, _ = stamp(resource, id, PROVISIONAL_VERSION, PROVISIONAL_TIME)
        return self.indexer.index(stamped)

    def safe(self, type: str) -> bool:
        registry = getattr(self.indexer, "registry", None)
        if registry is None:
            return False
        key = (type, registry.version)
        found = self._safe.get(key)
        if found is None:
            found = self._safe[key] = all(_meta_free(p) for p in registry.params_for(type).values())
        return found

    def finish(self, type: str, rows: IndexRows, version: int, now: str, memo: dict[Any, Diff]) -> IndexRows:
        """`rows` as indexing the resource with its final version and time would give them."""
        key = (type, version, now)
        diff = memo.get(key)
        if diff is None:
            diff = memo[key] = self._diff(type, version, now)
        if not diff:
            return rows
        out = copy.copy(rows)
        for name, (drop, add) in diff.items():
            setattr(out, name, [r for r in getattr(rows, name) if r not in drop] + add)
        return out

    def _diff(self, type: str, version: int, now: str) -> Diff:
        before = self.indexer.index(_bare(type, PROVISIONAL_VERSION, PROVISIONAL_TIME))
        after = self.indexer.index(_bare(type, version, now))
        diff: Diff = {}
        for name in ROW_LISTS:
            old, new = getattr(before, name), getattr(after, name)
            if old != new:
                kept = set(old)
                diff[name] = (frozenset(old) - frozenset(new), [r for r in new if r not in kept])
        return diff


def _bare(type: str, version: int, now: str) -> JSON:
    return {"resourceType": type, "id": "x", "meta": {"versionId": str(version), "lastUpdated": now}}


def _meta_free(param: Any) -> bool:
    """True when the parameter's values cannot depend on the server-set meta fields (or it is `_lastUpdated`)."""
    if (param.code, param.expression) == _STANDARD:
        return True
    expressions = [param.expression or "", *(c.expression for c in param.components)]
    return not any(word in e for e in expressions for word in _REACHES_SERVER_META)
