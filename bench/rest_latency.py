"""Single-create and single-read latency over HTTP (p50/p99), on SQLite and PostgreSQL, against baselines.

Starts `sharedcare serve` as a separate process per backend (PostgreSQL: a throwaway server, as the tests do) and
drives it from one keep-alive client, one request at a time. Baselines measured in the same run: a raw SQLite
insert/select of the same JSON bytes (WAL, synchronous=FULL, one transaction per row) and a raw PostgreSQL insert
through psycopg, so the ratios show what the FHIR layer costs.

    .venv/bin/python bench/rest_latency.py [--n 2000] [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.postgres import start_postgres  # noqa: E402

PATIENT = {
    "resourceType": "Patient",
    "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9990000018"}],
    "name": [{"use": "official", "family": "Smith", "given": ["Ann", "Marie"], "prefix": ["Mrs"]}],
    "telecom": [{"system": "phone", "value": "01632 960001", "use": "home"}],
    "gender": "female",
    "birthDate": "1950-02-03",
    "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 1AA", "country": "GB"}],
    "generalPractitioner": [{"reference": "Organization/B86001"}],
}


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(db: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    cmd = [str(ROOT / ".venv/bin/sharedcare"), "serve", "--db", db, "--port", str(port), "--dev-open"]  # no tokens
    proc = subprocess.Popen(cmd)
    base = f"http://127.0.0.1:{port}/fhir"
    for _ in range(200):
        try:
            if httpx.get(f"{base}/metadata").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def distinct_patient(k: int) -> bytes:
    """The benchmark Patient as a different person each time (own NHS number, name, birth date): every create
    is matched by the MPI, and a thousand copies of one person would measure a pathological Person, not a create."""
    from sharedcare.generate.nhs_numbers import check_digit

    stem = 999000000 + k * 7
    while check_digit(str(stem)) is None:
        stem += 1
    nhs = f"{stem}{check_digit(str(stem))}"
    rng = random.Random(k)
    family = "".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(3)).capitalize()
    given = "".join(rng.choice("bcdfghjklmnprstvwz") + rng.choice("aeiou") for _ in range(2)).capitalize()
    person = {
        **PATIENT,
        "identifier": [{**PATIENT["identifier"][0], "value": nhs}],
        "name": [{**PATIENT["name"][0], "family": family, "given": [given]}],
        "birthDate": f"{1930 + k % 80}-{1 + k % 12:02d}-{1 + k % 28:02d}",
        "telecom": [{"system": "phone", "value": f"01632 {960000 + k}", "use": "home"}],
        "address": [{"line": [f"{k} High Street"], "city": "Leeds", "postalCode": f"LS{1 + k % 28} {k % 10}AA"}],
    }
    return json.dumps(person).encode()


def http_run(base: str, n: int) -> dict[str, list[float]]:
    creates, reads, ids = [], [], []
    headers = {"content-type": "application/fhir+json"}
    bodies = [distinct_patient(k) for k in range(n + 50)]
    with httpx.Client() as http:
        for body in bodies[n:]:  # warm up
            http.post(f"{base}/Patient", content=body, headers=headers)
        for body in bodies[:n]:
            t = time.perf_counter()
            r = http.post(f"{base}/Patient", content=body, headers=headers)
            creates.append(time.perf_counter() - t)
            assert r.status_code == 201
            ids.append(r.json()["id"])
        for i in range(n):
            t = time.perf_counter()
            r = http.get(f"{base}/Patient/{ids[(i * 7919) % n]}")
            reads.append(time.perf_counter() - t)
            assert r.status_code == 200
    return {"create": creates, "read": reads}


def raw_sqlite(n: int) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as d:
        conn = sqlite3.connect(f"{d}/raw.db", isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, body BLOB)")
        body = json.dumps(PATIENT).encode()
        creates, reads = [], []
        for _ in range(n):
            t = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO r (body) VALUES (?)", (body,))
            conn.execute("COMMIT")
            creates.append(time.perf_counter() - t)
        for i in range(n):
            t = time.perf_counter()
            conn.execute("SELECT body FROM r WHERE id = ?", ((i * 7919) % n + 1,)).fetchone()
            reads.append(time.perf_counter() - t)
        conn.close()
    return {"create": creates, "read": reads}


def raw_postgres(url: str, n: int) -> dict[str, list[float]]:
    body = json.dumps(PATIENT).encode()
    creates, reads = [], []
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE raw_r (id BIGSERIAL PRIMARY KEY, body BYTEA)")
        for _ in range(n):
            t = time.perf_counter()
            conn.execute("INSERT INTO raw_r (body) VALUES (%s)", (body,))
            creates.append(time.perf_counter() - t)
        for i in range(n):
            t = time.perf_counter()
            conn.execute("SELECT body FROM raw_r WHERE id = %s", ((i * 7919) % n + 1,)).fetchone()
            reads.append(time.perf_counter() - t)
        conn.execute("DROP TABLE raw_r")
    return {"create": creates, "read": reads}


def report(name: str, result: dict[str, list[float]], base: dict[str, list[float]] | None) -> None:
    for op in ("create", "read"):
        p50, p99 = pct(result[op], 50) * 1000, pct(result[op], 99) * 1000
        line = f"| {name} | {op} | {p50:.2f} | {p99:.2f} | {statistics.fmean(result[op]) * 1000:.2f} |"
        if base:
            line += f" {p50 / (pct(base[op], 50) * 1000):.1f}x |"
        else:
            line += " |"
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--backends", default="sqlite,postgresql")
    args = ap.parse_args()
    print(f"{args.n} sequential creates then {args.n} reads of a {len(json.dumps(PATIENT))}-byte Patient, one client")
    print("| what | op | p50 ms | p99 ms | mean ms | p50 vs raw |")
    print("|---|---|---|---|---|---|")
    if "sqlite" in args.backends:
        raw = raw_sqlite(args.n)
        report("raw SQLite (same JSON)", raw, None)
        with tempfile.TemporaryDirectory() as d:
            proc, base = serve(f"sqlite:///{d}/bench.db")
            try:
                report("sharedcare HTTP, SQLite", http_run(base, args.n), raw)
            finally:
                proc.terminate()
                proc.wait()
    if "postgresql" in args.backends:
        pg = start_postgres()
        try:
            raw = raw_postgres(pg.url, args.n)
            report("raw PostgreSQL (same JSON)", raw, None)
            proc, base = serve(pg.url)
            try:
                report("sharedcare HTTP, PostgreSQL", http_run(base, args.n), raw)
            finally:
                proc.terminate()
                proc.wait()
        finally:
            pg.stop()
    print(f"machine: {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
