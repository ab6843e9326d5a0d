"""SMART scopes v1 and v2 (including granular `?param=value` scopes), and their enforcement at the boundary."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient
from support.security import bearer, operator_token, token

from sharedcare.access.scopes import InvalidScope, ScopeSet, narrow, parse_scope
from sharedcare.app import Server


def test_v1_and_v2_forms() -> None:
    assert parse_scope("patient/*.read").perms == frozenset("rs")  # type: ignore[union-attr]
    assert parse_scope("user/Observation.write").perms == frozenset("cud")  # type: ignore[union-attr]
    assert parse_scope("system/*.*").perms == frozenset("cruds")  # type: ignore[union-attr]
    scope = parse_scope(
        "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory"
    )
    assert scope is not None and scope.type == "Observation" and scope.perms == frozenset("rs")
    assert scope.criteria == (("category", "http://terminology.hl7.org/CodeSystem/observation-category|laboratory"),)
    assert parse_scope("openid") is None and parse_scope("launch/patient") is None
    for bad in ("user/Observation.xyz", "user/observation.r", "system/*.rr", "patient/*"):
        with pytest.raises(InvalidScope):
            parse_scope(bad)


def test_grants() -> None:
    scopes = ScopeSet.parse("patient/*.rs user/Observation.cu openid")
    assert scopes.grant("Condition", "r").patient_only  # type: ignore[union-attr]
    assert not scopes.grant("Observation", "c").patient_only  # type: ignore[union-attr]
    assert scopes.grant("Observation", "d") is None
    assert scopes.words == frozenset({"openid"})
    granular = ScopeSet.parse("user/Observation.rs?category=laboratory user/Observation.rs?category=vital-signs")
    assert granular.grant("Observation", "r").criteria == (  # type: ignore[union-attr]
        (("category", "laboratory"),),
        (("category", "vital-signs"),),
    )


def test_narrowing() -> None:
    allowed = ScopeSet.parse("system/*.rs system/Observation.cruds")
    got = narrow(ScopeSet.parse("system/*.cruds patient/*.rs"), allowed, frozenset({"system"}))
    assert got.text() == "system/*.rs"
    got = narrow(ScopeSet.parse("system/Observation.cud"), allowed, frozenset({"system"}))
    assert got.text() == "system/Observation.cud"


def test_type_and_interaction_scopes_are_enforced(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    pid = secure_client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "generalPractitioner": [{"reference": "Organization/A1"}]},
        headers=bearer(op),
    ).json()["id"]
    reader = token(secure_server, role="clinician", org="A1", scopes="user/Observation.rs")
    assert secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(reader)).status_code == 403
    assert secure_client.get("/fhir/Observation", headers=bearer(reader)).status_code == 200
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    refused = secure_client.post("/fhir/Observation", json=obs, headers=bearer(reader))
    assert refused.status_code == 403 and "scopes do not allow create on Observation" in refused.text
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": obs, "request": {"method": "POST", "url": "Observation"}}],
    }
    assert secure_client.post("/fhir", json=bundle, headers=bearer(reader)).status_code == 403


def test_granular_scopes_limit_reads_to_matching_resources(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    pid = secure_client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "generalPractitioner": [{"reference": "Organization/A1"}]},
        headers=bearer(op),
    ).json()["id"]
    ids = {}
    for category in ("laboratory", "vital-signs"):
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": category},
            "category": [{"coding": [{"code": category}]}],
            "subject": {"reference": f"Patient/{pid}"},
        }
        ids[category] = secure_client.post("/fhir/Observation", json=obs, headers=bearer(op)).json()["id"]
    lab_only = token(secure_server, role="clinician", org="A1", scopes="user/Observation.rs?category=laboratory")
    assert secure_client.get(f"/fhir/Observation/{ids['laboratory']}", headers=bearer(lab_only)).status_code == 200
    assert secure_client.get(f"/fhir/Observation/{ids['vital-signs']}", headers=bearer(lab_only)).status_code == 403


def test_patient_scopes_confine_to_the_launch_patient(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    gp = [{"reference": "Organization/A1"}]
    one = secure_client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "generalPractitioner": gp}, headers=bearer(op)
    ).json()["id"]
    two = secure_client.post(
        "/fhir/Patient", json={"resourceType": "Patient", "generalPractitioner": gp}, headers=bearer(op)
    ).json()["id"]
    launched = token(secure_server, role="clinician", org="A1", scopes="patient/*.rs", patient=one)
    assert secure_client.get(f"/fhir/Patient/{one}", headers=bearer(launched)).status_code == 200
    assert secure_client.get(f"/fhir/Patient/{two}", headers=bearer(launched)).status_code == 403
    no_context = token(secure_server, role="clinician", org="A1", scopes="patient/*.rs")
    assert secure_client.get(f"/fhir/Patient/{one}", headers=bearer(no_context)).status_code == 403
