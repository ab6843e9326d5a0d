"""Fault-injection kit: run `sharedcare serve`/`replica` as real processes, drive writes, kill -9, verify.

The writers keep a ledger of what the server acknowledged (2xx with the stored bytes): creates, updates and
transaction Bundles. Transaction entries are tagged with a per-transaction marker, so after a crash the store can be
asked whether any transaction is half there. Used by tests/resilience/test_crash.py and test_replica_process.py,
and by the longer runs in bench/resilience_bench.py.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
import psycopg

from sharedcare.app import build
from sharedcare.resilience.check import CheckReport, check_store
from sharedcare.settings import Settings

FHIR_JSON = {"content-type": "application/fhir+json"}
MARKER_SYSTEM = "urn:sharedcare:crash-test"
QUIET_ENV = {
    "SHAREDCARE_ACCESS_LOG": "false",
    "SHAREDCARE_LOG_LEVEL": "warning",
    "SHAREDCARE_AUTH_REQUIRED": "false",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- processes ------------------------------------------------------------------------------------------
@dataclass
class Proc:
    """A sharedcare process on a port; output goes to a log file (never a pipe that could fill and block)."""

    args: list[str]
    port: int
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_timeout: float = 30.0) -> Proc:
        env = {**os.environ, **QUIET_ENV, **self.env}
        cmd = [sys.executable, "-m", "sharedcare", *self.args, "--port", str(self.port)]
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: self._answers("/healthz"), ready_timeout, f"{self.args[0]} on {self.port} did not start")
        return self

    def _answers(self, path: str) -> bool:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise RuntimeError(f"process exited with {self.popen.returncode}; see {self.log}")
        try:
            return httpx.get(self.base + path, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """kill -9: no shutdown hooks, no flushing, exactly like a crash of the process."""
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()


def serve(db: str, log: Path, port: int | None = None, **env: str) -> Proc:
    return Proc(["serve", "--db", db], port or free_port(), log, env)


@dataclass
class BulkImport:
    """`sharedcare import` of an NDJSON file of Observations with known ids, run beside the server (killed with it).

    The loader commits each batch with its checkpoint (`import_progress.lines_done`), so after a kill the store must
    hold exactly the first `lines_done` lines of the file: no batch half there, none beyond the checkpoint.
    """

    db: str
    path: Path
    prefix: str
    lines: int
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def write(self) -> BulkImport:
        with open(self.path, "wb") as f:
            for k in range(self.lines):
                f.write(orjson.dumps({**observation(k), "id": f"{self.prefix}-{k}"}) + b"\n")
        return self

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "sharedcare",
            "import",
            str(self.path),
            "--db",
            self.db,
            "--workers",
            "0",
            "--batch-size",
            "25",
            "--no-progress",
            "--errors",
            str(self.path) + ".errors",
        ]

    def start(self) -> BulkImport:
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV}
            )
        return self

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            os.kill(self.popen.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(timeout=10)

    def log_tail(self, lines: int = 30) -> str:
        """The end of the import's log, to say why it stopped."""
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def lines_done(self) -> int:
        """The committed checkpoint, read with a plain connection (cheap enough to poll)."""
        sql = "SELECT lines_done FROM import_progress WHERE path = ?"
        try:
            if self.db.startswith("sqlite:///"):
                with contextlib.closing(sqlite3.connect(self.db.removeprefix("sqlite:///"), timeout=5)) as conn:
                    row = conn.execute(sql, (str(self.path),)).fetchone()
            else:
                with psycopg.connect(self.db) as conn:
                    row = conn.execute(sql.replace("?", "%s"), (str(self.path),)).fetchone()
        except (sqlite3.Error, psycopg.Error):
            return 0  # the table does not exist until the first import starts
        return int(row[0]) if row else 0

    def wait_for_progress(self, beyond: int, timeout: float = 20.0) -> None:
        """Until a batch past `beyond` has committed, so a kill that follows lands in the middle of the import."""
        deadline = time.monotonic() + timeout
        while self.lines_done() <= beyond and time.monotonic() < deadline and self.popen and self.popen.poll() is None:
            time.sleep(0.05)

    def finish(self) -> int:
        """Run the same import again to completion (it resumes after the last committed batch)."""
        with open(self.log, "ab") as out:
            return subprocess.run(
                self.command(), stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **QUIET_ENV}, timeout=300
            ).returncode


def bulk_problems(server: Any, job: BulkImport, complete: bool = False) -> list[str]:
    """What is wrong with the store's view of `job`: lines present beyond the checkpoint, or missing before it."""
    d = server.store.dialect
    with server.store.reading() as cur:
        cur.execute(d.sql("SELECT lines_done, status FROM import_progress WHERE path = ?"), (str(job.path),))
        row = cur.fetchone()
        cur.execute(d.sql("SELECT id FROM resources WHERE type = 'Observation' AND id LIKE ?"), (job.prefix + "-%",))
        present = {r[0] for r in cur.fetchall()}
    done = int(row[0]) if row else 0
    expected = {f"{job.prefix}-{k}" for k in range(job.lines if complete else done)}
    problems = []
    if complete and (row is None or row[1] != "done"):
        problems.append(f"import of {job.path.name} did not finish: {row}")
    if present - expected:
        problems.append(f"{len(present - expected)} lines present beyond the checkpoint ({done} lines done)")
    if expected - present:
        problems.append(f"{len(expected - present)} lines before the checkpoint ({done}) are missing")
    return problems


def wait_until(predicate: Any, timeout: float, message: str = "timed out") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise TimeoutError(message)


# --- the ledger of acknowledged writes --------------------------------------------------------------------
@dataclass
class Ledger:
    acked: dict[tuple[str, str, int], bytes] = field(default_factory=dict)  # (type, id, version) -> bytes
    ack_times: dict[tuple[str, str, int], float] = field(default_factory=dict)
    transactions: dict[str, int] = field(default_factory=dict)  # marker -> entries, for every one sent
    transactions_acked: set[str] = field(default_factory=set)
    updatable: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, rtype: str, rid: str, version: int, body: bytes) -> None:
        with self.lock:
            self.acked[(rtype, rid, version)] = body
            self.ack_times[(rtype, rid, version)] = time.time()


def patient(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": f"Crash{n}", "given": ["Test"]}],
        "gender": random.choice(["male", "female"]),
        "birthDate": f"19{random.randint(20, 99)}-0{random.randint(1, 9)}-1{random.randint(0, 9)}",
    }


def observation(n: int, subject: str | None = None) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "valueQuantity": {"value": 60 + n % 50, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
        "effectiveDateTime": "2024-05-01T10:00:00Z",
    }
    if subject:
        obs["subject"] = {"reference": subject}
    return obs


class Writer(threading.Thread):
    """Writes until told to stop, recording what the server acknowledged; errors mean "not acknowledged"."""

    def __init__(self, base: str, ledger: Ledger, stop: threading.Event, seed: int, big_every: int = 12) -> None:
        super().__init__(daemon=True)
        self.base, self.ledger, self.stop_event = base, ledger, stop
        self.rng = random.Random(seed)
        self.big_every = big_every
        self.n = 0

    def run(self) -> None:
        with httpx.Client(base_url=self.base + "/fhir", timeout=10.0) as client:
            while not self.stop_event.is_set():
                self.n += 1
                try:
                    self.one(client)
                except (httpx.HTTPError, OSError, ValueError):
                    time.sleep(0.05)  # the server is gone (or refused): nothing was acknowledged

    def one(self, client: httpx.Client) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            self.create(client, patient(self.n) if self.rng.random() < 0.5 else observation(self.n))
        elif roll < 0.7 and self.ledger.updatable:
            self.update(client, self.rng.choice(self.ledger.updatable))
        else:
            self.transaction(client, 40 if self.n % self.big_every == 0 else self.rng.randint(2, 6))

    def create(self, client: httpx.Client, resource: dict[str, Any]) -> None:
        r = client.post(f"/{resource['resourceType']}", content=orjson.dumps(resource), headers=FHIR_JSON)
        if r.status_code == 201:
            stored = orjson.loads(r.content)
            self.ledger.ack(stored["resourceType"], stored["id"], int(stored["meta"]["versionId"]), r.content)
            with self.ledger.lock:
                self.ledger.updatable.append((stored["resourceType"], stored["id"]))

    def update(self, client: httpx.Client, key: tuple[str, str]) -> None:
        rtype, rid = key
        resource = patient(self.n) if rtype == "Patient" else observation(self.n)
        resource["id"] = rid
        r = client.put(f"/{rtype}/{rid}", content=orjson.dumps(resource), headers=FHIR_JSON)
        if r.status_code in (200, 201):
            stored = orjson.loads(r.content)
            self.ledger.ack(rtype, rid, int(stored["meta"]["versionId"]), r.content)

    def transaction(self, client: httpx.Client, size: int) -> None:
        marker = uuid.uuid4().hex
        bundle = transaction_bundle(marker, size, self.n)
        with self.ledger.lock:
            self.ledger.transactions[marker] = size
        r = client.post("", content=orjson.dumps(bundle), headers=FHIR_JSON)
        if r.status_code != 200:
            return
        for entry in orjson.loads(r.content)["entry"]:
            res = entry["resource"]  # spliced stored bytes: orjson writes them back byte for byte
            self.ledger.ack(res["resourceType"], res["id"], int(res["meta"]["versionId"]), orjson.dumps(res))
        with self.ledger.lock:
            self.ledger.transactions_acked.add(marker)


def transaction_bundle(marker: str, size: int, n: int) -> dict[str, Any]:
    """A Patient and Observations about it, every entry tagged with the transaction's marker."""
    tag = {"tag": [{"system": MARKER_SYSTEM, "code": marker}]}
    patient_urn = f"urn:uuid:{uuid.uuid4()}"
    entries = [
        {
            "fullUrl": patient_urn,
            "resource": {**patient(n), "meta": tag},
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for k in range(size - 1):
        obs = {**observation(n + k, patient_urn), "meta": tag}
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": obs,
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


# --- verification -----------------------------------------------------------------------------------------
@dataclass
class Verdict:
    acked: int
    missing: list[tuple[str, str, int]]
    different: list[tuple[str, str, int]]
    partial_transactions: dict[str, tuple[int, int]]  # marker -> (found, expected)
    lost_transactions: list[str]  # acknowledged but absent
    check: CheckReport
    transactions_seen: int = 0

    @property
    def ok(self) -> bool:
        return (
            not (self.missing or self.different or self.partial_transactions or self.lost_transactions)
            and self.check.ok
        )

    def summary(self) -> str:
        return (
            f"acked={self.acked} missing={len(self.missing)} different={len(self.different)} "
            f"partial_tx={len(self.partial_transactions)} lost_tx={len(self.lost_transactions)} "
            f"check_ok={self.check.ok} problems={self.check.problems[:5]}"
        )


def verify(db: str, ledger: Ledger, *, index: bool = True) -> Verdict:
    """Open the store directly and hold it to the ledger; then run the full consistency check."""
    server = build(Settings(db=db, auto_migrate=False))
    try:
        with ledger.lock:
            acked = dict(ledger.acked)
            sent = dict(ledger.transactions)
            acked_tx = set(ledger.transactions_acked)
        missing, different = [], []
        for (rtype, rid, version), body in acked.items():
            stored = server.store.vread(rtype, rid, version)
            if stored is None:
                missing.append((rtype, rid, version))
            elif stored.body != body:
                different.append((rtype, rid, version))
        found = markers_found(server)
        partial = {m: (found.get(m, 0), n) for m, n in sent.items() if found.get(m, 0) not in (0, n)}
        lost = [m for m in acked_tx if found.get(m, 0) != sent[m]]
        report = check_store(server.store, server.repo.indexer, index=index)
    finally:
        server.close()
    return Verdict(len(acked), missing, different, partial, lost, report, len(found))


def markers_found(server: Any) -> dict[str, int]:
    """How many current resources carry each transaction marker."""
    counts: dict[str, int] = {}
    false = "FALSE" if server.store.dialect.name == "postgresql" else "0"
    with server.store.reading() as cur:
        cur.execute(f"SELECT v.body FROM resources r JOIN versions v ON v.seq = r.seq WHERE r.deleted = {false}")
        for (body,) in cur.fetchall():
            for tag in (orjson.loads(bytes(body)).get("meta") or {}).get("tag", []):
                if tag.get("system") == MARKER_SYSTEM:
                    counts[tag["code"]] = counts.get(tag["code"], 0) + 1
    return counts


def run_writers(base: str, ledger: Ledger, n: int, stop: threading.Event, seed: int = 0) -> list[Writer]:
    writers = [Writer(base, ledger, stop, seed * 100 + k) for k in range(n)]
    for w in writers:
        w.start()
    return writers


def join(writers: list[Writer]) -> None:
    for w in writers:
        w.join(timeout=15)
