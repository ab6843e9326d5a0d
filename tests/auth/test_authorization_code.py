"""Authorization code flow with PKCE (S256): codes are single-use and bound to client, redirect and verifier."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.testclient import TestClient
from support.security import bearer, operator_token

from sharedcare.app import Server
from sharedcare.auth.passwords import check_password, hash_password
from sharedcare.auth.registry import APP_SCOPES, Client, User

REDIRECT = "https://app.example/cb"


def _setup(server: Server, secret: str | None = None) -> None:
    assert server.security is not None
    registry = server.security.registry
    registry.add_client(
        Client(
            "app",
            "app",
            "app",
            "direct-care",
            APP_SCOPES,
            redirect_uris=(REDIRECT,),
            secret_hash=hash_password(secret) if secret else None,
        )
    )
    registry.add_user(User("doc", "clinician", "A81001", "Dr Doc"), "pw1")
    registry.add_user(User("pat", "patient", patient="p1"), "pw2")


def _code(client: TestClient, username: str, password: str, scope: str, verifier: str, **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params = {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "st8",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "aud": "http://testserver/fhir",
    }
    page = client.get("/auth/authorize", params=params)
    assert page.status_code == 200, page.text
    signed = unescape(re.search(r'name=request value="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    form = {"request": signed, "username": username, "password": password, **extra}
    done = client.post("/auth/authorize", data=form, follow_redirects=False)
    assert done.status_code == 303, done.text
    query = parse_qs(urlsplit(done.headers["location"]).query)
    assert query["state"] == ["st8"]
    return query["code"][0]


def _exchange(client: TestClient, code: str, verifier: str, **extra: Any) -> Any:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "app",
        "code_verifier": verifier,
        **extra,
    }
    return client.post("/auth/token", data=form)


def test_code_exchange_needs_the_right_verifier_and_works_once(
    secure_server: Server, secure_client: TestClient
) -> None:
    _setup(secure_server)
    verifier = secrets.token_urlsafe(48)
    code = _code(secure_client, "doc", "pw1", "user/*.rs openid fhirUser", verifier)
    wrong = _exchange(secure_client, code, "not-the-verifier-" + "x" * 30)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    code = _code(secure_client, "doc", "pw1", "user/*.rs openid fhirUser", verifier)
    ok = _exchange(secure_client, code, verifier)
    assert ok.status_code == 200, ok.text
    body = ok.json()
    assert body["scope"] == "user/*.rs fhirUser openid" and "id_token" in body and "patient" not in body
    again = _exchange(secure_client, code, verifier)
    assert again.status_code == 400 and "already been used" in again.json()["error_description"]
    read = secure_client.get("/fhir/Organization", headers=bearer(body["access_token"]))
    assert read.status_code == 200
    write = secure_client.post(
        "/fhir/Organization", json={"resourceType": "Organization"}, headers=bearer(body["access_token"])
    )
    assert write.status_code == 403  # user/*.rs grants no create


def test_patient_login_carries_the_patient_context(secure_server: Server, secure_client: TestClient) -> None:
    _setup(secure_server)
    op = operator_token(secure_server)
    secure_client.put("/fhir/Patient/p1", json={"resourceType": "Patient", "id": "p1"}, headers=bearer(op))
    verifier = secrets.token_urlsafe(48)
    body = _exchange(secure_client, _code(secure_client, "pat", "pw2", "patient/*.rs", verifier), verifier).json()
    assert body["patient"] == "p1"
    assert secure_client.get("/fhir/Patient/p1", headers=bearer(body["access_token"])).status_code == 200


def test_refresh_tokens_rotate(secure_server: Server, secure_client: TestClient) -> None:
    _setup(secure_server)
    verifier = secrets.token_urlsafe(48)
    code = _code(secure_client, "doc", "pw1", "user/*.rs offline_access", verifier)
    first = _exchange(secure_client, code, verifier).json()
    assert "refresh_token" in first
    form = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"], "client_id": "app"}
    second = secure_client.post("/auth/token", data=form)
    assert second.status_code == 200 and second.json()["refresh_token"] != first["refresh_token"]
    replay = secure_client.post("/auth/token", data=form)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"


def test_confidential_client_must_present_its_secret(secure_server: Server, secure_client: TestClient) -> None:
    _setup(secure_server, secret="s3cret-value")
    verifier = secrets.token_urlsafe(48)
    code = _code(secure_client, "doc", "pw1", "user/*.rs", verifier)
    assert _exchange(secure_client, code, verifier).status_code == 401
    code = _code(secure_client, "doc", "pw1", "user/*.rs", verifier)
    basic = base64.b64encode(b"app:s3cret-value").decode()
    ok = secure_client.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT, "code_verifier": verifier},
        headers={"authorization": f"Basic {basic}"},
    )
    assert ok.status_code == 200, ok.text


def test_passwords_are_scrypt_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert check_password("correct horse", stored)
    assert not check_password("wrong", stored)
    assert not check_password("anything", None)
