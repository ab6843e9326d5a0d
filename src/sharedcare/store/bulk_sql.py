"""Store functions for bulk import and export, over an open `SqlStore` transaction or read cursor.

Kept apart from `sqlstore.py` so bulk work can batch what the one-resource path does row by row: a batch of new
resources gets its keys allocated at once and every table filled with one `executemany` (SQLite) or one `COPY`
(PostgreSQL). The rows written are exactly those `SqlTxn.save` writes (tests compare the two paths table by table).

Also here: the bulk tables (import checkpoints and rejected lines, bulk jobs), created on first use with
`CREATE TABLE IF NOT EXISTS`, and the streaming reads `$export` needs.
"""

from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.store.schema import INDEX_TABLES, NUMERIC_COLUMNS, ddl, pending_ddl
from sharedcare.store.sqlstore import ROW_FIELDS, ROW_GETTERS, SqlStore, SqlTxn

IndexParams = list[tuple[str, list[tuple[Any, ...]]]]
"""A resource's index rows as (table, rows without the leading rid and type), for the row-by-row write path."""

EXTRA_COLUMNS = {"compartment": ("comp_type", "comp_id"), "fulltext_rows": ("content",)}
FETCH = 1000
BULK_CACHE_MIN_KIB = 256 * 1024  # SQLite page cache of the writer while a bulk load runs: at least 256 MiB,
BULK_CACHE_MAX_KIB = 8 * 1024 * 1024  # at most 8 GiB,
BULK_CACHE_SHARE = 4  # and otherwise a quarter of the memory available when the load starts

BULK_DDL = [
    """CREATE TABLE IF NOT EXISTS import_progress (
        source TEXT PRIMARY KEY, path TEXT NOT NULL, kind TEXT NOT NULL, lines_done BIGINT NOT NULL,
        created BIGINT NOT NULL, updated BIGINT NOT NULL, unchanged BIGINT NOT NULL, errors BIGINT NOT NULL,
        status TEXT NOT NULL, changed_at TEXT NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS import_errors (source TEXT NOT NULL, line BIGINT NOT NULL, outcome TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS import_errors_source ON import_errors (source, line)",
    """CREATE TABLE IF NOT EXISTS bulk_jobs (
        id TEXT PRIMARY KEY, kind TEXT NOT NULL, status TEXT NOT NULL, request TEXT NOT NULL, created TEXT NOT NULL,
        transaction_time TEXT, progress TEXT, result TEXT, error TEXT, owner TEXT, heartbeat TEXT)""",
]


def ensure_schema(store: SqlStore) -> None:
    """Create the bulk tables if missing (idempotent; cheap enough to call whenever a bulk component starts)."""
    with store.writing() as cur:
        for stmt in pending_ddl(cur, store.dialect, BULK_DDL):
            cur.execute(stmt)


def is_postgres(store: SqlStore) -> bool:
    return store.dialect.name == "postgresql"


def _false(store: SqlStore) -> str:
    return "FALSE" if is_postgres(store) else "0"


# --- index rows ------------------------------------------------------------------------------------------------


def _pad3(components: tuple[str, ...]) -> tuple[str | None, str | None, str | None]:
    padded = (*components[:3], None, None, None)
    return padded[0], padded[1], padded[2]


def _columns(table: str) -> tuple[str, ...]:
    return EXTRA_COLUMNS.get(table) or INDEX_TABLES[table][0]


# --- index rows as JSON: expanded by the database in C, so the writer builds no Python row per index entry ------

IndexJson = dict[str, bytes]
"""Per table, a JSON array of rows `[item, type, column...]`, `item` being the resource's position in its batch."""

_INF = {float("inf"): "Infinity", float("-inf"): "-Infinity"}


def encode_index_rows(items: Sequence[tuple[str, IndexRows]]) -> IndexJson:
    """The index rows of a batch of (type, rows) as JSON per table, in one pass (the hot path of a bulk load's
    workers); infinite bounds travel as strings."""
    per_table: dict[str, list[list[Any]]] = {}
    for n, (rtype, rows) in enumerate(items):
        for table, attr in ROW_FIELDS.items():
            values = getattr(rows, attr)
            if not values:
                continue
            get, numeric = ROW_GETTERS[table], _numeric_positions(table)
            out = per_table.setdefault(table, [])
            if _single_column(table):
                out.extend([n, rtype, get(v)] for v in values)
            elif not numeric:
                out.extend([n, rtype, *get(v)] for v in values)
            else:
                for v in values:
                    row = [n, rtype, *get(v)]
                    for k in numeric:
                        if row[k] in _INF:
                            row[k] = _INF[row[k]]
                    out.append(row)
        if rows.composites:
            per_table.setdefault("idx_composite", []).extend(
                [n, rtype, c.param, *_pad3(c.components)] for c in rows.composites
            )
        if rows.compartments:
            per_table.setdefault("compartment", []).extend(
                [n, rtype, c.comp_type, c.comp_id] for c in set(rows.compartments)
            )
        if rows.text:
            per_table.setdefault("fulltext_rows", []).append([n, rtype, rows.text])
    return {table: orjson.dumps(rows) for table, rows in per_table.items()}


@functools.cache
def _single_column(table: str) -> bool:
    return len(_columns(table)) == 1


def decode_index(index: IndexJson) -> dict[int, IndexParams]:
    """Back to rows per item, for the row-by-row path (reloads, updates, repeated ids)."""
    out: dict[int, dict[str, list[tuple[Any, ...]]]] = {}
    for table, blob in index.items():
        numeric = _numeric_positions(table)
        for row in orjson.loads(blob):
            for k in numeric:
                if isinstance(row[k], str):
                    row[k] = float(row[k].replace("Infinity", "inf"))
            out.setdefault(row[0], {}).setdefault(table, []).append(tuple(row[2:]))
    return {n: list(tables.items()) for n, tables in out.items()}


@functools.cache
def _numeric_positions(table: str) -> tuple[int, ...]:
    return tuple(k + 2 for k, col in enumerate(_columns(table)) if (table, col) in NUMERIC_COLUMNS)


def _json_insert_sql(store: SqlStore, table: str) -> str:
    cols = _columns(table)
    numeric = set(_numeric_positions(table))
    if is_postgres(store):
        exprs = [f"(e->>{k})::float8" if k in numeric else f"e->>{k}" for k in range(2, len(cols) + 2)]
        head = "(%s::bigint[])[(e->>0)::int + 1], e->>1"
        source = "jsonb_array_elements(%s::jsonb) AS e"
    else:
        exprs = [
            f"CASE value->>{k} WHEN 'Infinity' THEN 9e999 WHEN '-Infinity' THEN -9e999 ELSE value->>{k} END"
            if k in numeric
            else f"value->>{k}"
            for k in range(2, len(cols) + 2)
        ]
        head = "? + (value->>0), value->>1"
        source = "json_each(?)"
    return f"INSERT INTO {table} (rid, type, {', '.join(cols)}) SELECT {head}, {', '.join(exprs)} FROM {source}"


def insert_new(txn: SqlTxn, rows: Sequence[tuple[str, str, bytes]], index: IndexJson, method: str = "PUT") -> list[int]:
    """Insert resources known to be new, as version 1 (type, id, final body), with the batch's index rows; returns
    their keys (`rid`), in order."""
    if not rows:
        return []
    store, cur, now = txn.store, txn.cur, txn.now
    rids = _allocate(store, cur, "resources", "rid", len(rows))
    seqs = _allocate(store, cur, "versions", "seq", len(rows))
    deleted = False if is_postgres(store) else 0
    triples = list(zip(rows, rids, seqs, strict=True))
    versions = [(seq, rid, t, i, 1, now, method, body) for (t, i, body), rid, seq in triples]
    _insert(store, cur, "versions", ("seq", "rid", "type", "id", "version", "last_updated", "method", "body"), versions)
    resources = [(rid, t, i, 1, seq, now, deleted) for (t, i, _), rid, seq in triples]
    _insert(store, cur, "resources", ("rid", "type", "id", "version", "seq", "last_updated", "deleted"), resources)
    first = rids[0]
    contiguous = rids[-1] - first == len(rids) - 1
    for table, blob in index.items():
        if is_postgres(store):
            cur.execute(_json_insert_sql(store, table), (rids, blob.decode()))
        elif contiguous:
            cur.execute(_json_insert_sql(store, table), (first, blob.decode()))
        else:  # never under SQLite's single writer; kept so the function stays correct whatever `_allocate` does
            rebased = [[rids[r[0]] - first, *r[1:]] for r in orjson.loads(blob)]
            cur.execute(_json_insert_sql(store, table), (first, orjson.dumps(rebased).decode()))
    return rids


# --- writes ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Current:
    """The current version of a resource, as a bulk write needs it."""

    rid: int
    version: int
    deleted: bool
    body: bytes | None


@dataclass(slots=True, eq=False)
class BulkRow:
    """One version to write: the final stamped body and its index rows."""

    type: str
    id: str
    version: int
    body: bytes
    index: IndexParams
    rid: int = 0  # set for replacements of an existing resource
    method: str = "PUT"


def lock_keys(txn: SqlTxn, keys: Iterable[str]) -> None:
    """Take the per-resource write locks the one-resource path takes (`Type/id`), sorted to avoid deadlocks."""
    if not is_postgres(txn.store):
        return  # SQLite writers are serialised by BEGIN IMMEDIATE
    sql = "SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest(%s::text[]) AS k"
    txn.cur.execute(sql, (sorted(keys),))


def current_many(txn: SqlTxn, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Current]:
    """Current versions of many resources in a few queries (grouped by type, chunked)."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    out: dict[tuple[str, str], Current] = {}
    d = txn.store.dialect
    for rtype, ids in by_type.items():
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            txn.cur.execute(
                d.sql(
                    "SELECT r.id, r.rid, r.version, r.deleted, v.body FROM resources r "
                    f"JOIN versions v ON v.seq = r.seq WHERE r.type = ? AND r.id IN ({marks})"
                ),
                [rtype, *chunk],
            )
            for id_, rid, version, deleted, body in txn.cur.fetchall():
                out[(rtype, id_)] = Current(rid, version, bool(deleted), None if body is None else bytes(body))
    return out


def write_rows(txn: SqlTxn, rows: Sequence[BulkRow]) -> None:
    """Insert new resources and replace existing ones (`row.rid` set), with all their index rows, in bulk."""
    if not rows:
        return
    store, cur, now = txn.store, txn.cur, txn.now
    fresh = [not r.rid for r in rows]
    new = [r for r, f in zip(rows, fresh, strict=True) if f]
    for row, rid in zip(new, _allocate(store, cur, "resources", "rid", len(new)), strict=True):
        row.rid = rid
    replaced = [(r.rid,) for r, f in zip(rows, fresh, strict=True) if not f]
    if replaced:
        for table in (*INDEX_TABLES, "compartment", "fulltext_rows"):
            cur.executemany(store.dialect.sql(f"DELETE FROM {table} WHERE rid = ?"), replaced)
    seqs = _allocate(store, cur, "versions", "seq", len(rows))
    deleted = False if is_postgres(store) else 0
    triples = list(zip(rows, seqs, fresh, strict=True))
    _insert(
        store,
        cur,
        "versions",
        ("seq", "rid", "type", "id", "version", "last_updated", "method", "body"),
        [(seq, r.rid, r.type, r.id, r.version, now, r.method, r.body) for r, seq, _ in triples],
    )
    _insert(
        store,
        cur,
        "resources",
        ("rid", "type", "id", "version", "seq", "last_updated", "deleted"),
        [(r.rid, r.type, r.id, r.version, seq, now, deleted) for r, seq, f in triples if f],
    )
    updates = [(r.version, seq, now, deleted, r.rid) for r, seq, f in triples if not f]
    if updates:
        cur.executemany(
            store.dialect.sql("UPDATE resources SET version = ?, seq = ?, last_updated = ?, deleted = ? WHERE rid = ?"),
            updates,
        )
    _insert_index(store, cur, rows)


def _insert_index(store: SqlStore, cur: Any, rows: Sequence[BulkRow]) -> None:
    per_table: dict[str, list[tuple[Any, ...]]] = {}
    for r in rows:
        head = (r.rid, r.type)
        for table, values in r.index:
            per_table.setdefault(table, []).extend([head + v for v in values])
    for table, values in per_table.items():
        _insert(store, cur, table, ("rid", "type", *_columns(table)), values)


def stored_count(store: SqlStore) -> int:
    """About how many resources the store holds (the highest key: cheap, and exact for a store only loaded)."""
    with store.reading() as cur:
        cur.execute("SELECT MAX(rid) FROM resources")
        found = cur.fetchone()[0]
    return int(found or 0)


def _allocate(store: SqlStore, cur: Any, table: str, column: str, n: int) -> list[int]:
    """`n` fresh keys for `table.column`: past the maximum under SQLite's single writer, from the sequence on PG."""
    if n == 0:
        return []
    if is_postgres(store):
        cur.execute(f"SELECT nextval(pg_get_serial_sequence('{table}', '{column}')) FROM generate_series(1, %s)", (n,))
        return [int(row[0]) for row in cur.fetchall()]
    cur.execute(f"SELECT COALESCE(MAX({column}), 0) FROM {table}")
    start = int(cur.fetchone()[0]) + 1
    return list(range(start, start + n))


def _insert(store: SqlStore, cur: Any, table: str, columns: Sequence[str], values: list[tuple[Any, ...]]) -> None:
    if not values:
        return
    cols = ", ".join(columns)
    if is_postgres(store):
        with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
            for row in values:
                copy.write_row(row)
        return
    cur.executemany(f"INSERT INTO {table} ({cols}) VALUES ({', '.join('?' * len(columns))})", values)


@contextlib.contextmanager
def bulk_cache(store: SqlStore) -> Iterator[None]:
    """SQLite: give the writer a page cache sized for a bulk load for its duration, then restore it. (The WAL is
    checkpointed, and kept bounded, by the store's own checkpointing thread.) PostgreSQL: nothing to do."""
    path = getattr(store, "path", None)
    if is_postgres(store) or not path or path == ":memory:":
        yield
        return
    with store.writing() as cur:
        cache = _pragma(cur, "cache_size")
        cur.execute(f"PRAGMA cache_size={-bulk_cache_kib()}")  # index pages stay in memory as the tables grow
    try:
        yield
    finally:
        with store.writing() as cur:
            cur.execute(f"PRAGMA cache_size={cache}")


def deferrable_indexes(store: SqlStore) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the search tables' value indexes: what only searches read. The indexes by `rid`
    (which updates and deletes use), the resources' unique key (which finds what is already stored) and every
    other table's indexes are never deferred."""
    names = {f"{table}_{n}" for table, (_, indexes) in INDEX_TABLES.items() for n in range(len(indexes))}
    out = []
    for stmt in ddl(store.dialect):
        words = stmt.split()
        if words[:5] == ["CREATE", "INDEX", "IF", "NOT", "EXISTS"] and words[5] in names:
            out.append((words[5], stmt))
    return out


@contextlib.contextmanager
def indexes_deferred(store: SqlStore, on_build: Callable[[], None] = lambda: None) -> Iterator[None]:
    """SQLite: drop the search tables' value indexes for the duration of a large load, then build them again.

    Why: each resource adds about 18 search rows, and keeping their value indexes current means a random B-tree
    insert per row per index, which grows dearer as the tables grow (the load slowed by a third between its first
    and its last 100k resources). Built afterwards from the finished tables, an index is one sorted pass.
    Meanwhile searches stay correct but scan. If the process dies first, the next start of anything on the
    store creates the missing indexes (the schema is `CREATE INDEX IF NOT EXISTS`). PostgreSQL: nothing to do."""
    path = getattr(store, "path", None)
    if is_postgres(store) or not path or path == ":memory:":
        yield
        return
    deferred = deferrable_indexes(store)
    with store.writing() as cur:
        for name, _ in deferred:
            cur.execute(f"DROP INDEX IF EXISTS {name}")
    try:
        yield
    finally:
        on_build()
        for _, create in deferred:  # one transaction each: a long build does not hold back other writers for all
            with store.writing() as cur:
                cur.execute(create)


def _pragma(cur: Any, name: str) -> int:
    cur.execute(f"PRAGMA {name}")
    return int(cur.fetchone()[0])


def bulk_cache_kib() -> int:
    """The bulk writer's page cache: a share of the available memory, within bounds. Past a few hundred thousand
    resources the index B-trees outgrow a fixed 256 MiB, and every commit then rereads the pages it inserts into."""
    available = _available_kib()
    if available is None:
        return BULK_CACHE_MIN_KIB
    return max(BULK_CACHE_MIN_KIB, min(BULK_CACHE_MAX_KIB, available // BULK_CACHE_SHARE))


def _available_kib() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def refresh_statistics(store: SqlStore) -> None:
    """PostgreSQL: ANALYZE after the tables have grown, so the planner stops treating them as the empty tables it
    last saw (conditional references and creates, and the write hooks' own lookups, then use an index, not a scan).
    The whole database, since write hooks keep tables of their own. SQLite: nothing."""
    if not is_postgres(store):
        return
    with store.writing() as cur:
        cur.execute("ANALYZE")


@contextlib.contextmanager
def savepoint(txn: SqlTxn) -> Iterator[None]:
    """A nested unit inside the open transaction: an exception undoes only its own writes."""
    name = f"sp_{uuid.uuid4().hex[:12]}"
    txn.cur.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        txn.cur.execute(f"ROLLBACK TO SAVEPOINT {name}")
        txn.cur.execute(f"RELEASE SAVEPOINT {name}")
        raise
    txn.cur.execute(f"RELEASE SAVEPOINT {name}")


# --- import checkpoints ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Progress:
    """How far an import of one source (identified by its content fingerprint) has committed."""

    source: str
    path: str
    kind: str
    lines_done: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    status: str = "running"  # running | done


def read_progress(store: SqlStore, source: str) -> Progress | None:
    with store.reading() as cur:
        cur.execute(
            store.dialect.sql(
                "SELECT source, path, kind, lines_done, created, updated, unchanged, errors, status "
                "FROM import_progress WHERE source = ?"
            ),
            (source,),
        )
        row = cur.fetchone()
    return Progress(*row) if row else None


def save_progress(txn: SqlTxn, p: Progress) -> None:
    """Record a checkpoint in the same transaction as the rows it covers, so the two commit together."""
    txn.cur.execute(
        txn.store.dialect.sql(
            "INSERT INTO import_progress (source, path, kind, lines_done, created, updated, unchanged, errors, "
            "status, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
            "path = excluded.path, lines_done = excluded.lines_done, created = excluded.created, "
            "updated = excluded.updated, unchanged = excluded.unchanged, errors = excluded.errors, "
            "status = excluded.status, changed_at = excluded.changed_at"
        ),
        (p.source, p.path, p.kind, p.lines_done, p.created, p.updated, p.unchanged, p.errors, p.status, txn.now),
    )


def add_errors(txn: SqlTxn, source: str, errors: Sequence[tuple[int, str]]) -> None:
    if errors:
        txn.cur.executemany(
            txn.store.dialect.sql("INSERT INTO import_errors (source, line, outcome) VALUES (?, ?, ?)"),
            [(source, line, outcome) for line, outcome in errors],
        )


def read_errors(store: SqlStore, source: str) -> Iterator[tuple[int, str]]:
    """Rejected lines of one source in line order, streamed."""
    with store.reading() as cur:
        sql = store.dialect.sql("SELECT line, outcome FROM import_errors WHERE source = ? ORDER BY line")
        yield from _stream(store, cur, sql, (source,))


# --- export reads ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExportQuery:
    """Current resources of one type, optionally changed since an instant, matching any of `filters`
    (each a compiled condition on `r`) and in the compartment of any of `patients` (None: no restriction)."""

    type: str
    since: str | None = None
    filters: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    patients: tuple[str, ...] | None = None
    any_patient: bool = False  # restrict to resources in some Patient compartment (Patient-level export)
    access: tuple[str, tuple[Any, ...]] | None = None  # the requester's access restriction, a condition on `r`


def export_rows(store: SqlStore, cur: Any, q: ExportQuery) -> Iterator[tuple[int, bytes]]:
    """(rid, body) in key order, streamed with bounded memory (a server-side cursor on PostgreSQL)."""
    where, args = [f"r.type = ? AND r.deleted = {_false(store)}"], [q.type]
    if q.since:
        where.append("r.last_updated >= ?")
        args.append(q.since)
    if q.filters:
        where.append("(" + " OR ".join(f"({sql})" for sql, _ in q.filters) + ")")
        for _, fargs in q.filters:
            args.extend(fargs)
    if q.patients is not None:
        marks = ", ".join("?" * len(q.patients))
        where.append(
            f"r.rid IN (SELECT c.rid FROM compartment c WHERE c.comp_type = 'Patient' AND c.comp_id IN ({marks}))"
        )
        args.extend(q.patients)
    elif q.any_patient:
        where.append("EXISTS (SELECT 1 FROM compartment c WHERE c.rid = r.rid AND c.comp_type = 'Patient')")
    if q.access is not None:
        where.append(f"({q.access[0]})")
        args.extend(q.access[1])
    sql = store.dialect.sql(
        "SELECT r.rid, v.body FROM resources r JOIN versions v ON v.seq = r.seq "
        f"WHERE {' AND '.join(where)} ORDER BY r.rid"
    )
    if is_postgres(store):  # binary COPY: rows streamed and decoded in C, not fetched a thousand at a time
        with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT BINARY)", args) as copy:
            copy.set_types(["int8", "bytea"])
            yield from copy.rows()
        return
    for rid, body in _stream(store, cur, sql, args):
        yield rid, bytes(body)


def snapshot_time(store: SqlStore, cur: Any) -> str:
    """The latest write visible to this read transaction (or now), as the export's transactionTime."""
    from sharedcare.store.sqlstore import utc_now

    cur.execute("SELECT MAX(last_updated) FROM versions")
    latest = cur.fetchone()[0]
    now = utc_now()
    return max(latest, now) if latest else now


def _stream(store: SqlStore, cur: Any, sql: str, args: Sequence[Any]) -> Iterator[Any]:
    if is_postgres(store):
        with cur.connection.cursor(name=f"bulk_{uuid.uuid4().hex[:12]}") as named:
            named.itersize = FETCH
            named.execute(sql, args)
            yield from named
        return
    cur.execute(sql, args)
    while rows := cur.fetchmany(FETCH):
        yield from rows


# --- bulk jobs -------------------------------------------------------------------------------------------------

JOB_COLUMNS = ("id", "kind", "status", "request", "created", "transaction_time", "progress", "result", "error")


def job_insert(store: SqlStore, row: dict[str, Any]) -> None:
    cols = [c for c in JOB_COLUMNS if c in row]
    with store.writing() as cur:
        cur.execute(
            store.dialect.sql(f"INSERT INTO bulk_jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"),
            [row[c] for c in cols],
        )


def job_update(store: SqlStore, job_id: str, **values: Any) -> None:
    sets = ", ".join(f"{k} = ?" for k in values)
    with store.writing() as cur:
        cur.execute(store.dialect.sql(f"UPDATE bulk_jobs SET {sets} WHERE id = ?"), [*values.values(), job_id])


def job_get(store: SqlStore, job_id: str) -> dict[str, Any] | None:
    with store.reading() as cur:
        cur.execute(store.dialect.sql(f"SELECT {', '.join(JOB_COLUMNS)} FROM bulk_jobs WHERE id = ?"), (job_id,))
        row = cur.fetchone()
    return dict(zip(JOB_COLUMNS, row, strict=True)) if row else None


def job_claim(store: SqlStore, job_id: str, owner: str, stale_before: str, now: str) -> bool:
    """Take over an unfinished job whose owner has stopped beating (compare-and-set, so one process wins)."""
    with store.writing() as cur:
        cur.execute(
            store.dialect.sql(
                "UPDATE bulk_jobs SET owner = ?, heartbeat = ? WHERE id = ? AND status IN ('accepted', 'in-progress') "
                "AND (owner IS NULL OR owner = ? OR heartbeat IS NULL OR heartbeat < ?)"
            ),
            (owner, now, job_id, owner, stale_before),
        )
        return bool(cur.rowcount)


def job_heartbeat(store: SqlStore, job_id: str, owner: str, now: str) -> None:
    with store.writing() as cur:
        cur.execute(
            store.dialect.sql("UPDATE bulk_jobs SET heartbeat = ? WHERE id = ? AND owner = ?"), (now, job_id, owner)
        )


def job_release(store: SqlStore, owner: str) -> None:
    with store.writing() as cur:
        cur.execute(
            store.dialect.sql(
                "UPDATE bulk_jobs SET owner = NULL WHERE owner = ? AND status IN ('accepted', 'in-progress')"
            ),
            (owner,),
        )


def jobs_unfinished(store: SqlStore) -> list[str]:
    with store.reading() as cur:
        cur.execute("SELECT id FROM bulk_jobs WHERE status IN ('accepted', 'in-progress') ORDER BY created")
        return [row[0] for row in cur.fetchall()]


def job_delete(store: SqlStore, job_id: str) -> None:
    with store.writing() as cur:
        cur.execute(store.dialect.sql("DELETE FROM bulk_jobs WHERE id = ?"), (job_id,))
