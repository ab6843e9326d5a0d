"""Same seed, same bytes; another seed, another region."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from sharedcare.generate import RegionConfig, generate_region


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path: Path) -> None:
    a = generate_region(RegionConfig(patients=80, seed=11, out=tmp_path / "a", buffer_bytes=64 << 10))
    b = generate_region(RegionConfig(patients=80, seed=11, out=tmp_path / "b"))
    assert a.resources == b.resources > 80
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_different_seed_gives_different_data(tmp_path: Path) -> None:
    generate_region(RegionConfig(patients=80, seed=11, out=tmp_path / "a"))
    generate_region(RegionConfig(patients=80, seed=12, out=tmp_path / "b"))
    a, b = _digest(tmp_path / "a"), _digest(tmp_path / "b")
    assert a.get("ground_truth.csv") != b.get("ground_truth.csv")


def test_regenerating_into_the_same_directory_replaces_the_output(tmp_path: Path) -> None:
    generate_region(RegionConfig(patients=40, seed=5, out=tmp_path / "r"))
    first = _digest(tmp_path / "r")
    generate_region(RegionConfig(patients=40, seed=5, out=tmp_path / "r"))
    assert _digest(tmp_path / "r") == first


def test_refuses_a_directory_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        generate_region(RegionConfig(patients=5, seed=1, out=tmp_path))
