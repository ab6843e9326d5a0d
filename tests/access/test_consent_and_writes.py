"""Consent honoured at once; organisation systems write only as themselves; writes need the same rights as reads."""

from __future__ import annotations

from typing import Any

from starlette.testclient import TestClient
from support.security import bearer, operator_token, token

from sharedcare.app import Server

A, B = "A81001", "B82002"


def _setup(server: Server, client: TestClient) -> tuple[str, str]:
    op = operator_token(server)
    patient = {
        "resourceType": "Patient",
        "generalPractitioner": [{"reference": f"Organization/{A}"}, {"reference": f"Organization/{B}"}],
    }
    pid = client.post("/fhir/Patient", json=patient, headers=bearer(op)).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "x"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    oid = client.post("/fhir/Observation", json=obs, headers=bearer(op)).json()["id"]
    return pid, oid


def _consent(pid: str, status: str = "active", org: str | None = None) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": "deny"}
    if org:
        provision["actor"] = [
            {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": f"Organization/{org}"}}
        ]
    return {
        "resourceType": "Consent",
        "status": status,
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"reference": f"Patient/{pid}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": provision,
    }


def test_an_objection_takes_effect_at_once_and_can_be_withdrawn(
    secure_server: Server, secure_client: TestClient
) -> None:
    pid, oid = _setup(secure_server, secure_client)
    doc = token(secure_server, role="clinician", org=A)
    me = token(secure_server, role="patient", patient=pid, subject="me", scopes="patient/*.cruds")
    assert secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(doc)).status_code == 200
    consent = secure_client.post("/fhir/Consent", json=_consent(pid), headers=bearer(me))  # the patient objects
    assert consent.status_code == 201, consent.text
    refused = secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(doc))
    assert refused.status_code == 403 and "objection" not in refused.text.lower()  # nothing says why
    assert secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(me)).status_code == 200  # still theirs
    withdrawn = {**consent.json(), "status": "inactive"}
    assert secure_client.put(f"/fhir/Consent/{withdrawn['id']}", json=withdrawn, headers=bearer(me)).status_code == 200
    assert secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(doc)).status_code == 200


def test_a_restriction_against_one_organisation(secure_server: Server, secure_client: TestClient) -> None:
    pid, oid = _setup(secure_server, secure_client)
    op = operator_token(secure_server)
    secure_client.post("/fhir/Consent", json=_consent(pid, org=B), headers=bearer(op))
    assert (
        secure_client.get(
            f"/fhir/Observation/{oid}", headers=bearer(token(secure_server, role="nurse", org=A))
        ).status_code
        == 200
    )
    assert (
        secure_client.get(
            f"/fhir/Observation/{oid}", headers=bearer(token(secure_server, role="nurse", org=B))
        ).status_code
        == 403
    )
    feed_b = token(secure_server, role="system", kind="system", org=B, scopes="system/*.cruds")
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "y"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    assert secure_client.post("/fhir/Observation", json=obs, headers=bearer(feed_b)).status_code == 403


def test_organisation_systems_write_only_as_themselves(secure_server: Server, secure_client: TestClient) -> None:
    pid, _ = _setup(secure_server, secure_client)
    feed_a = token(
        secure_server,
        role="system",
        kind="system",
        org=A,
        subject="feed-a",
        client_id="feed-a",
        scopes="system/*.cruds",
    )
    feed_b = token(
        secure_server,
        role="system",
        kind="system",
        org=B,
        subject="feed-b",
        client_id="feed-b",
        scopes="system/*.cruds",
    )
    forged = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "z"},
        "meta": {"source": f"urn:sharedcare:source:{B}/feed-b"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    created = secure_client.post("/fhir/Observation", json=forged, headers=bearer(feed_a))
    assert created.status_code == 201
    assert created.json()["meta"]["source"] == f"urn:sharedcare:source:{A}/feed-a"  # the token decides, not the body
    oid = created.json()["id"]
    changed = {**created.json(), "status": "amended"}
    assert secure_client.put(f"/fhir/Observation/{oid}", json=changed, headers=bearer(feed_b)).status_code == 403
    assert secure_client.delete(f"/fhir/Observation/{oid}", headers=bearer(feed_b)).status_code == 403
    assert secure_client.put(f"/fhir/Observation/{oid}", json=changed, headers=bearer(feed_a)).status_code == 200
    patch = [{"op": "replace", "path": "/meta/source", "value": "urn:sharedcare:source:ZZ/x"}]
    patched = secure_client.patch(
        f"/fhir/Observation/{oid}",
        json=patch,
        headers=bearer(feed_a, **{"content-type": "application/json-patch+json"}),
    )
    assert patched.status_code == 403
    assert secure_client.delete(f"/fhir/Observation/{oid}", headers=bearer(feed_a)).status_code == 204


def test_people_need_a_relationship_to_write_and_cannot_delete(
    secure_server: Server, secure_client: TestClient
) -> None:
    op = operator_token(secure_server)
    stranger = secure_client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(op)).json()["id"]
    pid, oid = _setup(secure_server, secure_client)
    doc = token(secure_server, role="clinician", org=A)
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "w"}}
    ok = secure_client.post(
        "/fhir/Observation", json={**obs, "subject": {"reference": f"Patient/{pid}"}}, headers=bearer(doc)
    )
    assert ok.status_code == 201
    no = secure_client.post(
        "/fhir/Observation", json={**obs, "subject": {"reference": f"Patient/{stranger}"}}, headers=bearer(doc)
    )
    assert no.status_code == 403
    moved = {**ok.json(), "subject": {"reference": f"Patient/{stranger}"}}  # moving data to a patient not yours
    assert secure_client.put(f"/fhir/Observation/{moved['id']}", json=moved, headers=bearer(doc)).status_code == 403
    assert secure_client.delete(f"/fhir/Observation/{oid}", headers=bearer(doc)).status_code == 403
    new_patient = secure_client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "generalPractitioner": [{"reference": f"Organization/{A}"}]},
        headers=bearer(token(secure_server, role="administrator", org=A)),
    )
    assert new_patient.status_code == 201  # registering a new patient needs no prior relationship


def test_a_patient_writes_only_to_their_own_record(secure_server: Server, secure_client: TestClient) -> None:
    pid, oid = _setup(secure_server, secure_client)
    other, _ = _setup(secure_server, secure_client)
    me = token(secure_server, role="patient", patient=pid, subject="me", scopes="patient/*.cruds")
    reading = {"resourceType": "Observation", "status": "final", "code": {"text": "home BP"}}
    mine = secure_client.post(
        "/fhir/Observation", json={**reading, "subject": {"reference": f"Patient/{pid}"}}, headers=bearer(me)
    )
    assert mine.status_code == 201
    theirs = secure_client.post(
        "/fhir/Observation", json={**reading, "subject": {"reference": f"Patient/{other}"}}, headers=bearer(me)
    )
    assert theirs.status_code == 403
    clinical = secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(me)).json()
    assert (
        secure_client.put(
            f"/fhir/Observation/{oid}", json={**clinical, "status": "amended"}, headers=bearer(me)
        ).status_code
        == 403
    )  # not written by them


def test_history_hides_versions_that_were_sensitive(secure_server: Server, secure_client: TestClient) -> None:
    pid, oid = _setup(secure_server, secure_client)
    op = operator_token(secure_server)
    current = secure_client.get(f"/fhir/Observation/{oid}", headers=bearer(op)).json()
    labelled = {
        **current,
        "meta": {"security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"}]},
    }
    secure_client.put(f"/fhir/Observation/{oid}", json=labelled, headers=bearer(op))
    secure_client.put(f"/fhir/Observation/{oid}", json={**current, "status": "amended"}, headers=bearer(op))
    doc = token(secure_server, role="clinician", org=A)
    history = secure_client.get(f"/fhir/Observation/{oid}/_history", headers=bearer(doc)).json()
    assert history["total"] == 2 and [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["3", "1"]
    assert secure_client.get(f"/fhir/Observation/{oid}/_history/2", headers=bearer(doc)).status_code == 403
    deleted = secure_client.delete(f"/fhir/Observation/{oid}", headers=bearer(op))
    assert deleted.status_code == 204
    stranger = token(secure_server, role="clinician", org="ZZ999")
    assert secure_client.get(f"/fhir/Observation/{oid}/_history/1", headers=bearer(stranger)).status_code == 403


def test_a_refused_transaction_entry_is_named_and_nothing_is_written(
    secure_server: Server, secure_client: TestClient
) -> None:
    """Write hooks run once over a transaction's writes; a refusal still names its entry and undoes them all."""
    pid, _ = _setup(secure_server, secure_client)
    other, _ = _setup(secure_server, secure_client)
    me = token(secure_server, role="patient", patient=pid, subject="me", scopes="patient/*.cruds")
    reading = {"resourceType": "Observation", "status": "final", "code": {"text": "home BP tx"}}
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": {**reading, "subject": {"reference": f"Patient/{who}"}},
                "request": {"method": "POST", "url": "Observation"},
            }
            for who in (pid, pid, other)
        ],
    }
    refused = secure_client.post("/fhir", json=bundle, headers=bearer(me))
    assert refused.status_code == 403
    assert "Bundle.entry[2]" in refused.text
    mine = secure_client.get(f"/fhir/Observation?subject=Patient/{pid}&code:text=home", headers=bearer(me)).json()
    assert mine.get("total", len(mine.get("entry", []))) == 0  # the allowed entries were undone with it
    bundle["entry"] = bundle["entry"][:2]
    assert secure_client.post("/fhir", json=bundle, headers=bearer(me)).status_code == 200
    mine = secure_client.get(f"/fhir/Observation?subject=Patient/{pid}&code:text=home", headers=bearer(me)).json()
    assert len(mine["entry"]) == 2
