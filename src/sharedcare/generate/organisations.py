"""The region's layout: towns, LSOA-like areas with deprivation deciles, and the organisations that serve them.

A real region of 2.8 million people has about 472 GP practices, 10 acute trusts, 10 councils, 6 community providers
and a mental health trust; the layout scales those counts with the population asked for. People are numbered area
by area, so consecutive people share a town and practice: a person's area is found by bisecting the cumulative
populations, which keeps generation streaming and the output files local.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from sharedcare.generate.demography import (
    DRAMA_LANDLINES,
    FEMALE_NAMES,
    MALE_NAMES,
    POSTCODE_AREAS,
    POSTCODE_UNIT_LETTERS,
    STREET_KINDS,
    STREET_NAMES,
    SURNAMES,
    TOWNS,
)
from sharedcare.types import JSON

ODS_SYSTEM = "https://fhir.nhs.uk/Id/ods-organization-code"
GMC_SYSTEM = "https://fhir.hl7.org.uk/Id/gmc-number"
NMC_SYSTEM = "https://fhir.hl7.org.uk/Id/nmc-number"
HCPC_SYSTEM = "https://fhir.hl7.org.uk/Id/hcpc-number"
SDS_USER_SYSTEM = "https://fhir.nhs.uk/Id/sds-user-id"
ORG_TYPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/organization-type"
REGION_NAME = "Shire and Vale"
PEOPLE_PER_AREA = 1600  # an LSOA holds 1,000-3,000 people
PEOPLE_PER_PRACTICE = 5932  # 2.8 million / 472 practices

GP, ACUTE, COMMUNITY, COUNCIL, MENTAL_HEALTH, ICB = "gp", "acute", "community", "council", "mental_health", "icb"
# What each kind of source calls its own patient number; identifier systems live in the synthetic namespace.
LOCAL_ID_KIND = {
    GP: "patient-number",
    ACUTE: "hospital-number",
    COMMUNITY: "client-id",
    COUNCIL: "person-id",
    MENTAL_HEALTH: "client-id",
}


def local_identifier_system(ods: str, kind: str) -> str:
    """The identifier system of an organisation's own patient numbers (synthetic namespace, per organisation)."""
    return f"https://sharedcare.example/{ods}/Id/{LOCAL_ID_KIND[kind]}"


@dataclass(frozen=True, slots=True)
class Practitioner:
    id: str
    prefix: str
    given: str
    family: str
    gender: str
    role: str  # e.g. "General practitioner"
    register: str | None  # identifier system of the professional register
    number: str
    sds_user_id: str

    def reference(self) -> JSON:
        return {"reference": f"Practitioner/{self.id}", "display": f"{self.prefix} {self.given} {self.family}"}


@dataclass(frozen=True, slots=True)
class Organisation:
    ods: str
    name: str
    kind: str
    towns: tuple[int, ...]
    address: tuple[str, str, str]  # line, town, postcode
    phone: str
    practitioners: tuple[Practitioner, ...] = ()

    def reference(self) -> JSON:
        return {"reference": f"Organization/{self.ods}", "display": self.name}

    def identifier_reference(self) -> JSON:
        """A reference another organisation's feed uses: by ODS code, since it holds no copy of this one."""
        return {"identifier": {"system": ODS_SYSTEM, "value": self.ods}, "display": self.name}

    def staff(self, role_prefix: str) -> tuple[Practitioner, ...]:
        chosen = tuple(p for p in self.practitioners if p.role.startswith(role_prefix))
        return chosen or self.practitioners


@dataclass(frozen=True, slots=True)
class Area:
    """An LSOA-like small area: its code, deprivation decile (1 = most deprived) and its postcodes and streets."""

    index: int
    code: str
    name: str
    town: int
    decile: int
    urban: float
    postcodes: tuple[str, ...]
    streets: tuple[str, ...]
    practices: tuple[int, ...]  # nearby practices, nearest first


@dataclass
class Region:
    people: int
    towns: tuple[str, ...]
    areas: list[Area]
    bounds: list[int]  # bounds[i] = first person index after area i
    practices: list[Organisation]
    acute: list[Organisation]
    community: list[Organisation]
    councils: list[Organisation]
    mental_health: Organisation
    icb: Organisation
    town_practices: dict[int, list[int]] = field(default_factory=dict)

    def area_of(self, person: int) -> Area:
        return self.areas[bisect_right(self.bounds, person)]

    def acute_for(self, town: int) -> Organisation:
        return self.acute[town % len(self.acute)]

    def community_for(self, town: int) -> Organisation:
        return self.community[town % len(self.community)]

    def council_for(self, town: int) -> Organisation:
        return self.councils[town % len(self.councils)]

    def organisations(self) -> list[Organisation]:
        return [*self.practices, *self.acute, *self.community, *self.councils, self.mental_health]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def build_region(seed: int, people: int) -> Region:
    """Lay out a region for `people` people: deterministic for a seed, small (grows with areas, not people)."""
    rng = Random(f"region:{seed}")
    n_areas = max(24, math.ceil(people / PEOPLE_PER_AREA))  # small regions still span the deciles
    n_towns = _clamp(math.ceil(people / 40_000), 3, len(TOWNS))
    # Towns spread from the urban centre to the rural edge, so even a small region spans the deprivation deciles.
    chosen = [TOWNS[round(i * (len(TOWNS) - 1) / (n_towns - 1))] for i in range(n_towns)]
    town_names = tuple(name for name, _ in chosen)
    urbanness = [u for _, u in chosen]
    area_towns = _assign_areas(rng, n_areas, urbanness)
    n_practices = _clamp(max(round(people / PEOPLE_PER_PRACTICE), n_towns), 3, 472)
    practice_towns = _assign_practices(rng, n_practices, area_towns, n_towns)
    areas = _areas(rng, area_towns, town_names, urbanness, practice_towns)
    bounds = _apportion(rng, people, len(areas))
    n_acute = _clamp(math.ceil(people / 280_000), 2, 10)
    n_community = _clamp(math.ceil(people / 466_667), 1, 6)
    n_councils = _clamp(math.ceil(people / 280_000), 1, 10)
    n_acute, n_community, n_councils = (min(n, n_towns) for n in (n_acute, n_community, n_councils))
    names = _NameMaker(rng, town_names)
    icb = Organisation(
        "Q9Z", f"NHS {REGION_NAME} Integrated Care Board", ICB, tuple(range(n_towns)), names.address(0), names.phone()
    )
    region = Region(
        people=people,
        towns=town_names,
        areas=areas,
        bounds=bounds,
        practices=[names.practice(i, t) for i, t in enumerate(practice_towns)],
        acute=[names.acute(i, _towns_of(i, n_acute, n_towns)) for i in range(n_acute)],
        community=[names.community(i, _towns_of(i, n_community, n_towns)) for i in range(n_community)],
        councils=[names.council(i, _towns_of(i, n_councils, n_towns)) for i in range(n_councils)],
        mental_health=names.mental_health(n_towns),
        icb=icb,
    )
    for i, t in enumerate(practice_towns):
        region.town_practices.setdefault(t, []).append(i)
    return region


def _towns_of(i: int, n: int, n_towns: int) -> tuple[int, ...]:
    return tuple(t for t in range(n_towns) if t % n == i)


def _assign_areas(rng: Random, n_areas: int, urbanness: list[float]) -> list[int]:
    """Each town gets at least one area; urban towns get more. Sorted, so a town's areas are contiguous."""
    towns = list(range(len(urbanness)))
    weights = [0.4 + u for u in urbanness]
    extra = rng.choices(towns, weights, k=n_areas - len(towns))
    return sorted(towns + extra)


def _assign_practices(rng: Random, n_practices: int, area_towns: list[int], n_towns: int) -> list[int]:
    counts = [area_towns.count(t) for t in range(n_towns)]
    towns = list(range(n_towns))
    extra = rng.choices(towns, counts, k=max(0, n_practices - n_towns))
    return sorted(towns[:n_practices] + extra)


def _areas(
    rng: Random, area_towns: list[int], town_names: tuple[str, ...], urbanness: list[float], practice_towns: list[int]
) -> list[Area]:
    areas: list[Area] = []
    local_index: dict[int, int] = {}
    for i, town in enumerate(area_towns):
        k = local_index[town] = local_index.get(town, -1) + 1
        urban = urbanness[town]
        decile = _decile(rng, 1.8 + (1 - urban) * 7.4)
        district = f"{POSTCODE_AREAS[(town * 8 + k % 8) // 99 % len(POSTCODE_AREAS)]}{(town * 8 + k % 8) % 99 + 1}"
        sector = (k // 8) % 10
        units = rng.sample([a + b for a in POSTCODE_UNIT_LETTERS for b in POSTCODE_UNIT_LETTERS], 12)
        streets = tuple(f"{rng.choice(STREET_NAMES)} {rng.choice(STREET_KINDS)}" for _ in range(6))
        in_town = [p for p, t in enumerate(practice_towns) if t == town]
        start = k % len(in_town)
        nearby = tuple(in_town[start:] + in_town[:start])
        areas.append(
            Area(
                index=i,
                code=f"E01{900000 + i:06d}",
                name=f"{town_names[town]} {k + 1:03d}{'ABCDE'[k % 5]}",
                town=town,
                decile=decile,
                urban=urban,
                postcodes=tuple(f"{district} {sector}{u}" for u in units),
                streets=streets,
                practices=nearby,
            )
        )
    return areas


def _decile(rng: Random, mean: float) -> int:
    """An area's IMD decile around its town's mean, reflected at the ends so deciles 1 and 10 do not pile up."""
    value = rng.gauss(mean, 2.4)
    while not 0.5 <= value < 10.5:
        value = 1.0 - value if value < 0.5 else 20.0 - value
    return round(value)


def _apportion(rng: Random, people: int, n_areas: int) -> list[int]:
    """Split `people` over the areas (largest remainder on random weights); returns cumulative upper bounds."""
    weights = [rng.uniform(0.7, 1.3) for _ in range(n_areas)]
    total = sum(weights)
    shares = [people * w / total for w in weights]
    counts = [int(s) for s in shares]
    order = sorted(range(n_areas), key=lambda i: shares[i] - counts[i], reverse=True)
    for i in order[: people - sum(counts)]:
        counts[i] += 1
    bounds, running = [], 0
    for c in counts:
        running += c
        bounds.append(running)
    return bounds


class _NameMaker:
    """Plausible but fictitious organisation names, ODS-style codes, addresses and staff."""

    PRACTICE_STYLES = (
        "{town} Health Centre",
        "The {tree} Surgery",
        "{street} Medical Practice",
        "{town} Family Practice",
        "{tree} Lodge Surgery",
        "{street} Medical Centre",
    )
    TREES = ("Oaks", "Willows", "Limes", "Beeches", "Elms", "Cedars", "Hollies", "Larches", "Rowans", "Birches")

    def __init__(self, rng: Random, towns: tuple[str, ...]) -> None:
        self.rng, self.towns = rng, towns
        self.used: set[str] = set()
        self.gmc = 9_100_000

    def phone(self) -> str:
        return f"{self.rng.choice(DRAMA_LANDLINES)}{self.rng.randrange(1000):03d}"

    def address(self, town: int) -> tuple[str, str, str]:
        r = self.rng
        line = f"{r.randrange(1, 120)} {r.choice(STREET_NAMES)} {r.choice(STREET_KINDS)}"
        postcode = (
            f"{POSTCODE_AREAS[0]}{town * 8 % 99 + 1} {r.randrange(10)}{r.choice(POSTCODE_UNIT_LETTERS)}"
            f"{r.choice(POSTCODE_UNIT_LETTERS)}"
        )
        return line, self.towns[town], postcode

    def _unique(self, make: Callable[[], str]) -> str:
        name = make()
        for _ in range(20):
            if name not in self.used:
                break
            name = make()
        base, n = name, 2
        while name in self.used:  # a big region: number the names rather than run out
            name, n = f"{base} ({n})", n + 1
        self.used.add(name)
        return name

    def practice(self, i: int, town: int) -> Organisation:
        r = self.rng

        def make() -> str:
            style = r.choice(self.PRACTICE_STYLES)
            return style.format(town=self.towns[town], tree=r.choice(self.TREES), street=r.choice(STREET_NAMES))

        name = self._unique(make)
        ods = f"X9{i + 1:04d}"
        staff = [self.person(ods, k, "Dr", "General practitioner", GMC_SYSTEM) for k in range(r.randint(3, 8))]
        staff += [self.person(ods, len(staff) + k, None, "Practice nurse", NMC_SYSTEM) for k in range(2)]
        return Organisation(ods, name, GP, (town,), self.address(town), self.phone(), tuple(staff))

    def acute(self, i: int, towns: tuple[int, ...]) -> Organisation:
        main = self.towns[towns[0]]
        name = (
            f"{main} and {self.towns[towns[1]]} Hospitals NHS Foundation Trust"
            if len(towns) > 1
            else f"{main} General Hospital NHS Trust"
        )
        ods = f"R9{'ABCDEFGHJK'[i]}"
        roles = (
            "Consultant cardiologist",
            "Consultant respiratory physician",
            "Consultant orthopaedic surgeon",
            "Consultant ophthalmologist",
            "Consultant general surgeon",
            "Consultant geriatrician",
            "Consultant physician",
            "Emergency medicine consultant",
            "Consultant gastroenterologist",
        )
        staff = [self.person(ods, k, "Dr", role, GMC_SYSTEM) for k, role in enumerate(roles)]
        staff += [self.person(ods, len(staff) + k, None, "Staff nurse", NMC_SYSTEM) for k in range(3)]
        return Organisation(ods, name, ACUTE, towns, self.address(towns[0]), self.phone(), tuple(staff))

    def community(self, i: int, towns: tuple[int, ...]) -> Organisation:
        name = (
            f"{REGION_NAME} Community Health Services NHS Trust"
            if i == 0
            else f"{self.towns[towns[0]]} Community Healthcare CIC"
        )
        ods = f"R8{'ABCDEF'[i]}"
        staff = [self.person(ods, k, None, "District nurse", NMC_SYSTEM) for k in range(4)]
        staff += [self.person(ods, 4, None, "Community physiotherapist", HCPC_SYSTEM)]
        return Organisation(ods, name, COMMUNITY, towns, self.address(towns[0]), self.phone(), tuple(staff))

    def council(self, i: int, towns: tuple[int, ...]) -> Organisation:
        kind = ("City Council", "Borough Council", "District Council", "Metropolitan Borough Council")[i % 4]
        name = f"{self.towns[towns[0]]} {kind}" if i else f"{REGION_NAME} County Council"
        ods = f"9{i + 1:02d}"
        staff = [self.person(ods, k, None, "Social worker", HCPC_SYSTEM) for k in range(4)]
        staff += [self.person(ods, 4, None, "Occupational therapist", HCPC_SYSTEM)]
        return Organisation(ods, name, COUNCIL, towns, self.address(towns[0]), self.phone(), tuple(staff))

    def mental_health(self, n_towns: int) -> Organisation:
        ods = "R7A"
        staff = [
            self.person(ods, 0, "Dr", "Consultant psychiatrist", GMC_SYSTEM),
            self.person(ods, 1, "Dr", "Consultant old age psychiatrist", GMC_SYSTEM),
        ]
        staff += [self.person(ods, 2 + k, None, "Community mental health nurse", NMC_SYSTEM) for k in range(3)]
        return Organisation(
            ods,
            f"{REGION_NAME} Partnership NHS Foundation Trust",
            MENTAL_HEALTH,
            tuple(range(n_towns)),
            self.address(0),
            self.phone(),
            tuple(staff),
        )

    def person(self, ods: str, k: int, title: str | None, role: str, register: str | None) -> Practitioner:
        r = self.rng
        gender = r.choice(("female", "male"))
        pool = r.choices(("english", "south_asian", "african", "european"), (70, 18, 7, 5))[0]
        given = r.choice((FEMALE_NAMES if gender == "female" else MALE_NAMES)[pool])
        family = r.choice(SURNAMES[pool])
        prefix = title or ("Ms" if gender == "female" else "Mr")
        self.gmc += r.randrange(1, 997)
        if register == GMC_SYSTEM:
            number = str(self.gmc)
        elif register == NMC_SYSTEM:
            number = f"{r.randrange(10, 99)}{r.choice('ABCDEFGHIJ')}{r.randrange(1000, 9999)}{r.choice('EOW')}"
        else:
            number = f"{'SW' if role == 'Social worker' else 'PH'}{r.randrange(100000, 999999)}"
        sds = f"9{r.randrange(10**10, 10**11):011d}"
        return Practitioner(f"{ods}-PR{k + 1:03d}", prefix, given, family, gender, role, register, number, sds)


def organization_resource(org: Organisation, icb: Organisation | None = None) -> JSON:
    """The Organization resource an organisation publishes about itself."""
    type_code = {GP: "prov", ACUTE: "prov", COMMUNITY: "prov", MENTAL_HEALTH: "prov", COUNCIL: "govt", ICB: "govt"}
    line, town, postcode = org.address
    resource: JSON = {
        "resourceType": "Organization",
        "id": org.ods,
        "identifier": [{"use": "official", "system": ODS_SYSTEM, "value": org.ods}],
        "active": True,
        "type": [{"coding": [{"system": ORG_TYPE_SYSTEM, "code": type_code[org.kind]}], "text": _KIND_TEXT[org.kind]}],
        "name": org.name,
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        "address": [{"use": "work", "line": [line], "city": town, "postalCode": postcode, "country": "ENGLAND"}],
    }
    if icb is not None and org.kind != COUNCIL:
        resource["partOf"] = icb.identifier_reference()
    return resource


_KIND_TEXT = {
    GP: "GP practice",
    ACUTE: "Acute hospital trust",
    COMMUNITY: "Community health services provider",
    COUNCIL: "Local authority (adult social care)",
    MENTAL_HEALTH: "Mental health trust",
    ICB: "Integrated care board",
}


def practitioner_resource(p: Practitioner, org: Organisation) -> JSON:
    identifiers = [{"system": SDS_USER_SYSTEM, "value": p.sds_user_id}]
    if p.register:
        identifiers.insert(0, {"system": p.register, "value": p.number})
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "identifier": identifiers,
        "active": True,
        "name": [{"use": "official", "family": p.family, "given": [p.given], "prefix": [p.prefix]}],
        "telecom": [{"system": "phone", "value": org.phone, "use": "work"}],
        "gender": p.gender,
        "qualification": [{"code": {"text": p.role}, "issuer": org.identifier_reference()}],
    }
