"""Fixtures: every storage and API test runs against both real engines, SQLite and PostgreSQL 15."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from starlette.testclient import TestClient
from support.postgres import start_postgres

from sharedcare.app import Server, build
from sharedcare.settings import Settings

SHARED = Path(os.environ.get("SHAREDCARE_SHARED") or Path(__file__).resolve().parents[1].parent / "shared")
pytest_plugins = ["support.security"]  # secure_server / secure_client: servers with authentication on
BACKENDS = [b for b in os.environ.get("SHAREDCARE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    existing = os.environ.get("SHAREDCARE_TEST_PG_URL")
    if existing:
        yield existing
        return
    server = start_postgres()
    try:
        yield server.url
    finally:
        server.stop()


def _reset_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        _reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
    srv = build(Settings(db=url, auth_required=False))  # the open development mode: API tests need no tokens
    try:
        yield srv
    finally:
        srv.close()


@pytest.fixture
def client(server: Server) -> Iterator[TestClient]:
    with TestClient(server.asgi, base_url="http://testserver") as c:
        yield c


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared reference data is not present")
    return SHARED
