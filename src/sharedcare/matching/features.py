"""A source Patient reduced to what matching compares: normalised once on arrival, stored beside the MPI link.

Every name, address and phone the source sent counts (current and old), because a person who married or moved is
still the same person: the comparison takes the best agreement over the pairs.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, fields
from typing import Any

import jellyfish
import orjson

from sharedcare.matching.nhs import VERIFIED, patient_nhs_number

ODS_SYSTEMS = ("https://fhir.nhs.uk/Id/ods-organization-code", "https://fhir.nhs.uk/Id/ods-site-code")
_NOT_LETTERS = re.compile(r"[^a-z ]+")
_SPACES = re.compile(r"\s+")
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_TITLES = frozenset({"mr", "mrs", "ms", "miss", "dr", "prof", "rev", "sir", "master", "mx"})


@dataclass(frozen=True, slots=True)
class MatchRecord:
    """The comparable parts of one source Patient. Tuples hold every value the source sent, current first."""

    patient_id: str
    org: str | None = None
    nhs: str | None = None  # valid NHS number (Modulus 11), 10 digits
    nhs_status: str | None = None  # PDS verification status as sent: "01" verified
    given: tuple[str, ...] = ()  # first given name of each HumanName
    middle: tuple[str, ...] = ()  # other given names
    family: tuple[str, ...] = ()  # family names, hyphenated parts also apart
    dob: str | None = None  # YYYYMMDD
    sex: str | None = None  # m | f | o
    postcodes: tuple[str, ...] = ()  # no spaces, upper case
    lines: tuple[str, ...] = ()  # first address line, normalised
    phones: tuple[str, ...] = ()  # national format digits
    emails: tuple[str, ...] = ()
    new_identity: bool = False  # the source marks this NHS number as a new identity (adoption, gender reassignment)

    @property
    def verified(self) -> bool:
        return self.nhs is not None and self.nhs_status == VERIFIED

    def to_json(self) -> bytes:
        return orjson.dumps([getattr(self, name) for name in _FIELD_NAMES])

    @classmethod
    def from_json(cls, raw: bytes | str) -> MatchRecord:
        values = orjson.loads(raw)
        return cls(*(tuple(v) if isinstance(v, list) else v for v in values))


_FIELD_NAMES = tuple(f.name for f in fields(MatchRecord))


def normalise_name(raw: object) -> str:
    """Lower case ASCII letters and single spaces: accents folded, punctuation (O'Brien, Smith-Jones) dropped."""
    if not isinstance(raw, str):
        return ""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    text = _NOT_LETTERS.sub(" ", text.replace("'", "").replace("-", " "))
    return _SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=1 << 16)
def phonetic(name: str) -> str:
    """A phonetic code (Metaphone) so Catherine/Kathryn and Smith/Smyth agree; empty for an empty name. Cached:
    names repeat, and every comparison and blocking key asks."""
    return jellyfish.metaphone(name) if name else ""


def normalise_postcode(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    code = raw.replace(" ", "").upper()
    return code if _POSTCODE.match(code) else None


@functools.lru_cache(maxsize=1 << 16)
def postcode_parts(code: str) -> tuple[str, str]:
    """(outward code, sector) e.g. ("LS1", "LS1 4") for LS14AB."""
    m = _POSTCODE.match(code)
    if not m:
        return code, code
    return m.group(1), f"{m.group(1)} {m.group(2)[0]}"


def normalise_phone(raw: object) -> str | None:
    if not isinstance(raw, str):
        return None
    digits = re.sub(r"\D", "", raw)
    if digits.startswith("44") and len(digits) == 12:
        digits = "0" + digits[2:]
    return digits if len(digits) >= 10 else None


def normalise_line(raw: object) -> str:
    """An address line in lower case letters and digits, so "12, High St." and "12 High St" agree."""
    if not isinstance(raw, str):
        return ""
    text = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode().lower()
    text = re.sub(r"[^a-z0-9 ]+", " ", text)
    return _SPACES.sub(" ", text).strip()


def source_organisation(patient: dict[str, Any]) -> str | None:
    """The organisation that sent this record: managingOrganization (ODS identifier or Organization id), else
    the organisation its `meta.source` names. Each organisation's feed sends its own Patient: this is its owner."""
    org = patient.get("managingOrganization")
    if isinstance(org, dict):
        ident = org.get("identifier")
        if isinstance(ident, dict) and isinstance(ident.get("value"), str):
            return ident["value"]
        ref = org.get("reference")
        if isinstance(ref, str) and ref.startswith("Organization/"):
            return ref.removeprefix("Organization/")
    return meta_source_organisation(patient)


SOURCE_URN = "urn:sharedcare:source:"


def meta_source_organisation(resource: dict[str, Any]) -> str | None:
    """The ODS code `meta.source` names, in the forms the server stamps and accepts (see sharedcare.access):
    `urn:sharedcare:source:<ODS>[/client]`, or a URL ending `/Organization/<ODS>` (optionally `#...`)."""
    source = (resource.get("meta") or {}).get("source")
    if not isinstance(source, str):
        return None
    if source.startswith(SOURCE_URN):
        org = source[len(SOURCE_URN) :].split("/", 1)[0]
        return org if org and org != "-" else None
    parts = source.split("#", 1)[0].rstrip("/").split("/")
    return parts[-1] if len(parts) >= 2 and parts[-2] == "Organization" and parts[-1] else None


NEW_IDENTITY_SYSTEM = "https://sharedcare.example/fhir/CodeSystem/mpi"
NEW_IDENTITY_TAG = "new-identity"  # meta.tag (NEW_IDENTITY_SYSTEM) a source puts on the record of a new identity


def _names(patient: dict[str, Any]) -> tuple[list[str], list[str], list[str]]:
    given: list[str] = []
    middle: list[str] = []
    family: list[str] = []
    names = [n for n in patient.get("name") or () if isinstance(n, dict)]
    names.sort(key=lambda n: n.get("use") in ("old", "maiden"))  # current names first
    for name in names:
        tokens = [t for g in name.get("given") or () for t in normalise_name(g).split() if t not in _TITLES]
        if tokens:
            _add(given, tokens[0])
            for t in tokens[1:]:
                _add(middle, t)
        fam = normalise_name(name.get("family"))
        if fam:
            _add(family, fam.replace(" ", ""))
            for part in fam.split():
                if len(part) > 1:
                    _add(family, part)
    return given, middle, family


def _add(values: list[str], value: str) -> None:
    if value and value not in values:
        values.append(value)


def _addresses(patient: dict[str, Any]) -> tuple[list[str], list[str]]:
    postcodes: list[str] = []
    lines: list[str] = []
    addresses = [a for a in patient.get("address") or () if isinstance(a, dict)]
    addresses.sort(key=lambda a: a.get("use") == "old" or bool((a.get("period") or {}).get("end")))
    for addr in addresses:
        pc = normalise_postcode(addr.get("postalCode"))
        if pc:
            _add(postcodes, pc)
        first = next((x for x in addr.get("line") or () if isinstance(x, str) and x.strip()), None)
        line = normalise_line(first)
        if line:
            _add(lines, line)
    return postcodes, lines


def _telecoms(patient: dict[str, Any]) -> tuple[list[str], list[str]]:
    phones: list[str] = []
    emails: list[str] = []
    for t in patient.get("telecom") or ():
        if not isinstance(t, dict):
            continue
        if t.get("system") in ("phone", "sms"):
            p = normalise_phone(t.get("value"))
            if p:
                _add(phones, p)
        elif t.get("system") == "email" and isinstance(t.get("value"), str):
            _add(emails, t["value"].strip().lower())
    return phones, emails


def _dob(raw: object) -> str | None:
    if isinstance(raw, str) and len(raw) == 10 and raw[4] == "-" and raw[7] == "-":
        digits = raw.replace("-", "")
        return digits if digits.isdigit() else None
    return None


def _sex(raw: object) -> str | None:
    return {"male": "m", "female": "f", "other": "o"}.get(raw) if isinstance(raw, str) else None


def _new_identity(patient: dict[str, Any]) -> bool:
    """Whether the source marks this record as a new identity (adoption, gender reassignment: a new NHS number was
    issued and the old one sealed). No UK Core or PDS element says so, hence sharedcare's own tag."""
    tags = (patient.get("meta") or {}).get("tag") or ()
    return any(
        isinstance(t, dict) and t.get("system") == NEW_IDENTITY_SYSTEM and t.get("code") == NEW_IDENTITY_TAG
        for t in tags
    )


def extract(patient: dict[str, Any], patient_id: str | None = None) -> MatchRecord:
    """The MatchRecord of a Patient resource as its organisation sent it."""
    nhs, status = patient_nhs_number(patient)
    given, middle, family = _names(patient)
    postcodes, lines = _addresses(patient)
    phones, emails = _telecoms(patient)
    return MatchRecord(
        patient_id=patient_id or str(patient.get("id") or ""),
        org=source_organisation(patient),
        nhs=nhs,
        nhs_status=status,
        given=tuple(given),
        middle=tuple(middle),
        family=tuple(family),
        dob=_dob(patient.get("birthDate")),
        sex=_sex(patient.get("gender")),
        postcodes=tuple(postcodes),
        lines=tuple(lines),
        phones=tuple(phones),
        emails=tuple(emails),
        new_identity=_new_identity(patient),
    )
