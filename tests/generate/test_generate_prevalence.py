"""Condition prevalence and population structure within plausible bounds of English primary care."""

from __future__ import annotations

from sharedcare.generate.region import RegionConfig
from sharedcare.generate.stats import population_stats


def test_register_prevalence_is_within_plausible_bounds() -> None:
    stats = population_stats(RegionConfig(patients=6000, seed=31))
    out_of_bounds = [
        (name, round(value, 2), low, high) for name, value, _, low, high in stats.table() if not low <= value <= high
    ]
    assert out_of_bounds == []


def test_population_structure_looks_english() -> None:
    stats = population_stats(RegionConfig(patients=4000, seed=32))
    share = {band: n / stats.alive for band, n in stats.age_bands.items()}
    assert 0.09 < share["0-9"] < 0.14
    assert 0.10 < share["50-59"] < 0.16
    assert 0.03 < share["80-89"] + share.get("90+", 0) < 0.07
    assert 0.48 < stats.sex["female"] / stats.alive < 0.54
    assert len(stats.deciles) >= 6  # a region spans most deprivation deciles
    assert 0.005 < stats.deaths / stats.people / 3 < 0.015  # about 1% a year
    assert stats.efi_65_plus["fit"] > stats.efi_65_plus["severe"] > 0


def test_prevalence_rises_with_age_and_deprivation() -> None:
    stats = population_stats(RegionConfig(patients=6000, seed=33))
    deprived = sum(stats.by_decile.get(d, {}).get("COPD", 0) for d in (1, 2, 3))
    affluent = sum(stats.by_decile.get(d, {}).get("COPD", 0) for d in (8, 9, 10))
    people_deprived = sum(stats.deciles[d] for d in (1, 2, 3))
    people_affluent = sum(stats.deciles[d] for d in (8, 9, 10))
    assert deprived / people_deprived > affluent / people_affluent
