"""Helpers for the bulk data tests: servers with bulk settings, small NDJSON and Bundle files made from Synthea."""

from __future__ import annotations

import gzip
import os
import time
from collections.abc import Iterable
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from sharedcare.app import Server, build
from sharedcare.bulk.flatten import flatten_bundle
from sharedcare.settings import Settings

SYNTHEA = (
    Path(os.environ.get("SHAREDCARE_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")
    / "data"
    / "synthea"
)


def bulk_settings(db: str, **values: Any) -> Settings:
    """Settings for a test server: open access (where the setting exists) and the given values."""
    known = {f.name for f in fields(Settings)}
    wanted = {"auth_required": False, "import_workers": 0, "rate_limit_per_second": 0, **values}
    return Settings(db=db, **{k: v for k, v in wanted.items() if k in known})


def build_server(db: str, **values: Any) -> Server:
    return build(bulk_settings(db, **values))


def synthea_files(kind: str = "smart-on-fhir-r4-2019", n: int = 2) -> list[Path]:
    return sorted((SYNTHEA / kind).glob("*_*.json.gz"))[:n]


def synthea_resources(n_files: int = 2) -> list[dict[str, Any]]:
    """Distinct resources of the first Synthea patients, references made literal (NDJSON shape)."""
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for path in synthea_files(n=n_files):
        for res in flatten_bundle(orjson.loads(gzip.decompress(path.read_bytes()))):
            seen.setdefault((res["resourceType"], res["id"]), res)
    return list(seen.values())


def write_ndjson(path: Path, resources: Iterable[Any], *, gz: bool = False) -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in resources)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def wait_for(client: Any, location: str, timeout: float = 60.0) -> Any:
    """Poll a bulk status URL until it stops answering 202."""
    deadline = time.monotonic() + timeout
    while True:
        resp = client.get(location)
        if resp.status_code != 202 or time.monotonic() > deadline:
            return resp
        time.sleep(0.05)
