"""Versioned schema migrations, forward and back, for both dialects.

The store's schema version is `meta.schema_version`. A store opens at the baseline (`schema.SCHEMA_VERSION`, 1:
the stores run `schema.ddl` idempotently on open); every later change is a numbered module here (`mNNNN_*.py`)
whose `up` and `down` give the statements per dialect. `plan` lists what would run, `migrate` runs it: all steps in
one transaction under the schema lock, so a failed migration leaves the store as it was (DDL is transactional on
both engines) and two processes never migrate at once.

To add one: write `m0003_<what>.py` with `MIGRATION = Migration(3, ...)`, append it to `MIGRATIONS`, and give
both directions a test with data in the store (tests/resilience/test_migrations.py shows how).
"""

from __future__ import annotations

from typing import Any, Protocol

from sharedcare.store.migrations import m0001_baseline, m0002_change_feed
from sharedcare.store.migrations.base import Migration, Step
from sharedcare.store.schema import Dialect

MIGRATIONS: tuple[Migration, ...] = (m0001_baseline.MIGRATION, m0002_change_feed.MIGRATION)
LATEST = MIGRATIONS[-1].number
SCHEMA_LOCK = 7426001  # the same advisory lock the PostgreSQL store takes to create the baseline

__all__ = ["LATEST", "MIGRATIONS", "Migration", "Step", "current_version", "migrate", "plan"]


class MigratableStore(Protocol):
    dialect: Dialect

    def reading(self) -> Any: ...

    def writing(self) -> Any: ...


def current_version(cur: Any) -> int:
    cur.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    row = cur.fetchone()
    return int(row[0]) if row else 0


def plan(current: int, target: int | None = None, dialect: Dialect | None = None) -> list[Step]:
    """The steps from `current` to `target` (default: the latest), statements rendered for `dialect`."""
    target = LATEST if target is None else target
    if current > LATEST:
        raise ValueError(f"the store is at schema version {current}, newer than this sharedcare ({LATEST})")
    if not 1 <= target <= LATEST:
        raise ValueError(f"target schema version must be between 1 and {LATEST}, got {target}")
    by_number = {m.number: m for m in MIGRATIONS}

    def render(fn: Any) -> tuple[str, ...]:
        return tuple(fn(dialect)) if dialect is not None else ()

    if target >= current:
        return [
            Step(n, by_number[n].name, "up", render(by_number[n].up)) for n in range(max(current, 1) + 1, target + 1)
        ]
    return [Step(n, by_number[n].name, "down", render(by_number[n].down)) for n in range(current, target, -1)]


def pending(store: MigratableStore, target: int | None = None) -> tuple[int, list[Step]]:
    with store.reading() as cur:
        current = current_version(cur)
    return current, plan(current, target, store.dialect)


def migrate(store: MigratableStore, target: int | None = None) -> tuple[int, list[Step]]:
    """Bring the store to `target` (default latest); returns the version it started at and the steps run."""
    with store.writing() as cur:
        if store.dialect.name == "postgresql":
            cur.execute(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        current = current_version(cur)
        if current > LATEST and target is None:
            return current, []  # a newer sharedcare migrated this store; never touch what we do not know
        steps = plan(current, target, store.dialect)
        for step in steps:
            for stmt in step.statements:
                cur.execute(stmt)
            cur.execute(
                store.dialect.sql("UPDATE meta SET value = ? WHERE key = 'schema_version'"),
                (str(step.version_after),),
            )
    return current, steps
