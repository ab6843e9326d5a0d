"""A generated region loads into a server through transaction Bundles with no errors."""

from __future__ import annotations

from pathlib import Path

import orjson

from sharedcare.app import build
from sharedcare.generate import RegionConfig, generate_region, iter_region_records
from sharedcare.generate.demo import load_records
from sharedcare.settings import Settings
from sharedcare.types import FhirRequest


def _count(server, rtype: str, query: list[tuple[str, str]] | None = None) -> int:
    req = FhirRequest("GET", [rtype], [("_summary", "count"), *(query or [])], base_url="http://t/fhir")
    return orjson.loads(server.handle(req).body)["total"]


def test_region_loads_through_transactions(tmp_path: Path) -> None:
    server = build(Settings(db=f"sqlite:///{tmp_path / 'load.db'}", sqlite_synchronous="OFF"))
    try:
        records = list(iter_region_records(RegionConfig(patients=120, seed=51)))
        summary = load_records(server, records)
        assert summary.errors == []
        assert summary.resources == sum(len(r.resources) for r in records)
        assert _count(server, "Patient") == sum(1 for r in records if r.patient_id)
        first = next(r for r in records if r.patient_id)
        nhs = [i["value"] for i in first.resources[0]["identifier"] if "nhs-number" in i["system"]]
        if nhs:
            assert _count(server, "Patient", [("identifier", f"https://fhir.nhs.uk/Id/nhs-number|{nhs[0]}")]) >= 1
    finally:
        server.close()


def test_written_bundle_lines_load_as_transactions(tmp_path: Path) -> None:
    generate_region(RegionConfig(patients=30, seed=52, out=tmp_path / "out", ndjson=False))
    server = build(Settings(db=f"sqlite:///{tmp_path / 'b.db'}", sqlite_synchronous="OFF"))
    try:
        for path in sorted((tmp_path / "out" / "bundles").glob("*.ndjson")):
            for line in path.read_bytes().splitlines():
                resp = server.handle(FhirRequest("POST", [], body=line, base_url="http://t/fhir"))
                assert resp.status == 200, resp.body[:300]
    finally:
        server.close()
