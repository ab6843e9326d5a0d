"""Batch and transaction Bundles: ordering, urn:uuid and conditional references, all-or-nothing."""

from __future__ import annotations

from starlette.testclient import TestClient
from test_crud import FHIR_JSON, NHS, create, patient

PATIENT_URN = "urn:uuid:9a1b6a7e-0c3e-4f0a-9a2b-2b0c6f2f7a11"


def obs(subject: str, value: float = 120) -> dict:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "271649006"}]},
        "subject": {"reference": subject},
        "valueQuantity": {
            "value": value,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        },
    }


def tx(*entries: dict, kind: str = "transaction") -> dict:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


def test_transaction_resolves_urn_uuid(client: TestClient) -> None:
    bundle = tx(
        {
            "fullUrl": "urn:uuid:1b4c1c1e-1111-4f0a-9a2b-2b0c6f2f7a12",
            "resource": obs(PATIENT_URN),
            "request": {"method": "POST", "url": "Observation"},
        },
        {"fullUrl": PATIENT_URN, "resource": patient(), "request": {"method": "POST", "url": "Patient"}},
    )
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["type"] == "transaction-response"
    assert [e["response"]["status"] for e in out["entry"]] == ["201 Created", "201 Created"]
    pid = out["entry"][1]["resource"]["id"]
    assert out["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert client.get(out["entry"][0]["response"]["location"].join(["/fhir/", ""])).status_code == 200


def test_transaction_conditional_reference_and_create(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    bundle = tx(
        {
            "fullUrl": PATIENT_URN,
            "resource": patient(),
            "request": {"method": "POST", "url": "Patient", "ifNoneExist": f"identifier={NHS}|9990000018"},
        },
        {
            "resource": obs(f"Patient?identifier={NHS}|9990000018"),
            "request": {"method": "POST", "url": "Observation"},
        },
        {"resource": obs(PATIENT_URN, 130), "request": {"method": "POST", "url": "Observation"}},
    )
    out = client.post("/fhir", json=bundle, headers=FHIR_JSON).json()
    assert out["entry"][0]["response"]["status"] == "200 OK"
    assert out["entry"][1]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert out["entry"][2]["resource"]["subject"]["reference"] == f"Patient/{pid}"
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_transaction_is_all_or_nothing(client: TestClient) -> None:
    pid = create(client, patient())["id"]
    bundle = tx(
        {
            "resource": {**patient(family="Changed"), "id": pid},
            "request": {"method": "PUT", "url": f"Patient/{pid}"},
        },
        {
            "resource": {"resourceType": "Patient", "gender": "robot"},
            "request": {"method": "POST", "url": "Patient"},
        },
    )
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 400
    issue = r.json()["issue"][0]
    assert issue["expression"][0].startswith("Bundle.entry[1]")
    assert client.get(f"/fhir/Patient/{pid}").json()["name"][0]["family"] == "Smith"
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_transaction_failure_inside_the_database_rolls_back(client: TestClient) -> None:
    bundle = tx(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {"resource": obs("Patient?identifier=nobody"), "request": {"method": "POST", "url": "Observation"}},
    )
    r = client.post("/fhir", json=bundle, headers=FHIR_JSON)
    assert r.status_code == 412
    assert client.get("/fhir/Patient").json()["total"] == 0
    assert client.get("/fhir/_history").json()["total"] == 0


def test_transaction_processing_order_and_get(client: TestClient) -> None:
    doomed = create(client, {"resourceType": "Organization", "name": "Old"})["id"]
    bundle = tx(
        {"request": {"method": "GET", "url": f"Organization/{doomed}"}},
        {
            "resource": {"resourceType": "Organization", "name": "New"},
            "request": {"method": "POST", "url": "Organization"},
        },
        {"request": {"method": "DELETE", "url": f"Organization/{doomed}"}},
    )
    out = client.post("/fhir", json=bundle, headers=FHIR_JSON).json()
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[0].startswith("410")  # GET runs after the DELETE
    assert statuses[1] == "201 Created" and statuses[2].startswith("204")


def test_transaction_rejects_same_resource_twice(client: TestClient) -> None:
    bundle = tx(
        {"resource": {**patient(), "id": "x"}, "request": {"method": "PUT", "url": "Patient/x"}},
        {"request": {"method": "DELETE", "url": "Patient/x"}},
    )
    assert client.post("/fhir", json=bundle, headers=FHIR_JSON).status_code == 400


def test_batch_entries_are_independent(client: TestClient) -> None:
    bundle = tx(
        {"resource": patient(), "request": {"method": "POST", "url": "Patient"}},
        {
            "resource": {"resourceType": "Patient", "gender": "robot"},
            "request": {"method": "POST", "url": "Patient"},
        },
        {"request": {"method": "GET", "url": "Patient/missing"}},
        kind="batch",
    )
    out = client.post("/fhir", json=bundle, headers=FHIR_JSON).json()
    assert out["type"] == "batch-response"
    statuses = [e["response"]["status"] for e in out["entry"]]
    assert statuses[0].startswith("201") and statuses[1].startswith("400") and statuses[2].startswith("404")
    assert out["entry"][1]["response"]["outcome"]["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Patient").json()["total"] == 1


def test_transaction_patch_entry(client: TestClient) -> None:
    import base64
    import json

    pid = create(client, patient())["id"]
    ops = [{"op": "replace", "path": "/gender", "value": "other"}]
    binary = {
        "resourceType": "Binary",
        "contentType": "application/json-patch+json",
        "data": base64.b64encode(json.dumps(ops).encode()).decode(),
    }
    out = client.post(
        "/fhir",
        json=tx({"resource": binary, "request": {"method": "PATCH", "url": f"Patient/{pid}"}}),
        headers=FHIR_JSON,
    )
    assert out.status_code == 200, out.text
    assert client.get(f"/fhir/Patient/{pid}").json()["gender"] == "other"
