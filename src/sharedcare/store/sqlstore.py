"""The SQL body shared by the SQLite and PostgreSQL stores; subclasses supply connections and locking."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any, TypeVar

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.search.model import PagePosition, SearchRequest, SearchResult
from sharedcare.store.base import HistoryPage, HistoryQuery
from sharedcare.store.schema import INDEX_TABLES, Dialect, ddl, pending_ddl
from sharedcare.store.search_exec import Restrict, run_search
from sharedcare.store.searchsql import ConditionCompiler
from sharedcare.types import StoredResource

T = TypeVar("T")

ROW_FIELDS: dict[str, str] = {
    "idx_string": "strings",
    "idx_token": "tokens",
    "idx_reference": "references",
    "idx_date": "dates",
    "idx_number": "numbers",
    "idx_quantity": "quantities",
    "idx_uri": "uris",
}

ROW_GETTERS = {table: attrgetter(*INDEX_TABLES[table][0]) for table in ROW_FIELDS}


def utc_now() -> str:
    """A FHIR instant with microseconds, fixed width so that text order is time order."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class SqlTxn:
    """One open write transaction over a DB-API cursor."""

    def __init__(self, store: SqlStore, cur: Any, now: str) -> None:
        self.store, self.cur, self.now = store, cur, now
        self._d = store.dialect
        self._before_commit: dict[str, Callable[[], None]] = {}

    def before_commit(self, key: str, fn: Callable[[], None]) -> None:
        """Run `fn` once, just before this transaction commits (the first registration under `key` counts):
        work that many writes in one transaction need done once, such as signing the audit chain's head."""
        self._before_commit.setdefault(key, fn)

    def finish(self) -> None:
        while self._before_commit:  # a finishing step may register another
            key = next(iter(self._before_commit))
            self._before_commit.pop(key)()

    def lock(self, key: str) -> None:
        self.store.lock_key(self.cur, key)

    def current(self, type: str, id: str) -> StoredResource | None:
        self.store.lock_key(self.cur, f"{type}/{id}")
        return self.store.fetch_current(self.cur, type, id)

    def save(
        self, type: str, id: str, version: int, method: str, body: bytes | None, rows: IndexRows | None
    ) -> StoredResource:
        """One version. Only the resource's key is read back; everything after it is sent without waiting for
        answers (PostgreSQL pipeline mode: three round trips instead of a dozen)."""
        d, cur = self._d, self.cur
        with self.store.pipeline(cur):
            cur.execute(d.sql("SELECT rid FROM resources WHERE type = ? AND id = ?"), (type, id))
            found = cur.fetchone()
            rid = found[0] if found else None
            if rid is None:
                cur.execute(
                    d.sql(
                        "INSERT INTO resources (type, id, version, seq, last_updated, deleted) "
                        "VALUES (?, ?, ?, 0, ?, ?) RETURNING rid"
                    ),
                    (type, id, version, self.now, body is None),
                )
                rid = cur.fetchone()[0]
            else:
                self.store.delete_index_rows(cur, rid)
            cur.execute(
                d.sql(
                    "INSERT INTO versions (rid, type, id, version, last_updated, method, body) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                (rid, type, id, version, self.now, method, body),
            )
            cur.execute(
                d.sql(
                    "UPDATE resources SET version = ?, last_updated = ?, deleted = ?, "
                    "seq = (SELECT seq FROM versions WHERE rid = ? AND version = ?) WHERE rid = ?"
                ),
                (version, self.now, body is None, rid, version, rid),
            )
            if rows is not None and body is not None:
                self.store.insert_index_rows(cur, rid, type, rows)
        return StoredResource(type, id, version, self.now, body, method)

    def search_ids(self, type: str, params: Sequence[tuple[str, str]], limit: int = 2) -> list[str]:
        return self.store.search_ids_on(self.cur, type, params, limit)


class SqlStore:
    """Reads, history and atomic writes in plain SQL that both SQLite and PostgreSQL accept."""

    dialect: Dialect

    def __init__(self, conditions: ConditionCompiler) -> None:
        self.conditions = conditions

    # --- connection hooks, supplied by each engine -------------------------------------------------
    def reading(self) -> contextlib.AbstractContextManager[Any]:  # yields a cursor
        raise NotImplementedError

    def writing(self) -> contextlib.AbstractContextManager[Any]:  # yields a cursor inside a transaction
        raise NotImplementedError

    def lock_key(self, cur: Any, key: str) -> None:
        raise NotImplementedError

    def pipeline(self, cur: Any) -> contextlib.AbstractContextManager[Any]:
        """Statements in the block whose results are not fetched need not wait for each other (PostgreSQL)."""
        return contextlib.nullcontext()

    def close(self) -> None:
        raise NotImplementedError

    # --- schema -----------------------------------------------------------------------------------
    def create_schema(self, cur: Any) -> None:
        for stmt in pending_ddl(cur, self.dialect, ddl(self.dialect)):
            cur.execute(stmt)

    # --- reads ------------------------------------------------------------------------------------
    def read(self, type: str, id: str) -> StoredResource | None:
        with self.reading() as cur:
            return self.fetch_current(cur, type, id)

    def fetch_current(self, cur: Any, type: str, id: str) -> StoredResource | None:
        cur.execute(
            self.dialect.sql(
                "SELECT v.version, v.last_updated, v.body, v.method FROM resources r "
                "JOIN versions v ON v.seq = r.seq WHERE r.type = ? AND r.id = ?"
            ),
            (type, id),
        )
        row = cur.fetchone()
        return StoredResource(type, id, row[0], row[1], _bytes(row[2]), row[3]) if row else None

    def vread(self, type: str, id: str, version: int) -> StoredResource | None:
        with self.reading() as cur:
            cur.execute(
                self.dialect.sql(
                    "SELECT v.version, v.last_updated, v.body, v.method FROM resources r "
                    "JOIN versions v ON v.rid = r.rid WHERE r.type = ? AND r.id = ? AND v.version = ?"
                ),
                (type, id, version),
            )
            row = cur.fetchone()
        return StoredResource(type, id, row[0], row[1], _bytes(row[2]), row[3]) if row else None

    def count(self) -> int:
        with self.reading() as cur:
            cur.execute("SELECT COUNT(*) FROM resources WHERE deleted = " + self._false())
            return int(cur.fetchone()[0])

    def _false(self) -> str:
        return "FALSE" if self.dialect.name == "postgresql" else "0"

    def history(self, q: HistoryQuery, restrict: tuple[str, list[Any]] | None = None) -> HistoryPage:
        """A history page; `restrict` is an access condition over `versions v`, ANDed in before counting."""
        with self.reading() as cur:
            snapshot = q.snapshot
            if snapshot is None:
                cur.execute("SELECT COALESCE(MAX(seq), 0) FROM versions")
                snapshot = int(cur.fetchone()[0])
            cond, args = history_where(q, snapshot)
            if restrict and restrict[0]:
                cond, args = f"{cond} AND {restrict[0]}", [*args, *restrict[1]]
            cur.execute(self.dialect.sql(f"SELECT COUNT(*) FROM versions v WHERE {cond}"), args)
            total = int(cur.fetchone()[0])
            cur.execute(
                self.dialect.sql(
                    "SELECT v.type, v.id, v.version, v.last_updated, v.body, v.method FROM versions v "
                    f"WHERE {cond} ORDER BY v.seq DESC LIMIT ? OFFSET ?"
                ),
                [*args, q.count, q.offset],
            )
            rows = cur.fetchall()
        entries = [StoredResource(r[0], r[1], r[2], r[3], _bytes(r[4]), r[5]) for r in rows]
        return HistoryPage(entries, snapshot, total)

    # --- conditional matching -----------------------------------------------------------------------
    def search_ids(self, type: str, params: Sequence[tuple[str, str]], limit: int = 2) -> list[str]:
        with self.reading() as cur:
            return self.search_ids_on(cur, type, params, limit)

    match_restrict: Callable[[str], Restrict | None] | None = None
    """type → the current caller's restriction (set by the security wiring): conditional create, update, patch and
    delete match only among resources the caller may see, so they never reveal that a hidden one exists."""

    def search_ids_on(self, cur: Any, type: str, params: Sequence[tuple[str, str]], limit: int) -> list[str]:
        restrict = self.match_restrict(type) if self.match_restrict is not None else None
        where, args = self.conditions.compile(type, params, self.dialect, restrict=restrict)
        sql = f"SELECT r.id FROM resources r WHERE r.type = ? AND r.deleted = {self._false()}"
        if where:
            sql += " AND " + where
        if restrict is not None:
            rsql, rargs = restrict("r")
            if rsql:
                sql += " AND " + rsql
                args = [*args, *rargs]
        cur.execute(self.dialect.sql(sql + " ORDER BY r.rid LIMIT ?"), [type, *args, limit])
        return [row[0] for row in cur.fetchall()]

    def search_page(
        self,
        request: SearchRequest,
        position: PagePosition | None,
        restrict: Restrict | None = None,
        unlabelled: Restrict | None = None,
    ) -> SearchResult:
        """One page of a search, its total if asked, and its includes, from one consistent read; `restrict`
        (alias -> SQL condition) is ANDed into matches, counts and includes (see `search_exec.Restrict`)."""
        with self.reading() as cur:
            return run_search(cur, self.dialect, request, position, restrict, unlabelled)

    # --- writes -----------------------------------------------------------------------------------
    def transact(self, work: Callable[[SqlTxn], T], *, large: bool = False) -> T:
        with self.writing() as cur:
            txn = SqlTxn(self, cur, utc_now())
            result = work(txn)
            txn.finish()
            return result

    def delete_index_rows(self, cur: Any, rid: int) -> None:
        """Delete a resource's index rows, visiting only the tables it has rows in: one probe statement and a few
        deletes rather than a delete per table (each a round trip on PostgreSQL)."""
        cur.execute(self.dialect.sql(_PROBE_SQL), (rid,) * len(INDEX_ROW_TABLES))
        for (n,) in cur.fetchall():
            cur.execute(self.dialect.sql(f"DELETE FROM {INDEX_ROW_TABLES[n]} WHERE rid = ?"), (rid,))

    def insert_index_rows(self, cur: Any, rid: int, type: str, rows: IndexRows) -> None:
        for table, attr in ROW_FIELDS.items():
            values = getattr(rows, attr)
            if values:
                cols = INDEX_TABLES[table][0]
                marks = ", ".join("?" * (len(cols) + 2))
                sql = self.dialect.sql(f"INSERT INTO {table} (rid, type, {', '.join(cols)}) VALUES ({marks})")
                get = ROW_GETTERS[table]
                cur.executemany(sql, [(rid, type, *get(v)) for v in values])
        if rows.composites:
            sql = self.dialect.sql("INSERT INTO idx_composite (rid, type, param, c1, c2, c3) VALUES (?,?,?,?,?,?)")
            cur.executemany(sql, [(rid, type, c.param, *_pad3(c.components)) for c in rows.composites])
        if rows.compartments:
            sql = self.dialect.sql("INSERT INTO compartment (rid, type, comp_type, comp_id) VALUES (?, ?, ?, ?)")
            cur.executemany(sql, [(rid, type, c.comp_type, c.comp_id) for c in set(rows.compartments)])
        if rows.text:
            sql = self.dialect.sql("INSERT INTO fulltext_rows (rid, type, content) VALUES (?, ?, ?)")
            cur.execute(sql, (rid, type, rows.text))


INDEX_ROW_TABLES = (*INDEX_TABLES, "compartment", "fulltext_rows")
_PROBE_SQL = " UNION ALL ".join(
    f"SELECT {n} WHERE EXISTS (SELECT 1 FROM {table} WHERE rid = ?)" for n, table in enumerate(INDEX_ROW_TABLES)
)


def history_where(q: HistoryQuery, snapshot: int) -> tuple[str, list[Any]]:
    """The WHERE clause over `versions v` for a history query, bounded by a snapshot sequence number."""
    where: list[str] = ["v.seq <= ?"]
    args: list[Any] = [snapshot]
    if q.type:
        where.append("v.type = ?")
        args.append(q.type)
    if q.id:
        where.append("v.id = ?")
        args.append(q.id)
    if q.since:
        where.append("v.last_updated >= ?")
        args.append(q.since)
    if q.at:
        where.append(
            "v.last_updated <= ? AND NOT EXISTS (SELECT 1 FROM versions w WHERE w.rid = v.rid "
            "AND w.version > v.version AND w.last_updated <= ? AND w.seq <= ?)"
        )
        args += [q.at, q.at, snapshot]
    return " AND ".join(where), args


def _pad3(components: tuple[str, ...]) -> tuple[str | None, str | None, str | None]:
    padded = (*components[:3], None, None, None)
    return padded[0], padded[1], padded[2]


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


@contextlib.contextmanager
def closing_cursor(conn: Any) -> Iterator[Any]:
    cur = conn.cursor()
    try:
        yield cur
    finally:
        cur.close()
