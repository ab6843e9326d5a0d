"""Asynchronous bulk jobs (`$export`, `$import`): a row in `bulk_jobs` each, run on a background thread.

The row is the truth, so any process sharing the store can answer a status request. A running job beats a
heartbeat; a job whose process died (no beat for `STALE_SECONDS`) is taken over by the next process asked about
it (compare-and-set on the owner), and re-run: an export from the start, an import from its checkpoints.
Cancelling (DELETE on the status URL) deletes the row and the job's files; the thread notices and stops.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from sharedcare.bulk.export import Cancelled, ExportSpec, ExportWriter
from sharedcare.bulk.loader import ImportProgress, Loader
from sharedcare.bulk.report import report_lines
from sharedcare.bulk.sources import Source, discover
from sharedcare.store import bulk_sql
from sharedcare.store.sqlstore import SqlStore, utc_now

log = logging.getLogger("sharedcare.bulk")
STALE_SECONDS = 60
BEAT_SECONDS = 2.0
LoaderFactory = Callable[[ImportProgress], Loader]


@dataclass(frozen=True)
class JobStatus:
    id: str
    kind: str  # export | import
    status: str  # accepted | in-progress | completed | error
    progress: str
    result: dict[str, Any] | None
    error: str | None


class BulkJobs:
    """Starts, tracks, cancels and resumes bulk jobs; files live under `folder/<job id>/`."""

    def __init__(
        self,
        store: SqlStore,
        folder: Path,
        writer: ExportWriter,
        loader_factory: LoaderFactory,
        *,
        requires_access_token: bool = False,
        max_running: int = 2,
    ) -> None:
        self.store, self.folder, self.writer, self.loader_factory = store, folder, writer, loader_factory
        self.requires_access_token = requires_access_token
        self.owner = uuid.uuid4().hex
        self._slots = threading.Semaphore(max_running)
        self._lock = threading.Lock()
        self._running: dict[str, tuple[threading.Thread, threading.Event]] = {}
        self._resumed_at = -float(STALE_SECONDS)
        self._closed = False
        bulk_sql.ensure_schema(store)

    # --- requests ----------------------------------------------------------------------------------------------
    def start_export(self, spec: ExportSpec, request_url: str, base_url: str) -> str:
        self.writer.check(spec)
        return self._start("export", {"spec": spec.to_json(), "request": request_url, "base": base_url})

    def start_import(self, inputs: list[dict[str, str]], request_url: str, base_url: str) -> str:
        return self._start("import", {"inputs": inputs, "request": request_url, "base": base_url})

    def new_upload(self) -> tuple[str, Path]:
        """A job id and the file an uploaded NDJSON body should be streamed into before `start_import`."""
        job_id = uuid.uuid4().hex
        path = self.folder / job_id / "upload.ndjson"
        path.parent.mkdir(parents=True, exist_ok=True)
        return job_id, path

    def status(self, job_id: str) -> JobStatus | None:
        self.resume_orphans()
        row = bulk_sql.job_get(self.store, job_id)
        if row is None:
            return None
        result = orjson.loads(row["result"]) if row["result"] else None
        return JobStatus(row["id"], row["kind"], row["status"], row["progress"] or "", result, row["error"])

    def cancel(self, job_id: str) -> bool:
        if bulk_sql.job_get(self.store, job_id) is None:
            return False
        bulk_sql.job_delete(self.store, job_id)
        with self._lock:
            running = self._running.get(job_id)
        if running is not None:
            running[1].set()
            running[0].join(timeout=30)
        shutil.rmtree(self.folder / job_id, ignore_errors=True)
        return True

    def requester(self, job_id: str) -> str | None:
        """Who started a bound export (None: an operator's job, or no such job)."""
        row = bulk_sql.job_get(self.store, job_id)
        if row is None or row["kind"] != "export":
            return None
        spec = (orjson.loads(row["request"]) or {}).get("spec") or {}
        owner = spec.get("owner")
        return str(owner) if owner else None

    def file(self, job_id: str, name: str) -> Path | None:
        """The output file of a job still on record (names are checked: no path tricks)."""
        if "/" in name or name.startswith(".") or bulk_sql.job_get(self.store, job_id) is None:
            return None
        path = self.folder / job_id / name
        return path if path.is_file() else None

    def close(self) -> None:
        """Stop running jobs and let go of them, so the next process resumes them at once (not after STALE)."""
        self._closed = True
        with self._lock:
            running = list(self._running.values())
        for thread, stop in running:
            stop.set()
            thread.join(timeout=60)
        if running:
            bulk_sql.job_release(self.store, self.owner)

    # --- running -------------------------------------------------------------------------------------------------
    def _start(self, kind: str, request: dict[str, Any], job_id: str | None = None) -> str:
        job_id = job_id or uuid.uuid4().hex
        now = utc_now()
        row = {"id": job_id, "kind": kind, "status": "accepted", "request": orjson.dumps(request).decode()}
        bulk_sql.job_insert(self.store, {**row, "created": now})
        bulk_sql.job_claim(self.store, job_id, self.owner, now, now)
        self._launch(job_id)
        return job_id

    def start_upload_import(self, job_id: str, path: Path, request_url: str, base_url: str) -> str:
        inputs = [{"type": "", "url": path.name, "local": str(path)}]
        return self._start("import", {"inputs": inputs, "request": request_url, "base": base_url}, job_id)

    def resume_orphans(self) -> None:
        """Take over unfinished jobs whose process stopped beating (checked on requests, at most twice a minute)."""
        if self._closed or time.monotonic() - self._resumed_at < STALE_SECONDS / 2:
            return
        self._resumed_at = time.monotonic()
        now = datetime.now(UTC)
        stale = (now - timedelta(seconds=STALE_SECONDS)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        for job_id in bulk_sql.jobs_unfinished(self.store):
            with self._lock:
                mine = job_id in self._running
            if not mine and bulk_sql.job_claim(self.store, job_id, self.owner, stale, utc_now()):
                self._launch(job_id)

    def _launch(self, job_id: str) -> None:
        stop = threading.Event()
        thread = threading.Thread(target=self._run, args=(job_id, stop), name=f"bulk-{job_id[:8]}", daemon=True)
        with self._lock:
            self._running[job_id] = (thread, stop)
        thread.start()

    def _run(self, job_id: str, stop: threading.Event) -> None:
        try:
            with self._slots:
                if not stop.is_set():
                    self._execute(job_id, stop)
        except Cancelled:
            pass
        except Exception as exc:  # a job's failure is reported on its status URL, not raised into the server
            log.exception("bulk job %s failed", job_id)
            if not stop.is_set():
                self._update(job_id, status="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running.pop(job_id, None)

    def _execute(self, job_id: str, stop: threading.Event) -> None:
        row = bulk_sql.job_get(self.store, job_id)
        if row is None:
            return
        request = orjson.loads(row["request"])
        self._update(job_id, status="in-progress", progress="starting")
        folder = self.folder / job_id
        beat = _Beat(lambda text: self._update(job_id, progress=text, heartbeat=utc_now()))
        if row["kind"] == "export":
            result = self._export(request, folder, stop, beat)
        else:
            result = self._import(request, folder, stop, beat)
        if stop.is_set():
            raise Cancelled()
        self._update(
            job_id, status="completed", progress="completed", result=orjson.dumps(result).decode(),
            transaction_time=result["transactionTime"],
        )  # fmt: skip

    def _update(self, job_id: str, **values: Any) -> None:
        bulk_sql.job_update(self.store, job_id, **values)

    def _export(self, request: dict[str, Any], folder: Path, stop: threading.Event, beat: _Beat) -> dict[str, Any]:
        shutil.rmtree(folder, ignore_errors=True)  # a resumed export starts again
        spec = ExportSpec.from_json(request["spec"])
        result = self.writer.run(spec, folder, stop, lambda t, n: beat(f"{n:,} resources written ({t})"))
        base = f"{request['base']}/_bulk/{folder.name}"
        return {
            "transactionTime": result.transaction_time,
            "request": request["request"],
            "requiresAccessToken": self.requires_access_token,
            "output": [{"type": f.type, "url": f"{base}/{f.name}", "count": f.count} for f in result.files],
            "error": [],
        }

    def _import(self, request: dict[str, Any], folder: Path, stop: threading.Event, beat: _Beat) -> dict[str, Any]:
        started = utc_now()
        files = [_fetch(i, folder, n) for n, i in enumerate(request["inputs"])]
        sources, _ = discover(files)
        progress = _JobImportProgress(beat, stop)
        stats = self.loader_factory(progress).run(sources)
        base = f"{request['base']}/_bulk/{folder.name}"
        errors = _write_outcomes(self.store, sources, folder / "errors.ndjson")
        return {
            "transactionTime": started,
            "request": request["request"],
            "requiresAccessToken": self.requires_access_token,
            "output": [],
            "error": [{"type": "OperationOutcome", "url": f"{base}/errors.ndjson", "count": errors}] if errors else [],
            "extension": {
                "created": stats.created,
                "updated": stats.updated,
                "unchanged": stats.unchanged,
                "rejected": errors,
                "filesAlreadyLoaded": stats.files_already_loaded,
            },
        }


class _Beat:
    """Records progress (and so the heartbeat) at most every BEAT_SECONDS."""

    def __init__(self, record: Callable[[str], None]) -> None:
        self.record, self.last = record, 0.0

    def __call__(self, text: str) -> None:
        now = time.monotonic()
        if now - self.last >= BEAT_SECONDS:
            self.last = now
            self.record(text)


class _JobImportProgress:
    def __init__(self, beat: _Beat, stop: threading.Event) -> None:
        self.beat, self.stop = beat, stop
        self.total, self.done, self.written = 1, 0, 0

    def begin(self, total_bytes: int, files: int) -> None:
        self.total = max(total_bytes, 1)

    def file(self, source: Source) -> None:
        if self.stop.is_set():
            raise Cancelled()

    def advance(self, nbytes: int, resources: int) -> None:
        if self.stop.is_set():
            raise Cancelled()
        self.done += nbytes
        self.written += resources
        self.beat(f"{100 * self.done // self.total}% ({self.written:,} resources written)")

    def phase(self, text: str) -> None:
        self.beat(f"{text} ({self.written:,} resources written)")


def _fetch(spec: dict[str, str], folder: Path, n: int) -> Path:
    """An input as a local file: an upload already is one; a URL is downloaded (streamed, then renamed)."""
    if spec.get("local"):
        return Path(spec["local"])
    url = spec["url"]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"input url must be http(s): {url}")
    suffix = ".ndjson.gz" if url.split("?")[0].endswith(".gz") else ".ndjson"
    path = folder / f"input-{n}{suffix}"
    if path.exists():
        return path  # fetched before the process stopped
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    with urllib.request.urlopen(url, timeout=60) as resp, partial.open("wb") as out:  # noqa: S310 (scheme checked)
        shutil.copyfileobj(resp, out, 1 << 20)
    partial.rename(path)
    return path


def _write_outcomes(store: SqlStore, sources: list[Source], path: Path) -> int:
    """The import's rejections as OperationOutcome NDJSON (the Bulk Data error file shape), located in the text."""
    count = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        for line in report_lines(store, sources):
            entry = orjson.loads(line)
            where = f"{Path(entry['file']).name}" + (f" line {entry['line']}" if "line" in entry else "")
            outcome = entry["outcome"]
            for issue in outcome.get("issue", []):
                issue["diagnostics"] = f"{where}: {issue.get('diagnostics', '')}"
            out.write(orjson.dumps(outcome) + b"\n")
            count += 1
    return count
