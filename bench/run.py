"""sharedcare benchmark: named scenarios on SQLite and PostgreSQL, each against its floor, saved as JSON.

    .venv/bin/python bench/run.py                                   # every scenario, both backends, 20k resources
    .venv/bin/python bench/run.py --size 1000000 --scenarios import  # the 1M sustained-import target
    .venv/bin/python bench/run.py --backends sqlite --scenarios read,search --seconds 10

Scenarios: import (bulk NDJSON import), bundles (import of Synthea transaction Bundle files), transaction
(Bundles of 100 entries over HTTP), read (by id, 8 concurrent clients), search (a mix), everything
(Patient/$everything, when the server offers it), export ($export).

Every scenario also runs its floor in the same run, the cost of the same bytes with no FHIR work: a plain insert of
the same JSON lines into one table (orjson parse, batches of 1,000, same durability), a plain select by key, a plain
scan to a file; the ratio says how many times slower the FHIR path is. Durable settings: SQLite WAL with
synchronous=FULL; PostgreSQL with fsync and synchronous_commit on. Data: the region generator
(`sharedcare.generate`) when present, else the Synthea bundles in ../shared, made into NDJSON with literal
references and copied under new ids until there are `--size` resources.

Results (table on stdout; JSON with machine facts and data size) go to bench/results/<time>-<host>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import platform
import random
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

ROOT = Path(__file__).resolve().parents[1]
SYNTHEA = Path(os.environ.get("SHAREDCARE_SHARED") or ROOT.parent / "shared") / "data" / "synthea"
RESULTS = ROOT / "bench" / "results"
SCENARIOS = ("import", "bundles", "transaction", "read", "search", "everything", "export")
TARGETS = {
    "import": "≥ 5,000 res/s, last ≤ 20% slower",
    "bundles": "(no target)",
    "transaction": "≥ 2,000 res/s",
    "read": "≥ 3,000 req/s, p99 ≤ 10 ms",
    "search": "(no target)",
    "everything": "p50 ≤ 20 ms",
    "export": "≥ 50,000 res/s",
}
sys.path.insert(0, str(ROOT / "tests"))


# --- results ---------------------------------------------------------------------------------------------------
@dataclass
class Result:
    scenario: str
    backend: str
    value: float  # the headline figure
    unit: str
    floor: float | None = None  # the same work without FHIR, same unit
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """How many times slower than the floor (rates) or how many times longer (latencies)."""
        if not self.floor or not self.value:
            return None
        return self.floor / self.value if self.unit.endswith("/s") else self.value / self.floor


# --- machine and data --------------------------------------------------------------------------------------------
def machine_facts() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in _lines("/proc/cpuinfo") if ln.startswith("model name")), "")
    mem = next((ln.split()[1] for ln in _lines("/proc/meminfo") if ln.startswith("MemTotal")), "0")
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "host": socket.gethostname(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(int(mem) / 1024 / 1024, 1),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit,
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


@dataclass
class Dataset:
    source: str
    folder: Path
    files: list[Path]
    resources: int
    bytes: int
    patients: list[str]


def make_dataset(kind: str, size: int, workdir: Path) -> Dataset:
    folder = workdir / f"data-{kind}-{size}"
    if kind == "auto":
        try:
            import sharedcare.generate  # noqa: F401

            kind = "region"
        except ImportError:
            kind = "synthea"
        folder = workdir / f"data-{kind}-{size}"
    if not (folder / "done").exists():
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        (_region_data if kind == "region" else _synthea_data)(size, folder)
        (folder / "done").touch()
    files = sorted(p for p in folder.rglob("*.ndjson"))
    patients: list[str] = []
    resources = 0
    for path in files:
        with path.open("rb") as f:
            for line in f:
                resources += 1
                if line.startswith(b'{"resourceType":"Patient"'):
                    patients.append(orjson.loads(line)["id"])
    return Dataset(kind, folder, files, resources, sum(p.stat().st_size for p in files), patients)


def _region_data(size: int, folder: Path) -> None:
    from sharedcare.generate import RegionConfig, generate_region

    per_patient = 16  # about what the generator writes per person (records at several organisations)
    patients = max(10, size // per_patient)
    summary = generate_region(RegionConfig(patients=patients, out=folder / "region", bundles=False))
    print(f"region generator: {summary.resources:,} resources for {patients:,} patients", file=sys.stderr)


def _synthea_data(size: int, folder: Path) -> None:
    from sharedcare.bulk.flatten import flatten_bundle

    bundles = sorted((SYNTHEA / "smart-on-fhir-r4-2019").glob("*_*.json.gz"))
    written, copy = 0, 0
    with (folder / "synthea.ndjson").open("wb") as out:
        while written < size:
            seen: set[tuple[str, str]] = set()
            for path in bundles:
                for res in flatten_bundle(orjson.loads(gzip.decompress(path.read_bytes())), f"-c{copy}"):
                    key = (res["resourceType"], res["id"])
                    if key not in seen and written < size:
                        seen.add(key)
                        out.write(orjson.dumps(res) + b"\n")
                        written += 1
                if written >= size:
                    break
            copy += 1


# --- backends ------------------------------------------------------------------------------------------------------
class Backend:
    name: str
    url: str

    def floor_insert(self, lines: Iterator[bytes]) -> float: ...
    def fresh_url(self, name: str) -> str: ...
    def floor_read(self, ids: list[str], threads: int, seconds: float) -> dict[str, float]: ...
    def floor_fetch(self, ids: list[str]) -> float: ...
    def floor_scan(self, out: Path) -> float: ...
    def close(self) -> None: ...


class SqliteBackend(Backend):
    name = "sqlite"

    def __init__(self, workdir: Path) -> None:
        self.path = workdir / "bench.db"
        self.floor_path = workdir / "floor.db"
        for p in workdir.glob("*.db*"):
            p.unlink()
        self.url = f"sqlite:///{self.path}"
        self.workdir = workdir

    def fresh_url(self, name: str) -> str:
        return f"sqlite:///{self.workdir / name}.db"

    def _floor(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.floor_path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def floor_insert(self, lines: Iterator[bytes]) -> float:
        conn = self._floor()
        conn.execute("CREATE TABLE IF NOT EXISTS plain (id TEXT PRIMARY KEY, type TEXT, body BLOB)")
        n, started = 0, time.perf_counter()
        for batch in _batches(lines, 1000):
            conn.execute("BEGIN")
            rows = []
            for line in batch:
                res = orjson.loads(line)
                rows.append((f"{res['resourceType']}/{res['id']}", res["resourceType"], line.rstrip(b"\n")))
            conn.executemany("INSERT OR REPLACE INTO plain VALUES (?, ?, ?)", rows)
            conn.execute("COMMIT")
            n += len(rows)
        conn.close()
        return n / (time.perf_counter() - started)

    def floor_read(self, ids: list[str], threads: int, seconds: float) -> dict[str, float]:
        def worker(stop: threading.Event, out: list[float]) -> None:
            conn = self._floor()
            rng = random.Random()
            while not stop.is_set():
                t = time.perf_counter()
                conn.execute("SELECT body FROM plain WHERE id = ?", (rng.choice(ids),)).fetchone()
                out.append(time.perf_counter() - t)
            conn.close()

        return _concurrent(worker, threads, seconds)

    def floor_fetch(self, ids: list[str]) -> float:
        conn = self._floor()
        t = time.perf_counter()
        for rid in ids:
            conn.execute("SELECT body FROM plain WHERE id = ?", (rid,)).fetchone()
        conn.close()
        return time.perf_counter() - t

    def floor_scan(self, out: Path) -> float:
        conn = self._floor()
        n, t = 0, time.perf_counter()
        with out.open("wb") as f:
            for (body,) in conn.execute("SELECT body FROM plain ORDER BY rowid"):
                f.write(body)
                f.write(b"\n")
                n += 1
        conn.close()
        return n / (time.perf_counter() - t)

    def close(self) -> None:
        return None


class PostgresBackend(Backend):
    name = "postgresql"

    def __init__(self) -> None:
        import psycopg
        from support.postgres import PgServer, _bin_dir, _free_port

        bindir = _bin_dir()
        root = tempfile.mkdtemp(prefix="sharedcare-bench-pg-")
        if os.geteuid() == 0:
            shutil.chown(root, "postgres", "postgres")
        self.pg = PgServer(root, _free_port(), bindir)
        self.pg._run(f"{bindir}/initdb", "-D", f"{root}/data", "-A", "trust", "-U", "postgres", "-E", "UTF8")
        opts = (
            f"-p {self.pg.port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=200 "
            "-c fsync=on -c synchronous_commit=on -c full_page_writes=on -c shared_buffers=512MB"
        )
        self.pg._run(f"{bindir}/pg_ctl", "-D", f"{root}/data", "-o", opts, "-l", f"{root}/log", "-w", "start")
        self.url = self.pg.url
        self.psycopg = psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            self.version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]

    def fresh_url(self, name: str) -> str:
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name}")
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + f"/{name}"

    def floor_insert(self, lines: Iterator[bytes]) -> float:
        n, started = 0, time.perf_counter()
        with self.psycopg.connect(self.url) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS plain (id TEXT PRIMARY KEY, type TEXT, body BYTEA)")
            conn.commit()
            for batch in _batches(lines, 1000):
                rows = []
                for line in batch:
                    res = orjson.loads(line)
                    rows.append((f"{res['resourceType']}/{res['id']}", res["resourceType"], line.rstrip(b"\n")))
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO plain VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                        rows,
                    )
                conn.commit()
                n += len(rows)
        return n / (time.perf_counter() - started)

    def floor_read(self, ids: list[str], threads: int, seconds: float) -> dict[str, float]:
        def worker(stop: threading.Event, out: list[float]) -> None:
            rng = random.Random()
            with self.psycopg.connect(self.url, autocommit=True) as conn:
                while not stop.is_set():
                    t = time.perf_counter()
                    conn.execute("SELECT body FROM plain WHERE id = %s", (rng.choice(ids),)).fetchone()
                    out.append(time.perf_counter() - t)

        return _concurrent(worker, threads, seconds)

    def floor_fetch(self, ids: list[str]) -> float:
        with self.psycopg.connect(self.url, autocommit=True) as conn:
            t = time.perf_counter()
            for rid in ids:
                conn.execute("SELECT body FROM plain WHERE id = %s", (rid,)).fetchone()
            return time.perf_counter() - t

    def floor_scan(self, out: Path) -> float:
        n, t = 0, time.perf_counter()
        with self.psycopg.connect(self.url) as conn, conn.cursor(name="scan") as cur, out.open("wb") as f:
            cur.itersize = 1000
            cur.execute("SELECT body FROM plain")
            for (body,) in cur:
                f.write(body)
                f.write(b"\n")
                n += 1
        return n / (time.perf_counter() - t)

    def close(self) -> None:
        self.pg.stop()


def _batches(lines: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for line in lines:
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _concurrent(worker: Callable[[threading.Event, list[float]], None], threads: int, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    samples: list[list[float]] = [[] for _ in range(threads)]
    pool = [threading.Thread(target=worker, args=(stop, s)) for s in samples]
    started = time.perf_counter()
    for t in pool:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return _latency([x for s in samples for x in s], elapsed)


def _latency(samples: list[float], elapsed: float) -> dict[str, Any]:
    if not samples:
        return {"rate": 0.0, "p50_ms": 0.0, "p99_ms": 0.0, "n": 0}
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"rate": len(samples) / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99), "n": len(samples)}


# --- a tiny keep-alive HTTP client: cheap enough not to steal the server's CPU ----------------------------------
class Http:
    def __init__(self, port: int) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> tuple:
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buf:
            self._recv()
        header, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.lower(): v for k, _, v in (ln.partition(": ") for ln in lines[1:])}
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(self.buf) < n:
                self._recv()
            data, self.buf = self.buf[:n], self.buf[n:]
        elif hdrs.get("transfer-encoding") == "chunked":
            data = self._chunked()
        else:
            data = b""
        return status, hdrs, data

    def _chunked(self) -> bytes:
        out = []
        while True:
            while b"\r\n" not in self.buf:
                self._recv()
            size_line, self.buf = self.buf.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            while len(self.buf) < size + 2:
                self._recv()
            out.append(self.buf[:size])
            self.buf = self.buf[size + 2 :]
            if size == 0:
                return b"".join(out)

    def _recv(self) -> None:
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


async def _get_loop(port: int, paths: list[str], stop_at: float, out: list[float]) -> None:
    """One keep-alive connection issuing GETs back to back until `stop_at` (asyncio: no thread per client)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rng = random.Random()
    try:
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            writer.write(f"GET {rng.choice(paths)} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(head.lower().split(b"content-length: ", 1)[1].split(b"\r\n", 1)[0])
            await reader.readexactly(length)
            out.append(time.perf_counter() - t)
            assert status == 200, status
    finally:
        writer.close()


def concurrent_gets(port: int, paths: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` connections GETting `paths` at random for `seconds`, from one event loop (uvloop when present):
    a load generator far cheaper than a thread per client, so the server, not the client, is measured."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    samples: list[float] = []

    async def main() -> float:
        started = time.perf_counter()
        stop_at = started + seconds
        await asyncio.gather(*[_get_loop(port, paths, stop_at, samples) for _ in range(clients)])
        return time.perf_counter() - started

    elapsed = runner(main())
    return _latency(samples, elapsed)


class Server:
    """`sharedcare serve` as a separate process, open mode (no auth), quiet logs."""

    def __init__(self, db: str, workdir: Path, workers: int = 1) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        env = {
            **os.environ,
            "SHAREDCARE_AUTH_REQUIRED": "false",
            "SHAREDCARE_RATE_LIMIT_PER_SECOND": "0",
            "SHAREDCARE_ACCESS_LOG": "false",
            "SHAREDCARE_LOG_LEVEL": "warning",
            "SHAREDCARE_MAX_IN_FLIGHT": "64",
            "SHAREDCARE_MAX_QUEUE": "1024",
            "SHAREDCARE_BULK_DIR": str(workdir / "bulk"),
        }
        cmd = [ROOT / ".venv/bin/sharedcare", "serve", "--db", db, "--port", str(self.port), "--workers", str(workers)]
        self.log = (workdir / "server.log").open("ab")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=self.log)
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/fhir/metadata", timeout=2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("server did not start; see server.log")

    def get(self, path: str, headers: dict[str, str] | None = None) -> tuple:
        c = Http(self.port)
        try:
            return c.request("GET", path, headers=headers)
        finally:
            c.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.log.close()


# --- scenarios -----------------------------------------------------------------------------------------------------
def scenario_import(backend: Backend, data: Dataset, args: argparse.Namespace) -> Result:
    stats, marks, profile = bulk_load(backend.url, data.files, args.workers)
    floor = backend.floor_insert(_all_lines(data))
    window = max(1000, min(100_000, data.resources // 10))
    first, last = _window_rate(marks, window, first=True), _window_rate(marks, window, first=False)
    details = {
        "resources": stats.written,
        "errors": stats.errors,
        "seconds": round(stats.seconds, 2),
        "window": window,
        "first_window_rate": round(first),
        "last_window_rate": round(last),
        "last_vs_first": f"{(last / first - 1) * 100:+.1f}%" if first else "",
        "workers": args.workers,
        "profile": profile,
    }
    return Result("import", backend.name, stats.written / stats.seconds, "res/s", floor, details)


def scenario_bundles(backend: Backend, data: Dataset, args: argparse.Namespace) -> Result:
    """`sharedcare import` of Synthea patient transaction Bundles (files), into a database of their own."""
    files, entries = [], []
    for path in sorted((SYNTHEA / "smart-on-fhir-r4-2019").glob("*_*.json.gz")):
        if len(entries) >= args.bundle_resources:
            break
        files.append(path)
        entries += [orjson.dumps(e["resource"]) for e in orjson.loads(gzip.decompress(path.read_bytes()))["entry"]]
    stats, _, profile = bulk_load(backend.fresh_url("bundles"), files, args.workers)
    floor = backend.floor_insert(iter(entries))
    details = {"bundles": len(files), "resources": stats.written, "errors": stats.errors, "profile": profile}
    return Result("bundles", backend.name, stats.written / stats.seconds, "res/s", floor, details)


def bulk_load(url: str, files: list[Path], workers: int) -> tuple[Any, list[tuple[float, int]], dict[str, int]]:
    """Import `files` into `url` as `sharedcare import` does; progress marks and a profile of the writer."""
    from sharedcare.app import build
    from sharedcare.bulk.loader import ImportOptions
    from sharedcare.bulk.service import loader_for
    from sharedcare.bulk.sources import discover
    from sharedcare.settings import Settings

    marks: list[tuple[float, int]] = []

    class Marks:
        written = 0

        def begin(self, total_bytes: int, files: int) -> None:
            marks.append((time.perf_counter(), 0))

        def file(self, source: Any) -> None:
            return None

        def advance(self, nbytes: int, resources: int) -> None:
            if resources:
                self.written += resources
                marks.append((time.perf_counter(), self.written))

        def phase(self, text: str) -> None:
            phases.append((time.perf_counter(), text))

    phases: list[tuple[float, str]] = []
    server = build(Settings.from_env({"SHAREDCARE_AUTH_REQUIRED": "false"}, db=url))
    timers = _Timers()
    try:
        server.repo.run_hooks = timers.wrap("hooks", server.repo.run_hooks)  # type: ignore[method-assign]
        server.repo.run_hooks_many = timers.wrap("hooks", server.repo.run_hooks_many)  # type: ignore[method-assign]
        server.store.transact = timers.wrap("writer", server.store.transact)  # type: ignore[method-assign]
        sources, _ = discover(files)
        cpu, children = time.process_time(), _children_cpu()
        stats = loader_for(server, ImportOptions(workers=workers, batch_size=1000), Marks()).run(sources)
        finished = time.perf_counter()
        cpu, children = time.process_time() - cpu, _children_cpu() - children
    finally:
        server.close()
    per = 1e6 / max(stats.written, 1)
    profile = {
        "writer_us_per_resource": round(timers.total["writer"] * per),
        "of_which_write_hooks_us": round(timers.total["hooks"] * per),
        "main_process_cpu_us": round(cpu * per),
        "worker_processes_cpu_us": round(children * per),
        # the search indexes built after the load (when it deferred them): included in the overall rate
        "index_build_seconds": round(finished - phases[0][0], 2) if phases else 0.0,
    }
    return stats, marks, profile


class _Timers:
    """Wall time spent inside wrapped callables (the writer's transactions, the repository's write hooks)."""

    def __init__(self) -> None:
        self.total: dict[str, float] = {"writer": 0.0, "hooks": 0.0}

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self.total[name] += time.perf_counter() - t

        return timed


def _children_cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _window_rate(marks: list[tuple[float, int]], window: int, *, first: bool) -> float:
    if len(marks) < 2:
        return 0.0
    total = marks[-1][1]
    if first:
        end = next(m for m in marks if m[1] >= min(window, total))
        return end[1] / (end[0] - marks[0][0])
    start = next(m for m in reversed(marks) if m[1] <= total - window)
    return (total - start[1]) / (marks[-1][0] - start[0])


def _all_lines(data: Dataset) -> Iterator[bytes]:
    for path in data.files:
        with path.open("rb") as f:
            yield from (line for line in f if line.strip())


def scenario_transaction(backend: Backend, data: Dataset, server: Server, args: argparse.Namespace) -> Result:
    """Transaction Bundles of 100 PUT entries (new ids), from 1 and from 4 clients; the better rate counts."""
    lines = [orjson.loads(line) for line, _ in zip(_all_lines(data), range(args.tx_resources), strict=False)]
    results = {}
    for clients in (1, 4):
        bundles = [_tx_bundle(lines[i : i + 100], f"-tx{clients}") for i in range(0, len(lines), 100)]
        results[clients] = _post_bundles(server.port, bundles, clients, len(lines))
    floor = _floor_tx(backend, lines)
    best = max(results.values(), key=lambda r: r["rate"])
    details = {f"{c}_clients": {k: round(v, 1) for k, v in r.items()} for c, r in results.items()}
    return Result("transaction", backend.name, best["rate"], "res/s", floor, {"resources": len(lines), **details})


def _post_bundles(port: int, bundles: list[bytes], clients: int, resources: int) -> dict[str, float]:
    times: list[float] = []
    errors: list[int] = []

    def post(mine: list[bytes]) -> None:
        c = Http(port)
        for body in mine:
            t = time.perf_counter()
            status, _, _ = c.request("POST", "/fhir", body, {"content-type": "application/fhir+json"})
            times.append(time.perf_counter() - t)
            if status != 200:
                errors.append(status)
        c.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=post, args=(bundles[c::clients],)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    return {"rate": resources / elapsed, "p50_ms": statistics.median(times) * 1000, "errors": len(errors)}


def _tx_bundle(resources: list[dict[str, Any]], suffix: str) -> bytes:
    entries = []
    for res in resources:
        res = {**res, "id": res["id"] + suffix}
        entries.append({"resource": res, "request": {"method": "PUT", "url": f"{res['resourceType']}/{res['id']}"}})
    return orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _floor_tx(backend: Backend, resources: list[dict[str, Any]]) -> float:
    """The same bodies into the plain table, one commit per 100 (what a transaction Bundle commits)."""
    lines = (orjson.dumps({**r, "id": r["id"] + "-txfloor"}) for r in resources)
    if isinstance(backend, SqliteBackend):
        conn = backend._floor()
        t = time.perf_counter()
        for batch in _batches(lines, 100):
            conn.execute("BEGIN")
            conn.executemany("INSERT OR REPLACE INTO plain VALUES (?, ?, ?)", [_plain_row(b) for b in batch])
            conn.execute("COMMIT")
        conn.close()
        return len(resources) / (time.perf_counter() - t)
    assert isinstance(backend, PostgresBackend)
    with backend.psycopg.connect(backend.url) as conn:
        t = time.perf_counter()
        for batch in _batches(lines, 100):
            with conn.cursor() as cur:
                sql = "INSERT INTO plain VALUES (%s, %s, %s) ON CONFLICT (id) DO UPDATE SET body = excluded.body"
                cur.executemany(sql, [_plain_row(b) for b in batch])
            conn.commit()
        return len(resources) / (time.perf_counter() - t)


def _plain_row(line: bytes) -> tuple[str, str, bytes]:
    res = orjson.loads(line)
    return f"{res['resourceType']}/{res['id']}", res["resourceType"], line


def _keys(data: Dataset, n: int) -> list[str]:
    keys = []
    for line in _all_lines(data):
        head = orjson.loads(line)
        keys.append(f"{head['resourceType']}/{head['id']}")
    random.Random(7).shuffle(keys)
    return keys[:n]


def scenario_read(backend: Backend, data: Dataset, server: Server, args: argparse.Namespace) -> Result:
    paths = [f"/fhir/{k}" for k in _keys(data, 20_000)]
    concurrent_gets(server.port, paths, 8, 1.0)  # warm up
    measured = concurrent_gets(server.port, paths, 8, args.seconds)
    floor = backend.floor_read([p.removeprefix("/fhir/") for p in paths], 8, min(args.seconds, 3))
    details = {k: round(v, 2) for k, v in measured.items()} | {"floor_p99_ms": round(floor["p99_ms"], 3)}
    return Result("read", backend.name, measured["rate"], "req/s", floor["rate"], details | {"clients": 8})


def search_mix(server: Server, data: Dataset) -> list[str]:
    """Typical clinical searches over the loaded data: by patient, code, date, name, identifier."""
    obs: list[dict[str, Any]] = []
    names: list[str] = []
    for line in _all_lines(data):
        if line.startswith(b'{"resourceType":"Observation"') and len(obs) < 2000:
            obs.append(orjson.loads(line))
        elif line.startswith(b'{"resourceType":"Patient"') and len(names) < 500:
            family = (orjson.loads(line).get("name") or [{}])[0].get("family")
            if family:
                names.append(family)
    rng = random.Random(3)
    queries = []
    for _ in range(200):
        o = rng.choice(obs)
        code = o["code"]["coding"][0]["code"]
        patient = o.get("subject", {}).get("reference", "")
        queries += [
            f"/fhir/Observation?subject={patient}&code={code}",
            f"/fhir/Condition?patient={patient}",
            f"/fhir/Encounter?patient={patient}&_count=10",
            f"/fhir/Patient?family={rng.choice(names)}" if names else f"/fhir/Observation?code={code}&_count=10",
            f"/fhir/Observation?code={code}&_count=10",
        ]
    return queries


def scenario_search(backend: Backend, data: Dataset, server: Server, args: argparse.Namespace) -> Result:
    queries = search_mix(server, data)
    per_query: dict[str, list[float]] = {}

    def worker(stop: threading.Event, out: list[float]) -> None:
        c = Http(server.port)
        rng = random.Random()
        while not stop.is_set():
            q = rng.choice(queries)
            t = time.perf_counter()
            status, _, body = c.request("GET", q)
            out.append(time.perf_counter() - t)
            per_query.setdefault(q.split("?")[0].split("/")[-1], []).append(out[-1])
            assert status == 200, (status, q, body[:300])
        c.close()

    measured = _concurrent(worker, 4, args.seconds)
    kinds = {k: round(statistics.median(v) * 1000, 2) for k, v in per_query.items()}
    details = {k: round(v, 2) for k, v in measured.items()} | {"p50_ms_by_type": kinds, "clients": 4}
    return Result("search", backend.name, measured["rate"], "req/s", None, details)


def scenario_everything(backend: Backend, data: Dataset, server: Server, args: argparse.Namespace) -> Result | None:
    status, _, body = server.get("/fhir/metadata")
    ops = {
        o["name"]
        for r in orjson.loads(body)["rest"][0]["resource"]
        if r["type"] == "Patient"
        for o in r.get("operation", [])
    }
    if "everything" not in ops:
        return None
    counts = _compartment_sizes(data)
    ranked = sorted(counts, key=counts.get)  # type: ignore[arg-type]
    median = ranked[len(ranked) // 2]
    c = Http(server.port)
    times = []
    for _ in range(max(50, int(args.seconds * 20))):
        t = time.perf_counter()
        status, _, body = c.request("GET", f"/fhir/Patient/{median}/$everything")
        times.append(time.perf_counter() - t)
        assert status == 200, body[:300]
    c.close()
    measured = _latency(times, sum(times))
    ids = [f"Patient/{median}"] * counts[median]
    floor = backend.floor_fetch(ids) * 1000
    details = {"patient_resources": counts[median], "p99_ms": round(measured["p99_ms"], 2)}
    return Result("everything", backend.name, measured["p50_ms"], "ms p50", floor, details)


def _compartment_sizes(data: Dataset) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys(data.patients, 1)
    for line in _all_lines(data):
        for ref in (b'"subject":{"reference":"Patient/', b'"patient":{"reference":"Patient/'):
            at = line.find(ref)
            if at >= 0:
                pid = line[at + len(ref) : line.index(b'"', at + len(ref))].decode()
                if pid in counts:
                    counts[pid] += 1
                break
    return counts


def scenario_export(backend: Backend, data: Dataset, server: Server, args: argparse.Namespace, work: Path) -> Result:
    c = Http(server.port)
    t = time.perf_counter()
    status, headers, body = c.request("GET", "/fhir/$export", headers={"prefer": "respond-async"})
    assert status == 202, body[:300]
    location = headers["content-location"].split("/fhir/", 1)[1]
    while True:
        status, _, body = c.request("GET", f"/fhir/{location}")
        if status != 202:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - t
    assert status == 200, body[:300]
    manifest = orjson.loads(body)
    total = sum(o["count"] for o in manifest["output"])
    started = time.perf_counter()
    downloaded = 0
    for item in manifest["output"]:
        status, _, content = c.request("GET", "/fhir/" + item["url"].split("/fhir/", 1)[1])
        downloaded += len(content)
    download_s = time.perf_counter() - started
    c.request("DELETE", f"/fhir/{location}")
    c.close()
    floor = backend.floor_scan(work / "floor-export.ndjson")
    details = {
        "resources": total,
        "files": len(manifest["output"]),
        "seconds": round(elapsed, 2),
        "download_mb_s": round(downloaded / 1e6 / download_s, 1) if download_s else None,
    }
    return Result("export", backend.name, total / elapsed, "res/s", floor, details)


# --- the run ----------------------------------------------------------------------------------------------------
def run_backend(name: str, data: Dataset, args: argparse.Namespace, work: Path) -> list[Result]:
    backend: Backend = SqliteBackend(work) if name == "sqlite" else PostgresBackend()
    results: list[Result] = []
    try:
        print(f"[{name}] import of {data.resources:,} resources …", file=sys.stderr)
        results.append(scenario_import(backend, data, args))
        if "bundles" in args.scenarios and SYNTHEA.is_dir():
            print(f"[{name}] import of Synthea transaction Bundles …", file=sys.stderr)
            results.append(scenario_bundles(backend, data, args))
        wanted = [s for s in args.scenarios if s not in ("import", "bundles")]
        if not wanted:
            return results
        server = Server(backend.url, work, args.server_workers)
        try:
            for scenario in wanted:
                print(f"[{name}] {scenario} …", file=sys.stderr)
                if scenario == "export":
                    results.append(scenario_export(backend, data, server, args, work))
                elif scenario == "everything":
                    found = scenario_everything(backend, data, server, args)
                    if found is None:
                        print("  Patient/$everything is not offered by this server: skipped", file=sys.stderr)
                    else:
                        results.append(found)
                else:
                    results.append(globals()[f"scenario_{scenario}"](backend, data, server, args))
        finally:
            server.stop()
    finally:
        backend.close()
    return results


def print_table(results: list[Result]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="sharedcare benchmark")
    for col in ("scenario", "backend", "result", "floor", "× floor", "target", "notes"):
        table.add_column(col, justify="right" if col in ("result", "floor", "× floor") else "left")
    for r in results:
        ratio = r.ratio
        notes = _notes(r)
        floor = f"{r.floor:,.1f} {r.unit}" if r.floor else "—"
        ratio_text = f"{ratio:,.1f}×" if ratio else "—"
        table.add_row(r.scenario, r.backend, f"{r.value:,.1f} {r.unit}", floor, ratio_text, TARGETS[r.scenario], notes)
    Console(width=180).print(table)


def _notes(r: Result) -> str:
    d = r.details
    if r.scenario == "import":
        p = d["profile"]
        return (
            f"first {d['first_window_rate']:,}/s, last {d['last_window_rate']:,}/s ({d['last_vs_first']}); "
            f"writer {p['writer_us_per_resource']} µs/res (hooks {p['of_which_write_hooks_us']})"
            + (f"; index build {p['index_build_seconds']} s" if p.get("index_build_seconds") else "")
        )
    if r.scenario in ("read", "search"):
        return f"p50 {d['p50_ms']} ms, p99 {d['p99_ms']} ms"
    if r.scenario == "everything":
        return f"{d['patient_resources']} resources, p99 {d['p99_ms']} ms"
    if r.scenario == "bundles":
        p = d["profile"]
        hooks = p["of_which_write_hooks_us"]
        return f"{d['bundles']} Synthea Bundles; writer {p['writer_us_per_resource']} µs/res (hooks {hooks})"
    if r.scenario == "transaction":
        return ", ".join(f"{k.replace('_', ' ')}: {v['rate']:,.0f}/s" for k, v in d.items() if k.endswith("clients"))
    if r.scenario == "export":
        return f"{d['resources']:,} in {d['seconds']} s"
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated: " + ", ".join(SCENARIOS))
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--size", type=int, default=20_000, help="resources to import (default 20,000)")
    parser.add_argument("--data", default="auto", choices=("auto", "region", "synthea"))
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each concurrent HTTP scenario")
    parser.add_argument("--tx-resources", type=int, default=5000, help="resources sent as transaction Bundles")
    parser.add_argument("--bundle-resources", type=int, default=10_000, help="Synthea Bundle entries imported")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="import worker processes")
    parser.add_argument(
        "--server-workers", type=int, default=os.cpu_count() or 1, help="`sharedcare serve --workers` (processes)"
    )
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "sharedcare-bench")
    args = parser.parse_args()
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    facts = machine_facts()
    data = make_dataset(args.data, args.size, args.workdir)
    results: list[Result] = []
    for name in [b for b in args.backends.split(",") if b]:
        work = args.workdir / name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        results += run_backend(name, data, args, work)
    facts["load_average_at_end"] = os.getloadavg()
    print_table(results)
    save(results, facts, data, args)


def save(results: list[Result], facts: dict[str, Any], data: Dataset, args: argparse.Namespace) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"{stamp}-{facts['host']}.json"
    doc = {
        "when": stamp,
        "machine": facts,
        "data": {
            "source": data.source,
            "resources": data.resources,
            "bytes": data.bytes,
            "patients": len(data.patients),
        },
        "settings": {"sqlite": "WAL, synchronous=FULL", "postgresql": "fsync=on, synchronous_commit=on"}
        | {"scenarios": args.scenarios, "seconds": args.seconds, "workers": args.workers}
        | {"server_workers": args.server_workers},
        "targets": TARGETS,
        "results": [asdict(r) | {"ratio_to_floor": r.ratio} for r in results],
    }
    out.write_text(json.dumps(doc, indent=2, default=str))
    print(f"saved {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
