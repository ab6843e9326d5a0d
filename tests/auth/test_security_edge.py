"""The security edge: bearer tokens (RFC 6750), open development mode, rate limits, security headers."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.testclient import TestClient
from support.security import bearer, operator_token, secure_settings, token

from sharedcare.access.scopes import ScopeSet
from sharedcare.app import Server, build
from sharedcare.auth import hygiene
from sharedcare.auth.ratelimit import RateLimiter
from sharedcare.settings import Settings


def test_security_is_on_by_default() -> None:
    assert Settings().auth_required is True
    assert Settings.from_env({}).auth_required is True
    assert Settings.from_env({"SHAREDCARE_AUTH_REQUIRED": "false"}).auth_required is False


def test_no_token_is_401_with_an_outcome(secure_client: TestClient) -> None:
    resp = secure_client.get("/fhir/Patient")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer realm="sharedcare"'
    assert resp.json()["resourceType"] == "OperationOutcome"
    assert resp.json()["issue"][0]["code"] == "login"


def test_bad_tokens_are_401_invalid_token(secure_server: Server, secure_client: TestClient) -> None:
    good = operator_token(secure_server)
    header, payload, signature = good.split(".")
    forged_key = ECKey.generate_key("P-256")
    forged = jwt.encode(
        {"alg": "ES256"},
        {
            "sub": "x",
            "iss": "sharedcare",
            "aud": "sharedcare-fhir",
            "exp": int(time.time()) + 60,
            "role": "administrator",
            "kind": "system",
        },
        forged_key,
    )
    assert secure_server.security is not None
    expired, _ = secure_server.security.tokens.issue(
        kind="system",
        subject="o",
        role="administrator",
        client_id="c",
        scopes=ScopeSet.parse("system/*.rs"),
        purpose="direct-care",
        seconds=-5,
    )
    for bad in (f"{header}.{payload[:-2]}xx.{signature}", forged, expired, "not-a-token"):
        resp = secure_client.get("/fhir/Patient", headers=bearer(bad))
        assert resp.status_code == 401, bad
        assert 'error="invalid_token"' in resp.headers["www-authenticate"]
    assert secure_client.get("/fhir/Patient", headers=bearer(good)).status_code == 200


def test_metadata_and_discovery_are_public(secure_client: TestClient) -> None:
    meta = secure_client.get("/fhir/metadata")
    assert meta.status_code == 200
    security = meta.json()["rest"][0]["security"]
    assert security["service"][0]["coding"][0]["code"] == "SMART-on-FHIR"
    for path in ("/.well-known/smart-configuration", "/fhir/.well-known/smart-configuration"):
        conf = secure_client.get(path).json()
        assert conf["token_endpoint"] == "http://testserver/auth/token"
        assert conf["authorization_endpoint"] == "http://testserver/auth/authorize"
        assert "S256" in conf["code_challenge_methods_supported"]
        assert {"permission-v1", "permission-v2", "client-confidential-asymmetric"} <= set(conf["capabilities"])
        assert "private_key_jwt" in conf["token_endpoint_auth_methods_supported"]
    jwks = secure_client.get("/auth/jwks").json()
    assert jwks["keys"][0]["kty"] == "EC" and "d" not in jwks["keys"][0]


def test_security_headers_and_request_id(secure_server: Server, secure_client: TestClient) -> None:
    resp = secure_client.get(
        "/fhir/Patient", headers=bearer(operator_token(secure_server), **{"x-request-id": "abc-123"})
    )
    assert resp.headers["x-request-id"] == "abc-123"
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["x-frame-options"] == "DENY"
    assert resp.headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert resp.headers["cache-control"] == "no-store"
    assert "strict-transport-security" not in resp.headers
    assert "x-sharedcare-security" not in resp.headers
    weird = secure_client.get("/fhir/metadata", headers={"x-request-id": "bad id with spaces"})
    assert weird.headers["x-request-id"] != "bad id with spaces"
    with TestClient(secure_server.asgi, base_url="https://testserver") as https:
        assert "max-age" in https.get("/fhir/metadata").headers["strict-transport-security"]


def test_open_mode_is_explicit_and_loud(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="sharedcare.security"):
        server = build(Settings(db=f"sqlite:///{tmp_path / 'open.db'}", auth_required=False))
    try:
        assert "OPEN DEVELOPMENT MODE" in caplog.text
        with TestClient(server.asgi) as client:
            resp = client.get("/fhir/Patient")
            assert resp.status_code == 200
            assert "NO AUTHENTICATION" in resp.headers["x-sharedcare-security"]
            assert "security" not in client.get("/fhir/metadata").json()["rest"][0]
    finally:
        server.close()


def test_rate_limit_per_client_is_429_with_retry_after(tmp_path: Path) -> None:
    server = build(secure_settings(f"sqlite:///{tmp_path / 'rl.db'}", rate_limit_per_second=1, rate_limit_burst=3))
    try:
        one = token(server, role="clinician", org="A81001", client_id="app-one")
        two = token(server, role="clinician", org="A81001", client_id="app-two")
        with TestClient(server.asgi) as client:
            statuses = [client.get("/fhir/Organization", headers=bearer(one)).status_code for _ in range(5)]
            assert statuses[:3] == [200, 200, 200] and statuses[-1] == 429
            limited = client.get("/fhir/Organization", headers=bearer(one))
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["issue"][0]["code"] == "throttled"
            assert client.get("/fhir/Organization", headers=bearer(two)).status_code == 200  # per client
            op = operator_token(server)
            assert all(client.get("/fhir/Organization", headers=bearer(op)).status_code == 200 for _ in range(6))
    finally:
        server.close()


def test_token_bucket_refills() -> None:
    now = [0.0]
    limiter = RateLimiter(2, 2, clock=lambda: now[0])
    assert [limiter.take("k") for _ in range(3)] == [0.0, 0.0, 0.5]
    now[0] = 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("other") == 0.0


def test_logs_carry_no_tokens_or_personal_data(caplog: pytest.LogCaptureFixture) -> None:
    hygiene.install()
    log = logging.getLogger("sharedcare.test")
    secret = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    with caplog.at_level(logging.INFO):
        log.info("GET /fhir/Patient?name=Smith&birthdate=1950-01-01 Authorization: Bearer %s", secret)
        log.info("token form: grant_type=authorization_code&code=abc123&code_verifier=xyz&password=hunter2")
        log.info("NHS number 943 476 5919 seen")
    text = caplog.text
    for leaked in (secret, "Smith", "1950-01-01", "abc123", "xyz", "hunter2", "943 476 5919"):
        assert leaked not in text, leaked
    assert "[redacted]" in text
