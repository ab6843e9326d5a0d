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
from sharedcare.store.bulk_sql import BulkRow, Current, IndexJson
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


def encode_rows(items: Sequence[tuple[str, IndexRows]]) -> IndexJson:
    """The index rows of (type, rows) items as `save_versions` takes them ready-made (numbered in order)."""
    return bulk_sql.encode_index_rows(items)


def save_versions(txn: SqlTxn, items: Sequence[NewVersion], index: IndexJson | None = None) -> list[StoredResource]:
    """Write every item (distinct resources) and return what was stored, in the items' order.

    New resources take the loader's fastest path (index rows expanded by the database from JSON; `index`, when
    given, is `encode_rows` of all the items, made before the transaction); replacements go through `write_rows`."""
    fresh = [it for it in items if not it.rid]
    methods = list(dict.fromkeys(it.method for it in fresh))
    for method in methods:
        part = [it for it in fresh if it.method == method]
        whole = index is not None and len(part) == len(items)
        part_index = index if whole and index else encode_rows([(it.type, it.rows) for it in part])
        bulk_sql.insert_new(txn, [(it.type, it.id, it.body) for it in part], part_index, method)
    others = [it for it in items if it.rid]
    if others:
        decoded = bulk_sql.decode_index(encode_rows([(it.type, it.rows) for it in others]))
        bulk_sql.write_rows(
            txn,
            [
                BulkRow(it.type, it.id, it.version, it.body, decoded.get(n, []), rid=it.rid, method=it.method)
                for n, it in enumerate(others)
            ],
        )
    return [StoredResource(it.type, it.id, it.version, txn.now, it.body, it.method) for it in items]
