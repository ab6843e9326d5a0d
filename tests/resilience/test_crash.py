"""kill -9 in the middle of concurrent creates, updates, transaction Bundles and a bulk import, again and again.

After every crash and restart: every acknowledged version is present with the exact bytes acknowledged, no
transaction is partly there, the bulk import holds exactly the batches its checkpoint says (and completes when
run again), and `check` finds the store consistent (versions, bytes, index, change feed).
A few cycles per backend here (well under a minute); bench/resilience_bench.py runs many more.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg
import pytest
from crashkit import BulkImport, Ledger, bulk_problems, join, run_writers, serve, verify

from sharedcare.app import build
from sharedcare.settings import Settings

CYCLES = {"sqlite": 3, "postgresql": 2}  # bench/resilience_bench.py crash runs many more


def _reset(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_acknowledged_writes_survive_kill_9(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "postgresql":
        db = request.getfixturevalue("pg_url")
        _reset(db)
    else:
        db = f"sqlite:///{tmp_path / 'crash.db'}"
    rng = random.Random(8)
    ledger = Ledger()
    bulk = BulkImport(db, tmp_path / "bulk.ndjson", "bulk", 4000, tmp_path / "import.log").write()
    mid_import_kills = 0
    proc = serve(db, tmp_path / "server.log").start()
    try:
        for cycle in range(CYCLES[backend]):
            stop = threading.Event()
            done = bulk.lines_done()
            bulk.start()  # the same import each cycle: it resumes after its last committed batch
            writers = run_writers(proc.base, ledger, 3, stop, seed=cycle)
            bulk.wait_for_progress(done)
            time.sleep(rng.uniform(0.1, 0.8))  # the kill lands wherever the writers and the import happen to be
            import_running = bulk.popen is not None and bulk.popen.poll() is None
            exited = None if import_running or bulk.popen is None else bulk.popen.returncode
            assert exited in (None, 0), f"cycle {cycle}: the import exited by itself ({exited}): {bulk.log_tail()}"
            proc.kill()
            bulk.kill()
            stop.set()
            join(writers)
            proc.start()  # restart: recovery runs when the store opens
            verdict = verify(db, ledger)
            assert verdict.ok, f"cycle {cycle}: {verdict.summary()}"
            _assert_bulk(db, bulk, complete=False)
            # the import was still running when killed (on a fast machine it may finish first; on a slow one the
            # kill may land before its first batch commits, which is mid-import too)
            mid_import_kills += import_running and bulk.lines_done() < bulk.lines
        assert mid_import_kills, "no kill landed in the middle of the import"
        assert len(ledger.acked) > 50 and ledger.transactions_acked, "the writers hardly wrote anything"
        assert bulk.finish() == 0
        _assert_bulk(db, bulk, complete=True)
    finally:
        proc.stop()


def _assert_bulk(db: str, bulk: BulkImport, complete: bool) -> None:
    server = build(Settings(db=db, auto_migrate=False))
    try:
        problems = bulk_problems(server, bulk, complete)
    finally:
        server.close()
    assert not problems, problems
