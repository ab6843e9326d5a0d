"""`sharedcare import` / the bulk loader: NDJSON, gzip, folders and Bundles; rejected lines; reruns; resumption."""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from support.bulk_data import SYNTHEA, build_server, synthea_files, synthea_resources, write_ndjson

from sharedcare.app import Server
from sharedcare.bulk.loader import ImportInterrupted, ImportOptions, ImportStats
from sharedcare.bulk.report import write_report
from sharedcare.bulk.service import loader_for
from sharedcare.bulk.sources import discover
from sharedcare.store.sqlite import _Checkpointer

BACKENDS = [b for b in os.environ.get("SHAREDCARE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=BACKENDS)
def bulk_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
    else:
        url = f"sqlite:///{tmp_path / 'bulk.db'}"
    srv = build_server(url)
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    if not SYNTHEA.is_dir():
        pytest.skip("../shared Synthea data is not present")
    return synthea_resources(2)


def load(server: Server, *paths: Path, **options: Any) -> ImportStats:
    sources, _ = discover(paths)
    return loader_for(server, ImportOptions(**{"batch_size": 100, **options})).run(sources)


def stored(server: Server, res: dict[str, Any]) -> dict[str, Any]:
    found = server.store.read(res["resourceType"], res["id"])
    assert found is not None and found.body is not None, f"{res['resourceType']}/{res['id']} not stored"
    return orjson.loads(found.body)


def test_ndjson_gzip_and_folders_load_validated_and_indexed(
    bulk_server: Server, resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    third = len(resources) // 3
    write_ndjson(folder / "a.ndjson", resources[:third])
    write_ndjson(folder / "b.ndjson.gz", resources[third : 2 * third], gz=True)
    write_ndjson(folder / "sub" / "c.jsonl", resources[2 * third :])
    (folder / "notes.txt").write_text("not FHIR")
    stats = load(bulk_server, folder)
    assert (stats.files, stats.created, stats.errors) == (3, len(resources), 0)
    for res in resources[:: max(1, len(resources) // 25)]:
        got = stored(bulk_server, res)
        assert got["meta"]["versionId"] == "1"
        assert {k: v for k, v in got.items() if k != "meta"} == {k: v for k, v in res.items() if k != "meta"}
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    observations = [r for r in resources if r["resourceType"] == "Observation"]
    observations = [o for o in observations if o["subject"]["reference"] == f"Patient/{patient['id']}"]
    found = bulk_server.store.search_ids("Observation", [("subject", f"Patient/{patient['id']}")], 100_000)
    assert len(found) == len(observations) > 0


def test_broken_lines_are_reported_while_the_rest_loads(bulk_server: Server, tmp_path: Path) -> None:
    lines = [
        b'{"resourceType":"Patient","id":"p1","gender":"female"}',
        b"{not json",
        b'{"resourceType":"Patient","id":"p2","gender":"weird"}',
        b"",
        b'{"resourceType":"Nonsense","id":"x"}',
        b'{"resourceType":"Patient","id":"bad id!"}',
        b'["an array"]',
        b'{"resourceType":"Patient","id":"p3","birthDate":"1970-02-03"}',
    ]
    path = tmp_path / "broken.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    stats = load(bulk_server, path)
    assert (stats.created, stats.errors) == (2, 5)
    report = tmp_path / "errors.ndjson"
    sources, _ = discover([path])
    assert write_report(bulk_server.store, sources, report) == 5
    entries = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert [e["line"] for e in entries] == [2, 3, 5, 6, 7]
    assert all(e["file"] == str(path) and e["outcome"]["resourceType"] == "OperationOutcome" for e in entries)
    assert entries[1]["outcome"]["issue"][0]["expression"] == ["Patient.gender"]
    assert bulk_server.store.read("Patient", "p3") is not None


def test_rerun_and_the_same_data_again_load_nothing_twice(
    bulk_server: Server, resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    first = write_ndjson(tmp_path / "first.ndjson", resources)
    assert load(bulk_server, first).created == len(resources)
    again = load(bulk_server, first)
    assert (again.files, again.files_already_loaded, again.written) == (0, 1, 0)
    changed = [dict(r) for r in resources]
    changed[0] = {**changed[0], "language": "en-GB"}
    second = write_ndjson(tmp_path / "second.ndjson", changed)  # same data under another name, one change
    stats = load(bulk_server, second)
    assert (stats.created, stats.updated, stats.unchanged) == (0, 1, len(resources) - 1)
    assert stored(bulk_server, changed[0])["meta"]["versionId"] == "2"
    assert stored(bulk_server, changed[1])["meta"]["versionId"] == "1"


def test_an_interrupted_import_resumes_after_its_last_commit(
    bulk_server: Server, resources: list[dict[str, Any]], tmp_path: Path
) -> None:
    path = write_ndjson(tmp_path / "data.ndjson.gz", resources, gz=True)
    with pytest.raises(ImportInterrupted):
        load(bulk_server, path, batch_size=50, fail_after_batches=3)
    assert imported(bulk_server, resources) == (150, 1)
    stats = load(bulk_server, path, batch_size=50)
    assert (stats.files_resumed, stats.created, stats.unchanged) == (1, len(resources) - 150, 0)
    assert imported(bulk_server, resources) == (len(resources), 1)


def imported(server: Server, resources: list[dict[str, Any]]) -> tuple[int, int]:
    """(versions, highest version number) of the data set's types: write hooks may add others (MPI Person)."""
    types = sorted({r["resourceType"] for r in resources})
    marks = ", ".join(["?"] * len(types))
    with server.store.reading() as cur:
        cur.execute(
            server.store.dialect.sql(f"SELECT COUNT(*), MAX(version) FROM versions WHERE type IN ({marks})"), types
        )
        count, top = cur.fetchone()
    return int(count), int(top or 0)


def test_writes_match_what_the_api_writes(resources: list[dict[str, Any]], tmp_path: Path) -> None:
    """The bulk path batches inserts; every table must end up as the one-resource API path leaves it."""
    sample = resources[:120]
    bulk = build_server(f"sqlite:///{tmp_path / 'bulk.db'}")
    api = build_server(f"sqlite:///{tmp_path / 'api.db'}")
    try:
        load(bulk, write_ndjson(tmp_path / "s.ndjson", sample))
        changed = [{**r, "language": "en"} for r in sample[:30]]
        load(bulk, write_ndjson(tmp_path / "t.ndjson", changed))  # the row-by-row replacement path
        for res in sample:
            api.repo.update(res["resourceType"], res["id"], res)
        for res in changed:
            api.repo.update(res["resourceType"], res["id"], res)
        types = {r["resourceType"] for r in sample}
        assert table_contents(bulk, types) == table_contents(api, types)
        assert access_contents(bulk) == access_contents(api)
        for srv in (bulk, api):
            assert srv.security is not None
            srv.security.trail.flush()
        told = audited_patients(bulk)
        assert told == audited_patients(api) and len(told) >= len(sample)  # fewer events, the same patients told
        for srv in (bulk, api):
            with srv.store.reading() as cur:
                assert srv.security is not None and srv.security.audit.verify(cur).ok  # chained, head signed
    finally:
        bulk.close()
        api.close()


def table_contents(server: Server, types: set[str]) -> dict[str, list[str]]:
    """Every index table and the resource rows of `types`, keyed by Type/id instead of internal keys."""
    out: dict[str, list[str]] = {}
    with server.store.reading() as cur:
        cur.execute("SELECT rid, type, id FROM resources")
        keys = {rid: f"{t}/{i}" for rid, t, i in cur.fetchall() if t in types}
        cur.execute("SELECT type, id, version, deleted FROM resources")
        out["resources"] = sorted(repr(row) for row in cur.fetchall() if row[0] in types)
        cur.execute("SELECT type, id, version, method, body FROM versions")
        rows = [(t, i, v, m, _without_time(b)) for t, i, v, m, b in cur.fetchall() if t in types]
        out["versions"] = sorted(repr(row) for row in rows)
        tables = ["compartment", "fulltext_rows"] + [f"idx_{t}" for t in ("string", "token", "reference", "date")]
        tables += ["idx_number", "idx_quantity", "idx_uri", "idx_composite"]
        for table in tables:
            cur.execute(f"SELECT * FROM {table}")
            out[table] = sorted(repr((keys[row[0]], *row[1:])) for row in cur.fetchall() if row[0] in keys)
    return out


def access_contents(server: Server) -> dict[str, list[str]]:
    """The access tables (batched by the bulk path's write hooks), keyed by Type/id instead of internal keys."""
    out: dict[str, list[str]] = {}
    with server.store.reading() as cur:
        cur.execute("SELECT rid, type, id FROM resources WHERE type NOT IN ('Person', 'Task')")  # ids of their own
        keys = {rid: f"{t}/{i}" for rid, t, i in cur.fetchall()}
        for table in ("access_member", "access_version", "access_label"):
            cur.execute(f"SELECT * FROM {table}")
            out[table] = sorted(repr((keys[row[0]], *row[1:])) for row in cur.fetchall() if row[0] in keys)
        for table in ("access_relationship", "access_consent"):
            cur.execute(f"SELECT * FROM {table}")
            out[table] = sorted(repr(row[:4]) for row in cur.fetchall())
    return out


def audited_patients(server: Server) -> dict[str, list[str]]:
    """For every resource version written, the patients whose audit trail names it."""
    out: dict[str, set[str]] = {}
    with server.store.reading() as cur:
        cur.execute("SELECT seq, value FROM audit_index WHERE kind = 'patient'")
        patients: dict[int, set[str]] = {}
        for seq, value in cur.fetchall():
            patients.setdefault(seq, set()).add(value)
        cur.execute("SELECT seq, value FROM audit_index WHERE kind = 'entity'")
        for seq, entity in cur.fetchall():
            out.setdefault(entity, set()).update(patients.get(seq, set()))
    return {entity: sorted(who) for entity, who in out.items() if not entity.startswith(("Person/", "Task/"))}


def _without_time(body: bytes) -> bytes:
    res = orjson.loads(body)
    res["meta"].pop("lastUpdated")
    return orjson.dumps(res)


def test_worker_processes_prepare_the_same_result(resources: list[dict[str, Any]], tmp_path: Path) -> None:
    server = build_server(f"sqlite:///{tmp_path / 'w.db'}")
    try:
        path = write_ndjson(tmp_path / "w.ndjson", resources[:300] + [{"resourceType": "Patient", "gender": 1}])
        stats = load(server, path, workers=1)
        assert (stats.created, stats.errors) == (300, 1)
    finally:
        server.close()


def test_transaction_and_batch_bundles_keep_their_semantics(bulk_server: Server, tmp_path: Path) -> None:
    """Synthea's HIV set: batch Bundles of conditional creates, then a patient whose transaction refers to them by
    conditional references (Practitioner?identifier=...). The batch Bundles are cut down to the entries that patient
    refers to (plus a few others), to keep the test quick."""
    hiv = SYNTHEA / "fhir-data-pipes-hiv-2021"
    if not hiv.is_dir():
        pytest.skip("../shared Synthea data is not present")
    folder = tmp_path / "hiv"
    folder.mkdir()
    patient_file = sorted(hiv.glob("*_*.json.gz"))[0]
    shutil.copy(patient_file, folder / patient_file.name)
    text = gzip.decompress(patient_file.read_bytes())
    kept = 0
    for path in sorted(hiv.glob("*Information*.json.gz")):
        batch = orjson.loads(gzip.decompress(path.read_bytes()))
        batch["entry"] = [e for n, e in enumerate(batch["entry"]) if n < 10 or _referred(e, text)]
        kept += len(batch["entry"])
        (folder / path.name).write_bytes(gzip.compress(orjson.dumps(batch)))
    stats = load(bulk_server, folder, batch_size=500)
    assert stats.errors == 0 and stats.files == 3
    bundle = orjson.loads(text)
    assert stats.created == kept + len(bundle["entry"])
    encounter_ids = bulk_server.store.search_ids("Encounter", [("status", "finished")], 1)
    encounter = orjson.loads(bulk_server.store.read("Encounter", encounter_ids[0]).body)  # type: ignore[union-attr]
    practitioner = encounter["participant"][0]["individual"]["reference"]
    assert practitioner.startswith("Practitioner/") and "?" not in practitioner
    assert bulk_server.store.read("Practitioner", practitioner.split("/")[1]) is not None
    again = load(bulk_server, folder)
    assert (again.files_already_loaded, again.written) == (3, 0)


def _referred(entry: dict[str, Any], patient_bundle: bytes) -> bool:
    """Whether the patient's Bundle refers to this entry's resource by one of its identifiers."""
    for ident in entry["resource"].get("identifier", []):
        if f"{ident.get('system')}|{ident.get('value')}".encode() in patient_bundle:
            return True
    return False


def test_smart_synthea_transaction_bundles(bulk_server: Server, tmp_path: Path) -> None:
    if not SYNTHEA.is_dir():
        pytest.skip("../shared Synthea data is not present")
    files = synthea_files(n=2)
    stats = load(bulk_server, *files)
    entries = sum(len(orjson.loads(gzip.decompress(p.read_bytes()))["entry"]) for p in files)
    assert (stats.files, stats.errors, stats.created) == (2, 0, entries)


def test_a_failing_transaction_bundle_is_reported_and_the_others_load(bulk_server: Server, tmp_path: Path) -> None:
    good = {"resourceType": "Bundle", "type": "transaction", "entry": [_post({"resourceType": "Patient"})]}
    bad = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [_post({"resourceType": "Patient"}), _post({"resourceType": "Patient", "gender": "nope"})],
    }
    (tmp_path / "good.json").write_bytes(orjson.dumps(good))
    (tmp_path / "bad.json").write_bytes(orjson.dumps(bad))
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b'{"resourceType": "Bundle", "type": "transaction", '))
    stats = load(bulk_server, tmp_path)
    assert (stats.created, stats.errors) == (1, 2)
    assert imported(bulk_server, [{"resourceType": "Patient"}]) == (1, 1)
    sources, _ = discover([tmp_path])
    report = tmp_path / "report.ndjson"
    assert write_report(bulk_server.store, sources, report) == 2
    entries = [orjson.loads(line) for line in report.read_bytes().splitlines()]
    assert any(e["file"].endswith("broken.json.gz") for e in entries)
    entry = next(e for e in entries if e["file"].endswith("bad.json"))
    assert entry["file"].endswith("bad.json") and "line" not in entry
    assert entry["outcome"]["issue"][0]["expression"][0].startswith("Bundle.entry[1]")


def _post(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "POST", "url": resource["resourceType"]}}


@pytest.mark.skipif(sys.platform == "win32", reason="uses POSIX signals")
def test_killed_cli_import_resumes_and_loads_each_line_once(resources: list[dict[str, Any]], tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "data.ndjson", resources)
    db = tmp_path / "kill.db"
    cmd = [str(ROOT / ".venv/bin/sharedcare"), "import", str(data), "--db", f"sqlite:///{db}"]
    cmd += ["--workers", "0", "--batch-size", "20", "--no-progress", "--errors", str(tmp_path / "e.ndjson")]
    env = {**os.environ, "SHAREDCARE_AUTH_REQUIRED": "false"}
    log = tmp_path / "import.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while _lines_done(db) < 100 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _lines_done(db)
    assert 0 < done < len(resources), f"not killed part way; its log ends: {log.read_text()[-800:]}"
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    types = sorted({r["resourceType"] for r in resources})
    with sqlite3.connect(db) as conn:
        sql = f"SELECT COUNT(*), MAX(version) FROM versions WHERE type IN ({', '.join('?' * len(types))})"
        assert conn.execute(sql, types).fetchone() == (len(resources), 1)


def _lines_done(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("SELECT MAX(lines_done) FROM import_progress").fetchone()
    except sqlite3.OperationalError:
        return 0
    return int(row[0] or 0)


def test_region_generator_output_loads_as_ndjson_and_as_bundle_lines(tmp_path: Path) -> None:
    """The generator writes both shapes: NDJSON per type, and NDJSON whose lines are transaction Bundles."""
    generate = pytest.importorskip("sharedcare.generate")
    summary = generate.generate_region(generate.RegionConfig(patients=20, out=tmp_path / "region"))
    flat = build_server(f"sqlite:///{tmp_path / 'flat.db'}")
    bundled = build_server(f"sqlite:///{tmp_path / 'bundled.db'}")
    whole = build_server(f"sqlite:///{tmp_path / 'whole.db'}")
    try:
        sources, skipped = discover([tmp_path / "region"])
        assert {p.name for p in skipped} >= {"manifest.json"}  # JSON, but not FHIR: skipped, not an error
        stats = load(whole, tmp_path / "region")  # both shapes of the same data: the second changes nothing
        assert (stats.created, stats.unchanged, stats.updated, stats.errors) == (summary.resources,) * 2 + (0, 0)
        stats = load(flat, tmp_path / "region" / "ndjson")
        assert (stats.created, stats.errors) == (summary.resources, 0)
        stats = load(bundled, tmp_path / "region" / "bundles")
        assert (stats.created, stats.errors) == (summary.resources, 0)
        types = {t for per_org in summary.counts.values() for t in per_org}
        keys = {t: sorted(flat.store.search_ids(t, [("_lastUpdated", "gt2000-01-01")], 100_000)) for t in types}
        assert keys == {
            t: sorted(bundled.store.search_ids(t, [("_lastUpdated", "gt2000-01-01")], 100_000)) for t in types
        }
    finally:
        flat.close()
        bundled.close()
        whole.close()


def test_bundles_on_ndjson_lines(bulk_server: Server, tmp_path: Path) -> None:
    """A line holding a batch or transaction Bundle is processed as one, not stored as a Bundle resource."""
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _post({"resourceType": "Patient", "gender": "male"}),
            _post({"resourceType": "Patient", "gender": 7}),
        ],
    }
    transaction = {"resourceType": "Bundle", "type": "transaction", "entry": [_post({"resourceType": "Patient"})]}
    collection = {"resourceType": "Bundle", "id": "kept", "type": "collection"}
    path = write_ndjson(tmp_path / "mixed.ndjson", [batch, transaction, collection])
    stats = load(bulk_server, path)
    assert (stats.created, stats.errors) == (3, 1)
    assert imported(bulk_server, [{"resourceType": "Patient"}]) == (2, 1)
    assert bulk_server.store.read("Bundle", "kept") is not None
    sources, _ = discover([path])
    report = tmp_path / "r.ndjson"
    assert write_report(bulk_server.store, sources, report) == 1
    assert orjson.loads(report.read_bytes())["line"] == 1


def test_back_to_back_commits_start_the_wal_over_once_it_is_large(tmp_path: Path) -> None:
    """Commits that follow each other never find the WAL fully checkpointed, so SQLite alone never restarts it; the
    store's checkpointer does (with writers held off) once the log in use passes its limit."""

    def wal_sizes(bounded: bool) -> list[int]:
        path = tmp_path / f"w{bounded}.db"
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE t (x BLOB)")
        lock = threading.Lock()

        @contextlib.contextmanager
        def exclusive() -> Iterator[None]:
            with lock:
                yield

        connect = lambda: sqlite3.connect(path, isolation_level=None, check_same_thread=False)  # noqa: E731
        checkpointer = _Checkpointer(str(path), connect, exclusive, every=0.01, limit=1) if bounded else None
        sizes = []
        for _ in range(6):
            with lock:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO t VALUES (?)", [(os.urandom(3000),) for _ in range(100)])
                conn.execute("COMMIT")
            time.sleep(0.05)  # a checkpoint or two between commits
            sizes.append(os.path.getsize(f"{path}-wal"))
        if checkpointer is not None:
            checkpointer.stop()
        conn.close()
        return sizes

    bounded, unbounded = wal_sizes(True), wal_sizes(False)
    assert unbounded[-1] > 4 * unbounded[0]  # grows by every commit
    assert bounded[-1] <= 2 * bounded[0]  # written from the start again


