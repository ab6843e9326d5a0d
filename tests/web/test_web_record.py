"""The record view model, display rules and charts, on small hand-made `$everything` entries (no server)."""

from __future__ import annotations

from datetime import date

from sharedcare.web import display as d
from sharedcare.web.charts import line_chart, nice_ticks
from sharedcare.web.gateway import suppressed_notices
from sharedcare.web.record import DUPLICATE_URL, SOURCE_ORG_URL, build_record

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"


def _entry(resource: dict, ods: str, *duplicates: str) -> dict:
    ext = [{"url": SOURCE_ORG_URL, "valueReference": {"identifier": {"system": ODS, "value": ods}}}]
    ext += [{"url": DUPLICATE_URL, "valueReference": {"reference": ref}} for ref in duplicates]
    return {"extension": ext, "resource": resource}


def _patient(pid: str, ods: str, gp: str) -> dict:
    return {
        "resourceType": "Patient",
        "id": pid,
        "gender": "female",
        "birthDate": "1941-07-27",
        "identifier": [{"system": d.NHS_NUMBER_SYSTEM, "value": "9998825407"}],
        "name": [{"use": "official", "family": "Gray", "given": ["Emily", "Ava"], "prefix": ["Mrs"]}],
        "address": [{"use": "home", "line": ["76 Birch Road"], "city": "Fernley", "postalCode": "SC17 0GD"}],
        "managingOrganization": {"reference": f"Organization/{ods}", "display": f"Org {ods}"},
        "generalPractitioner": [{"identifier": {"system": ODS, "value": gp}, "display": f"Org {gp}"}],
        "meta": {"lastUpdated": "2025-01-01T00:00:00Z"},
    }


def _condition(cid: str, pid: str, code: str, text: str, onset: str) -> dict:
    return {
        "resourceType": "Condition",
        "id": cid,
        "subject": {"reference": f"Patient/{pid}"},
        "clinicalStatus": {"coding": [{"code": "active"}]},
        "onsetDateTime": onset,
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": code, "display": text}]},
        "meta": {"lastUpdated": "2025-02-03T10:00:00Z"},
    }


def _bp(oid: str, pid: str, when: str, sys: int, dia: int) -> dict:
    def comp(code: str, value: int) -> dict:
        return {"code": {"coding": [{"code": code}]}, "valueQuantity": {"value": value, "unit": "mmHg"}}

    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "effectiveDateTime": when,
        "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
        "component": [comp("8480-6", sys), comp("8462-4", dia)],
        "subject": {"reference": f"Patient/{pid}"},
    }


def test_nhs_numbers_dates_and_ages_read_as_the_nhs_writes_them() -> None:
    assert d.nhs_number("9434765919") == "943 476 5919"
    assert d.nhs_number("12345") == "12345"
    assert d.long_date("2002-01-04") == "4 January 2002" and d.long_date("2002-01") == "January 2002"
    assert d.date_time("2024-05-08T17:45:00+00:00") == "8 May 2024 at 17:45"
    assert d.age("1941-07-27", today=date(2026, 7, 26)) == "84 years"
    assert d.age("2026-01-10", today=date(2026, 4, 20)) == "3 months"
    assert d.banner_name(_patient("p", "X1", "X1")) == "GRAY, Emily Ava (Mrs)"


def test_record_keeps_sources_and_folds_facts_sent_twice() -> None:
    entries = [
        _entry(_patient("gp-1", "X1", "X1"), "X1"),
        _entry(_patient("h-1", "R1", "X1"), "R1"),
        _entry(_condition("c1", "gp-1", "38341003", "Hypertension", "2003-05-02"), "X1", "Condition/c2"),
        _entry(_condition("c2", "h-1", "38341003", "Hypertension", "2003-05-02"), "R1", "Condition/c1"),
        _entry(_condition("c3", "h-1", "44054006", "Diabetes", "2010-01-01"), "R1"),
    ]
    rec = build_record(entries, "h-1")
    assert rec.banner.nhs_number == "999 882 5407" and rec.banner.gp == "Org X1"  # the GP registration record
    assert [p.title for p in rec.problems] == ["Diabetes", "Hypertension"]
    hypertension = rec.problems[1]
    assert hypertension.source == "X1" and hypertension.also_from == ["R1"]
    assert set(rec.sources) == {"X1", "R1"} and rec.sources["R1"].last_sent == "2025-02-03T10:00:00Z"


def test_restricted_patients_hide_address_and_gp() -> None:
    patient = _patient("gp-1", "X1", "X1")
    patient["meta"]["security"] = [{"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"}]
    rec = build_record([_entry(patient, "X1")], "gp-1")
    assert rec.banner.restricted and rec.banner.address == "" and rec.banner.gp == ""


def test_blood_pressure_becomes_a_two_line_series_with_an_accessible_chart() -> None:
    entries = [_entry(_patient("gp-1", "X1", "X1"), "X1")]
    entries += [_entry(_bp(f"o{n}", "gp-1", f"2024-0{n}-01T09:00:00Z", 130 + n, 80 + n), "X1") for n in range(1, 5)]
    series = build_record(entries, "gp-1").series("blood-pressure")
    assert series is not None and len(series.points) == 4 and series.latest.values == (134.0, 84.0)
    svg = str(line_chart(series, "bp", {"X1": "Org X1"}))
    assert 'role="img"' in svg and '<title id="bp-title">Blood pressure trend</title>' in svg
    assert svg.count("<polyline") == 2 and "Latest 134/84 mmHg" in svg and "Org X1" in svg


def test_withheld_items_are_announced_from_suppressed_issues() -> None:
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "information", "code": "suppressed", "diagnostics": "2 items are withheld"},
            {"severity": "information", "code": "informational", "diagnostics": "ignored"},
        ],
    }
    assert suppressed_notices(outcome) == ["2 items are withheld"]
    assert build_record([], "x", ["2 items are withheld"]).withheld == ["2 items are withheld"]


def test_chart_ticks_are_round_numbers() -> None:
    assert nice_ticks(62, 188) == [50, 100, 150, 200]
    assert nice_ticks(5.1, 5.9)[0] <= 5.1 and nice_ticks(5.1, 5.9)[-1] >= 5.9
