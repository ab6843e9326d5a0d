"""Synthetic NHS numbers: 999 test range only, valid under Modulus 11, one per person."""

from __future__ import annotations

from random import Random

from sharedcare.fhir.nhs_number import is_valid_nhs_number
from sharedcare.generate.nhs_numbers import CAPACITY, NhsNumbers, _slot_number, mistyped


def test_first_slot_is_the_first_valid_test_number() -> None:
    assert _slot_number(0) == "9990000018"


def test_slots_are_valid_distinct_and_in_the_test_range() -> None:
    numbers = [_slot_number(s) for s in range(0, CAPACITY, 997)] + [_slot_number(CAPACITY - 1)]
    assert len(set(numbers)) == len(numbers)
    assert all(n.startswith("999") and is_valid_nhs_number(n) for n in numbers)
    assert "9999999999" not in numbers


def test_people_get_distinct_numbers_that_depend_on_the_seed() -> None:
    first, other = NhsNumbers(1), NhsNumbers(2)
    numbers = {first.for_person(i) for i in range(5000)}
    assert len(numbers) == 5000
    assert first.for_person(0) != other.for_person(0)


def test_mistyped_numbers_still_pass_modulus_11_but_differ() -> None:
    rng = Random(3)
    for i in range(200):
        original = _slot_number(i * 31)
        typo = mistyped(original, rng)
        assert typo != original and typo.startswith("999") and is_valid_nhs_number(typo)
