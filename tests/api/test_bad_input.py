"""Hostile and malformed input: a precise OperationOutcome with the right 4xx, never a 500, nothing half-written."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from test_crud import FHIR_JSON, patient


def outcome(r, status: int) -> dict:  # noqa: ANN001
    assert r.status_code == status, r.text
    body = r.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["diagnostics"]
    return body


def test_malformed_json(client: TestClient) -> None:
    outcome(client.post("/fhir/Patient", content=b'{"resourceType": "Patient",', headers=FHIR_JSON), 400)
    outcome(client.post("/fhir/Patient", content=b"", headers=FHIR_JSON), 400)
    outcome(client.post("/fhir/Patient", content=b"[1,2]", headers=FHIR_JSON), 400)


def test_wrong_content_type(client: TestClient) -> None:
    outcome(
        client.post("/fhir/Patient", content=b"<Patient/>", headers={"content-type": "application/fhir+xml"}),
        415,
    )
    outcome(client.post("/fhir/Patient", content=b"hello", headers={"content-type": "text/plain"}), 415)


def test_body_over_limit(client: TestClient) -> None:
    big = b'{"resourceType":"Patient","id":"' + b"a" * (33 * 1024 * 1024) + b'"}'
    outcome(client.post("/fhir/Patient", content=big, headers=FHIR_JSON), 413)


@pytest.mark.parametrize("depth", [100, 5000])
def test_absurd_nesting(client: TestClient, depth: int) -> None:
    body = b'{"resourceType":"Patient","extension":' + b"[" * depth + b"]" * depth + b"}"
    outcome(client.post("/fhir/Patient", content=body, headers=FHIR_JSON), 400)


def test_unknown_type_invalid_id_and_mismatch(client: TestClient) -> None:
    outcome(client.post("/fhir/Spaceship", json={"resourceType": "Spaceship"}, headers=FHIR_JSON), 404)
    outcome(client.get("/fhir/Patient/bad$id"), 400)
    outcome(client.get("/fhir/Patient/" + "x" * 65), 400)
    outcome(client.post("/fhir/Patient", json={"resourceType": "Observation"}, headers=FHIR_JSON), 400)
    outcome(client.get("/fhir/Patient/1/_history/abc"), 404)


def test_validation_errors_are_located(client: TestClient) -> None:
    bad = {**patient(), "birthDate": "1950-13-45", "colour": "blue"}
    body = outcome(client.post("/fhir/Patient", json=bad, headers=FHIR_JSON), 400)
    expressions = {e for i in body["issue"] for e in i.get("expression", [])}
    assert any("birthDate" in e for e in expressions) and any("colour" in e for e in expressions)


def test_invalid_nhs_number_rejected(client: TestClient) -> None:
    r = client.post("/fhir/Patient", json=patient(nhs="9434765918"), headers=FHIR_JSON)
    assert r.status_code in (400, 422)
    assert "identifier" in r.json()["issue"][0]["expression"][0]


def test_method_not_allowed(client: TestClient) -> None:
    outcome(client.delete("/fhir/metadata"), 405)
    outcome(client.put("/fhir/Patient", json=patient(), headers=FHIR_JSON), 405)


def test_nothing_written_after_rejections(client: TestClient) -> None:
    client.post("/fhir/Patient", content=b"{", headers=FHIR_JSON)
    client.post("/fhir/Patient", json={"resourceType": "Patient", "gender": 5}, headers=FHIR_JSON)
    assert client.get("/fhir/_history").json()["total"] == 0
