"""NHS numbers as matching sees them: normalised, displayed 3-3-4, validated, with the source's verification."""

from __future__ import annotations

import pytest
from conftest import make_patient

from sharedcare.matching.nhs import display_nhs_number, normalise_nhs_number, patient_nhs_number


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9434765919", "9434765919"),
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        (" 943 - 476 - 5919 ", "9434765919"),
        ("9434765918", None),  # check digit wrong
        ("9876544321", None),  # the widely quoted example fails Modulus 11
        ("4444444444", None),  # repeated digits pass Modulus 11 but are never issued
        ("0000000000", None),
        ("9990000000", None),  # Modulus 11 gives 10: no valid number for this stem
        ("94347659", None),
        ("943476591X", None),
        (None, None),
        (9434765919, None),
    ],
)
def test_normalise(raw: object, expected: str | None) -> None:
    assert normalise_nhs_number(raw) == expected


def test_display_is_3_3_4() -> None:
    assert display_nhs_number("9434765919") == "943 476 5919"
    assert display_nhs_number("943-476-5919") == "943 476 5919"
    assert display_nhs_number("1111111111") is None


def test_verification_status_taken_from_the_source() -> None:
    assert patient_nhs_number(make_patient(nhs="943 476 5919", status="01")) == ("9434765919", "01")
    assert patient_nhs_number(make_patient(nhs="9434765919", status="02")) == ("9434765919", "02")
    assert patient_nhs_number(make_patient(nhs="9434765919", status=None)) == ("9434765919", None)
    assert patient_nhs_number(make_patient(nhs=None)) == (None, None)


def test_an_invalid_number_counts_as_absent_for_matching() -> None:
    assert patient_nhs_number(make_patient(nhs="9434765918")) == (None, "01")
