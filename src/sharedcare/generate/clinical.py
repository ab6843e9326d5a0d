"""A person's health: conditions with onset dates, deaths, medicines and the eFI deficits they add up to.

Probabilities come from the age-band prevalence tables in `codes.py`, scaled by sex, deprivation, ethnicity,
smoking and the person's latent frailty (log-normal, mean 1), so averages match the tables while the same people
collect several conditions, as in real primary care. Everything here is about the person, not about any one
organisation's record of them; `feeds.py` decides who records what.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from random import Random

from sharedcare.generate.codes import (
    AMLODIPINE,
    ANTIBIOTICS,
    ATORVASTATIN,
    CANCER_SITES,
    CKD_STAGES,
    CONDITION_BY_KEY,
    CONDITIONS,
    EFI_DEFICITS,
    RAMIPRIL,
    TREATMENTS,
    Code,
    ConditionDef,
)
from sharedcare.generate.demography import BLACK, SOUTH_ASIAN
from sharedcare.generate.population import Person

YEAR = 365.25
# Conditions that are episodes rather than lifelong: their onset falls in the last few years.
RECENT_ONSET = frozenset(
    {
        "falls",
        "dizziness",
        "hip_fracture",
        "weight_loss",
        "dyspnoea",
        "insomnia",
        "anaemia",
        "hypotension",
        "recurrent_uti",
        "memory_impairment",
    }
)
SMOKING_RISK = {"current": 2.2, "ex": 1.6, "never": 0.25, "child": 0.0}


@dataclass(slots=True)
class Diagnosis:
    key: str
    code: Code
    onset: date
    status: str = "active"  # Condition.clinicalStatus
    egfr: tuple[int, int] | None = None  # CKD stage range


@dataclass(slots=True)
class Medicine:
    code: Code
    start: date
    condition: str | None  # the condition key it treats; None for an acute course
    repeat: bool


@dataclass(slots=True)
class Health:
    """What is true of a person at their reference date."""

    diagnoses: list[Diagnosis]
    medicines: list[Medicine]
    penicillin_allergy: bool = False  # about 8% carry the label; they get no penicillins
    year_start: date | None = None  # a year before the reference date: the eFI polypharmacy window

    def has(self, key: str) -> bool:
        return any(d.key == key for d in self.diagnoses)

    def get(self, key: str) -> Diagnosis | None:
        for d in self.diagnoses:
            if d.key == key:
                return d
        return None

    def repeats(self) -> list[Medicine]:
        return [m for m in self.medicines if m.repeat]

    def efi_deficits(self) -> set[str]:
        """The eFI deficits present (polypharmacy: five or more different medicines in the last year)."""
        found = {CONDITION_BY_KEY[d.key].efi for d in self.diagnoses if CONDITION_BY_KEY[d.key].efi}
        since = self.year_start or date.min
        if len({m.code.code for m in self.medicines if m.repeat or m.start >= since}) >= 5:
            found.add("polypharmacy")
        return {f for f in found if f is not None}

    def efi(self) -> float:
        return len(self.efi_deficits()) / len(EFI_DEFICITS)


def efi_category(score: float) -> str:
    """eFI bands: fit 0-0.12, mild 0.13-0.24, moderate 0.25-0.36, severe above 0.36."""
    if score <= 0.12:
        return "fit"
    if score <= 0.24:
        return "mild"
    if score <= 0.36:
        return "moderate"
    return "severe"


def probability(c: ConditionDef, person: Person, age: int) -> float:
    """Chance that `person`, at `age`, is on the register for condition `c`."""
    if age < c.min_age:
        return 0.0
    p = c.bands[min(age // 10, 9)]
    if p == 0.0:
        return 0.0
    p *= c.male if person.sex == "male" else c.female
    if c.deprivation != 1.0:
        p *= c.deprivation ** ((5.5 - person.address.area.decile) / 9)
    code = person.ethnicity.code
    if code in SOUTH_ASIAN:
        p *= c.south_asian
    elif code in BLACK:
        p *= c.black
    if c.key == "copd":
        p *= SMOKING_RISK[person.smoking]
    if c.frail:
        p *= person.frailty
    return min(p, 0.92)


def draw_health(person: Person, rng: Random) -> Health:
    """Conditions at the reference date, death within the last three years, and the medicines that follow."""
    age_now = person.age_on(person.as_of)
    diagnoses = [
        _diagnose(c, person, rng, age_now) for c in CONDITIONS if rng.random() < probability(c, person, age_now)
    ]
    diagnoses = [d for d in diagnoses if not (d.key == "diabetes_t2" and _has(diagnoses, "diabetes_t1"))]
    person.death_date = _death(person, rng, age_now, diagnoses)
    if person.death_date is not None:
        last = person.death_date - timedelta(days=1)
        diagnoses = [d for d in diagnoses if d.onset <= last]
    year_start = person.reference_date - timedelta(days=365)
    health = Health(diagnoses, [], penicillin_allergy=rng.random() < 0.08, year_start=year_start)
    health.medicines = _medicines(person, health, rng)
    return health


def _has(diagnoses: list[Diagnosis], key: str) -> bool:
    return any(d.key == key for d in diagnoses)


def _diagnose(c: ConditionDef, person: Person, rng: Random, age: int) -> Diagnosis:
    onset = _onset(c, person, rng, age)
    code, egfr, status = c.code, None, "active"
    if c.key == "ckd":
        stage = rng.choices(CKD_STAGES, [w for _, w, _ in CKD_STAGES])[0]
        code, egfr = stage[0], stage[2]
    elif c.key == "cancer":
        sites = [(s, w) for s, sex, w in CANCER_SITES if sex in (None, person.sex)]
        code = rng.choices([s for s, _ in sites], [w for _, w in sites])[0]
        if (person.as_of - onset).days > 5 * 365:
            status = "remission"
    elif c.key in RECENT_ONSET and rng.random() < 0.35:
        status = "resolved"
    return Diagnosis(c.key, code, onset, status, egfr)


def _onset(c: ConditionDef, person: Person, rng: Random, age: int) -> date:
    ref = person.as_of
    lowest = person.birth_date + timedelta(days=int(max(c.onset_min_age, c.min_age) * YEAR))
    if c.key in RECENT_ONSET:
        start = ref - timedelta(days=int(rng.uniform(0.02, 5) * YEAR))
    elif c.key == "cancer":
        start = ref - timedelta(days=int(15 * YEAR * rng.random() ** 1.6))
    else:
        span = max(0.0, age - max(c.onset_min_age, c.min_age))
        years_ago = span * (1 - rng.random() ** 0.55) if span else 0.0
        start = ref - timedelta(days=int(min(years_ago, 45) * YEAR) + rng.randrange(1, 120))
    return min(max(start, lowest), ref - timedelta(days=1))


def _death(person: Person, rng: Random, age: int, diagnoses: list[Diagnosis]) -> date | None:
    """About 0.9% of people die each year, mostly the old and ill; deaths fall in the three years before the date."""
    if age < 1:
        return None
    keys = {d.key for d in diagnoses}
    hazard = 0.00002 * math.exp(0.095 * min(age, 105)) * math.sqrt(person.frailty)
    hazard *= 1 + sum(
        w
        for k, w in (("heart_failure", 1.0), ("dementia", 1.0), ("cancer", 0.7), ("copd", 0.5), ("ckd", 0.3))
        if k in keys
    )
    annual = min(hazard, 0.45)
    if rng.random() >= 1 - (1 - annual) ** 3:
        return None
    died = person.as_of - timedelta(days=rng.randrange(1, int(3 * YEAR)))
    return max(died, person.birth_date + timedelta(days=400))


def _medicines(person: Person, health: Health, rng: Random) -> list[Medicine]:
    meds: list[Medicine] = []
    seen: set[str] = set()

    def add(code: Code, start: date, condition: str | None) -> None:
        if code.code not in seen:
            seen.add(code.code)
            meds.append(Medicine(code, start, condition, True))

    for d in health.diagnoses:
        treatment = TREATMENTS.get(d.key)
        if treatment is None or d.status == "resolved" or rng.random() >= treatment[0]:
            continue
        start = min(d.onset + timedelta(days=rng.randrange(0, 90)), person.reference_date - timedelta(days=1))
        options = treatment[1]
        if d.key == "hypertension":  # NICE NG136: one first-line drug, a second for some
            first = rng.choice(options)
            add(first, start, d.key)
            if person.age >= 55 and rng.random() < 0.3:
                add(RAMIPRIL if first is AMLODIPINE else AMLODIPINE, start + timedelta(days=180), d.key)
        else:
            for code in options:
                add(code, start, d.key)
        if d.key == "diabetes_t2" and person.age >= 40 and rng.random() < 0.7:
            add(ATORVASTATIN, start, d.key)
    for start in _antibiotic_courses(person, health, rng):
        options = ANTIBIOTICS[1:] if health.penicillin_allergy else ANTIBIOTICS
        meds.append(Medicine(rng.choice(options), start, None, False))
    return meds


def _antibiotic_courses(person: Person, health: Health, rng: Random) -> list[date]:
    rate = 0.3 + (0.6 if health.has("copd") else 0.0) + (0.2 if person.age >= 75 else 0.0)
    days: list[date] = []
    t = 0.0
    while True:
        t += rng.expovariate(rate)
        if t > 2:
            return days
        day = person.reference_date - timedelta(days=int(t * YEAR) + 1)
        if day > person.birth_date:
            days.append(day)
