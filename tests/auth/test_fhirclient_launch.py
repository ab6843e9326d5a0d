"""A real SMART client (Python `fhirclient`) completes a standalone launch against a live server.

fhirclient discovers the OAuth endpoints from the CapabilityStatement, sends the user to /auth/authorize with
PKCE; a person logs in on the server's form (driven here with httpx), the browser is redirected back with a
code, fhirclient exchanges it at /auth/token and then reads FHIR resources with the bearer token.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx2 as httpx
import pytest
import uvicorn
from fhirclient import client as smart_client
from fhirclient.models.observation import Observation
from fhirclient.models.patient import Patient
from support.security import bearer, operator_token

from sharedcare.app import Server
from sharedcare.auth.registry import APP_SCOPES, Client, User

REDIRECT = "http://localhost:9999/callback"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(secure_server: Server) -> Iterator[str]:
    port = _free_port()
    uv = uvicorn.Server(uvicorn.Config(secure_server.asgi, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        uv.should_exit = True
        thread.join(timeout=10)


def _login(authorize_url: str, username: str, password: str, patient: str | None = None) -> str:
    """What a person does in the browser: open the form, sign in; returns the redirect back to the app."""
    with httpx.Client(follow_redirects=False) as browser:
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        signed = unescape(re.search(r'name=request value="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
        form = {"request": signed, "username": username, "password": password}
        if patient:
            form["patient"] = patient
        done = browser.post(f"{origin}/auth/authorize", data=form)
        assert done.status_code == 303, done.text
        return done.headers["location"]


def test_fhirclient_standalone_launch_as_clinician(secure_server: Server, live: str) -> None:
    assert secure_server.security is not None
    registry = secure_server.security.registry
    registry.add_client(Client("smart-demo", "app", "app", "direct-care", APP_SCOPES, redirect_uris=(REDIRECT,)))
    registry.add_user(User("drsmith", "clinician", "A81001", "Dr Ann Smith", "Practitioner/dr1"), "correct horse")
    op = operator_token(secure_server)
    patient = {
        "resourceType": "Patient",
        "name": [{"family": "Jones"}],
        "generalPractitioner": [{"reference": "Organization/A81001"}],
    }
    pid = httpx.post(f"{live}/fhir/Patient", json=patient, headers=bearer(op)).json()["id"]
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "BP"},
        "subject": {"reference": f"Patient/{pid}"},
    }
    httpx.post(f"{live}/fhir/Observation", json=obs, headers=bearer(op))

    smart = smart_client.FHIRClient(
        settings={"app_id": "smart-demo", "api_base": f"{live}/fhir", "redirect_uri": REDIRECT}
    )
    smart.prepare()
    url = smart.authorize_url
    assert url.startswith(f"{live}/auth/authorize?") and "code_challenge" in url
    callback = _login(url, "drsmith", "correct horse", patient=pid)
    assert callback.startswith(REDIRECT) and "code=" in callback
    smart.handle_callback(callback)
    assert smart.ready
    assert smart.patient_id == pid  # launch/patient: the patient chosen at login
    assert Patient.read(pid, smart.server).name[0].family == "Jones"
    found = list(Observation.where({"subject": f"Patient/{pid}"}).perform_resources_iter(smart.server))
    assert [o.code.text for o in found] == ["BP"]
    granted = smart.launch_context["scope"].split()
    assert "user/*.cruds" in granted and "openid" in granted


def test_fhirclient_launch_as_patient_sees_only_their_record(secure_server: Server, live: str) -> None:
    assert secure_server.security is not None
    op = operator_token(secure_server)
    me = httpx.post(f"{live}/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(op)).json()["id"]
    other = httpx.post(f"{live}/fhir/Patient", json={"resourceType": "Patient"}, headers=bearer(op)).json()["id"]
    registry = secure_server.security.registry
    registry.add_client(Client("portal", "app", "app", "direct-care", APP_SCOPES, redirect_uris=(REDIRECT,)))
    registry.add_user(User("pat", "patient", patient=me), "pw-of-patient")
    smart = smart_client.FHIRClient(
        settings={"app_id": "portal", "api_base": f"{live}/fhir", "redirect_uri": REDIRECT, "scope": "patient/*.rs"}
    )
    smart.prepare()
    smart.handle_callback(_login(smart.authorize_url, "pat", "pw-of-patient"))
    assert smart.patient_id == me
    assert Patient.read(me, smart.server).id == me
    with pytest.raises(Exception, match="403"):
        Patient.read(other, smart.server)


def test_wrong_password_shows_the_form_again_and_is_audited(secure_server: Server, live: str) -> None:
    assert secure_server.security is not None
    registry = secure_server.security.registry
    registry.add_client(Client("app2", "app", "app", "direct-care", APP_SCOPES, redirect_uris=(REDIRECT,)))
    registry.add_user(User("nurse1", "nurse", "A81001"), "right")
    smart = smart_client.FHIRClient(settings={"app_id": "app2", "api_base": f"{live}/fhir", "redirect_uri": REDIRECT})
    smart.prepare()
    with httpx.Client() as browser:
        page = browser.get(smart.authorize_url)
        signed = unescape(re.search(r'name=request value="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
        bad = browser.post(f"{live}/auth/authorize", data={"request": signed, "username": "nurse1", "password": "x"})
    assert bad.status_code == 401 and "not right" in bad.text
    secure_server.security.trail.flush()
    events = httpx.get(
        f"{live}/fhir/AuditEvent?subtype=110122&outcome=4", headers=bearer(operator_token(secure_server))
    )
    assert any(
        a["who"]["identifier"]["value"] == "nurse1" for e in events.json()["entry"] for a in e["resource"]["agent"]
    )


def test_unregistered_redirect_uri_is_not_followed(secure_server: Server, live: str) -> None:
    assert secure_server.security is not None
    secure_server.security.registry.add_client(
        Client("app3", "app", "app", "direct-care", APP_SCOPES, redirect_uris=(REDIRECT,))
    )
    query = {
        "response_type": "code",
        "client_id": "app3",
        "redirect_uri": "https://evil.example/cb",
        "scope": "user/*.rs",
        "state": "s",
        "code_challenge": "x" * 43,
        "code_challenge_method": "S256",
    }
    resp = httpx.get(f"{live}/auth/authorize", params=query, follow_redirects=False)
    assert resp.status_code == 400 and "location" not in resp.headers
    query["redirect_uri"] = REDIRECT
    query.pop("code_challenge")
    resp = httpx.get(f"{live}/auth/authorize", params=query, follow_redirects=False)
    assert resp.status_code == 303
    assert parse_qs(urlsplit(resp.headers["location"]).query)["error"] == ["invalid_request"]
