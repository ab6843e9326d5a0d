"""Every request, allowed or refused, leaves an AuditEvent; writes commit theirs in the same transaction."""

from __future__ import annotations

import base64
from typing import Any

from starlette.testclient import TestClient
from support.security import bearer, operator_token, token

from sharedcare.app import Server

GP = "A81001"


def _events(client: TestClient, server: Server, query: str) -> list[dict[str, Any]]:
    po = token(server, role="privacy-officer", org=GP, scopes="user/AuditEvent.rs user/Patient.rs")
    resp = client.get(f"/fhir/AuditEvent?{query}&_count=200", headers=bearer(po))
    assert resp.status_code == 200, resp.text
    return [e["resource"] for e in resp.json().get("entry", [])]


def _patient(client: TestClient, server: Server, gp: str = GP) -> str:
    body = {
        "resourceType": "Patient",
        "name": [{"family": "Audit"}],
        "generalPractitioner": [{"reference": f"Organization/{gp}"}],
    }
    return str(client.post("/fhir/Patient", json=body, headers=bearer(operator_token(server))).json()["id"])


def test_a_read_is_audited_with_who_what_and_why(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server)
    doc = token(
        secure_server, role="clinician", org=GP, subject="dr-who", client_id="epr-app", fhir_user="Practitioner/p9"
    )
    resp = secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc, **{"x-request-id": "req-read-1"}))
    assert resp.status_code == 200
    [event] = _events(secure_client, secure_server, "request=req-read-1")
    assert event["action"] == "R" and event["outcome"] == "0"
    assert event["subtype"][0]["code"] == "read"
    assert event["purposeOfEvent"][0]["coding"][0]["code"] == "TREAT"
    who = event["agent"][0]
    assert who["who"]["identifier"]["value"] == "dr-who" and who["who"]["reference"] == "Practitioner/p9"
    assert who["role"][0]["coding"][0]["code"] == "clinician" and who["requestor"] is True
    assert who["network"]["address"] == "testclient" and who["policy"]
    agents = {a["who"]["identifier"]["value"] for a in event["agent"]}
    assert {"dr-who", GP, "epr-app"} <= agents
    refs = {e.get("what", {}).get("reference") for e in event["entity"]}
    assert f"Patient/{pid}" in refs


def test_refusals_are_audited_too(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server, gp="OTHER")
    stranger = token(secure_server, role="clinician", org=GP, subject="nosy")
    resp = secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(stranger, **{"x-request-id": "req-deny-1"}))
    assert resp.status_code == 403
    [event] = _events(secure_client, secure_server, "request=req-deny-1")
    assert event["outcome"] == "4" and "not available" in event["outcomeDesc"]
    assert any(e.get("what", {}).get("reference") == f"Patient/{pid}" for e in event["entity"])
    unauth = secure_client.get("/fhir/Patient", headers={"x-request-id": "req-401"})
    assert unauth.status_code == 401
    [event] = _events(secure_client, secure_server, "request=req-401")
    assert event["outcome"] == "4" and event["agent"][0]["who"]["identifier"]["value"] == "unauthenticated"


def test_a_search_lists_what_was_shown(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server)
    op = operator_token(secure_server)
    secure_client.get(f"/fhir/Patient?_id={pid}", headers=bearer(op, **{"x-request-id": "req-search-1"}))
    [event] = _events(secure_client, secure_server, "request=req-search-1")
    assert event["subtype"][0]["code"] == "search-type"
    refs = {e.get("what", {}).get("reference", "") for e in event["entity"]}
    assert f"Patient/{pid}" in refs
    query = next(e["query"] for e in event["entity"] if "query" in e)
    assert base64.b64decode(query).decode() == f"_id={pid}"


def test_writes_are_audited_inside_their_transaction(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server)
    feed = token(secure_server, role="system", kind="system", org=GP, subject="gp-feed", scopes="system/*.cruds")
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "BP"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    created = secure_client.post("/fhir/Observation", json=obs, headers=bearer(feed, **{"x-request-id": "req-w1"}))
    assert created.status_code == 201
    [event] = _events(secure_client, secure_server, "request=req-w1")
    assert event["action"] == "C" and event["subtype"][0]["code"] == "create"
    refs = {e.get("what", {}).get("reference") for e in event["entity"]}
    assert {f"Observation/{created.json()['id']}/_history/1", f"Patient/{pid}"} <= refs
    other = token(
        secure_server, role="system", kind="system", org="ZZ999", subject="other-feed", scopes="system/*.cruds"
    )
    changed = {**created.json(), "status": "amended"}
    resp = secure_client.put(
        f"/fhir/Observation/{changed['id']}", json=changed, headers=bearer(other, **{"x-request-id": "req-w2"})
    )
    assert resp.status_code == 403  # refused inside the transaction: nothing of it commits but its refusal
    events = _events(secure_client, secure_server, "request=req-w2")
    assert [e["outcome"] for e in events] == ["4"]
    assert secure_client.get(f"/fhir/Observation/{changed['id']}", headers=bearer(feed)).json()["status"] == "final"


def test_audit_events_cannot_be_written_through_the_api(secure_server: Server, secure_client: TestClient) -> None:
    op = operator_token(secure_server)
    event = {
        "resourceType": "AuditEvent",
        "id": "x",
        "type": {"code": "rest"},
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": True}],
        "source": {"observer": {"display": "x"}},
    }
    assert secure_client.post("/fhir/AuditEvent", json=event, headers=bearer(op)).status_code == 405
    assert secure_client.put("/fhir/AuditEvent/x", json=event, headers=bearer(op)).status_code == 405
    assert secure_client.delete("/fhir/AuditEvent/x", headers=bearer(op)).status_code == 405
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [{"resource": event, "request": {"method": "PUT", "url": "AuditEvent/x"}}],
    }
    assert secure_client.post("/fhir", json=bundle, headers=bearer(op)).status_code == 405


def test_only_audit_roles_search_the_trail(secure_server: Server, secure_client: TestClient) -> None:
    doc = token(secure_server, role="clinician", org=GP, scopes="user/*.rs")
    assert secure_client.get("/fhir/AuditEvent", headers=bearer(doc)).status_code == 403
    assert (
        secure_client.get(
            "/fhir/AuditEvent?date=ge2000-01-01", headers=bearer(operator_token(secure_server))
        ).status_code
        == 200
    )


def test_a_patient_sees_who_looked_at_their_record(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server)
    other = _patient(secure_client, secure_server)
    doc = token(secure_server, role="clinician", org=GP, subject="dr-looker")
    secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc))
    secure_client.get(f"/fhir/Patient/{other}", headers=bearer(doc))
    me = token(secure_server, role="patient", patient=pid, subject="me", scopes="patient/*.rs")
    log = secure_client.get(f"/fhir/Patient/{pid}/$access-log", headers=bearer(me))
    assert log.status_code == 200
    events = [e["resource"] for e in log.json()["entry"]]
    lookers = {a["who"]["identifier"]["value"] for e in events for a in e["agent"] if a.get("requestor")}
    assert "dr-looker" in lookers
    assert all("network" not in a and "policy" not in a for e in events for a in e["agent"])
    assert all(any(x.get("what", {}).get("reference") == f"Patient/{pid}" for x in e["entity"]) for e in events)
    search = secure_client.get("/fhir/AuditEvent", headers=bearer(me)).json()
    assert {e["resource"]["id"] for e in search["entry"]} <= {e["id"] for e in events} | {
        e["resource"]["id"] for e in search["entry"]
    }
    assert secure_client.get(f"/fhir/Patient/{other}/$access-log", headers=bearer(me)).status_code == 403
    assert all(
        any(x.get("what", {}).get("reference") == f"Patient/{pid}" for x in e["resource"]["entity"])
        for e in search["entry"]
    )


def test_break_glass_is_time_limited_audited_and_alerts(secure_server: Server, secure_client: TestClient) -> None:
    pid = _patient(secure_client, secure_server, gp="ELSEWHERE")
    doc = token(secure_server, role="clinician", org=GP, subject="dr-ed")
    assert secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc)).status_code == 403
    params = {"resourceType": "Parameters", "parameter": [{"name": "reason", "valueString": "short"}]}
    assert secure_client.post(f"/fhir/Patient/{pid}/$break-glass", json=params, headers=bearer(doc)).status_code == 400
    params["parameter"][0]["valueString"] = "Unconscious in ED, no history available"
    granted = secure_client.post(f"/fhir/Patient/{pid}/$break-glass", json=params, headers=bearer(doc))
    assert granted.status_code == 200
    read = secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc, **{"x-request-id": "req-bg-read"}))
    assert read.status_code == 200
    [access] = _events(secure_client, secure_server, "request=req-bg-read")
    assert access["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert access["purposeOfEvent"][0]["text"] == "Unconscious in ED, no history available"
    [alert] = _events(secure_client, secure_server, "type=110113")
    assert alert["subtype"][0]["code"] == "break-glass"
    assert alert["purposeOfEvent"][0]["coding"][0]["code"] == "ETREAT"
    assert "Unconscious" in alert["purposeOfEvent"][0]["text"]
    admin = token(secure_server, role="administrator", org=GP)
    assert (
        secure_client.post(f"/fhir/Patient/{pid}/$break-glass", json=params, headers=bearer(admin)).status_code == 403
    )
    assert secure_server.security is not None
    with secure_server.store.writing() as cur:  # time passes: the grant expires
        cur.execute("UPDATE access_grant SET expires_at = '2000-01-01T00:00:00.000000Z'")
    assert secure_client.get(f"/fhir/Patient/{pid}", headers=bearer(doc)).status_code == 403
