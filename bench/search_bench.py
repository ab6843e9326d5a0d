"""Search benchmark: server-side latency of typical searches at 100k and 1M resources, on SQLite and PostgreSQL.

Data: the Synthea smart-on-fhir 2019 patient bundles (../shared/data/synthea), each resource indexed once with the
real `Indexer`, then replicated with fresh ids (every UUID in a bundle is rewritten per copy, in the stored bytes
and in the index rows) until the target size is reached. Rows are written in bulk straight into the store's
tables (the same rows `SqlTxn.save` writes, without its per-resource round trips), then the database is analysed.

Latency is server time: `Router.handle(FhirRequest)` in process (parse, SQL, Bundle assembly), no HTTP and
without the access-control/audit boundary in front of the router.

    .venv/bin/python bench/search_bench.py --db sqlite:////tmp/bench.db --sizes 100000,1000000
    .venv/bin/python bench/search_bench.py --db postgresql://postgres@127.0.0.1:5432/bench --sizes 100000

Not a timed test: it prints a table (and --json writes the figures).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import orjson

from sharedcare.app import Server, build
from sharedcare.fhir.index_rows import IndexRows
from sharedcare.settings import Settings
from sharedcare.store.schema import INDEX_TABLES
from sharedcare.types import FhirRequest

ROOT = Path(__file__).resolve().parents[1]
DATA = (
    Path(os.environ.get("SHAREDCARE_SHARED") or ROOT.parent / "shared") / "data" / "synthea" / "smart-on-fhir-r4-2019"
)
UUID_RE = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUID_STR_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ROW_TABLES = {
    "strings": "idx_string",
    "tokens": "idx_token",
    "references": "idx_reference",
    "dates": "idx_date",
    "numbers": "idx_number",
    "quantities": "idx_quantity",
    "uris": "idx_uri",
}
LAST_UPDATED = "2024-01-01T00:00:00.000000Z"
Rows = dict[str, list[tuple[Any, ...]]]  # table -> row values after (rid, type)


# ---------------------------------------------------------------------------------------------- data


class Template:
    """One Synthea bundle, indexed once: per resource its type, id, bytes and index rows."""

    def __init__(self, items: list[tuple[str, str, bytes, Rows]], ids: set[str]) -> None:
        self.items, self.ids = items, ids


def templates(server: Server, limit_files: int | None = None) -> Iterator[Template]:
    indexer = server.repo.indexer
    files = sorted(p for p in DATA.glob("*.json.gz") if not p.name.startswith(("hospital", "practitioner")))
    for path in files[:limit_files]:
        with gzip.open(path) as f:
            text = f.read().decode()
        fresh = {i: str(uuid.uuid4()) for i in re.findall(r'"id": "([0-9a-f-]{36})"', text)}
        text = UUID_STR_RE.sub(lambda m, f=fresh: f.get(m.group(0), m.group(0)), text)
        bundle = json.loads(text)
        full = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"]}
        text = re.sub(r'"(urn:uuid:[0-9a-f-]{36})"', lambda m, f=full: json.dumps(f.get(m.group(1), m.group(1))), text)
        items = []
        ids: set[str] = set()
        for entry in json.loads(text)["entry"]:
            res = entry["resource"]
            res["meta"] = {"versionId": "1", "lastUpdated": LAST_UPDATED, **res.get("meta", {})}
            ids.add(res["id"])
            items.append((res["resourceType"], res["id"], orjson.dumps(res), flatten(indexer.index(res))))
        yield Template(items, ids)


def copy_ids(ids: set[str], n: int) -> dict[str, str]:
    """Copy n of a bundle: each UUID gets a new first group (the copy number), so copies never collide."""
    return {i: f"{n:08x}{i[8:]}" for i in ids} if n else {i: i for i in ids}


def flatten(rows: IndexRows) -> Rows:
    """Index rows as plain tuples per table (without rid and type), as they are inserted."""
    out: Rows = {}
    for attr, table in ROW_TABLES.items():
        values = getattr(rows, attr)
        if values:
            out[table] = [tuple(getattr(r, f.name) for f in fields(r)) for r in values]
    if rows.composites:
        out["idx_composite"] = [(c.param, *(*c.components[:3], None, None, None)[:3]) for c in rows.composites]
    if rows.compartments:
        out["compartment"] = [(c.comp_type, c.comp_id) for c in set(rows.compartments)]
    if rows.text:
        out["fulltext_rows"] = [(rows.text,)]
    return out


def remap_rows(rows: Rows, mapping: dict[str, str]) -> Rows:
    def sub(v: Any) -> Any:
        if isinstance(v, str) and len(v) >= 36 and UUID_STR_RE.search(v):
            return UUID_STR_RE.sub(lambda m: mapping.get(m.group(0), m.group(0)), v)
        return v

    return {table: [tuple(sub(v) for v in row) for row in values] for table, values in rows.items()}


# ---------------------------------------------------------------------------------------------- loading


class BulkLoader:
    """Writes resources, versions and index rows in batches, the way `SqlTxn.save` lays them out."""

    def __init__(self, server: Server) -> None:
        self.store = server.store
        self.d = self.store.dialect
        with self.store.reading() as cur:
            cur.execute("SELECT COALESCE(MAX(rid), 0) FROM resources")
            self.rid = int(cur.fetchone()[0])
            cur.execute("SELECT COALESCE(MAX(seq), 0) FROM versions")
            self.seq = int(cur.fetchone()[0])
        self.count = 0
        self.batch: dict[str, list[tuple]] = {}

    def add(self, rtype: str, id: str, body: bytes, rows: Rows) -> None:
        self.rid += 1
        self.seq += 1
        rid, seq = self.rid, self.seq
        b = self.batch
        b.setdefault("resources", []).append((rid, rtype, id, 1, seq, LAST_UPDATED, False))
        b.setdefault("versions", []).append((seq, rid, rtype, id, 1, LAST_UPDATED, "POST", body))
        for table, values in rows.items():
            b.setdefault(table, []).extend((rid, rtype, *v) for v in values)
        self.count += 1
        if len(b["resources"]) >= 5000:
            self.flush()

    COLUMNS = {
        "resources": "rid, type, id, version, seq, last_updated, deleted",
        "versions": "seq, rid, type, id, version, last_updated, method, body",
        "idx_composite": "rid, type, param, c1, c2, c3",
        "compartment": "rid, type, comp_type, comp_id",
        "fulltext_rows": "rid, type, content",
        **{t: "rid, type, " + ", ".join(cols) for t, (cols, _) in INDEX_TABLES.items() if t != "idx_composite"},
    }

    def flush(self) -> None:
        if not self.batch:
            return
        with self.store.writing() as cur:
            for table in ("resources", "versions", *(t for t in self.batch if t not in ("resources", "versions"))):
                rows = self.batch.get(table)
                if not rows:
                    continue
                cols = self.COLUMNS[table]
                if self.d.name == "postgresql":
                    with cur.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(rows[0]))
                    cur.executemany(self.d.sql(f"INSERT INTO {table} ({cols}) VALUES ({marks})"), rows)
        self.batch = {}

    def finish(self) -> None:
        self.flush()
        with self.store.writing() as cur:
            if self.d.name == "postgresql":
                for table, key in (("resources", "rid"), ("versions", "seq")):
                    top = f"(SELECT MAX({key}) FROM {table})"
                    cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', '{key}'), {top})")
        if self.d.name == "postgresql":
            conn = self.store.pool.getconn()  # type: ignore[attr-defined]
            try:
                conn.autocommit = True
                conn.execute("VACUUM ANALYZE")
            finally:
                conn.autocommit = False
                self.store.pool.putconn(conn)  # type: ignore[attr-defined]
        else:
            with self.store.writing() as cur:
                cur.execute("ANALYZE")


def load_to(server: Server, target: int, tpls: list[Template], state: dict[str, int]) -> None:
    """Load bundle copies until `target` resources are stored; `state` remembers where the last call stopped."""
    loader = BulkLoader(server)
    have, copy, index = state.get("loaded", 0), state.get("copy", 0), state.get("index", 0)
    t0 = time.time()
    while have < target:
        tpl = tpls[index]
        mapping = copy_ids(tpl.ids, copy)
        for rtype, id, body, rows in tpl.items:
            if copy:
                body = UUID_RE.sub(
                    lambda m, ids=mapping: ids.get(m.group(0).decode(), m.group(0).decode()).encode(), body
                )
                rows = remap_rows(rows, mapping)
            loader.add(rtype, mapping[id], body, rows)
            have += 1
        index += 1
        if index == len(tpls):
            index, copy = 0, copy + 1
    loader.finish()
    state.update(loaded=have, copy=copy, index=index)
    print(f"loaded {have:,} resources ({loader.count:,} now) in {time.time() - t0:.0f}s", file=sys.stderr)


# ---------------------------------------------------------------------------------------------- queries


def sample_values(server: Server) -> dict[str, list[str]]:
    with server.store.reading() as cur:
        cur.execute("SELECT id FROM resources WHERE type = 'Patient' ORDER BY rid LIMIT 2000")
        patients = [r[0] for r in cur.fetchall()]
        cur.execute("SELECT value FROM idx_string WHERE type = 'Patient' AND param = 'family' ORDER BY rid LIMIT 2000")
        families = [r[0] for r in cur.fetchall()]
    return {"patient": patients, "family": families}


QUERIES: list[tuple[str, str, Callable[[random.Random, dict[str, list[str]]], str]]] = [
    (
        "clinical: patient+category+date",
        "Observation",
        lambda r, v: f"patient={r.choice(v['patient'])}&category=vital-signs&date=ge2014-01-01&_count=50",
    ),
    (
        "clinical: patient+code+date range",
        "Observation",
        lambda r, v: (
            f"patient={r.choice(v['patient'])}&code=http://loinc.org|29463-7&date=ge2010-01-01"
            "&date=lt2019-01-01&_count=50"
        ),
    ),
    (
        "clinical: patient+category, _sort=-date",
        "Observation",
        lambda r, v: f"patient={r.choice(v['patient'])}&category=laboratory&_sort=-date&_count=50",
    ),
    (
        "one-level chain: subject:Patient.family",
        "Observation",
        lambda r, v: f"subject:Patient.family={r.choice(v['family'])}&_count=50",
    ),
    (
        "chain + code",
        "Observation",
        lambda r, v: f"subject:Patient.family={r.choice(v['family'])}&code=http://loinc.org|8302-2&_count=50",
    ),
    ("string: Patient?family", "Patient", lambda r, v: f"family={r.choice(v['family'])[:4]}&_count=50"),
    ("_has: patients with a condition", "Patient", lambda r, v: "_has:Condition:patient:code=44054006&_count=50"),
    ("_summary=count: Observation category", "Observation", lambda r, v: "category=vital-signs&_summary=count"),
    ("_summary=count: all Observations", "Observation", lambda r, v: "_summary=count"),
    ("_summary=count: every resource (system)", "", lambda r, v: "_summary=count"),
]


def run_queries(server: Server, repeats: int, seed: int = 7) -> list[dict[str, Any]]:
    values = sample_values(server)
    rng = random.Random(seed)
    results = []
    for label, rtype, make in QUERIES:
        times: list[float] = []
        hits: list[int] = []
        total = None
        n = repeats if "_summary=count" not in label else max(5, repeats // 20)
        for k in range(n + 3):
            query = make(rng, values)
            req = FhirRequest(
                "GET",
                [rtype] if rtype else [],
                [tuple(p.split("=", 1)) for p in query.split("&")],
                base_url="http://bench/fhir",
            )
            t = time.perf_counter()
            resp = server.router.handle(req)  # the search engine, without the access/audit boundary
            dt = time.perf_counter() - t
            assert resp.status == 200, resp.body
            if k >= 3:  # warm-up runs are not counted
                times.append(dt * 1000)
            body = orjson.loads(resp.body or b"{}")
            hits.append(len(body.get("entry", [])))
            if "_summary=count" in label:
                total = body.get("total")
        times.sort()
        results.append(
            {
                "query": label,
                "n": len(times),
                "p50_ms": round(statistics.median(times), 2),
                "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                "total": total,
                "hits": round(statistics.mean(hits), 1),
            }
        )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--files", type=int, default=None, help="use only the first N Synthea bundles")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    server = build(Settings(db=args.db, sqlite_synchronous="OFF", auth_required=False))
    sizes = [int(s) for s in args.sizes.split(",")]
    have = server.store.count()
    tpls: list[Template] = []
    if have < max(sizes):
        t = time.time()
        tpls = list(templates(server, args.files))
        print(
            f"indexed {sum(len(t.items) for t in tpls):,} template resources in {time.time() - t:.0f}s", file=sys.stderr
        )
    state: dict[str, int] = {}
    report = []
    for size in sizes:
        if have >= size:  # measured again on an existing database (no more copies to add)
            print(f"reusing the {have:,} resources already loaded", file=sys.stderr)
            size = have
        else:
            if have:
                raise SystemExit(f"{args.db} holds {have:,} resources: start from an empty database")
            load_to(server, size, tpls, state)
        rows = run_queries(server, args.repeats)
        report.append({"size": size, "db": args.db.split(":")[0], "queries": rows})
        print(f"\n{args.db.split(':')[0]} — {size:,} resources")
        print(f"{'query':45} {'p50 ms':>8} {'p99 ms':>8} {'hits':>6} {'total':>10}")
        for r in rows:
            total = r["total"] if r["total"] is not None else ""
            print(f"{r['query']:45} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['hits']:6} {total:>10}")
        sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    server.close()


if __name__ == "__main__":
    main()
