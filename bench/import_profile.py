"""Profile `sharedcare import` on SQLite: CPU µs per resource in the writer and in the preparing workers.

    .venv/bin/python bench/import_profile.py DATA_DIR [--workers 2] [--cprofile writer|all] [--top 40]

With `--cprofile all` the import runs inline (workers=0) under cProfile, so preparation and writing appear in one
profile; `--cprofile writer` profiles only the main (writing) process. CPU time, not wall time, so figures stay
comparable when other work shares the machine.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import sys
import tempfile
import time
from pathlib import Path


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class _Marks:
    """Progress marks (time, resources written), for the rate over the first and last tenth of the load."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []
        self.written = 0

    def begin(self, total_bytes: int, files: int) -> None:
        self.marks.append((time.perf_counter(), 0))

    def file(self, source: object) -> None:
        return None

    def advance(self, nbytes: int, resources: int) -> None:
        if resources:
            self.written += resources
            self.marks.append((time.perf_counter(), self.written))

    def phase(self, text: str) -> None:
        return None

    def windows(self) -> str:
        if len(self.marks) < 3:
            return ""
        window = max(1, self.written // 10)
        first = next(m for m in self.marks if m[1] >= window)
        start = next(m for m in self.marks if m[1] >= self.written - window)
        end = self.marks[-1]
        rate_first = first[1] / (first[0] - self.marks[0][0])
        rate_last = (end[1] - start[1]) / max(end[0] - start[0], 1e-9)
        change = (rate_last / rate_first - 1) * 100
        return f"first tenth {rate_first:,.0f}/s, last tenth {rate_last:,.0f}/s ({change:+.0f}%)"


def _timed_flushes(loader: object) -> list[tuple[float, float, dict[str, int]]]:
    """Wrap the loader's commit: per commit group, the writer's CPU and wall seconds and the types it held."""
    out: list[tuple[float, float, dict[str, int]]] = []
    flush = loader._flush  # type: ignore[attr-defined]

    def timed() -> None:
        types: dict[str, int] = {}
        for _, batch, _ in loader._group:  # type: ignore[attr-defined]
            for _, rtype, _ in batch.items:
                types[rtype] = types.get(rtype, 0) + 1
        cpu, wall = time.process_time(), time.perf_counter()
        flush()
        out.append((time.process_time() - cpu, time.perf_counter() - wall, types))

    loader._flush = timed  # type: ignore[attr-defined]
    return out


def _flush_table(flushes: list[tuple[float, float, dict[str, int]]]) -> str:
    """Writer CPU µs per resource by type mix: per tenth of the commits, and per dominant type."""
    lines = []
    n = len(flushes)
    for k in range(10):
        part = flushes[k * n // 10 : (k + 1) * n // 10]
        res = sum(sum(t.values()) for _, _, t in part) or 1
        top = {}
        for _, _, t in part:
            for name, c in t.items():
                top[name] = top.get(name, 0) + c
        main = ", ".join(f"{name} {c}" for name, c in sorted(top.items(), key=lambda x: -x[1])[:3])
        cpu = sum(c for c, _, _ in part) * 1e6 / res
        wall = sum(w for _, w, _ in part) * 1e6 / res
        lines.append(f"  tenth {k + 1}: {res:6d} res, writer CPU {cpu:5.0f} µs/res, wall {wall:5.0f} µs/res; {main}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cprofile", choices=("none", "writer", "all"), default="none")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--group-share", type=int, default=0, help="override loader.GROUP_SHARE (0: keep)")
    parser.add_argument("--callers", default="", help="also print the callers of functions matching this")
    args = parser.parse_args()

    from sharedcare.app import build
    from sharedcare.bulk import loader as loader_module
    from sharedcare.bulk.loader import ImportOptions
    from sharedcare.bulk.service import loader_for
    from sharedcare.bulk.sources import discover
    from sharedcare.settings import Settings

    if args.group_share:
        loader_module.GROUP_SHARE = args.group_share
    workers = 0 if args.cprofile == "all" else args.workers
    marks = _Marks()
    folder = tempfile.mkdtemp(prefix="import-profile-")
    url = f"sqlite:///{folder}/p.db"
    server = build(Settings.from_env({"SHAREDCARE_AUTH_REQUIRED": "false"}, db=url))
    prof = cProfile.Profile() if args.cprofile != "none" else None
    try:
        sources, _ = discover([args.data])
        loader = loader_for(server, ImportOptions(workers=workers, batch_size=1000), marks)
        flushes = _timed_flushes(loader)
        wall, cpu, children = time.perf_counter(), time.process_time(), _children_cpu()
        if prof:
            prof.enable()
        stats = loader.run(sources)
        if prof:
            prof.disable()
        wall, cpu, children = time.perf_counter() - wall, time.process_time() - cpu, _children_cpu() - children
    finally:
        server.close()
    n = max(stats.written, 1)
    size = sum(f.stat().st_size for f in Path(folder).iterdir())
    print(
        f"{stats.written:,} resources in {wall:.2f}s = {stats.written / wall:,.0f}/s; CPU µs/res: main "
        f"{cpu * 1e6 / n:.0f}, workers {children * 1e6 / n:.0f}, total {(cpu + children) * 1e6 / n:.0f}; "
        f"db {size / 1e6:.1f} MB; load {os.getloadavg()[0]:.2f}"
    )
    print(marks.windows())
    print(_flush_table(flushes))
    if prof:
        st = pstats.Stats(prof, stream=sys.stdout)
        st.sort_stats(args.sort).print_stats(args.top)
        if args.callers:
            st.print_callers(args.callers)


if __name__ == "__main__":
    main()
