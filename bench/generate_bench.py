"""Benchmark the synthetic region generator: rate, peak memory, and how realistic the population is.

    .venv/bin/python bench/generate_bench.py                 # 10k and 100k people
    .venv/bin/python bench/generate_bench.py --sizes 10000   # just 10k

Each size runs in a fresh subprocess so its peak resident memory (ru_maxrss) is its own. Output goes to a temporary
directory that is removed afterwards. Prevalence and structure tables come from `sharedcare.generate.stats`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, resource, sys, time
from pathlib import Path
from sharedcare.generate import RegionConfig, generate_region
patients, seed, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
s = generate_region(RegionConfig(patients=patients, seed=seed, out=out))
size = sum(p.stat().st_size for p in out.rglob('*') if p.is_file())
print(json.dumps({"patients": patients, "resources": s.resources, "records": s.patient_records,
                  "organisations": s.organisations, "seconds": s.seconds, "rate": s.rate,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "bytes": size}))
"""


def run_size(patients: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="sharedcare-gen-bench-") as tmp:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(patients), str(seed), str(Path(tmp) / "region")],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def prevalence_report(patients: int, seed: int) -> str:
    from sharedcare.generate.region import RegionConfig
    from sharedcare.generate.stats import population_stats

    stats = population_stats(RegionConfig(patients=patients, seed=seed))
    lines = [
        f"### Register prevalence ({stats.alive:,} living people of {stats.people:,}; seed {seed})",
        "",
        "| register | generated % | England (QOF-like) % | plausible range |",
        "|---|---:|---:|---|",
    ]
    lines += [f"| {name} | {value:.2f} | {ref:.2f} | {low}-{high} |" for name, value, ref, low, high in stats.table()]
    lines += ["", "| age band | % |", "|---|---:|"]
    lines += [
        f"| {band} | {100 * n / stats.alive:.1f} |"
        for band, n in sorted(stats.age_bands.items(), key=lambda kv: int(kv[0][:2].rstrip("-+")))
    ]
    female = 100 * stats.sex["female"] / stats.alive
    lines += [
        "",
        f"Female {female:.1f}%; deaths in the 3 years before the reference date: {stats.deaths:,} "
        f"({100 * stats.deaths / stats.people / 3:.2f}% a year)",
        "",
        "| IMD decile | people % | COPD % | diabetes 17+ (% of all) |",
        "|---|---:|---:|---:|",
    ]
    for decile in sorted(stats.deciles):
        n = stats.deciles[decile]
        regs = stats.by_decile.get(decile, {})
        lines.append(
            f"| {decile} | {100 * n / stats.alive:.1f} | {100 * regs.get('COPD', 0) / n:.2f} | "
            f"{100 * regs.get('Diabetes (17+)', 0) / n:.2f} |"
        )
    total = sum(stats.efi_65_plus.values())
    lines += ["", "| eFI (65+) | % |", "|---|---:|"]
    lines += [
        f"| {cat} | {100 * stats.efi_65_plus[cat] / total:.1f} |" for cat in ("fit", "mild", "moderate", "severe")
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--prevalence-people", type=int, default=50_000)
    args = parser.parse_args()
    print("## sharedcare generate benchmark\n")
    print("| people | patient records | resources | seconds | resources/s | peak RSS (MB) | output (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        r = run_size(size, args.seed)
        print(
            f"| {size:,} | {r['records']:,} | {r['resources']:,} | {r['seconds']:.1f} | {r['rate']:,.0f} | "
            f"{r['peak_rss_mb']:.0f} | {r['bytes'] / 1e6:,.0f} |",
            flush=True,
        )
    print()
    print(prevalence_report(args.prevalence_people, args.seed))


if __name__ == "__main__":
    main()
