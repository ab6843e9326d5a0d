"""Each organisation's own Patient record of a person, with the errors real feeds carry.

Most records carry the NHS number; a realistic fraction do not (A&E arrivals, council systems) or carry a mistyped
one that still passes Modulus 11. Names drift (familiar forms, spellings, a maiden name nobody updated), day and
month of birth get swapped, and a record last touched before the person moved still holds the old address. Error
rates scale with how far the source is from PDS: GP systems trace every record, councils rarely do.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date
from random import Random

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM
from sharedcare.generate.demography import NAME_VARIANTS
from sharedcare.generate.errors import keying_slip
from sharedcare.generate.nhs_numbers import mistyped
from sharedcare.generate.organisations import (
    ACUTE,
    COMMUNITY,
    COUNCIL,
    GP,
    MENTAL_HEALTH,
    Organisation,
    local_identifier_system,
)
from sharedcare.generate.population import Address, Person
from sharedcare.generate.records import restricted
from sharedcare.types import JSON

VERIFICATION_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
VERIFICATION = {
    "01": "Number present and verified",
    "02": "Number present but not traced",
    "03": "Trace required",
    "04": "Trace attempted - No match or multiple match found",
    "05": "Trace needs to be resolved - (NHS number or patient detail conflict)",
}
ETHNIC_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory"
ETHNIC_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland"


@dataclass(frozen=True, slots=True)
class SourceProfile:
    """How carefully a kind of source keeps demographics (rates per record)."""

    no_nhs_number: float
    mistyped_number: float
    verified: float  # share of present numbers traced against PDS (status 01)
    reports_verification: bool
    name_drift: float  # familiar form, spelling variant or typo
    date_error: float  # day/month swapped or a digit wrong
    stale_surname: float  # maiden name never updated
    ethnicity_recorded: float
    id_prefix: str


PROFILES = {
    GP: SourceProfile(0.004, 0.0005, 0.985, True, 0.01, 0.002, 0.01, 0.92, ""),
    ACUTE: SourceProfile(0.03, 0.003, 0.93, True, 0.04, 0.008, 0.05, 0.85, "H"),
    COMMUNITY: SourceProfile(0.02, 0.002, 0.95, True, 0.03, 0.006, 0.04, 0.7, "C"),
    MENTAL_HEALTH: SourceProfile(0.03, 0.003, 0.94, True, 0.03, 0.006, 0.04, 0.8, "M"),
    COUNCIL: SourceProfile(0.15, 0.01, 0.0, False, 0.08, 0.02, 0.1, 0.7, ""),
}


class LocalIds:
    """Each organisation numbers its patients its own way: an organisation-keyed permutation of the person index,
    so local numbers say nothing about who is who across organisations."""

    MODULUS = 10**8

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._keys: dict[str, tuple[int, int]] = {}

    def number(self, ods: str, index: int) -> str:
        key = self._keys.get(ods)
        if key is None:
            digest = int(hashlib.sha256(f"{self.seed}:{ods}".encode()).hexdigest(), 16)
            multiplier = (digest % self.MODULUS) | 1
            if multiplier % 5 == 0:
                multiplier += 2
            key = self._keys[ods] = (multiplier, (digest >> 64) % self.MODULUS)
        return f"{(index * key[0] + key[1]) % self.MODULUS:08d}"


def patient_resource(
    person: Person,
    org: Organisation,
    local: str,
    rng: Random,
    *,
    seen_on: date,
    practice: Organisation,
    active: bool = True,
) -> tuple[str, JSON]:
    """(id, Patient) as `org` holds the person, its details as last updated on `seen_on`."""
    profile = PROFILES[org.kind]
    patient_id = f"{org.ods}-{local}"
    res: JSON = {"resourceType": "Patient", "id": patient_id}
    if person.restricted:
        res["meta"] = restricted()
    extensions = _ethnicity(person, profile, rng)
    if extensions:
        res["extension"] = extensions
    res["identifier"] = _identifiers(person, org, profile, f"{profile.id_prefix}{local}", rng)
    res["active"] = active
    res["name"] = _names(person, org, profile, rng, seen_on)
    if not person.restricted or org.kind == GP:
        telecom = _telecom(person)
        if telecom:
            res["telecom"] = telecom
    res["gender"] = person.sex if rng.random() > 0.002 * _scale(org) else "unknown"
    res["birthDate"] = _birth_date(person.birth_date, profile, rng).isoformat()
    if person.death_date is not None and (org.kind == GP or seen_on >= person.death_date):
        res["deceasedDateTime"] = person.death_date.isoformat()
    if not person.restricted or org.kind == GP:
        res["address"] = _addresses(person, org, rng, seen_on)
    res["generalPractitioner"] = [practice.reference() if org.kind == GP else practice.identifier_reference()]
    res["managingOrganization"] = org.reference()
    return patient_id, res


def _scale(org: Organisation) -> float:
    return {GP: 1.0, ACUTE: 2.0, COMMUNITY: 2.0, MENTAL_HEALTH: 2.0, COUNCIL: 4.0}[org.kind]


def _ethnicity(person: Person, profile: SourceProfile, rng: Random) -> list[JSON]:
    if rng.random() >= profile.ethnicity_recorded:
        return []
    group = person.ethnicity
    code, display = (group.code, group.display) if rng.random() > 0.03 else ("Z", "Not stated")
    return [
        {
            "url": ETHNIC_EXTENSION,
            "valueCodeableConcept": {"coding": [{"system": ETHNIC_SYSTEM, "code": code, "display": display}]},
        }
    ]


def _identifiers(person: Person, org: Organisation, profile: SourceProfile, local: str, rng: Random) -> list[JSON]:
    ids: list[JSON] = [{"use": "usual", "system": local_identifier_system(org.ods, org.kind), "value": local}]
    if rng.random() < profile.no_nhs_number:
        return ids
    number, status = person.nhs_number, "01" if rng.random() < profile.verified else rng.choice(("02", "03", "05"))
    if rng.random() < profile.mistyped_number:
        number, status = mistyped(number, rng), rng.choice(("02", "05"))
    nhs: JSON = {"system": NHS_NUMBER_SYSTEM, "value": number}
    if profile.reports_verification:
        nhs["extension"] = [
            {
                "url": VERIFICATION_EXTENSION,
                "valueCodeableConcept": {
                    "coding": [{"system": VERIFICATION_SYSTEM, "code": status, "display": VERIFICATION[status]}]
                },
            }
        ]
    ids.append(nhs)
    return ids


def _given_names(person: Person, profile: SourceProfile, rng: Random) -> list[str]:
    given = person.given
    if rng.random() < profile.name_drift:
        variants = NAME_VARIANTS.get(given)
        given = rng.choice(variants) if variants and rng.random() < 0.7 else keying_slip(given, rng)
    names = [given]
    if person.middle and rng.random() < 0.75:
        names.append(person.middle)
    return names


def _names(person: Person, org: Organisation, profile: SourceProfile, rng: Random, seen_on: date) -> list[JSON]:
    family = person.family
    married = person.previous_family is not None and person.married_on is not None
    if married and (seen_on < person.married_on or rng.random() < profile.stale_surname):  # type: ignore[operator]
        family = person.previous_family  # type: ignore[assignment]
    elif rng.random() < profile.name_drift / 3:
        family = keying_slip(family, rng)
    names: list[JSON] = [
        {"use": "official", "family": family, "given": _given_names(person, profile, rng), "prefix": [person.title]}
    ]
    if org.kind == GP and married and family == person.family:
        names.append(
            {
                "use": "maiden",
                "family": person.previous_family,
                "given": [person.given],
                "period": {"end": person.married_on.isoformat()},
            }
        )  # type: ignore[union-attr]
    return names


def _birth_date(born: date, profile: SourceProfile, rng: Random) -> date:
    if rng.random() >= profile.date_error:
        return born
    if born.day <= 12 and born.day != born.month and rng.random() < 0.7:
        return date(born.year, born.day, born.month)  # American-style entry
    try:
        return born.replace(day=min(28, born.day + rng.choice((-1, 1)))) if born.day > 1 else born.replace(day=2)
    except ValueError:
        return born


def _telecom(person: Person) -> list[JSON]:
    out = []
    if person.phone:
        out.append({"system": "phone", "value": person.phone, "use": "home"})
    if person.mobile:
        out.append({"system": "phone", "value": person.mobile, "use": "mobile"})
    return out


def _addresses(person: Person, org: Organisation, rng: Random, seen_on: date) -> list[JSON]:
    moved = person.previous_address is not None and person.moved_on is not None
    if moved and seen_on < person.moved_on:  # type: ignore[operator]
        return [_postcode_slip(person.previous_address, rng).fhir()]  # type: ignore[arg-type]
    current = person.address.fhir(start=person.moved_on) if moved else person.address.fhir()
    if org.kind == GP and moved:
        old = person.previous_address.fhir(use="old", end=person.moved_on)  # type: ignore[union-attr]
        return [current, old]
    return [current]


def _postcode_slip(address: Address, rng: Random) -> Address:
    return (
        address
        if rng.random() > 0.01
        else Address(address.line, address.town, address.postcode.replace(" ", ""), address.area)
    )
