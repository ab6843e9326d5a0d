"""Many versions saved in one open transaction with set-based SQL (transaction Bundles).

`SqlTxn.current` and `SqlTxn.save` cost about ten statements per resource; a Bundle of 100 entries pays that a
hundred times (and a round trip each on PostgreSQL). Here the locks are taken and the current versions read in one
go, and the versions, resources and index rows are written with the bulk loader's statements (`bulk_sql`), so the
rows are exactly those `SqlTxn.save` writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.store import bulk_sql
from sharedcare.store.bulk_sql import BulkRow, Current
from sharedcare.store.sqlstore import SqlTxn
from sharedcare.types import StoredResource

Key = tuple[str, str]  # (type, id)


@dataclass(frozen=True, slots=True)
class NewVersion:
    """One version to save: its final stamped body and index rows; `rid` of the resource it replaces, if any."""

    type: str
    id: str
    version: int
    method: str
    body: bytes
    rows: IndexRows
    rid: int = 0


def current_versions(txn: SqlTxn, keys: Sequence[Key]) -> dict[Key, Current]:
    """Lock `Type/id` of every key (as `SqlTxn.current` does, in one statement) and read their current versions."""
    if not keys:
        return {}
    bulk_sql.lock_keys(txn, [f"{t}/{i}" for t, i in keys])
    return bulk_sql.current_many(txn, keys)


def save_versions(txn: SqlTxn, items: Sequence[NewVersion]) -> list[StoredResource]:
    """Write every item (distinct resources) and return what was stored, in the items' order.

    New resources written by PUT take the loader's fastest path (index rows expanded by the database from JSON);
    the rest (POSTs, replacements) go through `write_rows`."""
    fresh = [it for it in items if not it.rid and it.method == "PUT" and it.version == 1]
    if fresh:
        index = bulk_sql.encode_index_rows([(it.type, it.rows) for it in fresh])
        bulk_sql.insert_new(txn, [(it.type, it.id, it.body) for it in fresh], index)
    others = [it for it in items if it.rid or it.method != "PUT" or it.version != 1]
    if others:
        decoded = bulk_sql.decode_index(bulk_sql.encode_index_rows([(it.type, it.rows) for it in others]))
        bulk_sql.write_rows(
            txn,
            [
                BulkRow(it.type, it.id, it.version, it.body, decoded.get(n, []), rid=it.rid, method=it.method)
                for n, it in enumerate(others)
            ],
        )
    return [StoredResource(it.type, it.id, it.version, txn.now, it.body, it.method) for it in items]
