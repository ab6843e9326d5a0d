"""Estimate the match weights sharedcare ships (`src/sharedcare/matching/weights.json`) from unlabelled records.

    .venv/bin/python tools/estimate_match_weights.py --patients region/*.ndjson [--out PATH]
    .venv/bin/python tools/estimate_match_weights.py --synthetic 20000          # bench/matching_synth.py data

u probabilities are counted on random record pairs; m probabilities and the prior are estimated by EM on the pairs
blocking proposes (`sharedcare.matching.em`). The EM is our own rather than Splink's so that the comparison levels
estimated are exactly the ones the server computes (`sharedcare.matching.compare`), with no second definition in
SQL to drift, and without shipping DuckDB. Thresholds are set from the estimated posterior: link at P(match) >=
--upper-p, review from --lower-p; the server's settings can override them.
"""

from __future__ import annotations

import argparse
import glob
import math
import random
import sys
import time
from collections import Counter
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from sharedcare.matching.blocking import blocking_keys, key_cap  # noqa: E402
from sharedcare.matching.compare import FIELDS, LEVELS, compare  # noqa: E402
from sharedcare.matching.em import (  # noqa: E402
    NHS,
    combine_sessions,
    estimate_m,
    estimate_prior,
    estimate_u,
    m_from_nhs_labels,
    masked,
    nhs_levels,
)
from sharedcare.matching.features import MatchRecord, extract  # noqa: E402
from sharedcare.matching.relink import candidate_pairs  # noqa: E402

# EM sessions: blocking-key prefix -> the fields that rule makes agree (masked in that session)
SESSIONS = {"d": frozenset({"dob", "sex"}), "s": frozenset({"given", "family"})}

OUT = ROOT / "src" / "sharedcare" / "matching" / "weights.json"


def load_patients(patterns: list[str]) -> list[dict]:
    out = []
    for pattern in patterns:
        for path in sorted(glob.glob(pattern, recursive=True)):
            with open(path, "rb") as f:
                for line in f:
                    if line.strip():
                        resource = orjson.loads(line)
                        if resource.get("resourceType") == "Patient":
                            out.append(resource)
    return out


def rule_pairs(records: list[MatchRecord], prefix: str) -> list[int]:
    """Pairs (i * n + j) that share a blocking key of one rule."""
    blocks: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        for key in blocking_keys(r):
            if key.startswith(prefix + ":"):
                blocks.setdefault(key, []).append(i)
    n, pairs = len(records), set()
    for key, members in blocks.items():
        if 2 <= len(members) <= key_cap(key):
            pairs.update(i * n + j for x, i in enumerate(members) for j in members[x + 1 :])
    return sorted(pairs)


def sample(pairs: list[int], k: int, rng: random.Random) -> list[int]:
    return pairs if len(pairs) <= k else rng.sample(pairs, k)


def estimate(records: list[MatchRecord], *, u_pairs: int, max_pairs: int, seed: int, method: str) -> dict:
    rng = random.Random(seed)
    n = len(records)
    u = estimate_u(records, u_pairs, seed)
    every = [compare(records[c // n], records[c % n]) for c in sample(sorted(candidate_pairs(records)), max_pairs, rng)]
    m = em_sessions(records, u, max_pairs, rng) if method == "em" else m_from_nhs_labels(every)
    m[NHS] = nhs_levels(every)
    prior = estimate_prior(Counter(every), m, u)
    return {
        "fields": {f: {"m": m[k], "u": u[k], "levels": list(LEVELS[f])} for k, f in enumerate(FIELDS)},
        "prior": prior,
    }


def em_sessions(records: list[MatchRecord], u: list[list[float]], max_pairs: int, rng: random.Random) -> list:
    """m by EM, one session per blocking rule with that rule's fields masked."""
    n = len(records)
    sessions = []
    for prefix, mask in SESSIONS.items():
        pairs = sample(rule_pairs(records, prefix), max_pairs, rng)
        vectors = Counter(masked(compare(records[c // n], records[c % n]), mask) for c in pairs)
        m_rule, _ = estimate_m(vectors, u)
        sessions.append((mask, m_rule))
    return combine_sessions(sessions)


def threshold(prior: float, p: float) -> float:
    """The match weight at which the posterior P(match) reaches p."""
    return round(math.log2(p / (1 - p)) - math.log2(prior / (1 - prior)), 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--patients", nargs="*", default=[], help="NDJSON files (globs) holding Patient resources")
    ap.add_argument("--synthetic", type=int, default=0, help="people to make with bench/matching_synth.py instead")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--u-pairs", type=int, default=300_000)
    ap.add_argument("--max-pairs", type=int, default=600_000)
    ap.add_argument("--upper-p", type=float, default=0.9999)
    ap.add_argument("--lower-p", type=float, default=0.5)
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--describe", default="", help="how the input was made, for the table's `source` note")
    ap.add_argument(
        "--method",
        choices=("nhs-label", "em"),
        default="nhs-label",
        help="m from pairs sharing a valid NHS number (default), or by EM per blocking rule",
    )
    args = ap.parse_args()
    start = time.perf_counter()
    if args.synthetic:
        from matching_synth import region

        patients, _ = region(args.synthetic, seed=args.seed)
        source = f"bench/matching_synth.py, {args.synthetic} people, seed {args.seed}"
    else:
        patients = load_patients(args.patients)
        source = f"{len(patients)} Patient resources ({args.describe or ', '.join(args.patients)})"
    records = [extract(p) for p in patients]
    table = estimate(records, u_pairs=args.u_pairs, max_pairs=args.max_pairs, seed=args.seed, method=args.method)
    table["upper"] = threshold(table["prior"], args.upper_p)
    table["lower"] = threshold(table["prior"], args.lower_p)
    table["source"] = f"estimated by tools/estimate_match_weights.py (--method {args.method}) from {source}"
    Path(args.out).write_bytes(orjson.dumps(table, option=orjson.OPT_INDENT_2) + b"\n")
    print(
        f"{len(records)} records, prior {table['prior']:.4f}, upper {table['upper']}, lower {table['lower']}, "
        f"{time.perf_counter() - start:.1f}s -> {args.out}"
    )
    for f, entry in table["fields"].items():
        bits = [round(math.log2(m / u), 1) for m, u in zip(entry["m"], entry["u"], strict=True)]
        print(f"  {f:8s} {bits}")


if __name__ == "__main__":
    main()
