"""People: one person per index, drawn from their own random stream so any person can be made on its own.

A person has a sex and date of birth from the English age/sex structure, an ethnic group that depends on how urban
their area is, names from a pool that fits, an address in their area (and a previous one if they moved), a GP
practice (a previous one if the move took them elsewhere), a smoking history and a latent frailty that clusters
conditions. Conditions and death come from `clinical.py`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from random import Random
from typing import TYPE_CHECKING

from sharedcare.generate.demography import (
    AGE_BANDS_5Y,
    DRAMA_LANDLINES,
    DRAMA_MOBILE,
    ETHNIC_GROUPS,
    FEMALE_NAMES,
    FEMALE_SHARE_5Y,
    MALE_NAMES,
    SURNAMES,
    EthnicGroup,
)
from sharedcare.generate.nhs_numbers import NhsNumbers
from sharedcare.generate.organisations import Area, Region

if TYPE_CHECKING:
    from sharedcare.generate.identity import NewIdentity


@dataclass(frozen=True, slots=True)
class Address:
    line: str
    town: str
    postcode: str
    area: Area

    def fhir(self, *, use: str = "home", start: date | None = None, end: date | None = None) -> dict[str, object]:
        out: dict[str, object] = {
            "use": use,
            "type": "physical",
            "line": [self.line],
            "city": self.town,
            "postalCode": self.postcode,
            "country": "ENGLAND",
        }
        if start or end:
            period: dict[str, str] = {}
            if start:
                period["start"] = start.isoformat()
            if end:
                period["end"] = end.isoformat()
            out["period"] = period
        return out


@dataclass(slots=True)
class Person:
    index: int
    key: str
    sex: str  # "male" | "female"
    birth_date: date
    ethnicity: EthnicGroup
    given: str
    middle: str | None
    family: str
    previous_family: str | None  # surname before marriage, still on some records
    married_on: date | None
    title: str
    nhs_number: str
    address: Address
    previous_address: Address | None
    moved_on: date | None
    practice: int
    previous_practice: int | None
    registered_on: date
    phone: str | None
    mobile: str | None
    smoking: str  # "current" | "ex" | "never" | "child"
    frailty: float
    restricted: bool  # PDS sensitive (S-flag): contact details withheld
    as_of: date
    death_date: date | None = None
    conditions: list[object] = field(default_factory=list)  # clinical.Diagnosis, filled by clinical.py
    new_identity: NewIdentity | None = None  # adoption or gender reassignment: a second NHS number (identity.py)

    @property
    def reference_date(self) -> date:
        """The last day the person's record grows: the reference date, or the day they died."""
        return self.death_date or self.as_of

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        return years - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))

    @property
    def age(self) -> int:
        return self.age_on(self.reference_date)

    @property
    def alive(self) -> bool:
        return self.death_date is None


def person_rng(seed: int, index: int, stream: str = "person") -> Random:
    """The random stream of one person (and, with `stream`, of one organisation's view of them)."""
    return Random(f"{seed}:{index}:{stream}")


def draw_birth_date(rng: Random, as_of: date) -> tuple[date, str]:
    band = rng.choices(range(len(AGE_BANDS_5Y)), AGE_BANDS_5Y)[0]
    last = band == len(AGE_BANDS_5Y) - 1  # 90+: a steeply falling tail
    years = 90 + min(18.0, rng.expovariate(1 / 4.5)) if last else band * 5 + rng.random() * 5
    born = as_of - timedelta(days=max(1, int(years * 365.25)))
    sex = "female" if rng.random() < FEMALE_SHARE_5Y[band] else "male"
    return born, sex


def draw_ethnicity(rng: Random, area: Area) -> EthnicGroup:
    weights = [g.share * (1 + (g.urban - 1) * area.urban) for g in ETHNIC_GROUPS]
    return rng.choices(ETHNIC_GROUPS, weights)[0]


def draw_address(rng: Random, area: Area) -> Address:
    number = rng.randrange(1, 180)
    flat = rng.random() < 0.12 * area.urban
    line = f"{'Flat ' + str(rng.randrange(1, 30)) + ', ' if flat else ''}{number} {rng.choice(area.streets)}"
    return Address(line, area.name.rsplit(" ", 1)[0], rng.choice(area.postcodes), area)


def make_person(region: Region, numbers: NhsNumbers, seed: int, index: int, as_of: date) -> Person:
    """Person `index` of the region: the same person whatever else is generated."""
    rng = person_rng(seed, index)
    area = region.area_of(index)
    born, sex = draw_birth_date(rng, as_of)
    ethnicity = draw_ethnicity(rng, area)
    pool = ethnicity.names
    given = rng.choice((FEMALE_NAMES if sex == "female" else MALE_NAMES)[pool])
    middle = rng.choice((FEMALE_NAMES if sex == "female" else MALE_NAMES)[pool]) if rng.random() < 0.55 else None
    if middle == given:
        middle = None
    family = rng.choice(SURNAMES[pool])
    age = (as_of - born).days // 365
    previous_family, married_on = None, None
    if sex == "female" and age >= 22 and rng.random() < min(0.55, (age - 20) / 30):
        previous_family = rng.choice(SURNAMES[pool])
        if previous_family == family:
            previous_family = None
        else:
            married_on = born + timedelta(days=int(365.25 * rng.uniform(20, min(age, 45))))
    title = _title(rng, sex, age, married_on is not None)
    address = draw_address(rng, area)
    previous_address, moved_on = None, None
    if age >= 1 and rng.random() < 0.14:
        moved_on = as_of - timedelta(days=rng.randrange(30, min(age * 365, 6 * 365) + 31))
        old_area = region.areas[max(0, min(len(region.areas) - 1, area.index + rng.choice((-2, -1, 0, 0, 1, 2))))]
        previous_address = draw_address(rng, old_area)
    practice = _practice(rng, region, area)
    previous_practice = None
    if previous_address is not None and (previous_address.area.town != area.town or rng.random() < 0.3):
        previous_practice = _practice(rng, region, previous_address.area)
        if previous_practice == practice:
            previous_practice = None
    registered_on = _registered_on(rng, born, as_of, moved_on if previous_practice is not None else None)
    return Person(
        index=index,
        key=f"P{index + 1:07d}",
        sex=sex,
        birth_date=born,
        ethnicity=ethnicity,
        given=given,
        middle=middle,
        family=family,
        previous_family=previous_family,
        married_on=married_on,
        title=title,
        nhs_number=numbers.for_person(index),
        address=address,
        previous_address=previous_address,
        moved_on=moved_on,
        practice=practice,
        previous_practice=previous_practice,
        registered_on=registered_on,
        phone=f"{rng.choice(DRAMA_LANDLINES)}{rng.randrange(1000):03d}" if rng.random() < 0.45 else None,
        mobile=f"{DRAMA_MOBILE}{rng.randrange(1000):03d}" if age >= 12 and rng.random() < 0.85 else None,
        smoking=_smoking(rng, age, area.decile),
        frailty=math.exp(rng.gauss(-0.245, 0.7)),  # log-normal with mean 1
        restricted=rng.random() < 0.002,
        as_of=as_of,
    )


def _title(rng: Random, sex: str, age: int, married: bool) -> str:
    if age < 16:
        return "Master" if sex == "male" and age < 12 else ("Miss" if sex == "female" else "Mr")
    if rng.random() < 0.01:
        return "Dr"
    if sex == "male":
        return "Mr"
    return "Mrs" if married and rng.random() < 0.8 else rng.choice(("Ms", "Miss"))


def _practice(rng: Random, region: Region, area: Area) -> int:
    roll = rng.random()
    if roll < 0.8 or len(area.practices) == 1:
        return area.practices[0]
    if roll < 0.95:
        return rng.choice(area.practices)
    return rng.randrange(len(region.practices))


def _registered_on(rng: Random, born: date, as_of: date, changed_on: date | None) -> date:
    if changed_on is not None:
        return changed_on + timedelta(days=rng.randrange(0, 60))
    if rng.random() < 0.5:
        return born + timedelta(days=rng.randrange(0, 60))
    earliest = max(born, as_of - timedelta(days=30 * 365))
    return earliest + timedelta(days=rng.randrange(0, max(1, (as_of - earliest).days)))


def _smoking(rng: Random, age: int, decile: int) -> str:
    if age < 16:
        return "child"
    current = 0.125 * (1.6 - decile / 10) * (0.6 if age >= 65 else 1.0)  # ~12% of adults, twice as common when deprived
    roll = rng.random()
    if roll < current:
        return "current"
    if roll < current + min(0.45, 0.1 + age / 150):
        return "ex"
    return "never"
