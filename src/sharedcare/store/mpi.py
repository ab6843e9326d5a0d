"""The master patient index tables and their SQL, for both dialects.

The FHIR resources (Patient as sent, Person with its links, Task for review, Provenance) are the record; these
tables are derived state that makes matching fast and keeps human decisions:

- `mpi_record`: one row per current source Patient: its Person, link assurance and normalised match features.
- `mpi_block`: blocking keys → Patient ids, so candidates are found by index instead of a scan.
- `mpi_review`: the review queue (one row per review Task) for fast lookup by patient and status.
- `mpi_rule`: human decisions (link / no-link between two source Patients) that every re-link honours.
- `mpi_fact`: a fingerprint per clinical resource so `$everything` can flag the same fact sent by two
  organisations.

Created with CREATE TABLE IF NOT EXISTS when the server starts (`ensure_schema`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sharedcare.store.schema import Dialect, pending_ddl
from sharedcare.store.search_exec import Restrict
from sharedcare.store.sqlstore import SqlStore

CHUNK = 500


def mpi_ddl(d: Dialect) -> list[str]:
    """The MPI tables. Records and blocking keys are written on every Patient write, so on SQLite they are stored
    in their primary key's order (WITHOUT ROWID): one B-tree less to update per row. Stores created before keep
    their rowid tables and `mpi_block_key` index, which the same statements use."""
    real = d.real
    clustered = " WITHOUT ROWID" if d.name == "sqlite" else ""
    return [
        f"""CREATE TABLE IF NOT EXISTS mpi_record (
            patient_id TEXT PRIMARY KEY, person_id TEXT NOT NULL, assurance TEXT NOT NULL, features TEXT NOT NULL
            ){clustered}""",
        "CREATE INDEX IF NOT EXISTS mpi_record_person ON mpi_record (person_id)",
        "CREATE TABLE IF NOT EXISTS mpi_block (key TEXT NOT NULL, patient_id TEXT NOT NULL, "
        f"PRIMARY KEY (key, patient_id)){clustered}",
        "CREATE INDEX IF NOT EXISTS mpi_block_patient ON mpi_block (patient_id)",
        f"""CREATE TABLE IF NOT EXISTS mpi_review (
            task_id TEXT PRIMARY KEY, patient_id TEXT NOT NULL, candidate_id TEXT NOT NULL,
            weight {real} NOT NULL, status TEXT NOT NULL, created TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS mpi_review_status ON mpi_review (status, created)",
        "CREATE INDEX IF NOT EXISTS mpi_review_patient ON mpi_review (patient_id)",
        "CREATE INDEX IF NOT EXISTS mpi_review_candidate ON mpi_review (candidate_id)",
        """CREATE TABLE IF NOT EXISTS mpi_rule (
            patient_a TEXT NOT NULL, patient_b TEXT NOT NULL, rule TEXT NOT NULL, source TEXT NOT NULL,
            PRIMARY KEY (patient_a, patient_b))""",
        "CREATE INDEX IF NOT EXISTS mpi_rule_b ON mpi_rule (patient_b)",
        "CREATE TABLE IF NOT EXISTS mpi_fact (type TEXT NOT NULL, id TEXT NOT NULL, fp TEXT NOT NULL, "
        "PRIMARY KEY (type, id))",
        "CREATE INDEX IF NOT EXISTS mpi_fact_fp ON mpi_fact (fp)",
    ]


def _chunks(values: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), CHUNK):
        yield values[i : i + CHUNK]


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class MpiSql:
    """MPI queries over one open cursor (inside a write transaction or a read snapshot)."""

    def __init__(self, cur: Any, dialect: Dialect, false: str) -> None:
        self.cur, self.d, self.false = cur, dialect, false

    def _exec(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.cur.execute(self.d.sql(sql), args)

    def _all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        self._exec(sql, args)
        return list(self.cur.fetchall())

    def _many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cur.executemany(self.d.sql(sql), rows)

    # --- records and blocks ---------------------------------------------------------------------------
    def candidates(self, keys: Sequence[tuple[str, int]], exclude: str, limit: int) -> list[tuple[str, str, str, str]]:
        """(patient_id, person_id, assurance, features) of the records sharing a blocking key with `keys` ((key, cap)
        pairs), at most `limit` of them, those sharing most keys first, in one statement.

        A key held by more records than its cap is too common to pair on and is skipped; each key's rows are read
        at most cap + 1 at a time, so the cost stays bounded however many records share one value."""
        if not keys:
            return []
        arm = "SELECT key, patient_id, CAST(? AS INTEGER) AS cap FROM mpi_block WHERE key = ? LIMIT ?"
        arms = " UNION ALL ".join(f"SELECT * FROM ({arm}) b{i}" for i in range(len(keys)))
        return self._all(
            f"WITH hits (key, patient_id, cap) AS ({arms}), "
            "usable AS (SELECT key FROM hits GROUP BY key HAVING COUNT(*) <= MAX(cap)), "
            "cand AS (SELECT patient_id, COUNT(*) AS shared FROM hits WHERE key IN (SELECT key FROM usable) "
            "AND patient_id <> ? GROUP BY patient_id ORDER BY shared DESC, patient_id LIMIT ?) "
            "SELECT r.patient_id, r.person_id, r.assurance, r.features FROM cand c "
            "JOIN mpi_record r ON r.patient_id = c.patient_id ORDER BY c.shared DESC, r.patient_id",
            [*(x for key, cap in keys for x in (cap, key, cap + 1)), exclude, limit],
        )

    def records(self, patient_ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
        """(patient_id, person_id, assurance, features) rows."""
        out: list[tuple[str, str, str, str]] = []
        for chunk in _chunks(list(patient_ids)):
            out += self._all(
                "SELECT patient_id, person_id, assurance, features FROM mpi_record "
                f"WHERE patient_id IN ({_marks(len(chunk))})",
                chunk,
            )
        return out

    def record(self, patient_id: str) -> tuple[str, str, str, str] | None:
        rows = self.records([patient_id])
        return rows[0] if rows else None

    def members(self, person_ids: Sequence[str]) -> list[tuple[str, str, str, str]]:
        out: list[tuple[str, str, str, str]] = []
        for chunk in _chunks(list(person_ids)):
            out += self._all(
                "SELECT patient_id, person_id, assurance, features FROM mpi_record "
                f"WHERE person_id IN ({_marks(len(chunk))}) ORDER BY patient_id",
                chunk,
            )
        return out

    def all_records(self) -> list[tuple[str, str, str, str]]:
        return self._all("SELECT patient_id, person_id, assurance, features FROM mpi_record")

    def put_record(self, patient_id: str, person_id: str, assurance: str, features: str) -> None:
        self._exec(
            "INSERT INTO mpi_record (patient_id, person_id, assurance, features) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (patient_id) DO UPDATE SET person_id = excluded.person_id, "
            "assurance = excluded.assurance, features = excluded.features",
            (patient_id, person_id, assurance, features),
        )

    def move(self, patient_id: str, person_id: str, assurance: str) -> None:
        self._exec(
            "UPDATE mpi_record SET person_id = ?, assurance = ? WHERE patient_id = ?",
            (person_id, assurance, patient_id),
        )

    def delete_record(self, patient_id: str) -> None:
        self._exec("DELETE FROM mpi_record WHERE patient_id = ?", (patient_id,))
        self._exec("DELETE FROM mpi_block WHERE patient_id = ?", (patient_id,))

    def replace_blocks(self, patient_id: str, keys: Iterable[str], *, new: bool = False) -> None:
        """The record's blocking keys; `new` when it has none yet (its first match), so nothing to delete."""
        if not new:
            self._exec("DELETE FROM mpi_block WHERE patient_id = ?", (patient_id,))
        self._many(
            "INSERT INTO mpi_block (key, patient_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(k, patient_id) for k in keys],
        )

    def replace_all(self, records: Sequence[tuple[str, str, str, str]], blocks: Sequence[tuple[str, str]]) -> None:
        """Swap in a whole re-linked index (batch re-link), inserted in key order (the tables' own order)."""
        self._exec("DELETE FROM mpi_record")
        self._exec("DELETE FROM mpi_block")
        self._many(
            "INSERT INTO mpi_record (patient_id, person_id, assurance, features) VALUES (?, ?, ?, ?)", sorted(records)
        )
        self._many("INSERT INTO mpi_block (key, patient_id) VALUES (?, ?) ON CONFLICT DO NOTHING", sorted(blocks))

    # --- review queue -------------------------------------------------------------------------------
    def add_review(self, task_id: str, patient_id: str, candidate_id: str, weight: float, created: str) -> None:
        self._exec(
            "INSERT INTO mpi_review (task_id, patient_id, candidate_id, weight, status, created) "
            "VALUES (?, ?, ?, ?, 'requested', ?)",
            (task_id, patient_id, candidate_id, weight, created),
        )

    def review(self, task_id: str) -> tuple[str, str, str, float, str] | None:
        rows = self._all(
            "SELECT task_id, patient_id, candidate_id, weight, status FROM mpi_review WHERE task_id = ?", (task_id,)
        )
        return rows[0] if rows else None  # type: ignore[return-value]

    def open_reviews(self, count: int, offset: int) -> tuple[list[str], int]:
        total = self._all("SELECT COUNT(*) FROM mpi_review WHERE status = 'requested'")[0][0]
        rows = self._all(
            "SELECT task_id FROM mpi_review WHERE status = 'requested' ORDER BY created, task_id LIMIT ? OFFSET ?",
            (count, offset),
        )
        return [r[0] for r in rows], int(total)

    def open_reviews_touching(self, patient_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        """(task_id, patient_id, candidate_id) of open reviews naming any of these patients."""
        out: list[tuple[str, str, str]] = []
        for chunk in _chunks(list(patient_ids)):
            marks = _marks(len(chunk))
            out += self._all(
                "SELECT task_id, patient_id, candidate_id FROM mpi_review WHERE status = 'requested' "
                f"AND (patient_id IN ({marks}) OR candidate_id IN ({marks}))",
                [*chunk, *chunk],
            )
        return list(dict.fromkeys(out))

    def all_open_reviews(self) -> list[tuple[str, str, str]]:
        return self._all("SELECT task_id, patient_id, candidate_id FROM mpi_review WHERE status = 'requested'")

    def set_review_status(self, task_id: str, status: str) -> None:
        self._exec("UPDATE mpi_review SET status = ? WHERE task_id = ?", (status, task_id))

    def count_open_reviews(self) -> int:
        return int(self._all("SELECT COUNT(*) FROM mpi_review WHERE status = 'requested'")[0][0])

    # --- human decisions ---------------------------------------------------------------------------
    def put_rule(self, a: str, b: str, rule: str, source: str) -> None:
        a, b = sorted((a, b))
        self._exec(
            "INSERT INTO mpi_rule (patient_a, patient_b, rule, source) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (patient_a, patient_b) DO UPDATE SET rule = excluded.rule, source = excluded.source",
            (a, b, rule, source),
        )

    def delete_rule(self, a: str, b: str, rule: str) -> None:
        a, b = sorted((a, b))
        self._exec("DELETE FROM mpi_rule WHERE patient_a = ? AND patient_b = ? AND rule = ?", (a, b, rule))

    def delete_rules_from(self, source: str) -> None:
        self._exec("DELETE FROM mpi_rule WHERE source = ?", (source,))

    def rules_for(self, patient_ids: Sequence[str]) -> list[tuple[str, str, str]]:
        out: list[tuple[str, str, str]] = []
        for chunk in _chunks(list(patient_ids)):
            marks = _marks(len(chunk))
            out += self._all(
                "SELECT patient_a, patient_b, rule FROM mpi_rule "
                f"WHERE patient_a IN ({marks}) OR patient_b IN ({marks})",
                [*chunk, *chunk],
            )
        return list(dict.fromkeys(out))

    def all_rules(self) -> list[tuple[str, str, str]]:
        return self._all("SELECT patient_a, patient_b, rule FROM mpi_rule")

    # --- clinical facts (duplicate flags) -------------------------------------------------------------
    def put_fact(self, type: str, id: str, fp: str | None, *, replace: bool = True) -> None:
        if replace:
            self._exec("DELETE FROM mpi_fact WHERE type = ? AND id = ?", (type, id))
        if fp:
            self._exec("INSERT INTO mpi_fact (type, id, fp) VALUES (?, ?, ?)", (type, id, fp))

    def put_facts_many(self, stale: Sequence[tuple[str, str]], rows: Sequence[tuple[str, str, str]]) -> None:
        """A batch of fingerprints: (type, id) whose old print goes, then (type, id, fp) rows, one statement each."""
        self._many("DELETE FROM mpi_fact WHERE type = ? AND id = ?", stale)
        self._many("INSERT INTO mpi_fact (type, id, fp) VALUES (?, ?, ?)", rows)

    def put_facts(self, rows: Sequence[tuple[str, str, str]]) -> None:
        self._exec("DELETE FROM mpi_fact")
        self._many("INSERT INTO mpi_fact (type, id, fp) VALUES (?, ?, ?)", rows)

    # --- the longitudinal record --------------------------------------------------------------------
    def _everything_sql(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str],
        since: str | None,
        after_rid: int,
        restrict: Restrict | None = None,
    ) -> tuple[str, list[Any]]:
        """Each resource once, with the first linked Patient whose compartment holds it; `restrict` (alias →
        condition) is the caller's access restriction, ANDed in before LIMIT and COUNT."""
        inner = (
            "SELECT c.rid, MIN(c.comp_id) AS pid FROM compartment c WHERE c.comp_type = 'Patient' "
            f"AND c.comp_id IN ({_marks(len(patient_ids))}) AND c.rid > ? GROUP BY c.rid"
        )
        cond = f"r.deleted = {self.false}"
        args: list[Any] = [*patient_ids, after_rid]
        if types:
            cond += f" AND r.type IN ({_marks(len(types))})"
            args += list(types)
        if since:
            cond += " AND r.last_updated >= ?"
            args.append(since)
        if restrict is not None:
            rsql, rargs = restrict("r")
            if rsql:
                cond += f" AND {rsql}"
                args += rargs
        return f"FROM ({inner}) x JOIN resources r ON r.rid = x.rid {{join}} WHERE {cond}", args

    def everything_total(
        self, patient_ids: Sequence[str], types: Sequence[str], since: str | None, restrict: Restrict | None = None
    ) -> int:
        body, args = self._everything_sql(patient_ids, types, since, 0, restrict)
        return int(self._all(f"SELECT COUNT(*) {body.format(join='')}", args)[0][0])

    def everything_withheld(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str],
        since: str | None,
        restrict: Restrict,
        unlabelled: Restrict,
    ) -> bool:
        """Whether a resource of the record would be visible but for a sensitivity label (stops at the first)."""
        body, args = self._everything_sql(patient_ids, types, since, 0, unlabelled)
        rsql, rargs = restrict("r")
        if not rsql:
            return False
        return bool(self._all(f"SELECT 1 {body.format(join='')} AND NOT ({rsql}) LIMIT 1", [*args, *rargs]))

    def everything_page(
        self,
        patient_ids: Sequence[str],
        types: Sequence[str],
        since: str | None,
        after_rid: int,
        limit: int,
        restrict: Restrict | None = None,
    ) -> list[tuple[int, str, str, int, str, bytes, str]]:
        """(rid, type, id, version, last_updated, body, patient_id) in rid order after `after_rid`."""
        body, args = self._everything_sql(patient_ids, types, since, after_rid, restrict)
        rows = self._all(
            "SELECT r.rid, r.type, r.id, v.version, v.last_updated, v.body, x.pid "
            f"{body.format(join='JOIN versions v ON v.seq = r.seq')} ORDER BY r.rid LIMIT ?",
            [*args, limit],
        )
        return [(int(r[0]), r[1], r[2], int(r[3]), r[4], bytes(r[5]), r[6]) for r in rows]

    def facts_of(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], str]:
        out: dict[tuple[str, str], str] = {}
        for chunk in _chunks(list(keys)):
            cond = " OR ".join("(type = ? AND id = ?)" for _ in chunk)
            for t, i, fp in self._all(f"SELECT type, id, fp FROM mpi_fact WHERE {cond}", [x for k in chunk for x in k]):
                out[(t, i)] = fp
        return out

    def same_facts(
        self, fps: Sequence[str], patient_ids: Sequence[str], restrict: Restrict | None = None
    ) -> list[tuple[str, str, str, str]]:
        """(fp, type, id, patient_id) of current resources in these patients' compartments with these prints
        (only those the caller may see, under `restrict`: a duplicate flag must not name a hidden resource)."""
        out: list[tuple[str, str, str, str]] = []
        rsql, rargs = restrict("r") if restrict is not None else ("", [])
        extra = f" AND {rsql}" if rsql else ""
        for chunk in _chunks(list(dict.fromkeys(fps))):
            out += self._all(
                "SELECT f.fp, f.type, f.id, MIN(c.comp_id) FROM mpi_fact f "
                "JOIN resources r ON r.type = f.type AND r.id = f.id "
                "JOIN compartment c ON c.rid = r.rid AND c.comp_type = 'Patient' "
                f"WHERE f.fp IN ({_marks(len(chunk))}) AND c.comp_id IN ({_marks(len(patient_ids))}) "
                f"AND r.deleted = {self.false}{extra} GROUP BY f.fp, f.type, f.id",
                [*chunk, *patient_ids, *rargs],
            )
        return out


class MpiStore:
    """Binds MpiSql to the SQL store's read snapshots and write transactions."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.false = "FALSE" if store.dialect.name == "postgresql" else "0"

    def ensure_schema(self) -> None:
        def work(txn: Any) -> None:
            txn.lock("schema:mpi")
            for stmt in pending_ddl(txn.cur, self.store.dialect, mpi_ddl(self.store.dialect)):
                txn.cur.execute(stmt)

        self.store.transact(work)

    def within(self, txn: Any) -> MpiSql:
        """The MPI tables inside an open write transaction (a `SqlTxn`)."""
        return MpiSql(txn.cur, self.store.dialect, self.false)

    @contextlib.contextmanager
    def reading(self) -> Iterator[MpiSql]:
        with self.store.reading() as cur:
            yield MpiSql(cur, self.store.dialect, self.false)

    def read_bodies(self, type: str) -> list[tuple[str, bytes]]:
        """(id, body) of every current resource of a type: the batch re-link's input."""
        with self.store.reading() as cur:
            cur.execute(
                self.store.dialect.sql(
                    "SELECT r.id, v.body FROM resources r JOIN versions v ON v.seq = r.seq "
                    f"WHERE r.type = ? AND r.deleted = {self.false}"
                ),
                (type,),
            )
            return [(row[0], bytes(row[1])) for row in cur.fetchall()]
