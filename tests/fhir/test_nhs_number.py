"""NHS number Modulus 11 checks (shared/design/domain-uk.md section 1)."""

from __future__ import annotations

import pytest

from sharedcare.fhir.nhs_number import is_valid_nhs_number, nhs_number_problem


@pytest.mark.parametrize(
    "value",
    [
        "9434765919",  # the Data Dictionary's worked example
        "9000000009",  # PDS sandbox
        "9000000025",  # PDS sandbox, restricted patient
        "9990000018",  # first valid number in the test range
        "4010232137",
        "0000000019",
    ],
)
def test_valid(value: str) -> None:
    assert is_valid_nhs_number(value)
    assert nhs_number_problem(value) is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("9434765918", "check digit should be 9"),
        ("9876544321", "check digit should be 2"),  # the widely quoted example that fails
        ("9912003890", "check digit should be 6"),
        ("943 476 5919", "exactly 10 digits"),
        ("943-476-5919", "exactly 10 digits"),
        ("943476591", "exactly 10 digits"),
        ("94347659190", "exactly 10 digits"),
        ("", "exactly 10 digits"),
        ("94347659l9", "exactly 10 digits"),
        (" 9434765919", "exactly 10 digits"),
        ("９４３４７６５９１９", "exactly 10 digits"),  # full-width digits are not ASCII digits
    ],
)
def test_invalid(value: str, reason: str) -> None:
    assert not is_valid_nhs_number(value)
    problem = nhs_number_problem(value)
    assert problem is not None and reason in problem


@pytest.mark.parametrize("digit", "0123456789")
def test_repeated_digits_are_rejected_although_they_pass_modulus_11(digit: str) -> None:
    assert not is_valid_nhs_number(digit * 10)
    assert "repeated" in (nhs_number_problem(digit * 10) or "")


@pytest.mark.parametrize("last", "0123456789")
def test_stem_with_remainder_10_has_no_valid_number(last: str) -> None:
    assert not is_valid_nhs_number("999000000" + last)
    assert "Modulus 11 gives 10" in (nhs_number_problem("999000000" + last) or "")


def test_non_string_is_invalid() -> None:
    assert nhs_number_problem(9434765919) is not None
    assert nhs_number_problem(None) is not None


def test_exactly_one_check_digit_works_for_a_stem() -> None:
    valid = [d for d in "0123456789" if is_valid_nhs_number("943476591" + d)]
    assert valid == ["9"]
