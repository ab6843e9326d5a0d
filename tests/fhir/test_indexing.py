"""The indexer: resource -> search index rows, checked on official R4 examples and hand-made edge cases."""

from __future__ import annotations

import gzip
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sharedcare.fhir.index_rows import (
    CompartmentRow,
    CompositeRow,
    DateRow,
    IndexRows,
    NumberRow,
    QuantityRow,
    ReferenceRow,
    StringRow,
    TokenRow,
    UriRow,
)
from sharedcare.fhir.indexing import (
    DATE_MAX,
    DATE_MIN,
    STRING_INDEX_LENGTH,
    Indexer,
    date_range,
    full_text,
    normalise,
    number_range,
    parse_reference,
)
from sharedcare.fhir.search_parameters import SearchParameterRegistry

SHARED = Path(os.environ.get("SHAREDCARE_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")
EXAMPLES = SHARED / "data" / "fhir-examples" / "r4-spec-examples"
SYNTHEA = SHARED / "data" / "synthea" / "smart-on-fhir-r4-2019"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared reference data not available")


@pytest.fixture(scope="module")
def registry() -> SearchParameterRegistry:
    return SearchParameterRegistry.load()


@pytest.fixture(scope="module")
def indexer(registry: SearchParameterRegistry) -> Indexer:
    return Indexer(registry, local_base_urls=["https://sharedcare.example/fhir"])


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


def of(rows: list, param: str) -> list:
    return [r for r in rows if r.param == param]


# ------------------------------------------------------------------------------------------------ value helpers


def test_normalise() -> None:
    assert normalise("  Zoë Ångström ") == "zoe angstrom"
    assert normalise("STRASSE") == "strasse" and normalise("Straße") == "strasse"
    assert normalise("Mc Donald") == "mc donald"


@pytest.mark.parametrize(
    ("text", "low", "high"),
    [
        ("2020", "2020-01-01T00:00:00.000000Z", "2020-12-31T23:59:59.999999Z"),
        ("2020-02", "2020-02-01T00:00:00.000000Z", "2020-02-29T23:59:59.999999Z"),
        ("2021-02", "2021-02-01T00:00:00.000000Z", "2021-02-28T23:59:59.999999Z"),
        ("2020-03-04", "2020-03-04T00:00:00.000000Z", "2020-03-04T23:59:59.999999Z"),
        ("2020-03-04T10:11", "2020-03-04T10:11:00.000000Z", "2020-03-04T10:11:59.999999Z"),
        ("2020-03-04T10:11:12Z", "2020-03-04T10:11:12.000000Z", "2020-03-04T10:11:12.999999Z"),
        ("2020-03-04T10:11:12.5Z", "2020-03-04T10:11:12.500000Z", "2020-03-04T10:11:12.599999Z"),
        ("2020-03-04T10:11:12.1234567Z", "2020-03-04T10:11:12.123456Z", "2020-03-04T10:11:12.123456Z"),
        ("2020-03-04T10:11:12+02:00", "2020-03-04T08:11:12.000000Z", "2020-03-04T08:11:12.999999Z"),
        ("2020-12-31T23:30:00-05:00", "2021-01-01T04:30:00.000000Z", "2021-01-01T04:30:00.999999Z"),
        ("2020-03-04T10:11:12+00:00", "2020-03-04T10:11:12.000000Z", "2020-03-04T10:11:12.999999Z"),
        ("0001-01-01T00:30:00+01:00", DATE_MIN, DATE_MIN),  # before the calendar starts: clamped
    ],
)
def test_date_range(text: str, low: str, high: str) -> None:
    assert date_range(text) == (low, high)


@pytest.mark.parametrize("text", ["", "20", "2020-13", "2020-02-30", "2020-01-01T25:00:00Z", "yesterday", "10:00"])
def test_date_range_rejects(text: str) -> None:
    assert date_range(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (100, (99.5, 100.5)),
        (1.5, (1.45, 1.55)),
        (0.887, (0.8865, 0.8875)),
        (100.0, (99.95, 100.05)),
        ("1.50", (1.495, 1.505)),
        (Decimal("2"), (1.5, 2.5)),
        (1e-22, (0.95e-22, 1.05e-22)),
        (True, None),
        ("abc", None),
        (None, None),
    ],
)
def test_number_range(value: Any, expected: tuple[float, float] | None) -> None:
    got = number_range(value)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Patient/123", ("Patient", "123", None)),
        ("Patient/123/_history/4", ("Patient", "123", None)),
        ("https://other.org/fhir/Patient/9", ("Patient", "9", "https://other.org/fhir/Patient/9")),
        ("https://sharedcare.example/fhir/Patient/7", ("Patient", "7", None)),
        (
            "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0",
            (None, None, "urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0"),
        ),
        ("#contained", None),
        ("123", ("Patient", "123", None)),
        ("Martian/1", (None, None, "Martian/1")),
    ],
)
def test_parse_reference(ref: str, expected: tuple | None, registry: SearchParameterRegistry) -> None:
    types = frozenset(registry.resource_types)
    assert parse_reference(ref, ("Patient",), types, ("https://sharedcare.example/fhir/",)) == expected


def test_bare_id_with_several_targets_has_no_type(registry: SearchParameterRegistry) -> None:
    assert parse_reference("123", ("Group", "Patient"), frozenset(registry.resource_types)) == (None, "123", None)


# ------------------------------------------------------------------------------------------------ hand-made resources


def test_tokens(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Patient",
            "id": "p",
            "active": True,
            "gender": "female",
            "identifier": [
                {
                    "system": "https://fhir.nhs.uk/Id/nhs-number",
                    "value": "9000000009",
                    "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "NH"}]},
                },
                {"value": "no-system", "type": {"text": "Local Number"}},
            ],
            "telecom": [{"system": "phone", "value": "01632 960000"}, {"system": "email", "value": "a@b.org"}],
            "maritalStatus": {"coding": [{"system": "http://s", "code": "M", "display": "Married"}], "text": "Wed"},
        }
    )
    assert TokenRow("active", None, "true") in rows.tokens
    assert TokenRow("gender", None, "female") in rows.tokens
    assert TokenRow("identifier", "https://fhir.nhs.uk/Id/nhs-number", "9000000009") in rows.tokens
    assert TokenRow("identifier", None, "no-system", "local number") in rows.tokens
    of_type = of(rows.tokens, "identifier:of-type")
    assert of_type == [TokenRow("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "NH|9000000009")]
    assert of(rows.tokens, "phone") == [TokenRow("phone", "phone", "01632 960000")]
    assert of(rows.tokens, "email") == [TokenRow("email", "email", "a@b.org")]
    assert len(of(rows.tokens, "telecom")) == 2
    # maritalStatus is not a search parameter: nothing indexed for it
    assert not [t for t in rows.tokens if t.code == "M"]


def test_codeable_concept_rows_and_text(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Condition",
            "id": "c",
            "subject": {"reference": "Patient/p"},
            "code": {
                "coding": [
                    {"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabète"},
                    {"system": "http://hl7.org/fhir/sid/icd-10", "code": "E11"},
                ],
                "text": "Type 2 Diabetes",
            },
        }
    )
    assert of(rows.tokens, "code") == [
        TokenRow("code", "http://snomed.info/sct", "44054006", "diabete"),
        TokenRow("code", "http://hl7.org/fhir/sid/icd-10", "E11", None),
        TokenRow("code", None, None, "type 2 diabetes"),
    ]


def test_strings(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Patient",
            "id": "p",
            "name": [{"family": "Ó Briain", "given": ["Dara", "Joe"], "prefix": ["Mr"], "text": "Dara Ó Briain"}],
            "address": [{"line": ["1 High St", "Flat 2"], "city": "Leeds", "postalCode": "LS1 1AA", "country": "UK"}],
        }
    )
    assert of(rows.strings, "family") == [StringRow("family", "o briain", "Ó Briain")]
    assert [s.value for s in of(rows.strings, "given")] == ["dara", "joe"]
    assert [s.exact for s in of(rows.strings, "name")] == ["Ó Briain", "Dara", "Joe", "Mr", "Dara Ó Briain"]
    assert [s.value for s in of(rows.strings, "address")] == ["1 high st", "flat 2", "leeds", "ls1 1aa", "uk"]
    assert of(rows.strings, "address-postalcode") == [StringRow("address-postalcode", "ls1 1aa", "LS1 1AA")]


def test_long_strings_are_cut(indexer: Indexer) -> None:
    rows = indexer.index({"resourceType": "Patient", "id": "p", "name": [{"family": "x" * 2000}]})
    (row,) = of(rows.strings, "family")
    assert len(row.value) == len(row.exact) == STRING_INDEX_LENGTH


def test_references(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Observation",
            "id": "o",
            "status": "final",
            "code": {"text": "x"},
            "subject": {"reference": "Patient/p1/_history/3"},
            "performer": [
                {"reference": "https://other.org/fhir/Practitioner/d9"},
                {"reference": "https://sharedcare.example/fhir/Practitioner/d1"},
                {"reference": "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"},
                {"reference": "#contained"},
                {"identifier": {"system": "https://fhir.nhs.uk/Id/sds-user-id", "value": "123"}, "display": "Dr X"},
            ],
            "hasMember": [{"reference": "ob2"}],
        }
    )
    assert of(rows.references, "subject") == [ReferenceRow("subject", "Patient", "p1")]
    assert of(rows.references, "patient") == [ReferenceRow("patient", "Patient", "p1")]
    assert of(rows.references, "performer") == [
        ReferenceRow("performer", "Practitioner", "d9", "https://other.org/fhir/Practitioner/d9"),
        ReferenceRow("performer", "Practitioner", "d1"),
        ReferenceRow("performer", None, None, "urn:uuid:61ebe359-bfdc-4613-8bf2-c5e300945f0a"),
    ]
    assert of(rows.tokens, "performer:identifier") == [
        TokenRow("performer:identifier", "https://fhir.nhs.uk/Id/sds-user-id", "123")
    ]
    # a bare id: the parameter has several target types, so the type stays unknown
    assert of(rows.references, "has-member") == [ReferenceRow("has-member", None, "ob2")]
    # compartments: only local references; the absolute URL to another server does not count
    assert set(rows.compartments) == {CompartmentRow("Patient", "p1"), CompartmentRow("Practitioner", "d1")}


def test_canonical_references_and_uris(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "PlanDefinition",
            "id": "q",
            "url": "http://example.org/PlanDefinition/q",
            "status": "active",
            "relatedArtifact": [
                {"type": "derived-from", "resource": "http://example.org/PlanDefinition/base|2.0"},
                {"type": "successor", "resource": "http://example.org/PlanDefinition/next"},
            ],
            "meta": {
                "profile": ["http://example.org/StructureDefinition/p"],
                "source": "https://source.example",
                "tag": [{"system": "http://tags", "code": "t1"}],
                "security": [{"system": "http://sec", "code": "R"}],
            },
        }
    )
    assert of(rows.uris, "url") == [UriRow("url", "http://example.org/PlanDefinition/q")]
    assert of(rows.references, "derived-from") == [
        ReferenceRow("derived-from", None, None, "http://example.org/PlanDefinition/base|2.0"),
        ReferenceRow("derived-from", None, None, "http://example.org/PlanDefinition/base"),
    ]
    assert of(rows.references, "successor") == [
        ReferenceRow("successor", None, None, "http://example.org/PlanDefinition/next")
    ]
    assert of(rows.uris, "_profile") == [UriRow("_profile", "http://example.org/StructureDefinition/p")]
    assert of(rows.uris, "_source") == [UriRow("_source", "https://source.example")]
    assert of(rows.tokens, "_tag") == [TokenRow("_tag", "http://tags", "t1")]
    assert of(rows.tokens, "_security") == [TokenRow("_security", "http://sec", "R")]


def test_dates_periods_and_timing(indexer: Indexer) -> None:
    enc = indexer.index({"resourceType": "Encounter", "id": "e", "period": {"start": "2021-05-01T09:00:00Z"}})
    assert of(enc.dates, "date") == [DateRow("date", "2021-05-01T09:00:00.000000Z", DATE_MAX)]
    enc = indexer.index({"resourceType": "Encounter", "id": "e", "period": {"end": "2021"}})
    assert of(enc.dates, "date") == [DateRow("date", DATE_MIN, "2021-12-31T23:59:59.999999Z")]
    req = indexer.index(
        {
            "resourceType": "ServiceRequest",
            "id": "s",
            "occurrenceTiming": {
                "event": ["2021-01-02"],
                "repeat": {"boundsPeriod": {"start": "2021-02-01", "end": "2021-03-01"}},
            },
        }
    )
    assert of(req.dates, "occurrence") == [
        DateRow("occurrence", "2021-01-02T00:00:00.000000Z", "2021-01-02T23:59:59.999999Z"),
        DateRow("occurrence", "2021-02-01T00:00:00.000000Z", "2021-03-01T23:59:59.999999Z"),
    ]


def test_quantities(indexer: Indexer) -> None:
    obs = indexer.index(
        {
            "resourceType": "Observation",
            "id": "o",
            "valueQuantity": {
                "value": 5.4,
                "comparator": "<",
                "unit": "mmol/L",
                "system": "http://u",
                "code": "mmol/L",
            },
        }
    )
    assert of(obs.quantities, "value-quantity") == [
        QuantityRow("value-quantity", "http://u", "mmol/L", "mmol/L", float("-inf"), 5.45)
    ]
    item = indexer.index({"resourceType": "ChargeItem", "id": "c", "priceOverride": {"value": 40, "currency": "GBP"}})
    assert of(item.quantities, "price-override") == [
        QuantityRow("price-override", "urn:iso:std:iso:4217", "GBP", None, 39.5, 40.5)
    ]
    plan = indexer.index(
        {
            "resourceType": "PlanDefinition",
            "id": "pd",
            "status": "active",
            "useContext": [
                {
                    "code": {"system": "http://terminology.hl7.org/CodeSystem/usage-context-type", "code": "age"},
                    "valueRange": {"low": {"value": 18, "unit": "a"}, "high": {"value": 65, "unit": "a"}},
                }
            ],
        }
    )
    assert of(plan.quantities, "context-quantity") == [QuantityRow("context-quantity", None, None, "a", 17.5, 65.5)]
    assert of(plan.composites, "context-type-quantity") == [
        CompositeRow(
            "context-type-quantity", ("http://terminology.hl7.org/CodeSystem/usage-context-type|age", "17.5|65.5||")
        )
    ]


def test_composites_keep_component_pairs_together(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Observation",
            "id": "bp",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                    "valueQuantity": {"value": 120, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                },
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                    "valueQuantity": {"value": 80, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
                },
            ],
        }
    )
    assert of(rows.composites, "component-code-value-quantity") == [
        CompositeRow(
            "component-code-value-quantity",
            ("http://loinc.org|8480-6", "119.5|120.5|http://unitsofmeasure.org|mm[Hg]"),
        ),
        CompositeRow(
            "component-code-value-quantity",
            ("http://loinc.org|8462-4", "79.5|80.5|http://unitsofmeasure.org|mm[Hg]"),
        ),
    ]
    assert of(rows.composites, "code-value-quantity") == []  # the panel itself has no value


def test_composite_with_resource_level_component(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "MolecularSequence",
            "id": "m",
            "type": "dna",
            "coordinateSystem": 0,
            "referenceSeq": {"chromosome": {"coding": [{"system": "http://chr", "code": "1"}]}},
            "variant": [{"start": 10, "end": 12}],
        }
    )
    assert of(rows.composites, "chromosome-variant-coordinate") == [
        CompositeRow("chromosome-variant-coordinate", ("http://chr|1", "9.5|10.5", "11.5|12.5"))
    ]


def test_composite_string_and_date_keys(indexer: Indexer) -> None:
    rows = indexer.index(
        {
            "resourceType": "Observation",
            "id": "o",
            "status": "final",
            "code": {"coding": [{"code": "x"}]},
            "valueString": "Élevé",
        }
    )
    assert of(rows.composites, "code-value-string") == [CompositeRow("code-value-string", ("|x", "eleve"))]
    rows = indexer.index(
        {"resourceType": "Observation", "id": "o", "code": {"coding": [{"code": "x"}]}, "valueDateTime": "2020"}
    )
    assert of(rows.composites, "code-value-date") == [
        CompositeRow("code-value-date", ("|x", "2020-01-01T00:00:00.000000Z|2020-12-31T23:59:59.999999Z"))
    ]


def test_numbers_and_near(indexer: Indexer) -> None:
    rows = indexer.index({"resourceType": "Location", "id": "l", "position": {"latitude": 53.8, "longitude": -1.55}})
    assert rows.numbers == [NumberRow("near.latitude", 53.8, 53.8), NumberRow("near.longitude", -1.55, -1.55)]
    rows = indexer.index({"resourceType": "RiskAssessment", "id": "r", "prediction": [{"probabilityDecimal": 0.25}]})
    assert of(rows.numbers, "probability") == [NumberRow("probability", 0.245, 0.255)]


def test_compartments_of_the_compartment_owner(indexer: Indexer) -> None:
    rows = indexer.index(
        {"resourceType": "Patient", "id": "p1", "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}]}
    )
    assert rows.compartments == [CompartmentRow("Patient", "p1"), CompartmentRow("Patient", "p2")]
    practitioner = indexer.index({"resourceType": "Practitioner", "id": "d1"})
    assert practitioner.compartments == [CompartmentRow("Practitioner", "d1")]
    # a subject that is a Group is no Patient compartment membership
    obs = indexer.index({"resourceType": "Observation", "id": "o", "subject": {"reference": "Group/g"}})
    assert obs.compartments == []


def test_extension_values_and_custom_parameters() -> None:
    registry = SearchParameterRegistry.load()
    indexer = Indexer(registry)
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "extension": [{"url": "http://example.org/eye-colour", "valueCodeableConcept": {"text": "Blue"}}],
    }
    assert not [t for t in indexer.index(patient).tokens if t.param == "eye-colour"]
    registry.register(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/eye-colour",
            "code": "eye-colour",
            "base": ["Patient"],
            "type": "token",
            "expression": "Patient.extension('http://example.org/eye-colour')",
        }
    )
    assert of(indexer.index(patient).tokens, "eye-colour") == [TokenRow("eye-colour", None, None, "blue")]


def test_unsupported_custom_expression_uses_fallback() -> None:
    registry = SearchParameterRegistry.load()
    registry.register(
        {
            "resourceType": "SearchParameter",
            "url": "http://example.org/SearchParameter/initial",
            "code": "initial",
            "base": ["Patient"],
            "type": "string",
            "expression": "Patient.name.given.select(substring(0, 1))",
        }
    )
    indexer = Indexer(registry)
    rows = indexer.index({"resourceType": "Patient", "id": "p", "name": [{"given": ["Ann", "Bob"]}]})
    assert of(rows.strings, "initial") == [StringRow("initial", "a", "A"), StringRow("initial", "b", "B")]
    assert indexer.fallback_expressions() == [("Patient", "initial", "Patient.name.given.select(substring(0, 1))")]


def test_full_text() -> None:
    text = full_text(
        {
            "resourceType": "Patient",
            "id": "p",
            "text": {"status": "generated", "div": '<div xmlns="x"><p>Caf&eacute; <b>au</b> lait</p></div>'},
            "name": [{"family": "Núñez"}],
            "managingOrganization": {"reference": "Organization/o", "display": "St  Mary's"},
        }
    )
    assert text == "cafe au lait nunez st mary's"


def test_rows_are_deduplicated(indexer: Indexer) -> None:
    rows = indexer.index({"resourceType": "Patient", "id": "p", "name": [{"given": ["Leia"]}, {"given": ["Leia"]}]})
    assert of(rows.strings, "given") == [StringRow("given", "leia", "Leia")]


def test_requires_resource_type(indexer: Indexer) -> None:
    with pytest.raises(ValueError):
        indexer.index({"id": "x"})


def test_unknown_resource_type_does_not_fail(indexer: Indexer) -> None:
    rows = indexer.index({"resourceType": "Martian", "id": "m", "meta": {"tag": [{"code": "t"}]}})
    assert rows.tokens == [] and rows.compartments == []


# ------------------------------------------------------------------------------------------------ official examples


@needs_examples
def test_observation_example(indexer: Indexer) -> None:
    rows = indexer.index(example("Observation-example.json"))
    assert TokenRow("code", "http://loinc.org", "29463-7", "body weight") in rows.tokens
    assert of(rows.tokens, "status") == [TokenRow("status", None, "final")]
    assert of(rows.quantities, "value-quantity") == [
        QuantityRow("value-quantity", "http://unitsofmeasure.org", "[lb_av]", "lbs", 184.5, 185.5)
    ]
    assert of(rows.dates, "date") == [DateRow("date", "2016-03-28T00:00:00.000000Z", "2016-03-28T23:59:59.999999Z")]
    assert of(rows.references, "patient") == [ReferenceRow("patient", "Patient", "example")]
    assert (
        CompositeRow(
            "code-value-quantity", ("http://loinc.org|29463-7", "184.5|185.5|http://unitsofmeasure.org|[lb_av]")
        )
        in rows.composites
    )
    assert set(rows.compartments) == {CompartmentRow("Patient", "example"), CompartmentRow("Encounter", "example")}
    assert rows.text.startswith("generated narrative with details")


@needs_examples
def test_patient_example(indexer: Indexer) -> None:
    rows = indexer.index(example("Patient-example.json"))
    assert [s.exact for s in of(rows.strings, "family")] == ["Chalmers", "Windsor"]
    assert [s.value for s in of(rows.strings, "given")] == ["peter", "james", "jim"]
    assert StringRow("address-city", "pleasantville", "PleasantVille") in rows.strings
    assert TokenRow("identifier", "urn:oid:1.2.36.146.595.217.0.1", "12345") in rows.tokens
    assert TokenRow("identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203", "MR|12345") in rows.tokens
    assert of(rows.tokens, "gender") == [TokenRow("gender", None, "male")]
    assert of(rows.tokens, "deceased") == [TokenRow("deceased", None, "false")]
    assert of(rows.dates, "birthdate") == [
        DateRow("birthdate", "1974-12-25T00:00:00.000000Z", "1974-12-25T23:59:59.999999Z")
    ]
    assert of(rows.references, "organization") == [ReferenceRow("organization", "Organization", "1")]
    assert rows.compartments == [CompartmentRow("Patient", "example")]


@needs_examples
def test_contained_subject_is_not_indexed(indexer: Indexer) -> None:
    rows = indexer.index(example("Observation-1minute-apgar-score.json"))  # subject is "#newborn"
    assert of(rows.references, "subject") == [] and of(rows.references, "patient") == []
    assert of(rows.references, "performer") == [ReferenceRow("performer", "Practitioner", "example")]


@needs_examples
def test_document_bundle_composition(indexer: Indexer) -> None:
    rows = indexer.index(example("Bundle-father.json"))
    assert of(rows.references, "composition") == [
        ReferenceRow("composition", "Composition", "180f219f-97a8-486d-99d9-ed631fe4fc57")
    ]
    assert of(rows.tokens, "type") == [TokenRow("type", None, "document")]


@needs_examples
def test_every_official_example_indexes(indexer: Indexer) -> None:
    files = sorted(EXAMPLES.glob("*.json"))
    assert len(files) >= 747
    empty = []
    for path in files:
        resource = json.loads(path.read_text(encoding="utf-8"))
        rows = indexer.index(resource)
        assert isinstance(rows, IndexRows)
        for row in rows.dates:
            assert len(row.low) == len(row.high) == 27 and row.low <= row.high, path.name
        for row in (*rows.numbers, *rows.quantities):
            assert row.low <= row.high, path.name
        if not (rows.tokens or rows.strings or rows.references or rows.uris or rows.dates):
            empty.append(path.name)
    assert len(empty) < 30, empty  # types with few parameters (OperationOutcome, Binary, ...)
    assert indexer.fallback_expressions() == []


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="shared Synthea data not available")
def test_synthea_bundle_indexes(indexer: Indexer) -> None:
    path = sorted(SYNTHEA.glob("*.json.gz"))[0]
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    for entry in bundle["entry"]:
        rows = indexer.index(entry["resource"])
        if entry["resource"]["resourceType"] == "Observation":
            assert of(rows.tokens, "code") and of(rows.references, "subject")
