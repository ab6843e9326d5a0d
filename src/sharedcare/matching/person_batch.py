"""Person versions made while a batch of Patients is matched, kept in memory and saved together at its end.

Matching one Patient saves its Person at once, row by row (`Repository.save_in`): a few statements and a round of
index inserts per Person. A bulk load matches thousands of Patients per commit, so `MatchHook.many` collects the
Person versions here instead (later Patients of the batch see them, as they would have seen them stored) and writes
them with the bulk store functions: the same versions, bodies and index rows, in a few statements per batch. The
write hooks then see every version, in order, exactly as `save_in` would have handed them over.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import orjson

from sharedcare.fhir.resource import stamp
from sharedcare.store import bulk_sql
from sharedcare.store.bulk_sql import BulkRow
from sharedcare.types import JSON, StoredResource

PERSON = "Person"


@dataclass(slots=True)
class _Pending:
    """One Person touched by the batch: its stored version when first touched, and the versions made since."""

    base: StoredResource | None
    versions: list[tuple[StoredResource, JSON]] = field(default_factory=list)  # (saved version, stamped resource)


class PersonBatch:
    """The Person versions of one batch, in the order they were made."""

    def __init__(self) -> None:
        self.pending: dict[str, _Pending] = {}

    def current(self, txn: Any, person_id: str) -> tuple[int, JSON | None] | None:
        """(version, resource without `meta`) as the batch has left the Person; None when there is none. Read back
        from the bytes, as `save_if_changed` reads a stored version, so comparisons come out the same."""
        p = self._touch(txn, person_id)
        latest = p.versions[-1][0] if p.versions else p.base
        if latest is None:
            return None
        return latest.version, None if latest.body is None else _without_meta(orjson.loads(latest.body))

    def save(
        self, txn: Any, person_id: str, resource: JSON, version: int, method: str, *, new: bool = False
    ) -> StoredResource:
        """Record a Person version to write at the end of the batch (`new`: a fresh id, nothing stored to read)."""
        p = self.pending.get(person_id) if not new else None
        if p is None:
            p = self.pending[person_id] = _Pending(None) if new else self._touch(txn, person_id)
        stamped, body = stamp(resource, person_id, version, txn.now)
        stored = StoredResource(PERSON, person_id, version, txn.now, body, method)
        p.versions.append((stored, stamped))
        return stored

    def _touch(self, txn: Any, person_id: str) -> _Pending:
        p = self.pending.get(person_id)
        if p is None:  # read (and locked) as `save_if_changed` reads it
            p = self.pending[person_id] = _Pending(txn.current(PERSON, person_id))
        return p

    def write(self, txn: Any, repo: Any) -> None:
        """Write every version (round k holds each Person's k-th version, so keys are distinct within a round),
        then hand them to the write hooks in the order they were made."""
        touched = [pid for pid, p in self.pending.items() if p.versions and p.base is not None]
        rids = {key[1]: cur.rid for key, cur in bulk_sql.current_many(txn, [(PERSON, pid) for pid in touched]).items()}
        depth = max((len(p.versions) for p in self.pending.values()), default=0)
        for k in range(depth):
            founded: dict[str, list[tuple[StoredResource, Any]]] = {}  # new Persons by method: the fast insert
            rows = []
            for pid, p in self.pending.items():
                if k >= len(p.versions):
                    continue
                stored, stamped = p.versions[k]
                index = repo.indexer.index(stamped)
                if pid not in rids and stored.version == 1:
                    founded.setdefault(stored.method, []).append((stored, index))
                else:
                    body, rid = stored.body or b"", rids.get(pid, 0)
                    rows.append(BulkRow(PERSON, pid, stored.version, body, _index_params(index), rid, stored.method))
            for method, new in founded.items():
                versions = [(PERSON, s.id, s.body or b"") for s, _ in new]
                index = bulk_sql.encode_index_rows([(PERSON, rows_) for _, rows_ in new])
                rids.update(zip([s.id for s, _ in new], bulk_sql.insert_new(txn, versions, index, method), strict=True))
            bulk_sql.write_rows(txn, rows)
            rids.update({row.id: row.rid for row in rows})  # stored now: a later round replaces these
        for p in self.pending.values():
            for stored, stamped in p.versions:
                repo.run_hooks(txn, stored, stamped)


def _index_params(rows: Any) -> bulk_sql.IndexParams:
    """A resource's index rows in the shape the bulk write takes (through the same encoding the loader uses)."""
    return bulk_sql.decode_index(bulk_sql.encode_index_rows([(PERSON, rows)])).get(0, [])


def _without_meta(resource: JSON) -> JSON:
    return {k: v for k, v in resource.items() if k != "meta"}


_BATCH: ContextVar[PersonBatch | None] = ContextVar("sharedcare_person_batch", default=None)


def active() -> PersonBatch | None:
    """The batch collecting Person versions in this context, if any."""
    return _BATCH.get()


@contextmanager
def collecting(txn: Any, repo: Any) -> Iterator[PersonBatch]:
    """Collect Person versions inside the block; write them (and run their hooks) when it ends without error."""
    batch = PersonBatch()
    token = _BATCH.set(batch)
    try:
        yield batch
    finally:
        _BATCH.reset(token)
    batch.write(txn, repo)
