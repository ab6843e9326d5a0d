"""Resilience measurements (issue 8): crash cycles, backup/restore rates, replica lag and take-over, overload.

Every server is a real `sharedcare` process; PostgreSQL is a throwaway server as in the tests. Keep runs short on a
shared machine: the defaults take a few minutes in all.

    .venv/bin/python bench/resilience_bench.py crash --cycles 20 [--backend sqlite|postgresql]
    .venv/bin/python bench/resilience_bench.py backup --n 50000 [--backend sqlite|postgresql]
    .venv/bin/python bench/resilience_bench.py replica --rate 500 --seconds 20
    .venv/bin/python bench/resilience_bench.py overload --seconds 15

Prints one JSON object per measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "resilience")]
from crashkit import FHIR_JSON, Ledger, Proc, free_port, join, observation, patient, run_writers, serve, verify  # noqa: E402
from support.postgres import start_postgres  # noqa: E402

from sharedcare.settings import Settings  # noqa: E402

READ_ONLY = bool(os.environ.get("BENCH_READ_ONLY"))


def emit(name: str, **data: Any) -> None:
    print(json.dumps({"measure": name, **data}), flush=True)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int, kind: str = "VmRSS") -> float:
    """Resident memory: VmRSS in all, RssAnon (heap: what a leak grows), RssFile (mapped database pages)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(kind + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def database(backend: str, workdir: Path) -> tuple[str, Callable[[], None]]:
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}", lambda: None
    pg = start_postgres()
    return pg.url, pg.stop


# --- crash cycles ----------------------------------------------------------------------------------------
def crash(args: argparse.Namespace, workdir: Path) -> None:
    db, cleanup = database(args.backend, workdir)
    rng, ledger = random.Random(args.seed), Ledger()
    proc = serve(db, workdir / "server.log").start()
    started, in_flight_tx = time.monotonic(), 0
    try:
        for cycle in range(args.cycles):
            stop = threading.Event()
            writers = run_writers(proc.base, ledger, args.writers, stop, seed=cycle)
            time.sleep(rng.uniform(0.3, 2.5))
            proc.kill()
            stop.set()
            join(writers)
            in_flight_tx += len(ledger.transactions) - len(ledger.transactions_acked)
            proc.start()
            verdict = verify(db, ledger, index=(cycle % 5 == 4 or cycle == args.cycles - 1))
            if not verdict.ok:
                emit("crash", backend=args.backend, cycle=cycle, ok=False, detail=verdict.summary())
                raise SystemExit(1)
        emit(
            "crash",
            backend=args.backend,
            cycles=args.cycles,
            ok=True,
            acknowledged_versions_verified=len(ledger.acked),
            transactions_acknowledged=len(ledger.transactions_acked),
            transactions_unacknowledged_at_kills=len(ledger.transactions) - len(ledger.transactions_acked),
            seconds=round(time.monotonic() - started, 1),
        )
    finally:
        proc.stop()
        cleanup()


# --- backup and restore ------------------------------------------------------------------------------------
def seed_store(db: str, n: int) -> float:
    """n resources, one Patient (distinct name) to 19 Observations about it, in transactions of 1000.

    Mostly Observations on purpose: every Patient write runs the MPI matching hook, which would dominate the seeding
    time and is not what these measurements are about."""
    from sharedcare.app import build
    from sharedcare.settings import Settings

    server = build(Settings(db=db, validate_writes=False))
    started = time.monotonic()
    try:
        for start in range(0, n, 1000):

            def work(txn: Any, start: int = start) -> None:
                subject = None
                for k in range(start, min(start + 1000, n)):
                    if subject is None or k % 20 == 0:
                        resource = bulky(patient(k))
                        resource["name"] = [{"family": f"Seed{k:07d}x{random.randint(0, 10**6)}", "given": ["Bench"]}]
                        subject = "Patient/" + server.repo.create_in(txn, "Patient", resource, None).stored.id
                    else:
                        server.repo.create_in(txn, "Observation", observation(k, subject), None)

            server.store.transact(work)
    finally:
        server.close()
    return time.monotonic() - started


def bulky(resource: dict[str, Any]) -> dict[str, Any]:
    """About the size of a real Patient: identifiers, address, telecom, narrative."""
    n = random.randint(1, 10**9)
    resource["identifier"] = [{"system": "urn:oid:2.16.840.1.113883.2.1.4.1", "value": str(n)}]
    resource["address"] = [{"line": [f"{n % 300} High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}]
    resource["telecom"] = [{"system": "phone", "value": f"0113 {n % 10000:04d}", "use": "home"}]
    resource["text"] = {"status": "generated", "div": f'<div xmlns="http://www.w3.org/1999/xhtml">{"x" * 400}</div>'}
    return resource


def backup_restore(args: argparse.Namespace, workdir: Path) -> None:
    from sharedcare.resilience.backup import backup, restore

    db, cleanup = database(args.backend, workdir)
    try:
        seed_seconds = seed_store(db, args.n)
        stop, written = threading.Event(), [0]
        proc = serve(db, workdir / "server.log").start()
        writer = threading.Thread(target=_trickle, args=(proc.base, stop, written))
        writer.start()  # backups are online: writes keep arriving throughout
        try:
            manifest = backup(db, workdir / "bk")
        finally:
            stop.set()
            writer.join()
            proc.stop()
        target = f"sqlite:///{workdir / 'restored.db'}" if args.backend == "sqlite" else _new_pg_database(db)
        _, found = restore(workdir / "bk", target)
        mb = manifest.file_bytes / 1e6
        emit(
            "backup_restore",
            backend=args.backend,
            resources=manifest.resources,
            versions=manifest.versions,
            seed_seconds=round(seed_seconds, 1),
            backup_seconds=round(manifest.seconds, 2),
            backup_resources_per_s=round(manifest.resources / manifest.seconds),
            backup_file_mb=round(mb, 1),
            writes_during_backup=written[0],
            restore_verify_seconds=round(found.seconds, 2),
            restore_resources_per_s=round(found.resources / found.seconds),
            extrapolated_1m_backup_minutes=round(manifest.seconds * 1e6 / manifest.resources / 60, 1),
            extrapolated_1m_restore_minutes=round(found.seconds * 1e6 / found.resources / 60, 1),
        )
    finally:
        cleanup()


def _trickle(base: str, stop: threading.Event, written: list[int]) -> None:
    with httpx.Client(base_url=base + "/fhir", timeout=10) as client:
        while not stop.is_set():
            if client.post("/Patient", content=orjson.dumps(patient(1)), headers=FHIR_JSON).status_code == 201:
                written[0] += 1
            time.sleep(0.02)


def _new_pg_database(url: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE DATABASE restored")
    return url.rsplit("/", 1)[0] + "/restored"


# --- replica lag and take-over ------------------------------------------------------------------------------
def replica(args: argparse.Namespace, workdir: Path) -> None:
    seed_store(f"sqlite:///{workdir / 'primary.db'}", args.seed_n)
    primary = serve(f"sqlite:///{workdir / 'primary.db'}", workdir / "primary.log").start()
    rep = Proc(
        ["replica", "--primary", primary.base, "--db", f"sqlite:///{workdir / 'replica.db'}"],
        free_port(),
        workdir / "replica.log",
    )
    started = time.monotonic()
    rep.start()
    try:
        head = httpx.get(primary.base + "/fhir/_changes", params={"_count": 1}).json()["head"]
        while httpx.get(rep.base + "/readyz").json()["replica"]["position"] < head:
            time.sleep(0.1)
        catch_up = time.monotonic() - started
        emit("replica_catch_up", versions=head, seconds=round(catch_up, 1), versions_per_s=round(head / catch_up))
        killed_at: list[float] = []

        def kill_primary() -> None:  # straight after the last write: some are still in the replication window
            primary.kill()
            killed_at.append(time.monotonic())

        result = asyncio.run(_replica_load(primary.base, rep.base, args.rate, args.seconds, args.bundle, kill_primary))
        acked: list[tuple[float, str]] = result.pop("acked")
        killed = killed_at[0]
        serve_ms = _until_served(rep.base, acked[0][1], killed)
        time.sleep(1.0)
        status = httpx.get(rep.base + "/readyz").json()["replica"]
        missing = [
            (t, rid) for t, rid in acked[-200:] if httpx.get(f"{rep.base}/fhir/Observation/{rid}").status_code != 200
        ]
        emit(
            "replica",
            **result,
            replica_apply_lag_p50=status.get("apply_lag_p50"),
            replica_apply_lag_p99=status.get("apply_lag_p99"),
            replica_serving_after_primary_death_ms=serve_ms,
            acknowledged_bundles_not_on_replica=len(missing),
            window_ms=round((killed - min(t for t, _ in missing)) * 1000) if missing else 0,
            replica_lag_header_after_death_s=status.get("lag_seconds"),
        )
    finally:
        rep.stop()
        primary.stop()


async def _replica_load(
    primary: str, replica_base: str, rate: int, seconds: float, bundle: int, when_written: Callable[[], None]
) -> dict[str, Any]:
    """Open-loop writes at `rate` resources/s (Bundles of `bundle`); a sample of writes is timed until visible."""
    import aiohttp

    lags: list[float] = []
    acked, offered = 0, 0
    acked_ids: list[tuple[float, str]] = []
    sample_every = 10
    async with aiohttp.ClientSession() as session:

        async def watch(rid: str, acked_at: float) -> None:
            while time.monotonic() - acked_at < 10:
                async with session.get(f"{replica_base}/fhir/Observation/{rid}") as r:
                    await r.read()
                    if r.status == 200:
                        lags.append(time.monotonic() - acked_at)
                        return
                await asyncio.sleep(0.01)

        async def write(n: int) -> None:
            nonlocal acked
            entries = [
                {"resource": observation(n + k), "request": {"method": "POST", "url": "Observation"}}
                for k in range(bundle)
            ]
            body = orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": entries})
            async with session.post(f"{primary}/fhir", data=body, headers=FHIR_JSON) as r:
                data = await r.read()
            if r.status == 200:
                acked += bundle
                rid = orjson.loads(data)["entry"][-1]["resource"]["id"]
                acked_ids.append((time.monotonic(), rid))
                if n // bundle % sample_every == 0:
                    watchers.append(asyncio.create_task(watch(rid, time.monotonic())))

        tasks, watchers, t0 = [], [], time.monotonic()
        for i in range(int(rate * seconds / bundle)):
            await asyncio.sleep(max(0.0, t0 + i * bundle / rate - time.monotonic()))
            tasks.append(asyncio.create_task(write(i * bundle)))
            offered += bundle
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
        when_written()
        await asyncio.gather(*watchers)
    return {
        "offered_writes_per_s": rate,
        "acknowledged_writes_per_s": round(acked / elapsed),
        "visibility_lag_p50_s": round(pct(lags, 0.5), 3),
        "visibility_lag_p99_s": round(pct(lags, 0.99), 3),
        "visibility_samples": len(lags),
        "acked": sorted(acked_ids),
    }


def _until_served(replica_base: str, rid: str, since: float, limit: float = 30.0) -> float | None:
    """Milliseconds from the primary's death until the replica answers a read of `rid`."""
    while rid and time.monotonic() - since < limit:
        try:
            if httpx.get(f"{replica_base}/fhir/Observation/{rid}", timeout=2).status_code == 200:
                return round((time.monotonic() - since) * 1000, 1)
        except httpx.HTTPError:
            pass
        time.sleep(0.005)
    return None


# --- overload ---------------------------------------------------------------------------------------------
def overload(args: argparse.Namespace, workdir: Path) -> None:
    db = f"sqlite:///{workdir / 'load.db'}"
    seed_store(db, 2000)
    gate = {
        "SHAREDCARE_MAX_IN_FLIGHT": str(args.in_flight),
        "SHAREDCARE_MAX_QUEUE": str(args.queue),
        "SHAREDCARE_QUEUE_TIMEOUT_MS": str(args.queue_timeout_ms),
    }
    modes = [("admission on", gate), ("admission off", {"SHAREDCARE_MAX_IN_FLIGHT": "100000"})]
    for label, env in modes[: 1 if args.only_on else 2]:
        proc = serve(db, workdir / f"{label}.log", **env).start()
        try:
            ids = httpx.get(proc.base + "/fhir/Patient", params={"_count": 200}).json()
            pids = [e["resource"]["id"] for e in ids.get("entry", [])]
            capacity = asyncio.run(_closed_loop(proc.base, pids, 8, 6.0))  # within the gate: nothing refused
            rss_before = rss_mb(proc.popen.pid)  # type: ignore[union-attr]
            result = asyncio.run(_open_loop(proc, pids, 2 * capacity, args.seconds))
            emit(
                "overload",
                mode=label,
                gate=env,
                capacity_req_per_s=round(capacity),
                rss_before_mb=round(rss_before),
                **result,
            )
        finally:
            proc.stop()


def _request(session: Any, base: str, pids: list[str], n: int) -> Any:
    if n % 5 == 0 and not READ_ONLY:
        return session.post(f"{base}/fhir/Observation", data=orjson.dumps(observation(n)), headers=FHIR_JSON)
    if n % 5 == 1:
        return session.get(f"{base}/fhir/Patient", params={"family": f"Crash{n % 50}", "_count": "10"})
    return session.get(f"{base}/fhir/Patient/{random.choice(pids)}")


async def _closed_loop(base: str, pids: list[str], clients: int, seconds: float) -> float:
    import aiohttp

    done = 0
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + seconds

        async def client(k: int) -> None:
            nonlocal done
            n = k
            while time.monotonic() < deadline:
                async with _request(session, base, pids, n) as r:
                    await r.read()
                    done += r.status < 400
                n += clients

        await asyncio.gather(*(client(k) for k in range(clients)))
    return done / seconds


async def _open_loop(proc: Proc, pids: list[str], rate: float, seconds: float) -> dict[str, Any]:
    import aiohttp

    ok_lat: list[float] = []
    rejected_lat: list[float] = []
    errors, rss, anon = 0, [], []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(n: int) -> None:
            nonlocal errors
            started = time.monotonic()
            try:
                async with _request(session, proc.base, pids, n) as r:
                    await r.read()
                    (ok_lat if r.status < 500 else rejected_lat).append(time.monotonic() - started)
            except (TimeoutError, aiohttp.ClientError):
                errors += 1

        async def sample_rss() -> None:
            while True:
                rss.append(rss_mb(proc.popen.pid))  # type: ignore[union-attr]
                anon.append(rss_mb(proc.popen.pid, "RssAnon"))  # type: ignore[union-attr]
                await asyncio.sleep(0.5)

        sampler = asyncio.create_task(sample_rss())
        tasks, t0 = [], time.monotonic()
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, t0 + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - t0
        sampler.cancel()
    total = len(ok_lat) + len(rejected_lat) + errors
    return {
        "offered_req_per_s": round(rate),
        "served_req_per_s": round(len(ok_lat) / elapsed),
        "rejected_fraction": round(len(rejected_lat) / max(total, 1), 3),
        "client_errors_or_timeouts": errors,
        "admitted_p50_ms": round(pct(ok_lat, 0.5) * 1000, 1),
        "admitted_p99_ms": round(pct(ok_lat, 0.99) * 1000, 1),
        "admitted_max_ms": round(max(ok_lat, default=0) * 1000, 1),
        "rejected_p99_ms": round(pct(rejected_lat, 0.99) * 1000, 1),
        "rss_max_mb": round(max(rss, default=0)),
        "rss_end_mb": round(rss[-1] if rss else 0),
        "rss_samples_mb": [round(x) for x in rss[:: max(1, len(rss) // 8)]],
        "heap_samples_mb": [round(x) for x in anon[:: max(1, len(anon) // 8)]],
        "mean_ms": round(statistics.fmean(ok_lat) * 1000, 1) if ok_lat else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("crash")
    c.add_argument("--cycles", type=int, default=20)
    c.add_argument("--writers", type=int, default=4)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--backend", default="sqlite")
    b = sub.add_parser("backup")
    b.add_argument("--n", type=int, default=50000)
    b.add_argument("--backend", default="sqlite")
    r = sub.add_parser("replica")
    r.add_argument("--rate", type=int, default=500)
    r.add_argument("--seconds", type=float, default=20)
    r.add_argument("--bundle", type=int, default=10)
    r.add_argument("--seed-n", type=int, default=5000, help="resources on the primary before the replica starts")
    o = sub.add_parser("overload")
    o.add_argument("--seconds", type=float, default=15)
    o.add_argument("--in-flight", type=int, default=Settings().max_in_flight)
    o.add_argument("--queue", type=int, default=Settings().max_queue)
    o.add_argument("--queue-timeout-ms", type=int, default=Settings().queue_timeout_ms)
    o.add_argument("--only-on", action="store_true", help="skip the comparison run without admission control")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sharedcare-bench-") as tmp:
        {"crash": crash, "backup": backup_restore, "replica": replica, "overload": overload}[args.what](args, Path(tmp))


if __name__ == "__main__":
    main()
