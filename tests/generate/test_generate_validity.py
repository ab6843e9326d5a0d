"""Everything generated passes the server's own validation, and the ground truth matches the Patients written."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import orjson

from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM, is_valid_nhs_number
from sharedcare.fhir.validation import Validator
from sharedcare.generate import RegionConfig, generate_region, iter_region_records


def test_every_resource_of_a_few_hundred_people_is_valid() -> None:
    validator = Validator()
    types: Counter[str] = Counter()
    problems = []
    for record in iter_region_records(RegionConfig(patients=300, seed=21)):
        for resource in record.resources:
            types[resource["resourceType"]] += 1
            errors = [i for i in validator.validate(resource) if i.severity in ("error", "fatal")]
            if errors:
                problems.append((resource["resourceType"], resource["id"], errors[0].diagnostics))
    assert problems == []
    expected = {
        "Patient",
        "Organization",
        "Practitioner",
        "Condition",
        "Observation",
        "MedicationRequest",
        "AllergyIntolerance",
        "Immunization",
        "Encounter",
        "Procedure",
        "ServiceRequest",
        "CarePlan",
        "DocumentReference",
        "Appointment",
        "QuestionnaireResponse",
    }
    assert expected <= set(types)


def test_nhs_numbers_are_valid_and_in_the_test_range() -> None:
    seen = 0
    for record in iter_region_records(RegionConfig(patients=400, seed=22)):
        for resource in record.resources:
            for ident in resource.get("identifier", []) if resource["resourceType"] == "Patient" else []:
                if ident.get("system") == NHS_NUMBER_SYSTEM:
                    seen += 1
                    assert ident["value"].startswith("999") and is_valid_nhs_number(ident["value"])
    assert seen > 400


def test_ground_truth_matches_the_patients_written(tmp_path: Path) -> None:
    generate_region(RegionConfig(patients=150, seed=23, out=tmp_path))
    with (tmp_path / "ground_truth.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["organisation_ods", "patient_id", "person_key"]
    written = set()
    for path in (tmp_path / "ndjson").glob("*/Patient.ndjson"):
        for line in path.read_bytes().splitlines():
            written.add((path.parent.name, orjson.loads(line)["id"]))
    assert {(r["organisation_ods"], r["patient_id"]) for r in rows} == written
    assert len(rows) == len(written)
    people = {r["person_key"].split("-")[0] for r in rows}  # P0000123-2: the same human's new identity
    assert len(people) == 150  # everyone is registered with a practice
    per_person = Counter(r["person_key"] for r in rows)
    assert max(per_person.values()) > 1  # some people appear in several feeds


def test_same_person_usually_carries_the_same_nhs_number_across_feeds(tmp_path: Path) -> None:
    numbers: dict[str, set[str]] = {}
    absent = 0
    for record in iter_region_records(RegionConfig(patients=400, seed=24)):
        if record.person_key is None:
            continue
        patient = record.resources[0]
        nhs = [i["value"] for i in patient["identifier"] if i["system"] == NHS_NUMBER_SYSTEM]
        if not nhs:
            absent += 1
        numbers.setdefault(record.person_key, set()).update(nhs)
    consistent = sum(1 for values in numbers.values() if len(values) <= 1)
    assert consistent / len(numbers) > 0.97
    assert absent > 0 or len(numbers) < 100


def test_sensitive_items_carry_security_labels() -> None:
    labelled = Counter()
    for record in iter_region_records(RegionConfig(patients=1500, seed=25)):
        for resource in record.resources:
            codes = {s["code"] for s in resource.get("meta", {}).get("security", [])}
            if "R" in codes:
                labelled[resource["resourceType"]] += 1
    assert labelled["Condition"] + labelled["Flag"] + labelled["Procedure"] > 0
