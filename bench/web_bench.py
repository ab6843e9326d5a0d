"""Web page timing: server time for the patient record pages on a demo-sized region (issue 9: p50 <= 100 ms).

Loads a `sharedcare demo`-sized region (1,000 people by default) into a fresh SQLite store with security on,
creates the demo accounts, signs in as the demo clinician and opens each record page of every patient registered
at the clinician's practice (the ones the clinician has a legitimate relationship with), in process through the
ASGI app. Server time is the page's own `Server-Timing: app;dur=` (session, every FHIR call through the security
boundary with its audit, building the view and rendering); wall time adds the ASGI and HTTP client overhead.

    .venv/bin/python bench/web_bench.py                 # 1,000 people
    .venv/bin/python bench/web_bench.py --people 300 --json /tmp/web.json

Not a timed test: it prints a table (and --json writes the figures).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from starlette.testclient import TestClient

from sharedcare.app import build
from sharedcare.generate.demo import load_records
from sharedcare.generate.region import RegionConfig, iter_region_records
from sharedcare.settings import Settings
from sharedcare.web.demo_accounts import DEMO_PASSWORD, create_demo_accounts

PAGES = ("", "/results", "/encounters", "/medications")


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found
    return found.group(1)


def _server_ms(resp: object) -> float:
    timing = resp.headers.get("server-timing", "")  # type: ignore[attr-defined]
    return float(timing.split("dur=")[1]) if "dur=" in timing else float("nan")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--people", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max-patients", type=int, default=80, help="patients timed (all the practice's if fewer)")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sharedcare-web-bench-"))
    settings = Settings(
        db=f"sqlite:///{folder / 'bench.db'}",
        sqlite_synchronous="OFF",
        rate_limit_per_second=0,
        access_log=False,
        log_level="warning",
    )
    server = build(settings)
    started = time.perf_counter()
    summary = load_records(server, iter_region_records(RegionConfig(patients=args.people, seed=args.seed)))
    print(
        f"loaded {summary.resources:,} resources for {args.people:,} people in {time.perf_counter() - started:.0f}s",
        file=sys.stderr,
    )
    demo = create_demo_accounts(server)
    ods = next(org for name, _, org in demo.accounts if name == "clinician")
    try:
        with TestClient(server.asgi, base_url="http://bench") as client:
            token = _csrf(client.get("/sign-in").text)
            client.post("/sign-in", data={"username": "clinician", "password": DEMO_PASSWORD, "csrf_token": token})
            ids = _practice_patients(client, server, ods)[: args.max_patients]
            results = _time_pages(client, ids)
    finally:
        server.close()
    _report(results, len(ids), args)


def _practice_patients(client: TestClient, server: object, ods: str) -> list[str]:
    from sharedcare.types import FhirRequest

    resp = server.handle(  # type: ignore[attr-defined]
        FhirRequest(
            "GET",
            ["Patient"],
            [("organization", f"Organization/{ods}"), ("_count", "1000"), ("_elements", "id")],
            base_url="http://bench/fhir",
        )
    )
    return sorted(e["resource"]["id"] for e in json.loads(resp.body).get("entry") or [])


def _time_pages(client: TestClient, ids: list[str]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {p or "/summary": {"server": [], "wall": []} for p in PAGES}
    for pid in ids[:3]:
        client.get(f"/patients/{pid}")  # warm the template cache and the store
    for pid in ids:
        for page in PAGES:
            t = time.perf_counter()
            resp = client.get(f"/patients/{pid}{page}")
            wall = (time.perf_counter() - t) * 1000
            if resp.status_code != 200:
                continue
            out[page or "/summary"]["server"].append(_server_ms(resp))
            out[page or "/summary"]["wall"].append(wall)
    return out


def _report(results: dict[str, dict[str, list[float]]], patients: int, args: argparse.Namespace) -> None:
    rows = []
    print(f"\nrecord pages for {patients} patients of the demo clinician's practice ({args.people:,}-person region)")
    print(f"{'page':<14}{'n':>5}{'server p50':>12}{'server p95':>12}{'wall p50':>10}")
    for page, figures in results.items():
        server, wall = figures["server"], figures["wall"]
        if not server:
            continue
        row = {
            "page": page,
            "n": len(server),
            "server_p50_ms": round(statistics.median(server), 1),
            "server_p95_ms": round(pct(server, 0.95), 1),
            "wall_p50_ms": round(statistics.median(wall), 1),
        }
        rows.append(row)
        print(f"{page:<14}{row['n']:>5}{row['server_p50_ms']:>12}{row['server_p95_ms']:>12}{row['wall_p50_ms']:>10}")
    if args.json:
        args.json.write_text(json.dumps({"people": args.people, "patients": patients, "pages": rows}, indent=2))


if __name__ == "__main__":
    main()
