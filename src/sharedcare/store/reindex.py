"""Custom SearchParameters: a reindex job per posted parameter, with progress, resumption and a final count check.

Posting (creating or updating) a SearchParameter records a job in the same transaction (`hook`), after checking
that the resource defines a usable parameter (a bad one fails the write). A worker thread then runs each job:

1. register the parameter, so every write from now on indexes it; wait a grace period so other processes
   (which poll the job table) register it too; note the time `t_reg`;
2. fix the job's snapshot: the highest resource key and version sequence visible then;
3. re-index every live resource of the parameter's base types up to the snapshot, in key order, a batch per
   transaction that also records the job's position, so a restarted server resumes where it stopped;
4. the tail: re-index versions written after the snapshot by a writer that indexed them before `t_reg`
   (their `last_updated`, the writer's transaction time, is earlier than `t_reg`);
5. the count check: every resource of those types still alive up to the snapshot must have been visited.

Until its job is done, searches with the parameter report it as not yet usable (`not_ready`), never as an empty
match. Jobs are claimed with a lease, so with several server processes one runs each job and a crashed one's job
is taken over. Replacing a parameter (same base and code) starts a new job; deleting a SearchParameter does not
unregister it (reported in the job's message).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from sharedcare.store.schema import pending_ddl
from sharedcare.store.sqlstore import SqlStore, SqlTxn, utc_now
from sharedcare.types import JSON, StoredResource

log = logging.getLogger("sharedcare.reindex")

BATCH = 500
LEASE_SECONDS = 30.0

DDL = """CREATE TABLE IF NOT EXISTS reindex_jobs (
    id TEXT PRIMARY KEY, resource_id TEXT NOT NULL, url TEXT NOT NULL, code TEXT NOT NULL, types TEXT NOT NULL,
    status TEXT NOT NULL, t_reg TEXT, snapshot_rid BIGINT, snapshot_seq BIGINT, last_rid BIGINT NOT NULL,
    processed BIGINT NOT NULL, expected BIGINT, alive BIGINT, created TEXT NOT NULL, updated TEXT NOT NULL,
    lease TEXT, message TEXT)"""
COLUMNS = (
    "id, resource_id, url, code, types, status, t_reg, snapshot_rid, snapshot_seq, last_rid, processed, expected, "
    "alive, created, updated, lease, message"
)


@dataclass
class Job:
    id: str
    resource_id: str
    url: str
    code: str
    types: tuple[str, ...]
    status: str  # queued | running | done | failed
    t_reg: str | None
    snapshot_rid: int | None
    snapshot_seq: int | None
    last_rid: int
    processed: int
    expected: int | None
    alive: int | None
    created: str
    updated: str
    lease: str | None
    message: str | None

    @classmethod
    def from_row(cls, row: tuple[Any, ...]) -> Job:
        values = list(row)
        values[4] = tuple(t for t in str(values[4]).split(",") if t)
        return cls(*values)

    def progress(self) -> str:
        total = f" of {self.expected}" if self.expected is not None else ""
        return f"{self.status}: {self.processed}{total} resources re-indexed"


class Reindexer:
    """The job table, the write hook and the worker; one per server process."""

    def __init__(
        self, store: SqlStore, registry: Any, indexer: Any, *, grace_seconds: float = 2.0, poll_seconds: float = 0.5
    ) -> None:
        self.store, self.registry, self.indexer = store, registry, indexer
        self.grace, self.poll = grace_seconds, poll_seconds
        self.owner = str(uuid.uuid4())
        self._ready: dict[str, bool] = {}  # url -> job done (for parameters registered from jobs)
        self._progress: dict[str, str] = {}
        self._seen: set[str] = set()  # job ids registered in this process
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        with store.writing() as cur:
            for stmt in pending_ddl(cur, store.dialect, [DDL]):
                cur.execute(stmt)
        self.sync()

    # ------------------------------------------------------------------------------------------ readiness

    def not_ready(self, param: Any) -> str | None:
        """Why a custom parameter cannot be searched yet (None when it can)."""
        url = getattr(param, "url", None)
        if url is None or self._ready.get(url, True):
            return None
        return f"Search parameter '{param.code}' is still being indexed ({self._progress.get(url, 'queued')})"

    # ------------------------------------------------------------------------------------------ write hook

    def hook(self, txn: Any, stored: StoredResource, resource: JSON | None) -> None:
        """Inside the SearchParameter's write transaction: check it and queue its reindex job."""
        if stored.type != "SearchParameter" or resource is None or resource.get("status") == "retired":
            return
        now = utc_now()
        try:
            param = self.registry.parse_resource(resource)
        except ValueError as exc:  # stored, but not usable for searching: say so in a failed job
            job = (str(uuid.uuid4()), stored.id, str(resource.get("url") or ""), str(resource.get("code") or ""),
                   "", "failed", None, None, None, 0, 0, None, None, now, now, None,
                   f"not registered: {exc}")
        else:
            known = self.registry.by_url(param.url)
            if known is not None and _same(known, param) and self._ready.get(param.url, not known.custom):
                return  # already indexed exactly so (e.g. a core definition loaded again)
            types = self._types(param.base)
            job = (str(uuid.uuid4()), stored.id, param.url, param.code, ",".join(types), "queued", None, None,
                   None, 0, 0, None, None, now, now, None, None)
        marks = ", ".join("?" * len(job))
        cur = _cursor(txn)
        cur.execute(self.store.dialect.sql(f"INSERT INTO reindex_jobs ({COLUMNS}) VALUES ({marks})"), job)
        self._wake.set()

    def _types(self, base: tuple[str, ...]) -> tuple[str, ...]:
        if any(b in ("Resource", "DomainResource") for b in base):
            return tuple(sorted(self.registry.resource_types))
        return tuple(base)

    # ------------------------------------------------------------------------------------------ jobs

    def jobs(self, resource_id: str | None = None) -> list[Job]:
        sql = f"SELECT {COLUMNS} FROM reindex_jobs"
        args: list[Any] = []
        if resource_id is not None:
            sql += " WHERE resource_id = ?"
            args.append(resource_id)
        with self.store.reading() as cur:
            cur.execute(self.store.dialect.sql(sql + " ORDER BY created"), args)
            return [Job.from_row(r) for r in cur.fetchall()]

    def sync(self) -> None:
        """Register the parameter of every job this process has not seen (posted here or by another process)."""
        for job in self.jobs():
            self._ready[job.url] = job.status == "done"
            self._progress[job.url] = job.progress()
            if job.id in self._seen or job.status == "failed":
                continue
            stored = self.store.read("SearchParameter", job.resource_id)
            if stored is None or stored.body is None:
                continue
            try:
                self.registry.register(orjson.loads(stored.body))
            except ValueError as exc:
                log.warning("cannot register SearchParameter/%s: %s", job.resource_id, exc)
                continue
            self._seen.add(job.id)

    # ------------------------------------------------------------------------------------------ worker

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="sharedcare-reindex", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pending()
            except Exception:  # noqa: BLE001 - the worker must outlive one bad job; the job records why
                log.exception("reindex worker")
            self._wake.wait(self.poll)
            self._wake.clear()

    def run_pending(self) -> int:
        """Claim and run every runnable job; returns how many finished. Safe to call from tests directly."""
        with self._lock:
            self.sync()
            finished = 0
            while (job := self._claim()) is not None:
                self.run(job)
                finished += 1
            self.sync()
            return finished

    def _claim(self) -> Job | None:
        now = utc_now()
        stale = _instant(datetime.now(UTC) - timedelta(seconds=LEASE_SECONDS))
        with self.store.writing() as cur:
            d = self.store.dialect
            cur.execute(d.sql(
                f"SELECT {COLUMNS} FROM reindex_jobs WHERE status = 'queued' OR (status = 'running' "
                "AND (lease IS NULL OR lease < ?)) ORDER BY created LIMIT 1" + (" FOR UPDATE SKIP LOCKED"
                                                                             if d.name == "postgresql" else "")
            ), [stale])
            row = cur.fetchone()
            if row is None:
                return None
            job = Job.from_row(row)
            cur.execute(d.sql("UPDATE reindex_jobs SET status = 'running', lease = ?, updated = ? WHERE id = ?"),
                        [now, now, job.id])
        job.status = "running"
        return job

    def run(self, job: Job) -> None:
        try:
            self._run(job)
        except Exception as exc:
            self._update(job, status="failed", message=f"{type(exc).__name__}: {exc}")
            raise

    def _run(self, job: Job) -> None:
        d = self.store.dialect
        if job.snapshot_rid is None:
            self.sync()  # registers this job's parameter: new writes index it from here on
            time.sleep(self.grace)  # other processes poll the job table and register it meanwhile
            t_reg = utc_now()
            with self.store.writing() as cur:
                if d.name == "postgresql":  # wait for writers already in flight, which indexed without it
                    cur.execute("LOCK TABLE resources IN SHARE MODE")
                cur.execute("SELECT COALESCE(MAX(rid), 0) FROM resources")
                snap_rid = int(cur.fetchone()[0])
                cur.execute("SELECT COALESCE(MAX(seq), 0) FROM versions")
                snap_seq = int(cur.fetchone()[0])
                marks = ", ".join("?" * len(job.types))
                cur.execute(d.sql(f"SELECT COUNT(*) FROM resources WHERE type IN ({marks}) AND rid <= ? AND "
                                  f"deleted = {_false(d.name)}"), [*job.types, snap_rid])
                expected = int(cur.fetchone()[0])
            job.t_reg, job.snapshot_rid, job.snapshot_seq, job.expected = t_reg, snap_rid, snap_seq, expected
            self._update(job)
        while self._batch(job):
            pass
        self._tail(job)
        self._check(job)

    def _batch(self, job: Job) -> bool:
        """Re-index the next batch of live resources up to the snapshot; False when there are none left."""
        d = self.store.dialect
        marks = ", ".join("?" * len(job.types))
        with self.store.reading() as cur:
            cur.execute(d.sql(
                f"SELECT rid, type, id FROM resources WHERE type IN ({marks}) AND rid > ? AND rid <= ? "
                f"AND deleted = {_false(d.name)} ORDER BY rid LIMIT {BATCH}"),
                [*job.types, job.last_rid, job.snapshot_rid])
            keys = [(int(r[0]), r[1], r[2]) for r in cur.fetchall()]
        if not keys:
            return False

        def work(txn: SqlTxn) -> int:
            done = sum(self._reindex_one(txn, rtype, id) for _, rtype, id in keys)
            job.last_rid, job.processed = keys[-1][0], job.processed + done
            self._update_on(txn.cur, job)
            return done

        self.store.transact(work, large=True)
        self._progress[job.url] = job.progress()
        return True

    def _reindex_one(self, txn: SqlTxn, rtype: str, id: str) -> int:
        current = txn.current(rtype, id)  # locks the resource against a concurrent writer
        if current is None or current.body is None:
            return 0
        cur = txn.cur
        cur.execute(self.store.dialect.sql("SELECT rid FROM resources WHERE type = ? AND id = ?"), (rtype, id))
        rid = int(cur.fetchone()[0])
        self.store.delete_index_rows(cur, rid)
        self.store.insert_index_rows(cur, rid, rtype, self.indexer.index(orjson.loads(current.body)))
        return 1

    def _tail(self, job: Job) -> None:
        """Versions committed after the snapshot but indexed before the parameter was registered."""
        d = self.store.dialect
        marks = ", ".join("?" * len(job.types))
        with self.store.reading() as cur:
            cur.execute(d.sql(
                f"SELECT DISTINCT type, id FROM versions WHERE seq > ? AND last_updated < ? AND type IN ({marks})"
            ), [job.snapshot_seq, job.t_reg, *job.types])
            keys = [(r[0], r[1]) for r in cur.fetchall()]
        for start in range(0, len(keys), BATCH):
            chunk = keys[start : start + BATCH]
            self.store.transact(lambda txn, c=chunk: sum(self._reindex_one(txn, t, i) for t, i in c), large=True)

    def _check(self, job: Job) -> None:
        d = self.store.dialect
        marks = ", ".join("?" * len(job.types))
        with self.store.reading() as cur:
            cur.execute(d.sql(f"SELECT COUNT(*) FROM resources WHERE type IN ({marks}) AND rid <= ? "
                              f"AND deleted = {_false(d.name)}"), [*job.types, job.snapshot_rid])
            job.alive = int(cur.fetchone()[0])
        if job.alive <= job.processed:
            self._update(job, status="done", message=f"re-indexed {job.processed} resources; {job.alive} alive "
                                                     f"at the end, all visited")
        else:
            self._update(job, status="failed", message=f"count check failed: {job.alive} resources alive but "
                                                       f"only {job.processed} re-indexed")

    def _update(self, job: Job, **changes: Any) -> None:
        for k, v in changes.items():
            setattr(job, k, v)
        with self.store.writing() as cur:
            self._update_on(cur, job)
        self._progress[job.url] = job.progress()
        self._ready[job.url] = job.status == "done"

    def _update_on(self, cur: Any, job: Job) -> None:
        now = utc_now()
        cur.execute(self.store.dialect.sql(
            "UPDATE reindex_jobs SET status = ?, t_reg = ?, snapshot_rid = ?, snapshot_seq = ?, last_rid = ?, "
            "processed = ?, expected = ?, alive = ?, updated = ?, lease = ?, message = ? WHERE id = ?"
        ), [job.status, job.t_reg, job.snapshot_rid, job.snapshot_seq, job.last_rid, job.processed, job.expected,
            job.alive, now, now if job.status == "running" else None, job.message, job.id])


def _same(a: Any, b: Any) -> bool:
    return (a.code, a.type, tuple(a.base), a.expression, tuple(a.target)) == (
        b.code, b.type, tuple(b.base), b.expression, tuple(b.target))


def _cursor(txn: Any) -> Any:
    cur = getattr(txn, "cur", None)
    if cur is None:
        raise TypeError("reindex jobs need a SQL store transaction")
    return cur


def _false(dialect: str) -> str:
    return "FALSE" if dialect == "postgresql" else "0"


def _instant(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def job_parameters(jobs: list[Job]) -> JSON:
    """The jobs of one SearchParameter as a Parameters resource (the `$reindex` operation's answer)."""
    parts = []
    for job in jobs:
        fields: list[JSON] = [
            {"name": "status", "valueCode": job.status},
            {"name": "processed", "valueInteger": job.processed},
            {"name": "created", "valueInstant": job.created},
            {"name": "updated", "valueInstant": job.updated},
        ]
        if job.expected is not None:
            fields.append({"name": "expected", "valueInteger": job.expected})
        if job.alive is not None:
            fields.append({"name": "alive", "valueInteger": job.alive})
        if job.message:
            fields.append({"name": "message", "valueString": job.message})
        parts.append({"name": "job", "part": fields})
    return {"resourceType": "Parameters", "parameter": parts}

