"""Generation streams: peak memory does not grow with the number of people."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from sharedcare.generate import RegionConfig, generate_region


def _peak(tmp_path: Path, patients: int) -> int:
    tracemalloc.start()
    try:
        generate_region(RegionConfig(patients=patients, seed=41, out=tmp_path / str(patients), buffer_bytes=1 << 20))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_is_flat_from_1k_to_5k_people(tmp_path: Path) -> None:
    small = _peak(tmp_path, 1000)
    large = _peak(tmp_path, 5000)
    assert large < small * 1.3 + (1 << 20), (small, large)
