"""PostgreSQL store: a psycopg 3 connection pool; writers serialise per key with transaction advisory locks.

A conditional create locks its criterion and a write locks `Type/id`, so concurrent conditional creates and
update-as-create on one id cannot both insert; unrelated writes run in parallel.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from psycopg_pool import ConnectionPool

from sharedcare.store.schema import POSTGRES, SCHEMA_VERSION
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.store.sqlstore import SqlStore


class PostgresStore(SqlStore):
    dialect = POSTGRES

    def __init__(
        self, url: str, conditions: ConditionCompiler, *, min_size: int = 2, max_size: int = 16
    ) -> None:
        super().__init__(conditions)
        self.pool = ConnectionPool(  # acknowledged means flushed to disk, whatever the server's default
            url,
            min_size=min_size,
            max_size=max_size,
            open=True,
            kwargs={"autocommit": False, "options": "-c synchronous_commit=on"},
        )
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7426001)")  # one schema creator at a time
            self.create_schema(cur)
            cur.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', %s) ON CONFLICT DO NOTHING",
                (str(SCHEMA_VERSION),),
            )

    @contextlib.contextmanager
    def reading(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            conn.read_only = False
            with conn.transaction(), conn.cursor() as cur:
                cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield cur

    @contextlib.contextmanager
    def writing(self) -> Iterator[Any]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            yield cur

    def pipeline(self, cur: Any) -> contextlib.AbstractContextManager[Any]:
        return cur.connection.pipeline()  # type: ignore[no-any-return]

    def lock_key(self, cur: Any, key: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def close(self) -> None:
        self.pool.close()
