"""Pair decisions on hand-made hard cases, with the committed weights: what links, what is reviewed, what never.

A false link shows one person's history to another's clinician, so the cases that look alike but are different
people (twins, neighbours, mother and baby) must never link; the cases that look different but are one person
(married name, transposed date, typos) must link or at least reach a person in the review queue.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import make_patient

from sharedcare.matching.compare import FIELDS, compare
from sharedcare.matching.features import NEW_IDENTITY_TAG, extract
from sharedcare.matching.rules import Outcome, PairDecision, decide, match_grade
from sharedcare.matching.weights import load_weights

W = load_weights()
NHS_A, NHS_B = "9990000018", "9434765919"


def decision(a: dict[str, Any], b: dict[str, Any]) -> PairDecision:
    return decide(extract(a, "a"), extract(b, "b"), W)


def level(a: dict[str, Any], b: dict[str, Any], field: str) -> int:
    return compare(extract(a, "a"), extract(b, "b"))[FIELDS.index(field)]


def test_same_verified_nhs_number_and_birth_date_links_at_level4() -> None:
    d = decision(make_patient("GP", nhs=NHS_A), make_patient("TRUST", nhs=NHS_A, given="Amy", line="Flat 2"))
    assert d.outcome is Outcome.LINK and d.assurance == "level4"


def test_same_verified_nhs_number_with_a_different_birth_date_is_reviewed() -> None:
    d = decision(make_patient(nhs=NHS_A), make_patient(nhs=NHS_A, dob="1961-11-27"))
    assert d.outcome is Outcome.REVIEW


def test_different_verified_nhs_numbers_never_link_whatever_the_demographics() -> None:
    d = decision(make_patient(nhs=NHS_A), make_patient(nhs=NHS_B))
    assert d.outcome is Outcome.NEVER
    assert match_grade(d, W) == "certainly-not"


def test_different_nhs_numbers_one_unverified_never_link_on_demographics() -> None:
    d = decision(make_patient(nhs=NHS_A), make_patient(nhs=NHS_B, status="02"))
    assert d.outcome is Outcome.REVIEW  # identical demographics: a person decides which number is wrong


@pytest.mark.parametrize("twin_nhs", [None, NHS_B])
def test_twins_same_birth_date_different_first_names_do_not_link(twin_nhs: str | None) -> None:
    jack = make_patient(nhs=NHS_A, given="Jack", gender="male", dob="2015-06-01")
    jacob = make_patient(nhs=twin_nhs, status="02", given="Jacob", gender="male", dob="2015-06-01")
    assert decision(jack, jacob).outcome in (Outcome.NONE, Outcome.REVIEW)


def test_twins_with_similar_names_and_no_nhs_number_are_not_linked_automatically() -> None:
    a = make_patient(given="Jack", gender="male", dob="2015-06-01")
    b = make_patient(given="Jake", gender="male", dob="2015-06-01")
    assert decision(a, b).outcome is not Outcome.LINK


def test_same_name_neighbours_are_different_people() -> None:
    a = make_patient(given="David", family="Smith", gender="male", dob="1970-02-11", line="3 Oak Avenue")
    b = make_patient(
        given="David",
        family="Smith",
        gender="male",
        dob="1983-09-30",
        line="5 Oak Avenue",
        postcode="SX1 4AD",
        phone=None,
    )
    assert decision(a, b).outcome is not Outcome.LINK


def test_mother_and_baby_at_the_same_address_are_different_people() -> None:
    mother = make_patient(given="Sarah", dob="1990-05-14")
    baby = make_patient(given="Isla", dob="2024-01-02")
    assert decision(mother, baby).outcome is Outcome.NONE


def test_changed_surname_on_marriage_at_the_same_address_links() -> None:
    before = make_patient("TRUST", given="Emily", family="Walker")
    after = make_patient("GP", given="Emily", family="Hughes")
    assert decision(before, after).outcome is Outcome.LINK


def test_a_maiden_name_kept_on_the_record_counts_as_the_same_surname() -> None:
    before = make_patient(given="Emily", family="Walker", line="9 Elm Way", postcode="SX9 1ZZ", phone=None)
    after = make_patient(given="Emily", family="Hughes", old_family="Walker")
    assert level(before, after, "family") == 1
    assert decision(before, after).outcome is Outcome.LINK


def test_changed_surname_and_moved_reaches_review_not_silence() -> None:
    before = make_patient(given="Emily", family="Walker", line="9 Elm Way", postcode="SX9 1ZZ", phone=None)
    after = make_patient(given="Emily", family="Hughes")
    assert decision(before, after).outcome is Outcome.REVIEW


def test_day_and_month_transposed_birth_date_still_links() -> None:
    a, b = make_patient(dob="1980-03-04"), make_patient(dob="1980-04-03")
    assert level(a, b, "dob") == 2
    assert decision(a, b).outcome is Outcome.LINK


def test_one_digit_wrong_in_the_birth_date_still_links() -> None:
    assert decision(make_patient(dob="1980-03-04"), make_patient(dob="1981-03-04")).outcome is Outcome.LINK


def test_a_mistyped_nhs_number_counts_as_absent_and_demographics_decide() -> None:
    typo = make_patient(nhs="9990000019")  # fails Modulus 11
    assert extract(typo).nhs is None
    assert decision(make_patient(nhs=NHS_A), typo).outcome is Outcome.LINK


def test_nicknames_and_spelling_variants_agree_on_first_name() -> None:
    assert level(make_patient(given="William"), make_patient(given="Bill"), "given") == 3
    assert level(make_patient(given="Catherine"), make_patient(given="Kathryn"), "given") == 3
    assert level(make_patient(given="Ethan"), make_patient(given="Etthan"), "given") == 2


def test_a_new_identity_is_never_matched_on_demographics() -> None:
    new = make_patient(nhs=NHS_B)
    new["meta"] = {"tag": [{"system": "https://sharedcare.example/fhir/CodeSystem/mpi", "code": NEW_IDENTITY_TAG}]}
    assert decision(make_patient(nhs=None), new).outcome is Outcome.NEVER
    assert decision(make_patient(nhs=NHS_A, status="02"), new).outcome is Outcome.NEVER


def test_match_weight_orders_evidence() -> None:
    strong = decision(make_patient(), make_patient())
    weaker = decision(make_patient(), make_patient(line="4 Park Lane", postcode="SX2 7QQ", phone=None))
    assert strong.weight > weaker.weight
    assert W.probability(strong.weight) > 0.999


def test_an_nhs_number_one_digit_out_with_a_recomputed_check_digit_is_a_typo_level() -> None:
    a = make_patient(nhs="9991062300", status="02")
    b = make_patient(nhs="9991962301")
    assert level(a, b, "nhs") == 2
    assert level(make_patient(nhs=NHS_A), make_patient(nhs="9000000009"), "nhs") == 3


def test_a_parent_and_child_of_the_same_name_at_one_address_do_not_link() -> None:
    father = make_patient(given="John", family="Smith", gender="male", dob="1960-04-02")
    son = make_patient(given="John", family="Smith", gender="male", dob="1988-11-23")
    assert decision(father, son).outcome is not Outcome.LINK
