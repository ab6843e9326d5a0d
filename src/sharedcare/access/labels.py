"""Sensitivity categories of a resource: what is withheld outside its source organisation by default.

Sources, in order:
- `meta.security` with the v3 Confidentiality codes R (restricted) and V (very restricted) → `restricted`;
- `meta.security` with v3 ActCode sensitivity codes: SEX, STD, HIV → `sexual-health`; SDV → `safeguarding`;
  any other recognised sensitivity code (ETH, PSY, GDIS, ...) → `restricted`;
- `meta.security` (any system) whose code names a category or an alias (e.g. `ivf`, `TOP`, `third-party`);
- clinical codes (SNOMED CT) of a few well-known concepts of the withheld categories, for data not labelled.

The categories follow the GP summary exclusion sets (IVF, STIs, termination of pregnancy, gender reassignment)
plus safeguarding and third-party information (domain-uk.md §6).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
SNOMED = "http://snomed.info/sct"
CATEGORY_SYSTEM = "https://sharedcare.nhs.example/CodeSystem/sensitivity"

ACT_CODE_CATEGORIES = {
    "SEX": "sexual-health",
    "STD": "sexual-health",
    "HIV": "sexual-health",
    "SDV": "safeguarding",
}
OTHER_SENSITIVITY = frozenset(
    {"ETH", "ETHUD", "GDIS", "MH", "PSY", "PSYTHPN", "SCA", "SICKLE", "SOC", "SUD", "TBOO", "DEMO", "DIA", "DRGIS"}
)
ALIASES = {
    "sexual-health": "sexual-health",
    "sti": "sexual-health",
    "std": "sexual-health",
    "hiv": "sexual-health",
    "ivf": "ivf",
    "assisted-fertility": "ivf",
    "fertility": "ivf",
    "termination": "termination",
    "termination-of-pregnancy": "termination",
    "top": "termination",
    "gender-reassignment": "gender-reassignment",
    "gender-recognition": "gender-reassignment",
    "safeguarding": "safeguarding",
    "domestic-abuse": "safeguarding",
    "third-party": "third-party",
    "thirdparty": "third-party",
    "restricted": "restricted",
}
# A few SNOMED CT concepts per category, for unlabelled data; labels in meta.security remain the main source.
SNOMED_CATEGORIES = {
    "8098009": "sexual-health",  # Sexually transmitted infectious disease
    "86406008": "sexual-health",  # Human immunodeficiency virus infection
    "165816005": "sexual-health",  # HIV positive
    "52947006": "ivf",  # In vitro fertilization
    "63487001": "ivf",  # Assisted fertilisation (procedure)
    "57797005": "termination",  # Induced termination of pregnancy
    "386639001": "termination",  # Termination of pregnancy
    "93461009": "gender-reassignment",  # Gender dysphoria
    "407377005": "gender-reassignment",  # Female-to-male transsexual
    "407376001": "gender-reassignment",  # Male-to-female transsexual
    "225337009": "safeguarding",  # Suspected child abuse
    "397940009": "safeguarding",  # Victim of domestic abuse
    "895501000000101": "safeguarding",  # Child in need (UK)
}
CODE_FIELDS = ("code", "type", "category", "valueCodeableConcept", "reasonCode", "vaccineCode")


def categories(resource: dict[str, Any]) -> frozenset[str]:
    """Every sensitivity category the resource carries (empty: nothing withheld)."""
    found = set(_from_security(resource.get("meta", {}).get("security") or []))
    found.update(_from_codes(resource))
    return frozenset(found)


def _from_security(security: list[Any]) -> Iterator[str]:
    for coding in security:
        if not isinstance(coding, dict):
            continue
        system, code = coding.get("system"), str(coding.get("code") or "")
        if system == CONFIDENTIALITY:
            if code in ("R", "V"):
                yield "restricted"
        elif system == ACT_CODE:
            if code in ACT_CODE_CATEGORIES:
                yield ACT_CODE_CATEGORIES[code]
            elif code in OTHER_SENSITIVITY:
                yield "restricted"
        elif code.lower() in ALIASES:
            yield ALIASES[code.lower()]


def _from_codes(resource: dict[str, Any]) -> Iterator[str]:
    for field in CODE_FIELDS:
        value = resource.get(field)
        for concept in value if isinstance(value, list) else [value]:
            if not isinstance(concept, dict):
                continue
            for coding in concept.get("coding") or []:
                if isinstance(coding, dict) and coding.get("system") == SNOMED:
                    category = SNOMED_CATEGORIES.get(str(coding.get("code")))
                    if category:
                        yield category
