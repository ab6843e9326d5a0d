"""Bulk import: NDJSON, Bundle and single-resource files into the store, validated and indexed as the API does.

Shape of a run. NDJSON lines are read in batches; each batch is prepared (parsed, validated, stamped, indexed) in
worker processes, or inline, while the writer commits the previous one. A batch commits in one store transaction
together with its checkpoint (`import_progress`: lines done, per file fingerprint) and its rejected lines
(`import_errors`), so an interrupted import resumes exactly after the last committed batch and a finished file is
skipped when fed again.

NDJSON resources keep their ids (update-as-create, as `PUT Type/id`); a resource identical to the stored one apart
from `meta.versionId`/`meta.lastUpdated` is left alone, so reloading data makes no new versions. Transaction and
batch Bundles keep their semantics through `BundleProcessor` and the repository's units of work; each Bundle (or
batch entry) runs in a savepoint, so one failing Bundle does not undo the others committed with it.
"""

from __future__ import annotations

import collections
import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import orjson

from sharedcare.bulk.bundle_units import WHOLE_FILE, BundleUnits, bundle_entries
from sharedcare.bulk.prepare import (
    PrepareConfig,
    PreparedBatch,
    Preparer,
    Rejected,
    content_equal,
    init_worker,
    prepare_in_worker,
    reject,
    restamp,
)
from sharedcare.bulk.sources import LineReader, Source, read_json
from sharedcare.bundles import BundleProcessor, Planned
from sharedcare.errors import FhirError
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.service.repository import (
    Repository,
    WriteResult,
)
from sharedcare.store import bulk_sql
from sharedcare.store.bulk_sql import BulkRow, IndexParams, Progress
from sharedcare.store.sqlstore import SqlStore, SqlTxn
from sharedcare.types import Issue, StoredResource

T = TypeVar("T")
GROUP_SHARE = 16  # a commit group holds at least this fraction (1/16) of the resources already stored,
GROUP_MAX_BATCHES = 16  # up to this many batches
DEFER_MIN_RESOURCES = 5_000  # a load defers the search indexes if it brings this many and the store holds fewer
BYTES_PER_RESOURCE = 1_000  # resources, estimated from input size (generated records average ~0.9 kB, Synthea more)
GZIP_RATIO = 8  # about how much larger a gzipped input is uncompressed
Pending = tuple[Source, Progress, list[Planned]]  # a planned transaction Bundle waiting to be committed
_NEW = Progress("", "", "")


class ImportProgress(Protocol):
    """Told what the loader does, for a progress bar or a job's status."""

    def begin(self, total_bytes: int, files: int) -> None: ...

    def file(self, source: Source) -> None: ...

    def advance(self, nbytes: int, resources: int) -> None: ...

    def phase(self, text: str) -> None:
        """A step that is not reading input (e.g. building the search indexes at the end)."""


class NoProgress:
    def begin(self, total_bytes: int, files: int) -> None:
        return None

    def file(self, source: Source) -> None:
        return None

    def advance(self, nbytes: int, resources: int) -> None:
        return None

    def phase(self, text: str) -> None:
        return None


class ImportInterrupted(Exception):
    """Raised by the `fail_after_batches` test hook, as if the process had died after that many commits."""


@dataclass(frozen=True)
class ImportOptions:
    batch_size: int = 1000
    workers: int = 0  # processes preparing batches; 0 prepares in the writing thread
    fail_after_batches: int | None = None  # testing: stop as if killed after this many committed batches
    # Drop the search tables' value indexes for the load and build them at the end (SQLite; NDJSON-only loads).
    # None decides by size: a load of at least DEFER_MIN_RESOURCES that is as large as the store already is.
    # A server answering searches on the same store meanwhile should say False ($import does).
    defer_indexes: bool | None = None


@dataclass
class ImportStats:
    """What this run did (files finished by an earlier run count under `files_already_loaded`)."""

    files: int = 0
    files_already_loaded: int = 0
    files_resumed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: int = 0
    seconds: float = 0.0
    sources: list[Source] = field(default_factory=list)

    @property
    def written(self) -> int:
        return self.created + self.updated

    def add(self, before: Progress, after: Progress) -> None:
        self.created += after.created - before.created
        self.updated += after.updated - before.updated
        self.unchanged += after.unchanged - before.unchanged
        self.errors += after.errors - before.errors


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    def add(self, results: list[WriteResult | None], errors: list[tuple[int, str]]) -> None:
        for result in results:
            self.count(result)
        self.errors.extend(errors)

    def count(self, result: WriteResult | None) -> None:
        if result is None or not result.changed:
            self.unchanged += 1
        elif result.created:
            self.created += 1
        else:
            self.updated += 1

    def applied(self, p: Progress, lines_done: int, status: str = "running") -> Progress:
        return replace(
            p,
            lines_done=lines_done,
            created=p.created + self.created,
            updated=p.updated + self.updated,
            unchanged=p.unchanged + self.unchanged,
            errors=p.errors + len(self.errors),
            status=status,
        )


class Loader:
    """Loads sources into one store; reusable for several runs."""

    def __init__(
        self,
        store: SqlStore,
        repo: Repository,
        bundles: BundleProcessor,
        resource_types: frozenset[str],
        options: ImportOptions = ImportOptions(),
        progress: ImportProgress | None = None,
        prepare_config: PrepareConfig | None = None,
    ) -> None:
        self.store, self.repo, self.bundles = store, repo, bundles
        self.options = options
        self.progress = progress or NoProgress()
        self.preparer = Preparer(repo, resource_types)
        self.units = BundleUnits(repo, bundles)
        self.prepare_config = prepare_config or PrepareConfig(validate=repo.validate)
        self._batches = 0
        self._pipeline: _Pipeline | None = None
        self._group: list[tuple[str, PreparedBatch, bool]] = []  # batches waiting to commit together
        self._group_size = 0
        self._group_target = options.batch_size  # resources per commit group; grows with the store
        self._stored = 0  # resources in the store, roughly (what was there plus what this run wrote)
        self._initial: dict[str, Progress] = {}  # per source fingerprint, as this run found it
        self._latest: dict[str, Progress] = {}  # and as committed since
        bulk_sql.ensure_schema(store)

    # --- a run ------------------------------------------------------------------------------------------------
    def run(self, sources: Sequence[Source]) -> ImportStats:
        stats = ImportStats(sources=list(sources))
        started = time.perf_counter()
        self.progress.begin(sum(s.size for s in sources), len(sources))
        pipeline = _Pipeline(self.preparer, self.prepare_config, self.options.workers, self.options.batch_size)
        self._initial, self._latest = {}, {}
        self._stored = bulk_sql.stored_count(self.store)
        self._pipeline = pipeline
        self._grow_group(0)
        try:
            with bulk_sql.bulk_cache(self.store), self._indexes(sources):
                self._run(sources, pipeline, stats)
        finally:
            self._group, self._group_size = [], 0
            self._pipeline = None
            pipeline.close()
            stats.seconds = time.perf_counter() - started
        for source, before in self._initial.items():
            stats.add(before, self._latest[source])
        return stats

    def _indexes(self, sources: Sequence[Source]) -> contextlib.AbstractContextManager[None]:
        if not self._defer_indexes(sources):
            return contextlib.nullcontext()
        return bulk_sql.indexes_deferred(self.store, lambda: self.progress.phase("building search indexes"))

    def _defer_indexes(self, sources: Sequence[Source]) -> bool:
        """Whether to build the search indexes after the load rather than during it: only for NDJSON (Bundles'
        conditional references search as they load), and, unless told, only when the load is large and at least
        as large as the store (the build at the end reads the whole store)."""
        todo = [s for s in sources if (bulk_sql.read_progress(self.store, s.fingerprint) or _NEW).status != "done"]
        if not todo or any(s.kind != "ndjson" for s in todo):
            return False
        if self.options.defer_indexes is not None:
            return self.options.defer_indexes
        incoming = sum(s.size * (GZIP_RATIO if s.gzipped else 1) for s in todo) // BYTES_PER_RESOURCE
        return incoming >= max(DEFER_MIN_RESOURCES, self._stored)

    def _run(self, sources: Sequence[Source], pipeline: _Pipeline, stats: ImportStats) -> None:
        pending: list[Pending] = []
        ndjson: list[tuple[Source, Progress]] = []
        for source in sources:
            self.progress.file(source)
            fp = source.fingerprint
            before = bulk_sql.read_progress(self.store, fp) or Progress(fp, str(source.path), source.kind)
            if before.status == "done" or fp in self._initial:  # loaded before, or the same content twice now
                stats.files_already_loaded += 1
                self.progress.advance(source.size, 0)
                continue
            stats.files += 1
            stats.files_resumed += before.lines_done > 0
            self._initial[fp] = self._latest[fp] = before
            if source.kind == "ndjson":  # discovery orders these first: they stream through one pipeline
                ndjson.append((source, before))
                continue
            if ndjson:
                self._load_ndjson(ndjson, pipeline)
                ndjson = []
            if source.kind == "transaction":
                pending = self._queue_transaction(source, before, pending)
            else:
                self._flush()
                self._latest[fp] = self._load(source, before)
        if ndjson:
            self._load_ndjson(ndjson, pipeline)
        self._flush()
        self._flush_transactions(pending)

    def _load(self, source: Source, before: Progress) -> Progress:
        doc = self._read(source)
        if isinstance(doc, Rejected):
            after = self._reject_file(before, doc)
        elif source.kind == "batch":
            after = self._load_batch_bundle(source, before, doc)
        elif source.kind == "collection":
            entries = (doc.get("entry") or []) if isinstance(doc, dict) else []
            resources = [e.get("resource") if isinstance(e, dict) else None for e in entries]
            after = self._load_parsed(source, before, resources)
        else:
            after = self._load_parsed(source, before, [doc])
        self.progress.advance(source.size, 0)
        return after

    @staticmethod
    def _read(source: Source) -> Any:
        try:
            return read_json(source.path)
        except (orjson.JSONDecodeError, OSError, EOFError) as exc:
            return reject(WHOLE_FILE, [Issue("error", "structure", f"The file is not readable JSON: {exc}")])

    # --- NDJSON -----------------------------------------------------------------------------------------------
    def _load_ndjson(self, files: list[tuple[Source, Progress]], pipeline: _Pipeline) -> None:
        """Queue the files' batches through one pipeline, so workers prepare the next file while this one commits;
        small files share a store transaction, and a file's last batch marks it done."""
        for job, batch in pipeline.map(_ndjson_jobs(files, self.options.batch_size)):
            self._enqueue(job.source.fingerprint, batch, job.last)
            self.progress.advance(job.nbytes, 0)

    def _load_parsed(self, source: Source, before: Progress, resources: list[Any]) -> Progress:
        """Resources already parsed (a collection Bundle's entries, a single-resource file), numbered from 0."""
        numbered = list(enumerate(resources))[before.lines_done :]
        size = self.options.batch_size
        chunks = [numbered[i : i + size] for i in range(0, len(numbered), size)]
        for n, chunk in enumerate(chunks):
            results = [self.preparer.resource(source.fingerprint, k, r) for k, r in chunk]
            self._enqueue(source.fingerprint, PreparedBatch.of(chunk[-1][0] + 1, results), n == len(chunks) - 1)
        if not chunks:
            self._enqueue(source.fingerprint, PreparedBatch.empty(before.lines_done), True)
        self._flush()
        return self._latest[source.fingerprint]

    def _enqueue(self, source: str, batch: PreparedBatch, last: bool) -> None:
        self._group.append((source, batch, last))
        self._group_size += len(batch)
        if self._group_size >= self._group_target:
            self._flush()

    def _flush(self) -> None:
        """Commit the queued batches in one store transaction, with their checkpoints and rejected lines."""
        group, self._group, self._group_size = self._group, [], 0
        if not group:
            return

        def work(txn: SqlTxn, careful: bool) -> dict[str, Progress]:
            latest: dict[str, Progress] = {}
            for source, batch, last in group:
                counts = _Counts(errors=[(line, outcome.decode()) for line, outcome in batch.rejected])
                self._write_prepared(txn, batch, counts, careful)
                for line, raw in batch.bundles:
                    self._bundle_line(txn, line, orjson.loads(raw), counts)
                counts.errors.sort()
                bulk_sql.add_errors(txn, source, counts.errors)
                before = latest.get(source) or self._latest[source]
                latest[source] = counts.applied(before, batch.lines_done, "done" if last else "running")
                bulk_sql.save_progress(txn, latest[source])
            return latest

        def together(txn: SqlTxn) -> dict[str, Progress]:
            with self.repo.hooks_deferred(txn):  # the write hooks once over the whole group
                return work(txn, False)

        try:
            latest = self.store.transact(together, large=True)
        except FhirError:  # a write hook refused a resource: isolate it, load the rest
            latest = self.store.transact(lambda txn: work(txn, True), large=True)
        written = sum(
            p.created + p.updated - self._latest[s].created - self._latest[s].updated for s, p in latest.items()
        )
        self._latest.update(latest)
        self.progress.advance(0, written)
        self._grow_group(written)
        self._tick()

    def _write_prepared(self, txn: SqlTxn, batch: PreparedBatch, counts: _Counts, careful: bool) -> None:
        keys = [(rtype, rid) for _, rtype, rid in batch.items]
        if not careful and len(set(keys)) == len(keys):
            bulk_sql.lock_keys(txn, [f"{t}/{i}" for t, i in keys])
            if not bulk_sql.current_many(txn, keys):  # a fresh load: the fast path
                rows = [(t, i, restamp(body, 1, txn.now)) for (t, i), body in zip(keys, batch.bodies, strict=True)]
                bulk_sql.insert_new(txn, rows, batch.index)
                counts.created += len(rows)
                self._run_hooks(txn, [(t, i, 1, body) for t, i, body in rows])
                return
        index = bulk_sql.decode_index(batch.index)
        items = [
            _Decoded(line, rtype, rid, body, index.get(n, []))
            for n, ((line, rtype, rid), body) in enumerate(zip(batch.items, batch.bodies, strict=True))
        ]
        if careful:
            for item in items:
                try:
                    with bulk_sql.savepoint(txn):
                        self._write_batch(txn, [item], counts)
                except FhirError as err:
                    counts.errors.append((item.line, outcome_bytes(err.issues).decode()))
            return
        seen: set[tuple[str, str]] = set()
        firsts, repeats = [], []
        for item in items:
            key = (item.type, item.id)
            (repeats if key in seen else firsts).append(item)
            seen.add(key)
        self._write_batch(txn, firsts, counts)
        for item in repeats:  # the same resource twice in a batch: later lines update earlier ones, in order
            self._write_batch(txn, [item], counts)

    def _bundle_line(self, txn: SqlTxn, line: int, bundle: Any, counts: _Counts) -> None:
        """A transaction or batch Bundle on an NDJSON line: all or nothing, or entry by entry."""
        units = self.units
        if bundle.get("type") == "batch":
            entries = bundle_entries(bundle)
            if isinstance(entries, Rejected):
                counts.errors.append((line, entries.outcome.decode()))
                return
            planned = [units.plan_entry(n, e) for n, e in enumerate(entries)]
            results, errors = units.run_entries(txn, planned, line)
            counts.add(results, errors)
            return
        writes = units.plan_transaction(bundle)
        done = writes.outcome.decode() if isinstance(writes, Rejected) else units.run_transaction(txn, writes)
        if isinstance(done, str):
            counts.errors.append((line, done))
        else:
            counts.add(done, [])

    def _run_hooks(self, txn: SqlTxn, written: list[tuple[str, str, int, bytes]]) -> None:
        """The repository's write hooks over the batch, with what each API write gives them (the parsed resource)."""
        if self.repo.write_hooks:
            self.repo.run_hooks_many(
                txn,
                [(StoredResource(t, i, v, txn.now, body, "PUT"), orjson.loads(body)) for t, i, v, body in written],
            )

    def _write_batch(self, txn: SqlTxn, items: list[_Decoded], counts: _Counts) -> None:
        """Items with distinct keys: new ones inserted, changed ones given a new version, identical ones left."""
        keys = [(i.type, i.id) for i in items]
        bulk_sql.lock_keys(txn, [f"{t}/{i}" for t, i in keys])
        current = bulk_sql.current_many(txn, keys)
        rows: list[BulkRow] = []
        for item in items:
            cur = current.get((item.type, item.id))
            if cur is None:
                rows.append(BulkRow(item.type, item.id, 1, restamp(item.body, 1, txn.now), item.index))
                counts.created += 1
            elif cur.body is not None and content_equal(cur.body, item.body):
                counts.unchanged += 1
            else:
                version = cur.version + 1
                body = restamp(item.body, version, txn.now)
                rows.append(BulkRow(item.type, item.id, version, body, item.index, rid=cur.rid))
                if cur.deleted:
                    counts.created += 1
                else:
                    counts.updated += 1
        bulk_sql.write_rows(txn, rows)
        self._run_hooks(txn, [(r.type, r.id, r.version, r.body) for r in rows])

    def _grow_group(self, written: int) -> None:
        """Commit more at once as the store grows: each commit's index inserts land on pages spread over ever
        larger B-trees, so a bigger group shares each page it dirties (and each sync) among more rows. Small loads
        and tests keep one batch per commit (under `GROUP_SHARE` × batch size resources stored)."""
        self._stored += written
        size = self.options.batch_size
        self._group_target = max(size, min(size * GROUP_MAX_BATCHES, self._stored // GROUP_SHARE // size * size))
        if self._pipeline is not None:
            self._pipeline.keep_ahead(self._group_target)

    def _finish(self, p: Progress) -> Progress:
        done = replace(p, status="done")
        self.store.transact(lambda txn: bulk_sql.save_progress(txn, done))
        return done

    def _tick(self) -> None:
        """After each commit: statistics refreshed early on, the test hook's stop."""
        self._batches += 1
        if self._batches & (self._batches - 1) == 0:  # 1, 2, 4, 8... batches: the tables keep doubling early on
            bulk_sql.refresh_statistics(self.store)
        limit = self.options.fail_after_batches
        if limit is not None and self._batches >= limit:
            raise ImportInterrupted(f"stopped after {self._batches} committed batches (test hook)")

    # --- batch Bundles: each entry on its own, as POST [base] with a batch would -----------------------------
    def _load_batch_bundle(self, source: Source, before: Progress, doc: Any) -> Progress:
        entries = bundle_entries(doc)
        if isinstance(entries, Rejected):
            return self._reject_file(before, entries)
        p = before
        size = self.options.batch_size
        for start in range(before.lines_done, len(entries), size):
            chunk = list(enumerate(entries[start : start + size], start))
            p = self._commit_entries(p, [self.units.plan_entry(n, e) for n, e in chunk], chunk[-1][0] + 1)
        return self._finish(p)

    def _commit_entries(self, p: Progress, planned: list[Planned | Rejected], lines_done: int) -> Progress:
        def work(txn: SqlTxn) -> Progress:
            counts = _Counts()
            counts.add(*self.units.run_entries(txn, planned))
            bulk_sql.add_errors(txn, p.source, counts.errors)
            after = counts.applied(p, lines_done)
            bulk_sql.save_progress(txn, after)
            return after

        after = self.store.transact(work, large=True)
        self._tick()
        return after

    # --- transaction Bundles: all or nothing each, several per store transaction ------------------------------
    def _queue_transaction(self, source: Source, before: Progress, pending: list[Pending]) -> list[Pending]:
        doc = self._read(source)
        planned = doc if isinstance(doc, Rejected) else self.units.plan_transaction(doc)
        if isinstance(planned, Rejected):
            self._latest[before.source] = self._reject_file(before, planned)
            self.progress.advance(source.size, 0)
            return pending
        pending.append((source, before, planned))
        if sum(len(w) for _, _, w in pending) >= self.options.batch_size:
            self._flush_transactions(pending)
            return []
        return pending

    def _flush_transactions(self, pending: list[Pending]) -> None:
        if not pending:
            return

        def work(txn: SqlTxn) -> list[Progress]:
            out = []
            for _, before, writes in pending:
                counts = _Counts()
                done = self.units.run_transaction(txn, writes)
                if isinstance(done, str):
                    counts.errors.append((WHOLE_FILE, done))
                else:
                    counts.add(done, [])
                bulk_sql.add_errors(txn, before.source, counts.errors)
                after = counts.applied(before, 1, "done")
                bulk_sql.save_progress(txn, after)
                out.append(after)
            return out

        results = self.store.transact(work, large=True)
        for (source, before, _), after in zip(pending, results, strict=True):
            self._latest[before.source] = after
            self.progress.advance(source.size, after.created + after.updated)
        self._tick()

    def _reject_file(self, before: Progress, rejected: Rejected) -> Progress:
        counts = _Counts(errors=[(WHOLE_FILE, rejected.outcome.decode())])
        after = counts.applied(before, 1, "done")

        def work(txn: SqlTxn) -> None:
            bulk_sql.add_errors(txn, before.source, counts.errors)
            bulk_sql.save_progress(txn, after)

        self.store.transact(work)
        return after


def _with_last(items: Iterator[T]) -> Iterator[tuple[T, bool]]:
    """Each item, and whether it is the last one (one item of look-ahead)."""
    previous: list[T] = []
    for item in items:
        if previous:
            yield previous[0], False
        previous = [item]
    if previous:
        yield previous[0], True


def _chunks(lines: Iterator[tuple[int, bytes]], size: int) -> Iterator[list[tuple[int, bytes]]]:
    batch: list[tuple[int, bytes]] = []
    for line in lines:
        batch.append(line)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


@dataclass(frozen=True, slots=True)
class _Decoded:
    """A prepared resource on the row-by-row path (reloads, updates, repeated ids), its index rows decoded."""

    line: int
    type: str
    id: str
    body: bytes
    index: IndexParams


@dataclass(frozen=True, slots=True)
class _Job:
    """Lines of one file to prepare; `last` marks the file's final batch, `nbytes` the file bytes it read."""

    source: Source
    lines: list[tuple[int, bytes]]
    last: bool
    nbytes: int
    lines_done: int  # for a batch without lines: the checkpoint it confirms


def _ndjson_jobs(files: list[tuple[Source, Progress]], size: int) -> Iterator[_Job]:
    """Every file's uncommitted lines in batches, file after file (each file open only while it is read)."""
    for source, before in files:
        with LineReader(source) as reader:
            position, queued = 0, False
            for lines, last in _with_last(_chunks(reader.lines(before.lines_done), size)):
                new_position = source.size if last else reader.position()
                yield _Job(source, lines, last, new_position - position, lines[-1][0])
                position, queued = new_position, True
            if not queued:  # every line was committed before: only the mark is missing
                yield _Job(source, [], True, source.size, before.lines_done)


class _Pipeline:
    """Prepares batches in worker processes (or inline) and hands them back in order, a few commits' worth of
    lines ahead, so the workers stay busy while the writer commits (however small the files' batches are)."""

    def __init__(self, preparer: Preparer, config: PrepareConfig, workers: int, batch_size: int) -> None:
        self.preparer = preparer
        self.pool: ProcessPoolExecutor | None = None
        self.batch_size = batch_size
        self.base_ahead = self.ahead = batch_size * max(2, workers * 2)  # lines in flight
        if workers > 0:
            ctx = multiprocessing.get_context("spawn")  # safe in a threaded server, unlike fork
            self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=init_worker, initargs=(config,))

    def keep_ahead(self, group: int) -> None:
        """Prepare at least a whole commit group plus two batches ahead, so the workers keep going while the
        writer commits a big group."""
        self.ahead = max(self.base_ahead, group + 2 * self.batch_size)

    def map(self, jobs: Iterator[_Job]) -> Iterator[tuple[_Job, PreparedBatch]]:
        if self.pool is None:
            for job in jobs:
                yield job, self._inline(job)
            return
        queue: collections.deque[tuple[_Job, Future[PreparedBatch] | None]] = collections.deque()
        submit: Callable[..., Future[PreparedBatch]] = self.pool.submit
        in_flight = 0
        for job in jobs:
            queue.append((job, submit(prepare_in_worker, job.source.fingerprint, job.lines) if job.lines else None))
            in_flight += len(job.lines)
            while queue and in_flight >= self.ahead:
                in_flight -= len(queue[0][0].lines)
                yield self._take(queue)
        while queue:
            yield self._take(queue)

    def _inline(self, job: _Job) -> PreparedBatch:
        if not job.lines:
            return PreparedBatch.empty(job.lines_done)
        return self.preparer.lines(job.source.fingerprint, job.lines)

    @staticmethod
    def _take(queue: collections.deque[tuple[_Job, Future[PreparedBatch] | None]]) -> tuple[_Job, PreparedBatch]:
        job, future = queue.popleft()
        return job, PreparedBatch.empty(job.lines_done) if future is None else future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None
