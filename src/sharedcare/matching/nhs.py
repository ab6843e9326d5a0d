"""NHS numbers as matching sees them: normalised, displayed 3-3-4, and with their PDS verification status.

The Modulus 11 and repeated-digit checks live in `sharedcare.fhir.nhs_number` (shared with write validation);
this module adds what matching needs around them (shared/design/domain-uk.md sections 1 and 3).
"""

from __future__ import annotations

import re
from typing import Any

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM, nhs_number_problem

VERIFICATION_EXTENSION = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
VERIFICATION_SYSTEM = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"
VERIFIED = "01"  # number present and verified: the only status that may auto-link or forbid a link

_SEPARATORS = re.compile(r"[\s\-]+")


def normalise_nhs_number(raw: object) -> str | None:
    """The 10-digit form of a typed NHS number (spaces and dashes removed), or None if it is not a valid one.

    Valid means Modulus 11 passes and the number is not one digit repeated (those pass Modulus 11 but are keyed
    in to mean "unknown", so they are never issued)."""
    if not isinstance(raw, str):
        return None
    digits = _SEPARATORS.sub("", raw.strip())
    return digits if nhs_number_problem(digits) is None else None


def display_nhs_number(raw: object) -> str | None:
    """The 3-3-4 display form (`943 476 5919`) of a valid NHS number, or None."""
    digits = normalise_nhs_number(raw)
    return None if digits is None else f"{digits[:3]} {digits[3:6]} {digits[6:]}"


def nhs_identifier(patient: dict[str, Any]) -> dict[str, Any] | None:
    """The Patient's NHS number identifier (UK Core allows one), if any."""
    for ident in patient.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") == NHS_NUMBER_SYSTEM:
            return ident
    return None


def verification_status(identifier: dict[str, Any]) -> str | None:
    """The PDS verification status code (`01`..`08`) carried by the source on the identifier, if it says."""
    for ext in identifier.get("extension") or ():
        if not isinstance(ext, dict) or ext.get("url") != VERIFICATION_EXTENSION:
            continue
        for coding in (ext.get("valueCodeableConcept") or {}).get("coding") or ():
            if isinstance(coding, dict) and isinstance(coding.get("code"), str):
                return coding["code"]
    return None


def patient_nhs_number(patient: dict[str, Any]) -> tuple[str | None, str | None]:
    """(normalised NHS number or None, verification status or None) as the source sent them."""
    ident = nhs_identifier(patient)
    if ident is None:
        return None, None
    return normalise_nhs_number(ident.get("value")), verification_status(ident)
