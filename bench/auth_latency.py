"""What authentication and authorisation cost on read and search latency, against the open development mode.

Three `sharedcare serve` processes, one SQLite store each, holding the same patient and observation at the same
ids: the open mode (no authentication, no restriction), the secure mode (a clinician's bearer token with a
legitimate relationship, so every read runs the restricted query), and the secure mode as configured by default,
where a read is answered only once its AuditEvent is committed. The first two batch their audit writes, so their
difference is authentication and authorisation alone; the third shows what waiting for the audit commit adds.
Requests alternate between the servers in small blocks; the per-round ratio of medians cancels load drift.

    .venv/bin/python bench/auth_latency.py [--n 4000] [--block 50]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx2 as httpx

ROOT = Path(__file__).resolve().parents[1]
FHIR = {"content-type": "application/fhir+json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(db: str, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environ = {**os.environ, **{f"SHAREDCARE_{k.upper()}": v for k, v in env.items()}}
    environ["SHAREDCARE_ACCESS_LOG"] = "false"
    environ["SHAREDCARE_RATE_LIMIT_PER_SECOND"] = "1000000"  # the bucket is still taken, never empty
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/sharedcare"), "serve", "--db", db, "--port", str(port)],
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/fhir"
    for _ in range(400):
        try:
            if httpx.get(f"{base}/metadata").status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    raise RuntimeError("server did not start")


def cli_token(db: str, *args: str) -> str:
    out = subprocess.run([str(ROOT / ".venv/bin/sharedcare"), "token", "--db", db, *args], capture_output=True)
    return out.stdout.decode().strip()


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--block", type=int, default=100)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    configs = {  # one store each, so no server waits on another's writes
        "open (no auth)": {"auth_required": "false", "audit_sync_reads": "false"},
        "secure": {"audit_sync_reads": "false"},
        "secure, read waits for its audit": {},
    }
    procs, servers = [], {}
    try:
        with httpx.Client() as http:
            for n, (name, env) in enumerate(configs.items()):
                db = f"sqlite:///{tmp}/bench{n}.db"
                op = cli_token(db)
                proc, base = serve(db, **env)
                procs.append(proc)
                load(http, base, op)
                headers = {} if env.get("auth_required") == "false" else {"authorization": f"Bearer {clinician(db)}"}
                servers[name] = (base, headers)
            paths = {"read": "Observation/bench-o1", "search": "Observation?subject=Patient/bench-p1"}
            for kind, path in paths.items():
                times: dict[str, list[float]] = {name: [] for name in servers}
                rounds: dict[str, list[float]] = {name: [] for name in servers}
                for name, (base, headers) in servers.items():  # warm up
                    for _ in range(50):
                        resp = http.get(f"{base}/{path}", headers=headers)
                        assert resp.status_code == 200, (name, resp.status_code, resp.text[:200])
                for _ in range(args.n // args.block):
                    for name, (base, headers) in servers.items():
                        time.sleep(0.2)  # let the previous server's batched audit work finish off the clock
                        block = []
                        for _ in range(args.block):
                            t = time.perf_counter()
                            http.get(f"{base}/{path}", headers=headers)
                            block.append(time.perf_counter() - t)
                        times[name] += block
                        rounds[name].append(statistics.median(block))
                report(kind, times, rounds)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait()


def load(http: httpx.Client, base: str, op: str) -> None:
    """The same patient (registered with the clinician's practice) and observation, at the same ids."""
    auth = {"authorization": f"Bearer {op}", **FHIR}
    patient = {
        "resourceType": "Patient",
        "id": "bench-p1",
        "generalPractitioner": [{"reference": "Organization/A81001"}],
    }
    obs = {
        "resourceType": "Observation",
        "id": "bench-o1",
        "status": "final",
        "code": {"text": "BP"},
        "subject": {"reference": "Patient/bench-p1"},
    }
    for resource in (patient, obs):
        resp = http.put(f"{base}/{resource['resourceType']}/{resource['id']}", json=resource, headers=auth)
        assert resp.status_code in (200, 201), resp.text


def clinician(db: str) -> str:
    """A clinician at the patient's practice, issued in process by the store's token service (the OAuth flows
    themselves are tested in tests/auth)."""
    sys.path.insert(0, str(ROOT / "src"))
    from sharedcare.access.scopes import ScopeSet
    from sharedcare.app import open_store
    from sharedcare.auth.keys import KeyRing
    from sharedcare.auth.registry import Registry
    from sharedcare.auth.tokens import TokenService
    from sharedcare.fhir.search_parameters import SearchParameterRegistry
    from sharedcare.settings import Settings

    settings = Settings(db=db)
    store = open_store(db, SearchParameterRegistry.load(), settings)
    try:
        service = TokenService(store, KeyRing.load(store), Registry(store), access_seconds=3600)
        text, _ = service.issue(
            kind="user",
            subject="dr-bench",
            role="clinician",
            client_id="bench",
            scopes=ScopeSet.parse("user/*.rs"),
            purpose="direct-care",
            organisation="A81001",
        )
        return text
    finally:
        store.close()


def report(kind: str, times: dict[str, list[float]], rounds: dict[str, list[float]]) -> None:
    """p50/p99 per server, and the median over rounds of each round's p50 ratio to the open server's: rounds
    alternate within seconds, so load that drifts between rounds cancels out of the ratio."""
    open_name = next(iter(times))
    print(f"\n{kind}: n={len(times[open_name])} per server, {len(rounds[open_name])} rounds")
    for name, values in times.items():
        p50, p99 = statistics.median(values), pct(values, 99)
        ratios = [a / b for a, b in zip(rounds[name], rounds[open_name], strict=True)]
        over = (statistics.median(ratios) - 1) * 100
        print(f"  {name:34s} p50 {p50 * 1000:6.3f} ms  p99 {p99 * 1000:7.3f} ms  per-round p50 {over:+5.1f}%")


if __name__ == "__main__":
    main()
