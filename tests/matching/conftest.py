"""Builders for hand-made source Patients, shared by the matching tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from sharedcare.matching.nhs import VERIFICATION_EXTENSION, VERIFICATION_SYSTEM

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
NHS = "https://fhir.nhs.uk/Id/nhs-number"


def make_patient(
    org: str = "A81001",
    *,
    nhs: str | None = None,
    status: str | None = "01",
    given: str = "Amelia",
    family: str = "Hughes",
    dob: str = "1980-03-04",
    gender: str = "female",
    line: str = "12 Mill Street",
    postcode: str = "SX1 4AB",
    phone: str | None = "01134960123",
    old_family: str | None = None,
    id: str | None = None,
) -> dict[str, Any]:
    """A Patient as an organisation would send it."""
    names: list[dict[str, Any]] = [{"use": "official", "family": family, "given": [given]}]
    if old_family:
        names.append({"use": "maiden", "family": old_family, "given": [given]})
    p: dict[str, Any] = {
        "resourceType": "Patient",
        "name": names,
        "gender": gender,
        "birthDate": dob,
        "address": [{"use": "home", "line": [line], "postalCode": postcode}],
        "managingOrganization": {"identifier": {"system": ODS, "value": org}},
    }
    if id:
        p["id"] = id
    if phone:
        p["telecom"] = [{"system": "phone", "value": phone}]
    if nhs:
        ident: dict[str, Any] = {"system": NHS, "value": nhs}
        if status:
            coding = {"system": VERIFICATION_SYSTEM, "code": status}
            ident["extension"] = [{"url": VERIFICATION_EXTENSION, "valueCodeableConcept": {"coding": [coding]}}]
        p["identifier"] = [ident]
    return p


@pytest.fixture
def patient() -> Callable[..., dict[str, Any]]:
    return make_patient
