"""`sharedcare check`: prove a store is consistent, on either engine, while it keeps serving.

Everything is read in one snapshot, so concurrent writes cannot cause false alarms. Checked:

- every resource's versions are 1..n with no gap; `resources` points at version n (seq, lastUpdated, deleted);
- every version's bytes parse as JSON and carry its resourceType, id, meta.versionId and meta.lastUpdated;
  deletions have no bytes; no version belongs to no resource;
- the search index agrees with the bytes: the rows stored for each current resource are exactly the rows that the
  store would write for a fresh indexing of its current bytes (found by running the store's own
  `insert_index_rows` against a recording cursor, so the check follows the index layout wherever it goes);
  deleted resources have none, and no row points at a resource that does not exist;
- the change feed has exactly one position for every version;
- the engine's own check (SQLite `PRAGMA quick_check`), and, as warnings, durability settings that would lose
  acknowledged writes in a crash.

Problems name resources by type and id and index tables by name; they never quote resource content.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson

from sharedcare.fhir.index_rows import IndexRows
from sharedcare.store.migrations import LATEST, current_version
from sharedcare.store.sqlstore import INDEX_ROW_TABLES, SqlStore

INSERT = re.compile(r"\s*INSERT\s+INTO\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)
MAX_LISTED = 200


class Indexer(Protocol):
    def index(self, resource: dict[str, Any]) -> IndexRows: ...


@dataclass
class CheckReport:
    resources: int = 0
    versions: int = 0
    indexed: int = 0
    problem_count: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    def problem(self, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_LISTED:
            self.problems.append(message)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "resources": self.resources,
            "versions": self.versions,
            "indexed": self.indexed,
            "problem_count": self.problem_count,
            "problems": self.problems,
            "warnings": self.warnings,
        }


class RecordingCursor:
    """Stands in for a DB cursor: records the index rows the store would insert, grouped by table and columns."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, tuple[str, ...]], Counter[tuple[Any, ...]]] = defaultdict(Counter)

    def execute(self, sql: str, params: Iterable[Any] = ()) -> None:
        m = INSERT.match(sql)
        if m:
            cols = tuple(c.strip() for c in m.group(2).split(","))
            self.rows[(m.group(1), cols)][normalise_row(params)] += 1

    def executemany(self, sql: str, seq: Iterable[Iterable[Any]]) -> None:
        for params in seq:
            self.execute(sql, params)


def normalise_row(values: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(_value(v) for v in values)


def _value(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, int | float | Decimal):
        return float(v)
    if isinstance(v, memoryview | bytes):
        return bytes(v)
    return str(v)


def check_store(
    store: SqlStore,
    indexer: Indexer,
    *,
    index: bool = True,
    batch: int = 500,
    progress: Callable[[int], None] | None = None,
) -> CheckReport:
    report = CheckReport()
    index_tables = list(INDEX_ROW_TABLES)
    columns: dict[str, tuple[str, ...]] = {}
    with store.reading() as cur:
        version = current_version(cur)
        if version != LATEST:
            report.warnings.append(f"schema version {version}; this sharedcare expects {LATEST}")
        cur.execute("SELECT COALESCE(MAX(rid), 0) FROM resources")
        max_rid = int(cur.fetchone()[0])
        for lo in range(0, max_rid + 1, batch):
            _check_batch(store, cur, indexer, report, lo, lo + batch, index, index_tables, columns)
            if progress is not None:
                progress(min(lo + batch, max_rid))
        _check_beyond(store, cur, report, max_rid, index_tables)
        if version >= 2:
            _check_feed(cur, report)
        _check_engine(store, cur, report)
    return report


def _check_batch(
    store: SqlStore,
    cur: Any,
    indexer: Indexer,
    report: CheckReport,
    lo: int,
    hi: int,
    index: bool,
    index_tables: list[str],
    columns: dict[str, tuple[str, ...]],
) -> None:
    d = store.dialect
    cur.execute(
        d.sql("SELECT rid, type, id, version, seq, last_updated, deleted FROM resources WHERE rid >= ? AND rid < ?"),
        (lo, hi),
    )
    resources = {r[0]: r for r in cur.fetchall()}
    cur.execute(
        d.sql(
            "SELECT rid, seq, type, id, version, last_updated, method, body FROM versions "
            "WHERE rid >= ? AND rid < ? ORDER BY rid, version"
        ),
        (lo, hi),
    )
    versions: dict[int, list[tuple[Any, ...]]] = defaultdict(list)
    for row in cur.fetchall():
        versions[row[0]].append(row)
    report.resources += len(resources)
    report.versions += sum(len(v) for v in versions.values())
    for rid in versions.keys() - resources.keys():
        v = versions[rid][0]
        report.problem(f"{v[2]}/{v[3]}: versions without a resource row (rid {rid})")
    expected = RecordingCursor()
    live: list[int] = []
    for rid, res in resources.items():
        current = _check_resource(report, res, versions.get(rid, []))
        if index and current is not None and not res[6]:
            store.insert_index_rows(expected, rid, res[1], indexer.index(current))
            live.append(rid)
    if index:
        report.indexed += len(live)
        _compare_index(cur, d, report, lo, hi, resources, expected, index_tables, columns)


def _check_resource(
    report: CheckReport, res: tuple[Any, ...], versions: list[tuple[Any, ...]]
) -> dict[str, Any] | None:
    """Check one resource's version chain and bytes; returns its current version parsed (None if unusable)."""
    rid, rtype, rid_str, version, seq, last_updated, deleted = res
    name = f"{rtype}/{rid_str}"
    numbers = [v[4] for v in versions]
    if numbers != list(range(1, len(numbers) + 1)):
        report.problem(f"{name}: versions are {_short(numbers)}, not 1..{len(numbers)}")
    if not versions:
        report.problem(f"{name}: no versions")
        return None
    latest = versions[-1]
    if (latest[4], latest[1], latest[5]) != (version, seq, last_updated):
        report.problem(f"{name}: resources row says version {version}, the latest version is {latest[4]}")
    if bool(deleted) != (latest[7] is None):
        report.problem(f"{name}: deleted flag disagrees with the latest version")
    current = None
    for v in versions:
        parsed = _check_bytes(report, name, v)
        if v is latest:
            current = parsed
    return current


def _check_bytes(report: CheckReport, name: str, v: tuple[Any, ...]) -> dict[str, Any] | None:
    _, _, rtype, rid, version, last_updated, method, body = v
    if v[2] != name.split("/", 1)[0] or v[3] != name.split("/", 1)[1]:
        report.problem(f"{name}: version {version} is recorded under {rtype}/{rid}")
    if body is None:
        if method != "DELETE":
            report.problem(f"{name}: version {version} has no bytes but was made by {method}")
        return None
    try:
        parsed = orjson.loads(bytes(body))
    except orjson.JSONDecodeError:
        report.problem(f"{name}: version {version} is not valid JSON")
        return None
    meta = parsed.get("meta") if isinstance(parsed, dict) else None
    if not isinstance(parsed, dict) or parsed.get("resourceType") != rtype or parsed.get("id") != rid:
        report.problem(f"{name}: version {version}'s bytes carry another resourceType or id")
    elif not isinstance(meta, dict) or meta.get("versionId") != str(version):
        report.problem(f"{name}: version {version}'s meta.versionId is {meta.get('versionId') if meta else None}")
    elif meta.get("lastUpdated") != last_updated:
        report.problem(f"{name}: version {version}'s meta.lastUpdated differs from the stored one")
    return parsed if isinstance(parsed, dict) else None


def _compare_index(
    cur: Any,
    d: Any,
    report: CheckReport,
    lo: int,
    hi: int,
    resources: dict[int, tuple[Any, ...]],
    expected: RecordingCursor,
    index_tables: list[str],
    columns: dict[str, tuple[str, ...]],
) -> None:
    by_table = {table: (cols, rows) for (table, cols), rows in expected.rows.items()}
    for table in dict.fromkeys([*index_tables, *by_table]):
        cols, want = by_table.get(table, (columns.get(table), Counter()))
        if cols is None:
            cur.execute(d.sql(f"SELECT rid FROM {table} WHERE rid >= ? AND rid < ?"), (lo, hi))
            stray = {r[0] for r in cur.fetchall()}
            for rid in stray:
                report.problem(f"{_name(resources, rid)}: index rows in {table} that its bytes do not produce")
            continue
        columns[table] = cols
        cur.execute(d.sql(f"SELECT {', '.join(cols)} FROM {table} WHERE rid >= ? AND rid < ?"), (lo, hi))
        have = Counter(normalise_row(r) for r in cur.fetchall())
        if have != want:
            rid_at = cols.index("rid") if "rid" in cols else 0
            bad = {row[rid_at] for row in (have - want) + (want - have)}
            for rid in sorted(bad, key=lambda x: (x is None, x)):
                report.problem(f"{_name(resources, rid)}: index rows in {table} disagree with its bytes")


def _name(resources: dict[int, tuple[Any, ...]], rid: Any) -> str:
    key = int(rid) if isinstance(rid, float) else rid
    res = resources.get(key)
    return f"{res[1]}/{res[2]}" if res else f"rid {rid} (no such resource)"


def _check_beyond(store: SqlStore, cur: Any, report: CheckReport, max_rid: int, index_tables: list[str]) -> None:
    for table in ("versions", *index_tables):
        cur.execute(store.dialect.sql(f"SELECT COUNT(*) FROM {table} WHERE rid > ?"), (max_rid,))
        n = int(cur.fetchone()[0])
        if n:
            report.problem(f"{table}: {n} rows point past the last resource")


def _check_feed(cur: Any, report: CheckReport) -> None:
    cur.execute("SELECT COUNT(*) FROM versions v WHERE NOT EXISTS (SELECT 1 FROM changes c WHERE c.seq = v.seq)")
    missing = int(cur.fetchone()[0])
    if missing:
        report.problem(f"change feed: {missing} versions have no feed position")
    cur.execute("SELECT COUNT(*) FROM changes c WHERE NOT EXISTS (SELECT 1 FROM versions v WHERE v.seq = c.seq)")
    dangling = int(cur.fetchone()[0])
    if dangling:
        report.problem(f"change feed: {dangling} positions point at no version")


def _check_engine(store: SqlStore, cur: Any, report: CheckReport) -> None:
    if store.dialect.name == "sqlite":
        cur.execute("PRAGMA quick_check")
        result = [r[0] for r in cur.fetchall()]
        if result != ["ok"]:
            report.problem(f"SQLite quick_check: {'; '.join(result[:5])}")
        synchronous = getattr(store, "_synchronous", "FULL")
        if str(synchronous).upper() not in ("FULL", "EXTRA", "2", "3"):
            report.warnings.append(f"SQLite synchronous={synchronous}: a power cut can lose acknowledged writes")
        return
    for setting in ("fsync", "synchronous_commit", "full_page_writes"):
        cur.execute(f"SHOW {setting}")
        value = cur.fetchone()[0]
        if value == "off":
            report.warnings.append(f"PostgreSQL {setting}=off: a machine crash can lose acknowledged writes")


def _short(numbers: list[int]) -> str:
    return str(numbers) if len(numbers) <= 8 else f"{numbers[:4]}...{numbers[-2:]}"
