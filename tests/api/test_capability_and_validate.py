"""The CapabilityStatement reflects what works; $validate at type and instance level."""

from __future__ import annotations

from starlette.testclient import TestClient
from test_crud import FHIR_JSON, create, patient


def test_capability_statement(client: TestClient) -> None:
    cs = client.get("/fhir/metadata").json()
    assert cs["resourceType"] == "CapabilityStatement" and cs["fhirVersion"] == "4.0.1"
    rest = cs["rest"][0]
    types = {r["type"]: r for r in rest["resource"]}
    assert len(types) >= 145 and "Patient" in types
    codes = {i["code"] for i in types["Patient"]["interaction"]}
    assert {"read", "vread", "update", "patch", "delete", "create", "history-instance"} <= codes
    assert {"transaction", "batch", "history-system"} <= {i["code"] for i in rest["interaction"]}
    assert any(p["name"] == "identifier" for p in types["Patient"]["searchParam"])
    assert any(o["name"] == "validate" for o in types["Patient"]["operation"])


def test_validate_operation(client: TestClient) -> None:
    ok = client.post("/fhir/Patient/$validate", json=patient(), headers=FHIR_JSON)
    assert ok.status_code == 200 and ok.json()["issue"][0]["severity"] == "information"
    bad = client.post("/fhir/Patient/$validate", json={**patient(), "gender": "robot"}, headers=FHIR_JSON)
    assert bad.status_code == 200 and bad.json()["issue"][0]["severity"] == "error"
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient()}]}
    assert (
        client.post("/fhir/Patient/$validate", json=params, headers=FHIR_JSON).json()["issue"][0]["severity"]
        == "information"
    )
    pid = create(client, patient())["id"]
    inst = client.post(f"/fhir/Patient/{pid}/$validate", json={**patient(), "id": pid}, headers=FHIR_JSON)
    assert inst.status_code == 200
    assert client.get("/fhir/Patient/_history").json()["total"] == 1  # $validate stores nothing (the MPI adds a Person)
