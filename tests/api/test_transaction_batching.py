"""Transaction Bundles saved set-based (early indexing, one insert per table) and SQLite group commit: the same
stored versions and index rows as single writes, the same errors, nothing half-written."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient
from test_crud import FHIR_JSON, patient
from test_transactions import obs, tx

from sharedcare.app import Server, build
from sharedcare.errors import InvalidRequest
from sharedcare.fhir.indexing import Indexer
from sharedcare.fhir.resource import stamp
from sharedcare.fhir.search_parameters import SearchParam, SearchParameterRegistry
from sharedcare.resilience.check import check_store
from sharedcare.service.preindex import ROW_LISTS, Preindexer
from sharedcare.settings import Settings


def _put(resource: dict[str, Any]) -> dict[str, Any]:
    return {"resource": resource, "request": {"method": "PUT", "url": f"{resource['resourceType']}/{resource['id']}"}}


def test_mixed_transaction_matches_single_writes(server: Server, client: TestClient) -> None:
    client.put("/fhir/Patient/old", json={**patient(), "id": "old"}, headers=FHIR_JSON)
    bundle = tx(
        _put({**patient(), "id": "old", "gender": "female"}),  # an update: version 2
        _put({**patient(), "id": "new"}),
        _put({**obs("Patient/new"), "id": "o1"}),
        {"fullUrl": "urn:uuid:0b8e7a56-0000-4000-8000-000000000001", "resource": patient(),
         "request": {"method": "POST", "url": "Patient"}},
        {"resource": obs("urn:uuid:0b8e7a56-0000-4000-8000-000000000001"),
         "request": {"method": "POST", "url": "Observation"}},
    )
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert [e["response"]["status"] for e in entries] == ["200 OK", *["201 Created"] * 4]
    assert entries[0]["response"]["etag"] == 'W/"2"'
    assert entries[0]["response"]["location"] == "Patient/old/_history/2"
    posted = entries[3]["resource"]["id"]
    assert entries[4]["resource"]["subject"]["reference"] == f"Patient/{posted}"
    assert len({e["response"]["lastModified"] for e in entries}) == 1
    with server.store.reading() as cur:  # the interaction that made each version, as single writes record it
        cur.execute("SELECT id, version, method FROM versions WHERE type = 'Patient' ORDER BY id, version")
        methods = {(row[0], row[1]): row[2] for row in cur.fetchall()}
    assert methods == {("old", 1): "PUT", ("old", 2): "PUT", ("new", 1): "PUT", (posted, 1): "POST"}
    report = check_store(server.store, server.repo.indexer)  # index rows as a fresh indexing of the bytes
    assert report.ok, report.problems
    found = client.get("/fhir/Observation", params={"subject": "Patient/new"}).json()
    assert [e["resource"]["id"] for e in found.get("entry", [])] == ["o1"]


def test_failed_if_match_names_the_entry_and_writes_nothing(client: TestClient) -> None:
    client.put("/fhir/Patient/p1", json={**patient(), "id": "p1"}, headers=FHIR_JSON)
    stale = {**_put({**patient(), "id": "p1"}), "request": {"method": "PUT", "url": "Patient/p1", "ifMatch": 'W/"7"'}}
    r = client.post("/fhir", json=tx(_put({**patient(), "id": "p2"}), stale), headers=FHIR_JSON)
    assert r.status_code == 412, r.text
    assert "Bundle.entry[1]" in r.text
    assert client.get("/fhir/Patient/p2").status_code == 404
    assert client.get("/fhir/Patient/p1").json()["meta"]["versionId"] == "1"


def test_entries_meeting_on_one_resource_are_saved_in_order(client: TestClient) -> None:
    """A conditional update that lands on the id another entry creates sees that entry's version."""
    body = {**patient(), "id": "same"}
    conditional = {"resource": body, "request": {"method": "PUT", "url": "Patient?_id=same"}}
    r = client.post("/fhir", json=tx(_put(body), conditional), headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    assert [e["response"]["etag"] for e in r.json()["entry"]] == ['W/"1"', 'W/"2"']


def test_early_index_rows_equal_late_ones() -> None:
    registry = SearchParameterRegistry.load()
    indexer = Indexer(registry)
    pre = Preindexer(indexer)
    memo: dict[Any, Any] = {}
    for resource in ({**patient(), "id": "a", "meta": {"tag": [{"code": "x"}]}}, {**obs("Patient/a"), "id": "b"}):
        early = pre.early(resource["resourceType"], resource["id"], resource)
        assert early is not None
        for version in (1, 4):
            now = "2026-01-02T03:04:05.123456Z"
            got = pre.finish(resource["resourceType"], early, version, now, memo)
            want = indexer.index(stamp(resource, resource["id"], version, now)[0])
            for name in ROW_LISTS:
                assert sorted(map(repr, getattr(got, name))) == sorted(map(repr, getattr(want, name))), name


def test_a_parameter_that_reads_server_meta_is_indexed_late() -> None:
    registry = SearchParameterRegistry.load()
    pre = Preindexer(Indexer(registry))
    assert pre.safe("Patient")
    odd = SearchParam("version", "token", ("Patient",), "Patient.meta.versionId", "urn:x", custom=True)
    fake = type("Registry", (), {"version": 99, "params_for": lambda self, t: {"version": odd}})()
    pre.indexer.registry = fake  # type: ignore[attr-defined]
    assert pre.early("Patient", "a", patient()) is None


def test_group_commit_isolates_a_failing_unit(tmp_path: Path) -> None:
    srv = build(Settings(db=f"sqlite:///{tmp_path / 'g.db'}", auth_required=False))
    store = srv.store
    try:
        with store.writing() as cur:
            cur.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        gate, errors = threading.Barrier(6), []

        def unit(key: str, fail: bool) -> None:
            def work(txn: Any) -> None:
                txn.cur.execute("INSERT INTO t (k) VALUES (?)", (key,))
                if fail:
                    raise InvalidRequest("refused")

            gate.wait()
            try:
                store.transact(work)
            except InvalidRequest as exc:
                errors.append((key, exc))

        threads = [threading.Thread(target=unit, args=(f"k{n}", n == 2)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with store.reading() as cur:
            cur.execute("SELECT k FROM t ORDER BY k")
            keys = [row[0] for row in cur.fetchall()]
        assert keys == ["k0", "k1", "k3", "k4", "k5"]
        assert [key for key, _ in errors] == ["k2"]
    finally:
        srv.close()


def test_a_group_whose_first_unit_fails_commits_the_others(tmp_path: Path) -> None:
    """The first unit of a group runs without a savepoint: its failure rolls back the transaction and the units
    queued behind it still commit, in a new one."""
    srv = build(Settings(db=f"sqlite:///{tmp_path / 'f.db'}", auth_required=False))
    store = srv.store
    try:
        with store.writing() as cur:
            cur.execute("CREATE TABLE t (k TEXT PRIMARY KEY)")
        holding, release, errors = threading.Event(), threading.Event(), []

        def insert(key: str, fail: bool = False, hold: bool = False) -> Callable[[Any], None]:
            def work(txn: Any) -> None:
                txn.cur.execute("INSERT INTO t (k) VALUES (?)", (key,))
                if hold:
                    holding.set()
                    release.wait(10)
                if fail:
                    raise InvalidRequest("refused")

            return work

        def run(key: str, **kw: bool) -> None:
            try:
                store.transact(insert(key, **kw))
            except InvalidRequest:
                errors.append(key)

        first = threading.Thread(target=run, args=("a",), kwargs={"hold": True})
        first.start()
        assert holding.wait(10)
        queued = []
        for key, fail in (("b", True), ("c", False), ("d", False)):  # queue behind the held lock, in this order
            t = threading.Thread(target=run, args=(key,), kwargs={"fail": fail})
            t.start()
            queued.append(t)
            deadline = time.monotonic() + 10
            while len(store._queue) < len(queued) and time.monotonic() < deadline:
                time.sleep(0.005)
        release.set()
        for t in [first, *queued]:
            t.join()
        run("e", fail=True)  # a group of one that fails: nothing of it stays
        with store.reading() as cur:
            cur.execute("SELECT k FROM t ORDER BY k")
            assert [row[0] for row in cur.fetchall()] == ["a", "c", "d"]
        assert sorted(errors) == ["b", "e"]
    finally:
        srv.close()
