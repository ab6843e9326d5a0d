"""Realism checks on the people model: register prevalence, age/sex/deprivation structure and frailty, computed
for the living registered population at the reference date (the QOF denominators)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sharedcare.generate.clinical import draw_health, efi_category
from sharedcare.generate.codes import CONDITIONS
from sharedcare.generate.nhs_numbers import NhsNumbers
from sharedcare.generate.organisations import build_region
from sharedcare.generate.population import make_person, person_rng
from sharedcare.generate.region import RegionConfig

# English QOF 2023/24-like prevalence (percent of the register's denominator) with plausible bounds.
QOF_REFERENCE: dict[str, tuple[float, float, float]] = {  # register -> (reference, low, high)
    "Hypertension": (14.5, 12.0, 17.0),
    "Diabetes (17+)": (7.7, 6.0, 9.5),
    "Asthma (6+)": (6.5, 5.0, 8.0),
    "COPD": (1.9, 1.3, 2.6),
    "CKD 3-5 (18+)": (4.0, 3.0, 5.2),
    "Heart failure": (1.1, 0.7, 1.6),
    "Dementia": (0.75, 0.45, 1.1),
    "Depression (18+)": (13.2, 10.5, 16.0),
    "Cancer": (3.6, 2.6, 4.6),
    "Atrial fibrillation": (2.1, 1.4, 2.8),
    "Coronary heart disease": (3.0, 2.2, 3.8),
    "Stroke and TIA": (1.9, 1.3, 2.5),
}


@dataclass
class PopulationStats:
    people: int = 0
    alive: int = 0
    deaths: int = 0
    register_counts: Counter[str] = field(default_factory=Counter)
    denominators: Counter[str] = field(default_factory=Counter)
    age_bands: Counter[str] = field(default_factory=Counter)
    sex: Counter[str] = field(default_factory=Counter)
    deciles: Counter[int] = field(default_factory=Counter)
    efi_65_plus: Counter[str] = field(default_factory=Counter)
    by_decile: dict[int, Counter[str]] = field(default_factory=dict)

    def prevalence(self, register: str) -> float:
        return 100.0 * self.register_counts[register] / max(1, self.denominators[register])

    def table(self) -> list[tuple[str, float, float, float, float]]:
        """(register, generated %, reference %, low, high) for each register with a reference figure."""
        return [(name, self.prevalence(name), *QOF_REFERENCE[name]) for name in QOF_REFERENCE]


def population_stats(config: RegionConfig) -> PopulationStats:
    """Draw `config.patients` people (no FHIR output) and tabulate them."""
    region = build_region(config.seed, config.patients)
    numbers = NhsNumbers(config.seed)
    stats = PopulationStats()
    registers = {c.register: c.register_min_age for c in CONDITIONS if c.register}
    for index in range(config.patients):
        person = make_person(region, numbers, config.seed, index, config.as_of)
        health = draw_health(person, person_rng(config.seed, index, "health"))
        stats.people += 1
        if not person.alive:
            stats.deaths += 1
            continue
        stats.alive += 1
        age = person.age
        decile = person.address.area.decile
        stats.age_bands[f"{min(age // 10, 9) * 10}{'+' if age >= 90 else '-' + str(min(age // 10, 9) * 10 + 9)}"] += 1
        stats.sex[person.sex] += 1
        stats.deciles[decile] += 1
        on = {c.register for c in CONDITIONS if c.register and health.has(c.key) and _active(health, c.key)}
        for register, min_age in registers.items():
            if age >= min_age:
                stats.denominators[register] += 1
                if register in on:
                    stats.register_counts[register] += 1
                    stats.by_decile.setdefault(decile, Counter())[register] += 1
        if age >= 65:
            stats.efi_65_plus[efi_category(health.efi())] += 1
    return stats


def _active(health: object, key: str) -> bool:
    d = health.get(key)  # type: ignore[attr-defined]
    return d is not None and d.status != "resolved"
