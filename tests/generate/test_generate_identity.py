"""New identities (adoption, gender reassignment) and the matching error-rate knobs of the generator."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM
from sharedcare.generate import RegionConfig, iter_region_records
from sharedcare.generate.feeds import OrgRecord
from sharedcare.matching.compare import compare_dob
from sharedcare.matching.features import extract

PEOPLE = 4000


def nhs_of(patient: dict[str, Any]) -> str | None:
    return next((i["value"] for i in patient.get("identifier", []) if i["system"] == NHS_NUMBER_SYSTEM), None)


@pytest.fixture(scope="module")
def records() -> list[OrgRecord]:
    return [r for r in iter_region_records(RegionConfig(patients=PEOPLE, seed=31)) if r.person_key]


def test_a_new_identity_has_its_own_key_number_and_names_and_the_old_records_remain(records: list[OrgRecord]) -> None:
    by_key: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        by_key[r.person_key or ""].append(r.resources[0])
    changed = [k.removesuffix("-2") for k in by_key if k.endswith("-2")]
    assert len(changed) >= 10
    kinds = set()
    for key in changed:
        old, new = [extract(p) for p in by_key[key]], [extract(p) for p in by_key[key + "-2"]]
        assert compare_dob(old[0], new[0]) in (1, 2, 3)  # the same birth date (as sources key it)
        old_numbers, new_numbers = {r.nhs for r in old} - {None}, {r.nhs for r in new} - {None}
        assert not old_numbers & new_numbers  # a second NHS number
        assert any(not p["active"] for p in by_key[key])  # the practice's deducted registration of the first
        assert any(r.new_identity for r in new) and not any(r.new_identity for r in old)  # the practice marks it
        if {r.sex for r in old} != {r.sex for r in new}:
            kinds.add("gender")
            assert not {r.given[0] for r in old} & {r.given[0] for r in new}
        else:
            kinds.add("adoption")
            assert not set(old[0].family) & set(new[0].family)
    assert kinds == {"adoption", "gender"}
    everyone_else = {nhs_of(p) for k, ps in by_key.items() for p in ps if k.removesuffix("-2") not in changed}
    assert not {nhs_of(p) for k in changed for p in by_key[k]} & everyone_else  # nobody else's number


def test_the_new_identity_tag_is_the_one_the_matcher_reads(records: list[OrgRecord]) -> None:
    tagged = [r.resources[0] for r in records if extract(r.resources[0]).new_identity]
    assert tagged and all(r.person_key and r.person_key.endswith("-2") for r in records if r.resources[0] in tagged)
    tag = tagged[0]["meta"]["tag"][0]
    assert (tag["system"], tag["code"]) == ("https://sharedcare.example/fhir/CodeSystem/mpi", "new-identity")


def test_error_knobs_reach_the_requested_rates_and_change_nothing_else(records: list[OrgRecord]) -> None:
    knobbed = [r for r in iter_region_records(RegionConfig(patients=PEOPLE, seed=31, missing_nhs=0.1, typos=0.05))]
    knobbed = [r for r in knobbed if r.person_key]
    assert [r.patient_id for r in knobbed] == [r.patient_id for r in records]
    assert all(a.resources[1:] == b.resources[1:] for a, b in zip(records, knobbed, strict=True))
    patients = [(a.resources[0], b.resources[0]) for a, b in zip(records, knobbed, strict=True)]
    without = sum(nhs_of(b) is None for _, b in patients) / len(patients)
    assert 0.09 < without < 0.13  # at least 10 % from every source; councils already send fewer
    typoed = sum(_demographics(a) != _demographics(b) and nhs_of(b) is not None for a, b in patients)
    assert 0.035 < typoed / len(patients) < 0.065


def test_error_rates_must_be_shares() -> None:
    with pytest.raises(ValueError, match="typos"):
        RegionConfig(typos=1.5)


def _demographics(p: dict[str, Any]) -> tuple[Any, ...]:
    name = p["name"][0]
    postcode = p["address"][0]["postalCode"] if p.get("address") else None
    return name.get("given", [None])[0], name.get("family"), p["birthDate"], nhs_of(p), postcode
