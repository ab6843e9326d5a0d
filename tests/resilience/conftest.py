"""`db_url`: an empty store URL on each backend, for tests that open stores themselves (e.g. at an old schema)."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

BACKENDS = [b for b in os.environ.get("SHAREDCARE_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


def reset_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        reset_postgres(url)
        return url
    return f"sqlite:///{tmp_path / 'store.db'}"
