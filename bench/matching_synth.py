"""A small, self-contained synthetic population for developing and benchmarking matching when the region generator
(`sharedcare.generate`) is not available: households (shared surname, address and landline), twins, mothers and
babies, several organisations per person, and the errors real feeds carry (missing NHS numbers, typos, nicknames,
married surnames, moves, day/month swaps). Returns Patient resources and the ground truth person of each.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field

from sharedcare.matching.nhs import VERIFICATION_EXTENSION, VERIFICATION_SYSTEM

try:  # the region generator's name pools, when present, so collision rates resemble its output
    from sharedcare.generate.demography import FEMALE_NAMES, MALE_NAMES, SURNAMES

    GIVEN_M = sorted({n for pool in MALE_NAMES.values() for n in pool})
    GIVEN_F = sorted({n for pool in FEMALE_NAMES.values() for n in pool})
    FAMILY = sorted({n for pool in SURNAMES.values() for n in pool})
except ImportError:  # pragma: no cover
    GIVEN_M = ["Oliver", "George", "Harry", "Jack", "James", "David", "John", "Michael", "Paul", "Mark"]
    GIVEN_F = ["Olivia", "Amelia", "Isla", "Ava", "Mia", "Emily", "Sarah", "Susan", "Mary", "Jean"]
    FAMILY = ["Smith", "Jones", "Williams", "Taylor", "Brown", "Davies", "Evans", "Wilson", "Patel", "Khan"]

NICK = {
    "William": "Bill",
    "Robert": "Bob",
    "James": "Jim",
    "Michael": "Mike",
    "Thomas": "Tom",
    "Elizabeth": "Liz",
    "Margaret": "Maggie",
    "Daniel": "Dan",
    "Samuel": "Sam",
    "Susan": "Sue",
}
STREETS = ["Church Road", "Station Road", "Park Lane", "Mill Street", "Manor Close", "Oak Avenue", "Elm Way"]
NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"


@dataclass
class Person:
    key: str
    sex: str
    given: str
    family: str
    dob: str
    nhs: str
    address: tuple[str, str]
    phone: str | None
    maiden: str | None = None
    old_address: tuple[str, str] | None = None
    orgs: list[str] = field(default_factory=list)


def nhs_number(rng: random.Random, used: set[str]) -> str:
    weights = (10, 9, 8, 7, 6, 5, 4, 3, 2)
    while True:
        stem = "999" + "".join(rng.choice(string.digits) for _ in range(6))
        check = 11 - sum(int(d) * w for d, w in zip(stem, weights, strict=True)) % 11
        check = 0 if check == 11 else check
        if check != 10 and stem + str(check) not in used and len(set(stem)) > 1:
            used.add(stem + str(check))
            return stem + str(check)


UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def postcode(rng: random.Random) -> str:
    return f"SX{rng.randint(1, 30)} {rng.randint(1, 9)}{rng.choice(UNIT_LETTERS)}{rng.choice(UNIT_LETTERS)}"


def population(n: int, seed: int) -> list[Person]:
    rng = random.Random(seed)
    used: set[str] = set()
    people: list[Person] = []
    while len(people) < n:
        family = rng.choice(FAMILY)
        addr = (f"{rng.randint(1, 200)} {rng.choice(STREETS)}", postcode(rng))
        phone = f"01134960{rng.randint(100, 999)}" if rng.random() < 0.7 else None
        size = rng.choice([1, 1, 2, 2, 3, 4])
        parent_year = rng.randint(1935, 2000)
        for k in range(size):
            sex = rng.choice("mf")
            year = min(parent_year + (0 if k < 2 else rng.randint(18, 40)), 2024)
            dob = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
            twin = k >= 3 and rng.random() < 0.5
            if twin:
                dob = people[-1].dob
            given = rng.choice(GIVEN_M if sex == "m" else GIVEN_F)
            while twin and given == people[-1].given:  # nobody names twins alike
                given = rng.choice(GIVEN_M if sex == "m" else GIVEN_F)
            p = Person(f"P{len(people)}", sex, given, family, dob, nhs_number(rng, used), addr, phone)
            if sex == "f" and k == 1 and rng.random() < 0.5:
                p.maiden = rng.choice(FAMILY)
            if rng.random() < 0.08:
                p.old_address = (f"{rng.randint(1, 200)} {rng.choice(STREETS)}", postcode(rng))
            p.orgs = ["GP1"] + [
                o for o, pr in (("RH1", 0.6), ("COM1", 0.3), ("LA1", 0.15), ("RH2", 0.2)) if rng.random() < pr
            ]
            people.append(p)
    return people[:n]


def typo(rng: random.Random, text: str) -> str:
    i = rng.randrange(len(text))
    kind = rng.random()
    if kind < 0.4 and len(text) > 3:
        return text[:i] + text[i + 1 :]
    if kind < 0.7 and i < len(text) - 1:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + rng.choice(string.ascii_lowercase) + text[i + 1 :]


def record(rng: random.Random, p: Person, org: str, n: int, missing: float, typos: float) -> dict:
    given, family, dob, nhs = p.given, p.family, p.dob, p.nhs
    addr = p.old_address if p.old_address and org != "GP1" and rng.random() < 0.5 else p.address
    if p.maiden and org in ("RH2", "LA1"):
        family = p.maiden  # an older record still under the maiden name
    if org != "GP1" and given in NICK and rng.random() < 0.3:
        given = NICK[given]
    if rng.random() < typos:
        what = rng.choice(["given", "family", "dob", "dobswap", "nhs", "postcode"])
        if what == "given":
            given = typo(rng, given).title()
        elif what == "family":
            family = typo(rng, family).title()
        elif what == "dob":
            digits = list(dob.replace("-", ""))
            j = rng.choice([3, 5, 7])
            digits[j] = str((int(digits[j]) + 1) % 10)
            dob = f"{''.join(digits[:4])}-{''.join(digits[4:6])}-{''.join(digits[6:])}"
            dob = dob if int(dob[5:7]) <= 12 and 1 <= int(dob[8:]) <= 28 else p.dob
        elif what == "dobswap" and int(dob[8:]) <= 12:
            dob = f"{dob[:4]}-{dob[8:]}-{dob[5:7]}"
        elif what == "nhs":
            nhs = nhs[:4] + str((int(nhs[4]) + 3) % 10) + nhs[5:]  # fails Modulus 11
        elif what == "postcode":
            addr = (addr[0], addr[1][:-1] + "Z")
    resource: dict = {
        "resourceType": "Patient",
        "id": f"{org}-{n}",
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": {"m": "male", "f": "female"}[p.sex],
        "birthDate": dob,
        "address": [{"use": "home", "line": [addr[0]], "postalCode": addr[1]}],
        "managingOrganization": {
            "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code", "value": org}
        },
    }
    if p.phone and rng.random() < 0.8:
        resource["telecom"] = [{"system": "phone", "value": p.phone}]
    if rng.random() >= missing:
        status = "01" if org == "GP1" or rng.random() < 0.8 else "02"
        ext = {
            "url": VERIFICATION_EXTENSION,
            "valueCodeableConcept": {"coding": [{"system": VERIFICATION_SYSTEM, "code": status}]},
        }
        resource["identifier"] = [{"system": NHS_SYSTEM, "value": nhs, "extension": [ext]}]
    return resource


def region(n: int, seed: int = 7, missing: float = 0.10, typos: float = 0.05) -> tuple[list[dict], dict[str, str]]:
    """(Patient resources, patient id → person key)."""
    rng = random.Random(seed + 1)
    patients, truth = [], {}
    for p in population(n, seed):
        for org in p.orgs:
            r = record(rng, p, org, len(patients), missing, typos)
            patients.append(r)
            truth[r["id"]] = p.key
    return patients, truth
