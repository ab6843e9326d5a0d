"""Migration 1, the baseline: the schema of `sharedcare.store.schema.ddl` as the first release shipped it.

The stores create it (idempotently) when they open, so `up` only re-runs that DDL. There is no `down`: going
below the baseline would mean dropping every table, which no migration should do to a health record.
"""

from __future__ import annotations

from sharedcare.store.migrations.base import Migration
from sharedcare.store.schema import Dialect, ddl


def up(d: Dialect) -> list[str]:
    return ddl(d)


def down(d: Dialect) -> list[str]:
    return []


MIGRATION = Migration(1, "baseline schema", up, down)
