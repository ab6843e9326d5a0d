"""Matching error rates set from outside: the knobs an evaluation turns (`sharedcare generate --missing-nhs
--typos`, `RegionConfig.missing_nhs` / `typos`).

Left unset, each source keeps its own habits (patients.py: a GP practice almost always sends a traced NHS number, a
council often none). `missing_nhs` raises every source to at least that share of records without an NHS number
(a source already worse keeps its own rate). `typos` gives that share of records one more keying error on top of
the sources' own drift: a letter in the first name or surname, a digit or a day/month swap in the date of birth,
a digit of the NHS number (check digit recomputed, so it still passes Modulus 11, and no longer marked verified),
or a character of the postcode. Each record draws from a random stream of its own, so setting a knob changes
nothing else in the region.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from random import Random

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM
from sharedcare.generate.nhs_numbers import mistyped
from sharedcare.types import JSON

UNIT_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


@dataclass(frozen=True, slots=True)
class ErrorRates:
    missing_nhs: float | None = None  # each source sends at least this share of records without an NHS number
    typos: float = 0.0  # share of records with one extra keying error

    def __post_init__(self) -> None:
        for name in ("missing_nhs", "typos"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a share between 0 and 1, got {value}")

    @property
    def active(self) -> bool:
        return self.missing_nhs is not None or self.typos > 0

    def as_dict(self) -> dict[str, float | None]:
        return {"missing_nhs": self.missing_nhs, "typos": self.typos}


def keying_slip(name: str, rng: Random) -> str:
    """A keying slip in a name: two letters swapped, one doubled or one dropped."""
    if len(name) < 4:
        return name
    i = rng.randrange(1, len(name) - 1)
    kind = rng.randrange(3)
    if kind == 0:
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == 1:
        return name[: i + 1] + name[i] + name[i + 1 :]
    return name[:i] + name[i + 1 :]


def apply_errors(patient: JSON, own_missing: float, rates: ErrorRates, rng: Random) -> None:
    """Bring one source Patient to the requested error rates (in place); `own_missing` is its source's own rate."""
    if rates.missing_nhs is not None and rates.missing_nhs > own_missing:
        extra = (rates.missing_nhs - own_missing) / (1.0 - own_missing) if own_missing < 1 else 0.0
        if rng.random() < extra:
            patient["identifier"] = [i for i in patient.get("identifier", []) if i.get("system") != NHS_NUMBER_SYSTEM]
    if rates.typos and rng.random() < rates.typos:
        _one_typo(patient, rng)


def _one_typo(patient: JSON, rng: Random) -> None:
    name = patient["name"][0]
    nhs = next((i for i in patient.get("identifier", []) if i.get("system") == NHS_NUMBER_SYSTEM), None)
    what = rng.choice(("given", "family", "dob", "nhs", "postcode"))
    if what == "given" and name.get("given"):
        name["given"][0] = _changed(name["given"][0], keying_slip, rng)
    elif what == "family" and name.get("family"):
        name["family"] = _changed(name["family"], keying_slip, rng)
    elif what == "dob":
        patient["birthDate"] = _date_slip(date.fromisoformat(patient["birthDate"]), rng).isoformat()
    elif what == "nhs" and nhs is not None:
        nhs["value"] = mistyped(nhs["value"], rng)
        for ext in nhs.get("extension", []):  # a mistyped number is not the traced one
            ext["valueCodeableConcept"]["coding"][0].update(code="02", display="Number present but not traced")
    elif what == "postcode" and patient.get("address"):
        address = patient["address"][0]
        address["postalCode"] = address["postalCode"][:-1] + rng.choice(
            UNIT_LETTERS.replace(address["postalCode"][-1], "")
        )


def _changed(name: str, slip, rng: Random) -> str:  # type: ignore[no-untyped-def]
    for _ in range(5):
        out = slip(name, rng)
        if out != name:
            return out
    return name[:-1] + rng.choice("aeiou".replace(name[-1], "")) if len(name) > 1 else name


def _date_slip(born: date, rng: Random) -> date:
    if born.day <= 12 and born.day != born.month and rng.random() < 0.5:
        return date(born.year, born.day, born.month)  # day and month swapped
    for _ in range(10):
        digits = list(born.isoformat().replace("-", ""))
        k = rng.choice((3, 5, 7))  # a digit of the year, month or day
        digits[k] = str((int(digits[k]) + rng.choice((1, 9))) % 10)
        text = "".join(digits)
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            continue
    return born
