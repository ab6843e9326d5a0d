"""Batch re-link: constrained clustering (pure) and re-linking a whole store that bypassed matching on import."""

from __future__ import annotations

from typing import Any

from conftest import make_patient
from starlette.testclient import TestClient

from sharedcare.app import Server
from sharedcare.matching.features import extract
from sharedcare.matching.relink import link_all
from sharedcare.matching.weights import load_weights

W = load_weights()
NHS_A, NHS_B = "9990000018", "9434765919"


def groups(labels: list[int]) -> list[set[int]]:
    out: dict[int, set[int]] = {}
    for i, label in enumerate(labels):
        out.setdefault(label, set()).add(i)
    return sorted(out.values(), key=min)


def test_a_record_matching_two_verified_people_joins_at_most_one_and_the_other_is_reviewed() -> None:
    a = extract(make_patient(nhs=NHS_A), "a")
    b = extract(make_patient("RX1", nhs=NHS_B), "b")  # same demographics, another verified number
    c = extract(make_patient("LA1"), "c")  # no NHS number: could be either
    result, _ = link_all([a, b, c], W)
    assert {0, 1} not in [g & {0, 1} for g in groups(result.labels)]
    assert len(result.review) == 1


def test_chains_never_join_two_verified_numbers() -> None:
    recs = [
        extract(make_patient(nhs=NHS_A), "a"),
        extract(make_patient("X"), "x"),
        extract(make_patient("Y", line="12 Mill St"), "y"),
        extract(make_patient("B", nhs=NHS_B), "b"),
    ]
    result, _ = link_all(recs, W)
    assert result.labels[0] != result.labels[3]


def test_human_rules_override_scores() -> None:
    a = extract(make_patient(nhs=NHS_A), "a")
    b = extract(make_patient("RX1"), "b")
    far = extract(
        make_patient(
            "LA1", given="Emma", family="Walker", dob="1979-01-01", line="1 Oak Avenue", postcode="SX3 2AB", phone=None
        ),
        "far",
    )
    result, _ = link_all([a, b, far], W, [("a", "b", "nolink"), ("a", "far", "link")])
    assert groups(result.labels) == [{0, 2}, {1}]
    assert result.assurance[2] == "level4"


def create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post("/fhir/Patient", json=resource)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def relink(client: TestClient) -> dict[str, Any]:
    r = client.post("/fhir/Person/$relink")
    assert r.status_code == 200, r.text
    return {p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in r.json()["parameter"]}


def person_id(client: TestClient, patient: str) -> str:
    bundle = client.get(f"/fhir/Patient/{patient}/$everything?_type=Person").json()
    return bundle["entry"][0]["resource"]["id"] if bundle.get("entry") else ""


def test_relink_matches_records_loaded_without_matching_and_keeps_person_ids(
    server: Server, client: TestClient
) -> None:
    hooks = list(server.repo.write_hooks)
    server.repo.write_hooks.clear()  # a bulk load that skipped matching
    try:
        gp = create(client, make_patient(nhs=NHS_A))
        trust = create(client, make_patient("RX1", nhs=NHS_A))
        council = create(client, make_patient("LA1", phone=None))
        other = create(client, make_patient("RX1", nhs=NHS_B, given="Olivia", family="Khan", dob="1950-01-01"))
    finally:
        server.repo.write_hooks[:] = hooks
    assert person_id(client, gp) == ""
    report = relink(client)
    assert report["records"] == 4 and report["persons"] == 2
    person = person_id(client, gp)
    assert person and person_id(client, trust) == person and person_id(client, council) == person
    assert person_id(client, other) not in ("", person)
    again = relink(client)
    assert again["persons_written"] == 0 and person_id(client, gp) == person
