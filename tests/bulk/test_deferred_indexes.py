"""A large NDJSON load into a small SQLite store builds the search tables' value indexes after the load: the
result is the same store, every index is back whatever happens, and nothing that searches while it loads defers."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from support.bulk_data import SYNTHEA, build_server, synthea_resources, write_ndjson

from sharedcare.app import Server
from sharedcare.bulk.loader import ImportInterrupted, ImportOptions, ImportStats, Loader
from sharedcare.bulk.service import loader_for
from sharedcare.bulk.sources import discover
from sharedcare.store.bulk_sql import deferrable_indexes
from sharedcare.store.schema import INDEX_TABLES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    if not SYNTHEA.is_dir():
        pytest.skip("../shared Synthea data is not present")
    return synthea_resources(2)


class Phases:
    """Progress that notes the loader's phases, and which value indexes exist when the build phase starts."""

    def __init__(self, db: Path) -> None:
        self.db, self.seen, self.missing_at_build = db, [], -1

    def begin(self, total_bytes: int, files: int) -> None:
        return None

    def file(self, source: Any) -> None:
        return None

    def advance(self, nbytes: int, resources: int) -> None:
        return None

    def phase(self, text: str) -> None:
        self.seen.append(text)
        self.missing_at_build = len(_missing(self.db))


def _missing(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return _expected() - present


def _expected() -> set[str]:
    """The search tables' value indexes (not those by rid), named as the schema names them."""
    return {f"{table}_{n}" for table, (_, indexes) in INDEX_TABLES.items() for n in range(len(indexes))}


def load(server: Server, progress: Any, *paths: Path, **options: Any) -> ImportStats:
    sources, _ = discover(paths)
    return loader_for(server, ImportOptions(**{"batch_size": 100, **options}), progress).run(sources)


SEARCHES = [
    ("Observation", [("code", "http://loinc.org|8302-2")]),
    ("Observation", [("date", "ge2015-01-01")]),
    ("Encounter", [("class", "AMB")]),
    ("Condition", [("clinical-status", "active")]),
    ("Patient", [("gender", "male,female")]),
]


def test_the_deferred_load_ends_with_the_same_store(resources: list[dict[str, Any]], tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "data.ndjson", resources)
    results = {}
    for defer in (True, False):
        db = tmp_path / f"{defer}.db"
        srv = build_server(f"sqlite:///{db}")
        try:
            phases = Phases(db)
            stats = load(srv, phases, data, defer_indexes=defer)
            assert stats.created == len(resources)
            assert phases.seen == (["building search indexes"] if defer else [])
            if defer:
                assert phases.missing_at_build == len(_expected()) > 0  # they really were gone during the load
            assert _missing(db) == set()
            results[defer] = [sorted(srv.store.search_ids(t, params, 100_000)) for t, params in SEARCHES]
        finally:
            srv.close()
        if defer:
            assert {name for name, _ in deferrable_indexes(srv.store)} == _expected()
    assert results[True] == results[False]
    assert all(results[True]), "each search finds something"


def test_an_interrupted_deferred_load_builds_the_indexes_before_it_stops(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    db = tmp_path / "i.db"
    srv = build_server(f"sqlite:///{db}")
    try:
        with pytest.raises(ImportInterrupted):
            data = write_ndjson(tmp_path / "d.ndjson", resources)
            load(srv, Phases(db), data, defer_indexes=True, fail_after_batches=2)
        assert _missing(db) == set()
    finally:
        srv.close()


def test_a_store_left_without_them_gets_them_back_at_the_next_start(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    build_server(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:  # as a load killed part way leaves it
        for name in _expected():
            conn.execute(f"DROP INDEX {name}")
    assert _missing(db)
    build_server(f"sqlite:///{db}").close()
    assert _missing(db) == set()


def test_a_killed_cli_import_with_deferred_indexes_resumes_and_the_store_is_whole(
    resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "data.ndjson", resources)
    db = tmp_path / "kill.db"
    cmd = [str(ROOT / ".venv/bin/sharedcare"), "import", str(data), "--db", f"sqlite:///{db}", "--defer-indexes"]
    cmd += ["--workers", "0", "--batch-size", "20", "--no-progress", "--errors", str(tmp_path / "e.ndjson")]
    env = {**os.environ, "SHAREDCARE_AUTH_REQUIRED": "false"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not _loading(db) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _missing(db), "killed while the indexes were deferred"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert rerun.returncode == 0, rerun.stderr
    assert _missing(db) == set()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(DISTINCT rid) FROM versions").fetchone()[0] >= len(resources)


def _loading(db: Path) -> bool:
    """Some lines committed while the value indexes are gone."""
    if not db.exists():
        return False
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT MAX(lines_done) FROM import_progress").fetchone()
            return int(row[0] or 0) >= 100 and bool(_missing(db))
    except sqlite3.OperationalError:
        return False


def _loader(srv: Server, **options: Any) -> Loader:
    return loader_for(srv, ImportOptions(**options))  # type: ignore[return-value]


def test_who_defers(resources: list[dict[str, Any]], tmp_path: Path) -> None:
    """By default: a large NDJSON load into a smaller store. Never a load with Bundles (their conditional
    references search as they load), never when told not to, and never $import on a serving store."""
    srv = build_server(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        big = discover([write_ndjson(tmp_path / "big.ndjson", resources * 8)])[0]
        small = discover([write_ndjson(tmp_path / "small.ndjson", resources[:50])])[0]
        bundle = tmp_path / "b.json"
        bundle.write_bytes(b'{"resourceType": "Bundle", "type": "transaction", "entry": []}')
        with_bundle = discover([tmp_path / "big.ndjson", bundle])[0]
        assert _loader(srv)._defer_indexes(big)
        assert not _loader(srv)._defer_indexes(small)
        assert not _loader(srv)._defer_indexes(with_bundle)
        assert not _loader(srv, defer_indexes=False)._defer_indexes(big)
        assert _loader(srv, defer_indexes=True)._defer_indexes(small)
        assert srv.bulk is not None
        serving = srv.bulk.jobs.loader_factory(Phases(tmp_path / "w.db"))  # what $import runs
        assert serving.options.defer_indexes is False and not serving._defer_indexes(big)
    finally:
        srv.close()
