"""New identities: adoption and gender reassignment, after which PDS issues a new NHS number and seals the old one.

A person's records written before the change carry the identity they had then (the first NHS number, birth name,
sex registered at birth, the birth family's home for an adopted child); records written after carry the new one
(a second NHS number, the adoptive surname and often a new first name, or a new first name and gender). The
practice that registered the new identity still holds the deducted registration of the old one (inactive).

Ground truth keeps the two apart for good: the new identity has its own person key (`P0000123-2` beside
`P0000123`), because they must never be linked (shared/design/domain-uk.md section 3). A source that knows it
registered a new identity marks that record with the sharedcare tag `NEW_IDENTITY_TAG`, the representation the
matcher reads (no UK Core or PDS element says so): the practice always, another organisation told by the person
half the time.

The rates are raised above real prevalence (roughly 0.25 % of children in England are adopted from care in ten
years, about 3,000 a year; adults with a new gender marker are fewer) so that a 50,000-person region holds enough
cases to measure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta
from random import Random

from sharedcare.generate.demography import FEMALE_NAMES, MALE_NAMES, SURNAMES
from sharedcare.generate.nhs_numbers import CAPACITY, NhsNumbers
from sharedcare.generate.population import Address, Person, draw_address, person_rng
from sharedcare.matching.features import NEW_IDENTITY_SYSTEM, NEW_IDENTITY_TAG
from sharedcare.types import JSON

ADOPTION_RATE = 0.01  # of children under 18, adopted in the last ten years
GENDER_RATE = 0.0025  # of adults, a new gender marker in the last ten years
NEW_FIRST_NAME_ON_ADOPTION = 0.5
TAG_ELSEWHERE = 0.5  # an organisation other than the registering practice marks the new identity's record
SEALED_LOCAL_OFFSET = 50_000_000  # local-number index of a practice's deducted old registration (no collisions)


@dataclass(frozen=True, slots=True)
class NewIdentity:
    kind: str  # "adoption" | "gender"
    on: date
    key: str
    nhs_number: str
    given: str
    middle: str | None
    family: str
    sex: str
    title: str
    birth_home: Address | None  # adoption: where the child lived before; the person's address is the new home


def draw_new_identity(person: Person, numbers: NhsNumbers, seed: int, patients: int) -> NewIdentity | None:
    """The person's new identity, if they have one: drawn from a stream of its own, so nobody else changes."""
    spare = CAPACITY - 1 - person.index  # a number slot no person of this region uses
    if spare < patients:
        return None
    rng = person_rng(seed, person.index, "identity")
    as_of, born = person.as_of, person.birth_date
    age = person.age_on(as_of)
    roll = rng.random()
    if 1 <= age < 18 and roll < ADOPTION_RATE:
        on = _day_between(rng, max(born + timedelta(days=180), as_of - timedelta(days=3650)), as_of)
        given = person.given
        if rng.random() < NEW_FIRST_NAME_ON_ADOPTION:
            given = _other_name(rng, _names(person, person.sex), person.given)
        family = _other_name(rng, SURNAMES[person.ethnicity.names], person.family)
        title, birth_home = person.title, draw_address(rng, person.address.area)
        number = numbers.for_person(spare)
        return NewIdentity(
            "adoption", on, f"{person.key}-2", number, given, None, family, person.sex, title, birth_home
        )
    if age >= 18 and roll < GENDER_RATE:
        on = _day_between(rng, max(born + timedelta(days=16 * 365), as_of - timedelta(days=3650)), as_of)
        sex = "female" if person.sex == "male" else "male"
        given = _other_name(rng, _names(person, sex), person.given)
        title = "Mr" if sex == "male" else rng.choice(("Ms", "Miss", "Mx"))
        number = numbers.for_person(spare)
        return NewIdentity("gender", on, f"{person.key}-2", number, given, None, person.family, sex, title, None)
    return None


def identity_on(person: Person, day: date) -> Person:
    """The person as an organisation knew them on `day`: the first identity before the change, the new one after."""
    new = person.new_identity
    if new is None:
        return person
    if day < new.on:
        if new.birth_home is None:
            return person
        return replace(person, address=new.birth_home, previous_address=None, moved_on=None, phone=None, mobile=None)
    return replace(
        person,
        key=new.key,
        nhs_number=new.nhs_number,
        given=new.given,
        middle=new.middle,
        family=new.family,
        previous_family=None,
        married_on=None,
        sex=new.sex,
        title=new.title,
    )


def mark_new_identity(patient: JSON) -> None:
    """Tag a Patient as the record of a new identity (the matcher never links it across NHS numbers)."""
    meta = patient.setdefault("meta", {})
    meta.setdefault("tag", []).append(
        {"system": NEW_IDENTITY_SYSTEM, "code": NEW_IDENTITY_TAG, "display": "New identity: new NHS number issued"}
    )


def is_new_identity(person: Person, day: date) -> bool:
    return person.new_identity is not None and day >= person.new_identity.on


def _names(person: Person, sex: str) -> tuple[str, ...]:
    return (FEMALE_NAMES if sex == "female" else MALE_NAMES)[person.ethnicity.names]


def _other_name(rng: Random, pool: tuple[str, ...], old: str) -> str:
    choices = [n for n in pool if n != old]
    return rng.choice(choices) if choices else old


def _day_between(rng: Random, first: date, last: date) -> date:
    last = last - timedelta(days=30)
    return first if last <= first else first + timedelta(days=rng.randrange((last - first).days))
