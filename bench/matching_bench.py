"""Matching quality and cost against ground truth.

    .venv/bin/python bench/matching_bench.py --generate 50000 --seed 5        # the region generator, 50k people
    .venv/bin/python bench/matching_bench.py --region /tmp/region             # an existing `sharedcare generate` output
    .venv/bin/python bench/matching_bench.py --synthetic 20000                # bench/matching_synth.py instead
    .venv/bin/python bench/matching_bench.py --region R --missing-nhs 0.1 --typos 0.05 --skip-batch \
        --preload 75000 --store-records 5000                                  # cost per Patient into a full store

Reports, on pairs of source records (two records of one person = one true pair):
1. batch: link precision and recall, review-queue size, time of the pure batch match (`link_all`);
2. store: --store-records Patients written one by one through the repository on SQLite with matching on (the
   write hook), the hook's cost per Patient (mean, median, p95), and precision/recall of that incremental linking;
   then a full re-link of the store (`relink`) timed, and extrapolated linearly to 100k records. With --preload N,
   N other Patients are bulk-loaded and re-linked first and the timed ones are a random sample arriving at a store
   that already holds the region (the realistic case for one incoming Patient);
3. --bulk-relink: every Patient bulk-loaded with matching off, then a full re-link from nothing, timed.

--missing-nhs and --typos bring the region up to the issue's error rates (10 % without NHS number, 5 % typos):
with --generate the generator makes them (`sharedcare generate --missing-nhs --typos`); a --region generated with
them is used as it is; for any other region `corrupt` adds them afterwards.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sharedcare.matching.features import extract  # noqa: E402
from sharedcare.matching.relink import link_all, relink  # noqa: E402
from sharedcare.matching.weights import load_weights  # noqa: E402


def load_region(root: Path) -> tuple[list[dict], dict[str, str]]:
    patients = []
    for path in sorted(root.glob("ndjson/*/Patient.ndjson")):
        with open(path, "rb") as f:
            patients += [orjson.loads(line) for line in f if line.strip()]
    with open(root / "ground_truth.csv", newline="") as f:
        truth = {row["patient_id"]: row["person_key"] for row in csv.DictReader(f)}
    return patients, truth


def corrupt(patients: list[dict], missing: float, typos: float, seed: int) -> str:
    """Bring a region up to the issue's error rates: `missing` of records without an NHS number (removing more
    numbers at random), and `typos` of records with one typo (a first name or surname letter, a date digit or a
    day/month swap, an NHS number digit with the check digit recomputed, or a postcode letter). A mistyped NHS
    number loses its verified status: a PDS-traced number is the right one. Ground truth is unchanged."""
    import random

    from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM

    rng = random.Random(seed)
    has = [p for p in patients if any(i.get("system") == NHS_NUMBER_SYSTEM for i in p.get("identifier", []))]
    without = 1 - len(has) / len(patients)
    drop = max(0.0, (missing - without) / (1 - without)) if without < 1 else 0.0
    dropped = typoed = 0
    for p in has:
        if rng.random() < drop:
            p["identifier"] = [i for i in p["identifier"] if i.get("system") != NHS_NUMBER_SYSTEM]
            dropped += 1
    for p in patients:
        if rng.random() < typos:
            _typo(p, rng)
            typoed += 1
    now = sum(1 for p in patients if not any(i.get("system") == NHS_NUMBER_SYSTEM for i in p.get("identifier", [])))
    return f"corrupted: {now / len(patients):.1%} without NHS number ({dropped:,} removed), {typoed:,} typos"


def _typo(p: dict, rng) -> None:  # type: ignore[no-untyped-def]
    from sharedcare.generate.nhs_numbers import check_digit

    def letter(text: str) -> str:
        i = rng.randrange(len(text))
        return text[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz") + text[i + 1 :] if len(text) > 1 else text

    what = rng.choice(["given", "family", "dob", "nhs", "postcode"])
    name = (p.get("name") or [{}])[0]
    nhs = next((i for i in p.get("identifier", []) if i.get("system") == "https://fhir.nhs.uk/Id/nhs-number"), None)
    if what == "given" and name.get("given"):
        name["given"][0] = letter(name["given"][0])
    elif what == "family" and name.get("family"):
        name["family"] = letter(name["family"])
    elif what == "dob" and p.get("birthDate"):
        y, m, d = p["birthDate"].split("-")
        if rng.random() < 0.5 and int(d) <= 12:
            p["birthDate"] = f"{y}-{d}-{m}"
        else:
            p["birthDate"] = f"{y[:3]}{(int(y[3]) + 1) % 10}-{m}-{d}"
    elif what == "nhs" and nhs:
        for _ in range(20):
            stem = list(nhs["value"][:9])
            k = rng.randrange(3, 9)
            stem[k] = str((int(stem[k]) + rng.randrange(1, 10)) % 10)
            check = check_digit("".join(stem))
            if check is not None:
                nhs["value"] = "".join(stem) + str(check)
                nhs.pop("extension", None)
                break
    elif what == "postcode":
        for addr in p.get("address", []):
            if addr.get("postalCode"):
                addr["postalCode"] = addr["postalCode"][:-1] + rng.choice("ABDEFGHJLNPQRSTUWXYZ")
                break


def true_pairs(ids: Sequence[str], truth: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for pid in ids:
        groups[truth[pid]].append(pid)
    return _pairs(groups.values())


def _pairs(groups) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    out = set()
    for members in groups:
        members = sorted(members)
        out.update((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
    return out


def quality(predicted: dict[str, str], truth: dict[str, str]) -> tuple[float, float, int, int]:
    """(precision, recall, predicted pairs, true pairs) of a patient -> group assignment."""
    groups: dict[str, list[str]] = defaultdict(list)
    for pid, group in predicted.items():
        groups[group].append(pid)
    pred = _pairs(groups.values())
    true = true_pairs(list(predicted), truth)
    tp = len(pred & true)
    return (tp / len(pred) if pred else 1.0), (tp / len(true) if true else 1.0), len(pred), len(true)


def across_identities(predicted: dict[str, str], truth: dict[str, str]) -> str:
    """How many new identities (person key `P...-2`, adoption or gender reassignment) the region holds, and how
    many predicted groups join one to its first identity: those must never be linked."""
    groups: dict[str, set[str]] = defaultdict(set)
    for pid, group in predicted.items():
        groups[group].add(truth[pid])
    new = {k for k in truth.values() if k.endswith("-2")}
    joined = sum(1 for keys in groups.values() for k in keys if k.endswith("-2") and k.removesuffix("-2") in keys)
    return f"new identities {len(new):,}, linked to their first identity {joined} (must be 0)"


def batch(patients: list[dict], truth: dict[str, str]) -> None:
    weights = load_weights()
    start = time.perf_counter()
    records = [extract(p) for p in patients]
    result, pairs = link_all(records, weights)
    seconds = time.perf_counter() - start
    predicted = {r.patient_id: str(result.labels[i]) for i, r in enumerate(records)}
    p, r, npred, ntrue = quality(predicted, truth)
    queue = len(result.review)
    print(f"batch: {len(records):,} records, {pairs:,} candidate pairs, {seconds:.1f}s")
    print(f"  precision {p:.5f}  recall {r:.5f}  ({npred:,} linked pairs, {ntrue:,} true pairs)")
    print(f"  review queue {queue:,} items = {queue / len(records):.2%} of records")
    print(f"  {across_identities(predicted, truth)}")
    _explain_errors(records, result.labels, truth, weights)


def _explain_errors(records, labels, truth, weights, show: int = 6) -> None:  # type: ignore[no-untyped-def]
    from sharedcare.matching.compare import describe
    from sharedcare.matching.rules import decide

    by_label: dict[int, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    false_links = [
        (i, j)
        for m in by_label.values()
        for x, i in enumerate(m)
        for j in m[x + 1 :]
        if truth[records[i].patient_id] != truth[records[j].patient_id]
    ]
    for i, j in false_links[:show]:
        d = decide(records[i], records[j], weights)
        print(f"  false link: {d.outcome} {d.weight:.1f} {describe(d.vector)}")


def store(patients: list[dict], truth: dict[str, str], limit: int, preload: int = 0) -> None:
    """Write `limit` Patients one at a time through the repository with matching on and time the matcher.

    With `preload`, that many other Patients are bulk-loaded first (matching off) and re-linked, so the timed
    Patients arrive at a store that already holds a region (the incoming ones are a seeded random sample)."""
    from sharedcare.app import build
    from sharedcare.settings import Settings

    subset, before = patients[:limit], []
    if preload:
        import random

        shuffled = list(patients)
        random.Random(17).shuffle(shuffled)
        subset, before = shuffled[:limit], shuffled[limit : limit + preload]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(db=f"sqlite:///{tmp}/bench.db", validate_writes=False, sqlite_synchronous="NORMAL")
        server = build(settings)
        position = _hook_position(server)
        matcher_hook = server.repo.write_hooks[position]
        matcher = _service(matcher_hook)
        if before:
            _preload(server, position, matcher, before, Path(tmp))
        costs: list[float] = []

        def timed(txn, stored, resource) -> None:  # type: ignore[no-untyped-def]
            if stored.type != "Patient":
                return matcher_hook(txn, stored, resource)
            writes.append(0.0)
            t = time.perf_counter()
            matcher_hook(txn, stored, resource)
            costs.append(time.perf_counter() - t)
            return None

        server.repo.write_hooks[position] = timed
        writes = _time_resource_writes(matcher)
        whole: list[float] = []
        start = time.perf_counter()
        for p in subset:
            t = time.perf_counter()
            server.repo.update("Patient", p["id"], p)
            whole.append(time.perf_counter() - t)
        load = time.perf_counter() - start
        ms = sorted(c * 1000 for c in costs)
        decision = sorted((c - w) * 1000 for c, w in zip(costs, writes, strict=True))
        print(
            f"store (SQLite): {len(subset):,} Patients written one at a time in {load:.1f}s"
            f"{f' into a store already holding {len(before):,}' if before else ''} (load average {_load()})"
        )
        print(
            f"  matching hook per Patient, all in: mean {statistics.mean(ms):.2f} ms, median {ms[len(ms) // 2]:.2f} "
            f"ms, p95 {ms[int(len(ms) * 0.95)]:.2f} ms"
        )
        print(
            f"  of which the match decision (features, blocking, candidates, scoring, MPI tables): mean "
            f"{statistics.mean(decision):.2f} ms, median {decision[len(decision) // 2]:.2f} ms, p95 "
            f"{decision[int(len(decision) * 0.95)]:.2f} ms; the rest writes Person/Task resources through the "
            "normal FHIR write path (stamp, index, other write hooks)"
        )
        whole_ms = statistics.mean(whole) * 1000
        print(f"  the whole Patient write (repository update, commit included): mean {whole_ms:.2f} ms")
        incremental = _assignment(matcher)
        p, r, _, _ = quality(incremental, truth)
        with matcher.mpi.reading() as sql:
            queue = sql.count_open_reviews()
        n = len(incremental)
        print(f"  incremental: precision {p:.5f} recall {r:.5f} review queue {queue:,} ({queue / n:.2%} of {n:,})")
        print(f"  {across_identities(incremental, truth)}")
        server.repo.write_hooks[position] = matcher_hook
        report = relink(matcher)
        total = sum(report.timings.values())
        print(
            f"  full re-link: {report.records:,} records in {total:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in report.timings.items())}); "
            f"{report.persons_written:,} Persons rewritten, {report.reviews_opened} reviews opened, "
            f"{report.reviews_cancelled} cancelled (load average {_load()})"
        )
        print(f"  extrapolated to 100,000 records: {total * 100_000 / max(report.records, 1):.0f}s (linear)")
        p, r, _, _ = quality(_assignment(matcher), truth)
        with matcher.mpi.reading() as sql:
            queue = sql.count_open_reviews()
        print(f"  after re-link: precision {p:.5f} recall {r:.5f} review queue {queue:,} ({queue / n:.2%} of {n:,})")
        print(f"  {across_identities(_assignment(matcher), truth)}")
        server.close()


def _preload(server, position: int, matcher, patients: list[dict], tmp: Path) -> None:  # type: ignore[no-untyped-def]
    """Bulk-load `patients` with the matcher's hook out of the way, then re-link them into the MPI."""
    from sharedcare.bulk.loader import ImportOptions
    from sharedcare.bulk.service import loader_for
    from sharedcare.bulk.sources import discover

    path = tmp / "preload" / "Patient.ndjson"
    path.parent.mkdir()
    path.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in patients))
    hook = server.repo.write_hooks.pop(position)
    try:
        start = time.perf_counter()
        sources, _ = discover([path])
        loader_for(server, ImportOptions()).run(sources)
        loaded = time.perf_counter() - start
    finally:
        server.repo.write_hooks.insert(position, hook)
    report = relink(matcher)
    print(
        f"preload: {len(patients):,} Patients bulk-loaded in {loaded:.1f}s, re-linked in "
        f"{sum(report.timings.values()):.1f}s"
    )


def _load() -> str:
    import os

    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _time_resource_writes(matcher) -> list[float]:  # type: ignore[no-untyped-def]
    """Per Patient, the time the matcher spent writing FHIR resources (Person, Task) rather than deciding."""
    spent: list[float] = []
    inner = matcher.repo.save_in

    def save_in(txn, type, id, resource, version, method):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return inner(txn, type, id, resource, version, method)
        finally:
            if type != "Patient" and spent:
                spent[-1] += time.perf_counter() - t

    matcher.repo.save_in = save_in
    return spent


def bulk_relink(patients: list[dict]) -> None:
    """The worst case for a re-link: every Patient bulk-loaded with matching off, then linked from nothing."""
    from sharedcare.app import build
    from sharedcare.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        server = build(Settings(db=f"sqlite:///{tmp}/bulk.db", validate_writes=False, sqlite_synchronous="NORMAL"))
        position = _hook_position(server)
        matcher = _service(server.repo.write_hooks[position])
        path = Path(tmp) / "all" / "Patient.ndjson"
        path.parent.mkdir()
        path.write_bytes(b"".join(orjson.dumps(p) + b"\n" for p in patients))
        from sharedcare.bulk.loader import ImportOptions
        from sharedcare.bulk.service import loader_for
        from sharedcare.bulk.sources import discover

        hook = server.repo.write_hooks.pop(position)
        start = time.perf_counter()
        stats = loader_for(server, ImportOptions()).run(discover([path])[0])
        print(f"bulk load with matching off: {stats.written:,} Patients in {time.perf_counter() - start:.1f}s")
        server.repo.write_hooks.insert(position, hook)
        report = relink(matcher)
        total = sum(report.timings.values())
        print(
            f"  full re-link from nothing: {report.records:,} records in {total:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in report.timings.items())}); "
            f"{report.persons_written:,} Person resources written, {report.reviews_opened} reviews opened "
            f"(load average {_load()})"
        )
        print(f"  extrapolated to 100,000 records: {total * 100_000 / max(report.records, 1):.0f}s (linear)")
        server.close()


def _hook_position(server) -> int:  # type: ignore[no-untyped-def]
    from sharedcare.matching.service import MatchService

    hooks = server.repo.write_hooks
    return next(i for i, h in enumerate(hooks) if isinstance(_service(h), MatchService))


def _service(hook):  # type: ignore[no-untyped-def]
    """The MatchService behind the matcher's write hook (a MatchHook object, or a bound method before it)."""
    return getattr(hook, "service", None) or getattr(hook, "__self__", None)


def _assignment(matcher) -> dict[str, str]:  # type: ignore[no-untyped-def]
    with matcher.mpi.reading() as sql:
        return {pid: person for pid, person, _, _ in sql.all_records()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--region", type=Path, help="a `sharedcare generate` output directory")
    ap.add_argument("--generate", type=int, default=0, help="generate a region of this many people first")
    ap.add_argument("--synthetic", type=int, default=0, help="use bench/matching_synth.py with this many people")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--store-records", type=int, default=5000, help="Patients to load through the store")
    ap.add_argument("--preload", type=int, default=0, help="bulk-load this many other Patients before timing")
    ap.add_argument("--skip-batch", action="store_true")
    ap.add_argument("--bulk-relink", action="store_true", help="bulk-load every Patient unmatched, then re-link")
    ap.add_argument("--missing-nhs", type=float, default=0.0, help="raise the share without NHS number to this")
    ap.add_argument("--typos", type=float, default=0.0, help="add one typo to this share of records")
    args = ap.parse_args()
    root = None
    if args.synthetic:
        from matching_synth import region

        patients, truth = region(args.synthetic, seed=args.seed)
    else:
        root = args.region
        if args.generate:
            from sharedcare.generate.region import RegionConfig, generate_region

            root = root or Path(tempfile.mkdtemp()) / "region"
            config = RegionConfig(
                patients=args.generate,
                seed=args.seed,
                out=root,
                ndjson=True,
                bundles=False,
                missing_nhs=args.missing_nhs or None,
                typos=args.typos,
            )
            generate_region(config)
        patients, truth = load_region(root)
    print(f"{len(patients):,} source Patients of {len(set(truth.values())):,} people")
    made = orjson.loads((root / "manifest.json").read_bytes()).get("errors") if root else None
    if made:
        print(f"the generator made the error rates: {made}")
    elif args.missing_nhs or args.typos:
        print(corrupt(patients, args.missing_nhs, args.typos, args.seed))
    if not args.skip_batch:
        batch(patients, truth)
    if args.store_records:
        store(patients, truth, args.store_records, args.preload)
    if args.bulk_relink:
        bulk_relink(patients)


if __name__ == "__main__":
    main()
