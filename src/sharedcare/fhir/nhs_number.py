"""NHS number checks (NHS Data Dictionary, Modulus 11; see shared/design/domain-uk.md section 1).

The NHS number is sharedcare's join key, so a mistyped one must never get in: every FHIR identifier with the
NHS number system is checked on write.
"""

from __future__ import annotations

NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)
_DIGITS = frozenset("0123456789")


def nhs_number_problem(value: object) -> str | None:
    """Why `value` is not a valid NHS number (as a FHIR identifier value), or None when it is valid."""
    if not isinstance(value, str):
        return "an NHS number must be a string of 10 digits"
    if len(value) != 10 or not _DIGITS.issuperset(value):
        return "an NHS number must be exactly 10 digits, with no spaces or other characters"
    if value == value[0] * 10:
        # Every repeated-digit string passes Modulus 11; they are keyed in to mean "unknown".
        return "an NHS number cannot be one digit repeated"
    total = sum(int(d) * w for d, w in zip(value[:9], _WEIGHTS, strict=True))
    check = 11 - total % 11
    if check == 11:
        check = 0
    if check == 10:
        return "no valid NHS number exists with these first 9 digits (Modulus 11 gives 10)"
    if check != int(value[9]):
        return f"the check digit should be {check} (Modulus 11)"
    return None


def is_valid_nhs_number(value: str) -> bool:
    """True for a 10-digit string that passes Modulus 11 and is not one digit repeated."""
    return nhs_number_problem(value) is None
