"""Search test kit: a server per backend loaded once per module with third-party data (Synthea bundles).

The PostgreSQL server is the session one from tests/conftest.py, but each module gets its own database, so the
function-scoped fixtures of other tests (which reset the default database) never touch it.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import BACKENDS
from starlette.testclient import TestClient

from sharedcare.app import build
from sharedcare.settings import Settings

FHIR_JSON = {"content-type": "application/fhir+json"}


def fresh_database(pg_url: str, name: str) -> str:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url.rsplit("/", 1)[0] + "/" + name


@pytest.fixture(scope="module", params=BACKENDS)
def module_client(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A client on an empty server private to the calling test module."""
    if request.param == "postgresql":
        name = "search_" + request.module.__name__.rsplit(".", 1)[-1].lower()
        url = fresh_database(request.getfixturevalue("pg_url"), name)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('search') / 'search.db'}"
    srv = build(Settings(db=url, auth_required=False))  # the open development mode, as tests/conftest.py
    try:
        with TestClient(srv.asgi, base_url="http://testserver") as client:
            yield client
    finally:
        srv.close()


def read_bundle(path: Path) -> dict:
    with gzip.open(path) as f:
        return json.load(f)


def post_bundle(client: TestClient, bundle: dict) -> list[str]:
    """POST a batch/transaction Bundle; return each entry's resulting "Type/id" (or "" when it failed)."""
    r = client.post("/fhir", content=json.dumps(bundle), headers=FHIR_JSON)
    assert r.status_code == 200, r.text[:2000]
    out = []
    for e in r.json()["entry"]:
        loc = e.get("response", {}).get("location", "")
        out.append("/".join(loc.split("/")[:2]) if loc else "")
    return out


def search_all(client: TestClient, path: str, limit_pages: int = 200) -> list[dict]:
    """Every match of a search, following next links; asserts each page is a searchset."""
    url: str | None = path
    found: list[dict] = []
    for _ in range(limit_pages):
        assert url is not None
        r = client.get(url)
        assert r.status_code == 200, (path, r.text[:1000])
        body = r.json()
        assert body["resourceType"] == "Bundle" and body["type"] == "searchset"
        found += [e["resource"] for e in body.get("entry", []) if e["search"]["mode"] == "match"]
        url = next((link["url"] for link in body.get("link", []) if link["relation"] == "next"), None)
        if url is None:
            return found
    raise AssertionError(f"more than {limit_pages} pages for {path}")
