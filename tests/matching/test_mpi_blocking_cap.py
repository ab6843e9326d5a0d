"""Over-common blocking keys: a care home's phone and postcode, a practice number keyed onto many records.

A key held by more than the cap stops being used to find candidates, so one arriving record is compared with a
bounded number of others however many records share the value; its other keys still find its true match. The
cap is lowered here so a few dozen records make a giant block.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import make_patient
from starlette.testclient import TestClient

from sharedcare.app import Server
from sharedcare.matching import service as service_module
from sharedcare.matching.blocking import blocking_keys
from sharedcare.matching.features import extract
from sharedcare.matching.relink import candidate_pairs
from sharedcare.matching.service import MatchHook, MatchService

CAP = 10
RESIDENTS = 40  # all sharing the care home's phone, postcode and (given names all start with M) first initial
GIVEN = ("Mary", "Margaret", "Maureen", "Marjorie", "Mabel", "Maud", "Miriam", "Molly", "Muriel", "Myra")
FAMILY = ("Ashworth", "Barlow", "Crossley", "Dawson")
HOME = {"line": "Rose Court Care Home", "postcode": "SX4 2CH", "phone": "01134960900"}


def matcher(server: Server) -> MatchService:
    return next(h for h in server.repo.write_hooks if isinstance(h, MatchHook)).service


def resident(k: int, org: str = "A81001", **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "nhs": None,
        "given": GIVEN[k % len(GIVEN)],
        "family": FAMILY[k // len(GIVEN)],
        "dob": f"{1925 + k}-0{1 + k % 9}-1{k % 10}",
        **HOME,
    }
    return make_patient(org, **{**fields, **changes})


def create(client: TestClient, resource: dict[str, Any]) -> str:
    r = client.post("/fhir/Patient", json=resource)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def person_of(client: TestClient, patient_id: str) -> str:
    bundle = client.get(f"/fhir/Patient/{patient_id}/$everything?_type=Person").json()
    return bundle["entry"][0]["resource"]["id"]


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The patient ids each arriving record was compared with, in order."""
    seen: list[str] = []
    decide = service_module.decide

    def counting(a: Any, b: Any, weights: Any) -> Any:
        seen.append(b.patient_id)
        return decide(a, b, weights)

    monkeypatch.setattr(service_module, "decide", counting)
    yield seen


def care_home(client: TestClient, server: Server, cap: int) -> list[str]:
    matcher(server).block_cap = cap
    return [create(client, resident(k)) for k in range(RESIDENTS)]


def newcomer() -> dict[str, Any]:
    """A resident arriving at the home: she shares its phone, postcode and the initial M with all forty."""
    return resident(0, given="Mildred", family="Eastwood", dob="1931-05-06")


def test_a_giant_block_is_not_used_and_the_true_match_is_found_through_other_keys(
    server: Server, client: TestClient, compared: list[str]
) -> None:
    ids = care_home(client, server, CAP)
    assert len({person_of(client, i) for i in ids}) == RESIDENTS  # forty different women, none linked
    compared.clear()
    create(client, newcomer())
    assert len(compared) <= CAP  # bounded: the phone's key is over the cap, no other key is shared
    compared.clear()
    hospital = create(client, resident(17, "RX1", line="Rose Ct", phone=None))  # her hospital record, no NHS number
    assert compared == [ids[17]]  # found through date of birth, name and postcode keys
    assert person_of(client, hospital) == person_of(client, ids[17])


def test_without_the_cap_every_record_sharing_the_value_is_compared(
    server: Server, client: TestClient, compared: list[str]
) -> None:
    care_home(client, server, 10_000)
    compared.clear()
    create(client, newcomer())
    assert len(compared) >= RESIDENTS  # what the cap prevents: the bound above fails without it


def test_a_key_is_used_up_to_the_cap_and_dropped_beyond_it(server: Server) -> None:
    service = matcher(server)
    records = [extract(resident(k), f"r{k}") for k in range(CAP + 1)]
    phone_key = next(k for k in blocking_keys(records[0]) if k.startswith("t:"))

    def found(n: int) -> set[str]:
        def work(txn: Any) -> set[str]:
            sql = service.mpi.within(txn)
            for r in records[:n]:
                sql.replace_blocks(r.patient_id, [phone_key], new=True)
                sql.put_record(r.patient_id, f"person-{r.patient_id}", "level2", r.to_json().decode())
            rows = sql.candidates([(phone_key, CAP)], "r0", 1000)
            txn.cur.execute("DELETE FROM mpi_block")
            txn.cur.execute("DELETE FROM mpi_record")
            return {row[0] for row in rows}

        return server.store.transact(work)

    assert found(CAP) == {f"r{k}" for k in range(1, CAP)}  # CAP holders, the record itself among them: used
    assert found(CAP + 1) == set()  # one more: too common


def test_a_batch_re_link_drops_the_same_keys() -> None:
    records = [extract(resident(k), f"r{k}") for k in range(RESIDENTS)]
    assert len(candidate_pairs(records, max_block=10_000)) == RESIDENTS * (RESIDENTS - 1) // 2
    assert candidate_pairs(records, max_block=CAP) == set()
