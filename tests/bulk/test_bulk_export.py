"""Bulk Data over HTTP: `$export` at system, Patient and Group level with `_type`, `_since`, `_typeFilter`; status
polling; cancellation; files; `$import` by URL and by upload; taking over an orphaned job."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest
from starlette.testclient import TestClient
from support.bulk_data import SYNTHEA, build_server, synthea_resources, wait_for, write_ndjson

from sharedcare.app import Server
from sharedcare.bulk.loader import ImportOptions
from sharedcare.bulk.service import loader_for
from sharedcare.bulk.sources import discover
from sharedcare.store import bulk_sql

BACKENDS = [b for b in os.environ.get("SHAREDCARE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
ASYNC = {"prefer": "respond-async", "accept": "application/fhir+json"}


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url: str = request.getfixturevalue("pg_url")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA public CASCADE")
            conn.execute("CREATE SCHEMA public")
        return url
    return f"sqlite:///{tmp_path / 'export.db'}"


@pytest.fixture
def loaded(db_url: str, tmp_path: Path) -> Iterator[tuple[Server, TestClient, list[dict[str, Any]]]]:
    if not SYNTHEA.is_dir():
        pytest.skip("../shared Synthea data is not present")
    resources = synthea_resources(2)
    server = build_server(db_url, bulk_dir=str(tmp_path / "bulk"))
    sources, _ = discover([write_ndjson(tmp_path / "data.ndjson", resources)])
    loader_for(server, ImportOptions(batch_size=500)).run(sources)
    try:
        with TestClient(server.asgi, base_url="http://testserver") as client:
            yield server, client, resources
    finally:
        server.close()


def export(client: TestClient, path: str, **params: str) -> dict[str, Any]:
    kick = client.get(f"/fhir/{path}", params=params, headers=ASYNC)
    assert kick.status_code == 202, kick.text
    done = wait_for(client, kick.headers["content-location"])
    assert done.status_code == 200, done.text
    assert done.headers["content-type"].startswith("application/json")
    manifest: dict[str, Any] = done.json()
    return manifest


def exported(client: TestClient, manifest: dict[str, Any]) -> dict[str, list[bytes]]:
    out: dict[str, list[bytes]] = {}
    for item in manifest["output"]:
        resp = client.get(item["url"])
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/fhir+ndjson")
        lines = resp.content.splitlines()
        assert len(lines) == item["count"]
        out.setdefault(item["type"], []).extend(lines)
    return out


def test_system_export_files_hold_exactly_what_is_stored(loaded: Any) -> None:
    server, client, resources = loaded
    manifest = export(client, "$export")
    assert manifest["requiresAccessToken"] is False and manifest["transactionTime"]
    files = exported(client, manifest)
    by_key = {(r["resourceType"], r["id"]) for r in resources}
    seen = set()
    for rtype, lines in files.items():
        for line in lines:
            res = orjson.loads(line)
            assert res["resourceType"] == rtype
            stored = server.store.read(rtype, res["id"])
            assert stored is not None and stored.body == line  # the stored bytes, untouched
            seen.add((rtype, res["id"]))
    assert by_key <= seen  # write hooks may have added their own resources (e.g. MPI Person)


def test_kickoff_needs_respond_async_and_ndjson(loaded: Any) -> None:
    _, client, _ = loaded
    assert client.get("/fhir/$export").status_code == 400
    resp = client.get("/fhir/$export", params={"_outputFormat": "text/csv"}, headers=ASYNC)
    assert resp.status_code == 400
    assert client.get("/fhir/$export", params={"_type": "Nonsense"}, headers=ASYNC).status_code == 400
    assert client.get("/fhir/$export", params={"_typeFilter": "Observation?nope=1"}, headers=ASYNC).status_code in (
        400,
        422,
    )
    assert client.get("/fhir/$export", params={"_elements": "id"}, headers=ASYNC).status_code == 400


def test_type_and_since(loaded: Any) -> None:
    server, client, resources = loaded
    manifest = export(client, "$export", _type="Patient,Condition")
    assert {o["type"] for o in manifest["output"]} == {"Patient", "Condition"}
    expected = sum(r["resourceType"] == "Condition" for r in resources)
    assert sum(o["count"] for o in manifest["output"] if o["type"] == "Condition") == expected
    since = manifest["transactionTime"]
    assert export(client, "$export", _since=since)["output"] == []
    condition = next(r for r in resources if r["resourceType"] == "Condition")
    server.repo.update("Condition", condition["id"], {**condition, "language": "en"})
    later = exported(client, export(client, "$export", _since=since))
    assert list(later) == ["Condition"] and orjson.loads(later["Condition"][0])["id"] == condition["id"]


def test_type_filter(loaded: Any) -> None:
    _, client, resources = loaded
    codes = [o["code"]["coding"][0]["code"] for o in resources if o["resourceType"] == "Observation"]
    code = max(set(codes), key=codes.count)
    manifest = export(client, "$export", _type="Observation,Patient", _typeFilter=f"Observation?code={code}")
    files = exported(client, manifest)
    assert len(files["Observation"]) == codes.count(code)
    assert all(orjson.loads(line)["code"]["coding"][0]["code"] == code for line in files["Observation"])
    assert "Patient" in files  # a type without a filter is exported whole


def test_patient_and_group_level(loaded: Any) -> None:
    server, client, resources = loaded
    patients = [r for r in resources if r["resourceType"] == "Patient"]
    assert len(patients) == 2
    files = exported(client, export(client, "Patient/$export"))
    assert "Organization" not in files and "Practitioner" not in files  # not in any Patient compartment
    assert len(files["Patient"]) == 2
    first = patients[0]["id"]
    group = {"resourceType": "Group", "id": "g1", "type": "person", "actual": True}
    group["member"] = [{"entity": {"reference": f"Patient/{first}"}}]
    server.repo.update("Group", "g1", group)
    files = exported(client, export(client, "Group/g1/$export", _type="Patient,Encounter"))
    assert [orjson.loads(p)["id"] for p in files["Patient"]] == [first]
    encounters = [r for r in resources if r["resourceType"] == "Encounter"]
    mine = [e for e in encounters if e["subject"]["reference"] == f"Patient/{first}"]
    assert len(files["Encounter"]) == len(mine) < len(encounters)
    assert client.get("/fhir/Group/nobody/$export", headers=ASYNC).status_code == 404


def test_cancel_removes_the_job_and_its_files(loaded: Any) -> None:
    _, client, _ = loaded
    kick = client.get("/fhir/$export", headers=ASYNC)
    location = kick.headers["content-location"]
    manifest = wait_for(client, location).json()
    url = manifest["output"][0]["url"]
    assert client.get(url).status_code == 200
    assert client.delete(location).status_code == 202
    assert client.get(location).status_code == 404
    assert client.get(url).status_code == 404
    assert client.delete(location).status_code == 404
    running = client.get("/fhir/$export", headers=ASYNC).headers["content-location"]
    assert client.delete(running).status_code == 202  # cancelled whether or not it had finished
    assert client.get(running).status_code == 404


def test_polling_reports_progress_then_the_manifest(loaded: Any) -> None:
    server, client, _ = loaded
    kick = client.get("/fhir/$export", headers=ASYNC)
    job_id = kick.headers["content-location"].split("_jobId=")[1]
    status = server.bulk.jobs.status(job_id)
    assert status is not None and status.kind == "export"
    first = client.get(kick.headers["content-location"])
    assert first.status_code in (200, 202)
    if first.status_code == 202:
        assert first.headers["retry-after"] and "x-progress" in first.headers
    assert wait_for(client, kick.headers["content-location"]).status_code == 200


def test_import_by_url_and_by_upload(db_url: str, tmp_path: Path) -> None:
    server = build_server(db_url, bulk_dir=str(tmp_path / "bulk"))
    served = tmp_path / "served"
    served.mkdir()
    lines = [{"resourceType": "Patient", "id": f"u{n}", "gender": "female"} for n in range(30)]
    write_ndjson(served / "patients.ndjson", lines + [{"resourceType": "Patient", "id": "bad", "gender": 3}])
    handler = partial(_QuietHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with TestClient(server.asgi, base_url="http://testserver") as client:
            url = f"http://127.0.0.1:{httpd.server_address[1]}/patients.ndjson"
            params = {"resourceType": "Parameters", "parameter": [_input(url)]}
            kick = client.post("/fhir/$import", content=orjson.dumps(params), headers=_json_async())
            assert kick.status_code == 202, kick.text
            manifest = wait_for(client, kick.headers["content-location"]).json()
            assert manifest["extension"]["created"] == 30 and manifest["extension"]["rejected"] == 1
            errors = client.get(manifest["error"][0]["url"])
            assert errors.status_code == 200
            outcome = orjson.loads(errors.content.splitlines()[0])
            assert outcome["resourceType"] == "OperationOutcome" and "line 31" in outcome["issue"][0]["diagnostics"]
            upload = b"".join(orjson.dumps({**p, "gender": "male"}) + b"\n" for p in lines[:5])
            headers = {"content-type": "application/fhir+ndjson", "prefer": "respond-async"}
            kick = client.post("/fhir/$import", content=upload, headers=headers)
            assert kick.status_code == 202, kick.text
            manifest = wait_for(client, kick.headers["content-location"]).json()
            assert manifest["extension"]["updated"] == 5
            assert orjson.loads(server.store.read("Patient", "u0").body)["gender"] == "male"  # type: ignore[union-attr]
    finally:
        httpd.shutdown()
        httpd.server_close()
        server.close()


def test_an_orphaned_job_is_taken_over_and_finished(db_url: str, tmp_path: Path) -> None:
    server = build_server(db_url, bulk_dir=str(tmp_path / "bulk"))
    try:
        server.repo.update("Patient", "p1", {"resourceType": "Patient", "id": "p1"})
        request = {"spec": {"level": "system", "types": ["Patient"]}, "request": "r", "base": "http://testserver/fhir"}
        row = {"id": "orphan", "kind": "export", "status": "in-progress", "request": orjson.dumps(request).decode()}
        bulk_sql.job_insert(server.store, {**row, "created": "2020-01-01T00:00:00.000000Z"})
        with TestClient(server.asgi, base_url="http://testserver") as client:
            done = wait_for(client, "/fhir/$export-poll-status?_jobId=orphan")
            assert done.status_code == 200 and done.json()["output"][0]["count"] == 1
    finally:
        server.close()


def _input(url: str) -> dict[str, Any]:
    return {"name": "input", "part": [{"name": "type", "valueCode": "Patient"}, {"name": "url", "valueUrl": url}]}


def _json_async() -> dict[str, str]:
    return {"content-type": "application/fhir+json", "prefer": "respond-async"}


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_cli_import_then_export_round_trip(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from sharedcare.cli import main

    resources = [{"resourceType": "Patient", "id": f"p{n}", "gender": "other"} for n in range(12)]
    data = write_ndjson(tmp_path / "in.ndjson", resources)
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {"SHAREDCARE_AUTH_REQUIRED": "false"}
    runner = CliRunner()
    first = runner.invoke(main, ["import", str(data), "--db", db, "--no-progress", "--workers", "0"], env=env)
    assert first.exit_code == 0, first.output
    out = tmp_path / "out"
    done = runner.invoke(main, ["export", str(out), "--db", db, "--type", "Patient"], env=env)
    assert done.exit_code == 0, done.output
    manifest = orjson.loads((out / "manifest.json").read_bytes())
    assert manifest["output"] == [{"type": "Patient", "url": "Patient-1.ndjson", "count": 12}]
    ids = sorted(orjson.loads(line)["id"] for line in (out / "Patient-1.ndjson").read_bytes().splitlines())
    assert ids == sorted(r["id"] for r in resources)
