"""SMART Backend Services: client credentials with a private_key_jwt assertion against the registered JWKS."""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey
from starlette.testclient import TestClient
from support.security import bearer

from sharedcare.app import Server
from sharedcare.auth.registry import Client

TOKEN_URL = "http://testserver/auth/token"
ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _register(server: Server, client_id: str, key: Any, scopes: str = "system/*.rs", org: str = "A81001") -> None:
    assert server.security is not None
    public = key.as_dict(private=False)
    public["kid"] = "k1"
    server.security.registry.add_client(
        Client(client_id, "backend", "system", "direct-care", scopes, org, jwks={"keys": [public]})
    )


def _assertion(client_id: str, key: Any, alg: str = "RS384", **override: Any) -> str:
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "exp": int(time.time()) + 240,
        "jti": str(uuid.uuid4()),
        **override,
    }
    return jwt.encode({"alg": alg, "kid": "k1", "typ": "JWT"}, claims, key, algorithms=[alg])


def _token(client: TestClient, assertion: str, scope: str = "system/*.rs") -> Any:
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION,
        "client_assertion": assertion,
    }
    return client.post("/auth/token", data=form)


def test_backend_client_gets_a_token_and_uses_it(secure_server: Server, secure_client: TestClient) -> None:
    key = RSAKey.generate_key(2048)
    _register(secure_server, "gp-feed", key, scopes="system/*.cruds")
    resp = _token(secure_client, _assertion("gp-feed", key), scope="system/Observation.crs system/Patient.r")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert set(body["scope"].split()) == {"system/Observation.crs", "system/Patient.r"}
    assert resp.headers["cache-control"] == "no-store"
    headers = bearer(body["access_token"])
    created = secure_client.post(
        "/fhir/Observation",
        json={"resourceType": "Observation", "status": "final", "code": {"text": "x"}},
        headers=headers,
    )
    assert created.status_code == 201, created.text
    assert created.json()["meta"]["source"] == "urn:sharedcare:source:A81001/gp-feed"  # every write records its source
    refused = secure_client.post("/fhir/Patient", json={"resourceType": "Patient"}, headers=headers)
    assert refused.status_code == 403 and "scopes" in refused.text


def test_es384_keys_work_too(secure_server: Server, secure_client: TestClient) -> None:
    key = ECKey.generate_key("P-384")
    _register(secure_server, "ec-client", key)
    assert _token(secure_client, _assertion("ec-client", key, alg="ES384")).status_code == 200


def test_replayed_assertion_is_refused(secure_server: Server, secure_client: TestClient) -> None:
    key = RSAKey.generate_key(2048)
    _register(secure_server, "feed", key)
    assertion = _assertion("feed", key)
    assert _token(secure_client, assertion).status_code == 200
    again = _token(secure_client, assertion)
    assert again.status_code == 401 and again.json()["error"] == "invalid_client"
    assert "replay" in again.json()["error_description"]


def test_bad_assertions_are_refused(secure_server: Server, secure_client: TestClient) -> None:
    key, other = RSAKey.generate_key(2048), RSAKey.generate_key(2048)
    _register(secure_server, "feed", key)
    now = int(time.time())
    cases = {
        "expired": _assertion("feed", key, exp=now - 120),
        "too long": _assertion("feed", key, exp=now + 3600),
        "wrong audience": _assertion("feed", key, aud="https://elsewhere/token"),
        "wrong key": _assertion("feed", other),
        "sub differs": _assertion("feed", key, sub="someone-else"),
        "no jti": _assertion("feed", key, jti=""),
        "unknown client": _assertion("nobody", key),
        "not a jwt": "abc.def",
    }
    for name, assertion in cases.items():
        resp = _token(secure_client, assertion)
        assert resp.status_code == 401, name
        assert resp.json()["error"] == "invalid_client", name


def test_scopes_are_narrowed_to_what_the_client_may_have(secure_server: Server, secure_client: TestClient) -> None:
    key = RSAKey.generate_key(2048)
    _register(secure_server, "reader", key, scopes="system/*.rs")
    resp = _token(secure_client, _assertion("reader", key), scope="system/*.cruds user/*.cruds")
    assert resp.json()["scope"] == "system/*.rs"
    resp = _token(secure_client, _assertion("reader", key), scope="patient/*.rs")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"
    resp = _token(secure_client, _assertion("reader", key), scope="system/Patient.xyz")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


def test_client_credentials_need_an_assertion(secure_server: Server, secure_client: TestClient) -> None:
    key = RSAKey.generate_key(2048)
    _register(secure_server, "feed", key)
    resp = secure_client.post("/auth/token", data={"grant_type": "client_credentials", "client_id": "feed"})
    assert resp.status_code == 401
    resp = secure_client.post("/auth/token", data={"grant_type": "password", "username": "x"})
    assert resp.status_code == 400 and resp.json()["error"] == "unsupported_grant_type"
