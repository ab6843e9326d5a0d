"""Helpers for tests that run with security on: a server with authentication, tokens for any actor, requests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from starlette.testclient import TestClient

from sharedcare.access.scopes import ScopeSet
from sharedcare.app import Server, build
from sharedcare.settings import Settings

BACKENDS = [b for b in os.environ.get("SHAREDCARE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]
FHIR_JSON = "application/fhir+json"


def reset_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


def db_url(request: pytest.FixtureRequest, tmp_path: Path, backend: str) -> str:
    if backend == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'secure.db'}"


def secure_settings(url: str, **overrides: Any) -> Settings:
    """Security on (the default), rate limiting off unless a test asks for it, bulk files in a temporary folder
    (not beside the store: a PostgreSQL store has no folder, and the default would be the working directory)."""
    values: dict[str, Any] = {
        "db": url,
        "auth_required": True,
        "rate_limit_per_second": 0,
        "bulk_dir": tempfile.mkdtemp(prefix="sharedcare-test-bulk-"),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(params=BACKENDS)
def secure_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    srv = build(secure_settings(db_url(request, tmp_path, request.param)))
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def secure_client(secure_server: Server) -> Iterator[TestClient]:
    with TestClient(secure_server.asgi, base_url="http://testserver") as c:
        yield c


def token(
    server: Server,
    *,
    role: str,
    kind: str = "user",
    subject: str | None = None,
    org: str | None = None,
    scopes: str = "user/*.cruds",
    patient: str | None = None,
    fhir_user: str | None = None,
    purpose: str | None = None,
    client_id: str = "test-app",
) -> str:
    """A signed access token as the token endpoint would issue it (the OAuth flows are tested on their own)."""
    assert server.security is not None
    purpose = purpose or ("secondary-use" if role == "analyst" else "direct-care")
    text, _ = server.security.tokens.issue(
        kind=kind,
        subject=subject or f"{role}-{org or patient or 'x'}",
        role=role,
        client_id=client_id,
        scopes=ScopeSet.parse(scopes),
        purpose=purpose,
        organisation=org,
        patient=patient,
        fhir_user=fhir_user,
    )
    return text


def operator_token(server: Server) -> str:
    return token(server, kind="system", role="administrator", subject="operator", scopes="system/*.cruds")


def bearer(tok: str, **extra: str) -> dict[str, str]:
    return {"authorization": f"Bearer {tok}", "content-type": FHIR_JSON, **extra}
