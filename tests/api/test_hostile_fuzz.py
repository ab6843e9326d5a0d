"""Property test: whatever JSON arrives, the answer is a 2xx or a 4xx OperationOutcome, never a 500."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
values = st.recursive(
    scalars,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=8), kids, max_size=4),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "name",
        "gender",
        "birthDate",
        "identifier",
        "extension",
        "contained",
        "meta",
        "id",
        "text",
        "_birthDate",
        "deceasedBoolean",
        "deceasedDateTime",
        "link",
        "resourceType",
        "x",
    ]
)
patients = st.dictionaries(keys, values, max_size=6).map(lambda d: {**d, "resourceType": "Patient"})
bundles = st.lists(
    st.dictionaries(st.sampled_from(["fullUrl", "resource", "request"]), values | patients, max_size=3), max_size=3
).map(lambda es: {"resourceType": "Bundle", "type": "transaction", "entry": es})


def _check(r) -> None:  # noqa: ANN001
    assert r.status_code < 500, r.text
    if r.status_code >= 400:
        assert r.json()["resourceType"] == "OperationOutcome"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=patients)
def test_random_patients_never_500(client: TestClient, body: dict) -> None:
    _check(client.post("/fhir/Patient", content=json.dumps(body), headers={"content-type": "application/fhir+json"}))
    _check(
        client.put(
            "/fhir/Patient/fuzz",
            content=json.dumps({**body, "id": "fuzz"}),
            headers={"content-type": "application/fhir+json"},
        )
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bundles)
def test_random_transactions_never_500(client: TestClient, body: dict) -> None:
    _check(client.post("/fhir", content=json.dumps(body), headers={"content-type": "application/fhir+json"}))
