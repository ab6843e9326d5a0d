"""Structural validation: each class of problem gives the right issue code and FHIRPath location."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sharedcare.fhir import structures
from sharedcare.fhir.validation import Validator, validate_resource
from sharedcare.types import Issue

NHS = "https://fhir.nhs.uk/Id/nhs-number"

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "meta": {"versionId": "1", "lastUpdated": "2024-01-02T03:04:05.678Z"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Jane</div>'},
    "identifier": [{"system": NHS, "value": "9434765919"}],
    "active": True,
    "name": [{"use": "official", "family": "Smith", "given": ["Jane", "Ann"]}],
    "gender": "female",
    "birthDate": "1980-02-29",
    "multipleBirthInteger": 2,
    "address": [{"line": ["1 High St"], "postalCode": "LS1 1AA"}],
    "contact": [{"name": {"family": "Smith"}, "relationship": [{"text": "sister"}]}],
    "link": [{"other": {"reference": "Patient/p2"}, "type": "seealso"}],
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2024-01-02T03:04:05+00:00",
    "valueQuantity": {"value": 72, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"},
    "component": [{"code": {"text": "x"}, "valueInteger": 15}],
}


@pytest.fixture(scope="module")
def v() -> Validator:
    return Validator()


def errors(v: Validator, resource: Any) -> list[tuple[str, str | None]]:
    return [(i.code, i.expression) for i in v.validate(resource) if i.severity == "error"]


def patched(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in changes.items():
        if value is _DELETE:
            del out[key]
        else:
            out[key] = value
    return out


_DELETE = object()


def test_valid_resources(v: Validator) -> None:
    assert v.validate(PATIENT) == []
    assert v.validate(OBSERVATION) == []
    assert v.validate(PATIENT, expected_type="Patient") == []
    assert v.is_valid(OBSERVATION)
    assert validate_resource(PATIENT) == []


def test_all_problems_are_reported(v: Validator) -> None:
    bad = patched(PATIENT, gender="m", birthDate="1980-13-01", foo=1)
    assert sorted(errors(v, bad)) == [
        ("code-invalid", "Patient.gender"),
        ("structure", "Patient.foo"),
        ("value", "Patient.birthDate"),
    ]


def test_issue_type() -> None:
    issue = validate_resource({"resourceType": "Patient", "active": "yes"})[0]
    assert isinstance(issue, Issue)
    assert issue.severity == "error"
    assert "boolean" in issue.diagnostics
    assert issue.to_json()["expression"] == ["Patient.active"]


# -- resourceType -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "code"),
    [
        ([], "structure"),
        ("Patient", "structure"),
        ({"id": "x"}, "required"),
        ({"resourceType": "Patients"}, "structure"),
        ({"resourceType": "DomainResource"}, "structure"),
        ({"resourceType": "MetadataResource"}, "structure"),
        ({"resourceType": 1}, "structure"),
    ],
)
def test_resource_type_must_be_known(v: Validator, resource: Any, code: str) -> None:
    assert errors(v, resource) == [(code, None)]


def test_expected_type(v: Validator) -> None:
    assert errors(v.__class__(), OBSERVATION) == []
    issues = v.validate(OBSERVATION, expected_type="Patient")
    assert [(i.code, i.expression) for i in issues] == [("invalid", None)]


def test_resource_types() -> None:
    types = structures.resource_types()
    assert isinstance(types, frozenset)
    assert len(types) == 146
    assert {"Patient", "Observation", "Bundle", "Parameters", "Binary"} <= types
    assert not {"Resource", "DomainResource", "MetadataResource", "Element", "vitalsigns"} & types
    assert structures.is_resource_type("Patient") and not structures.is_resource_type("HumanName")


# -- unknown elements ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expression"),
    [
        (patched(PATIENT, foo="x"), "Patient.foo"),
        (patched(PATIENT, name=[{"family": "x", "middle": "y"}]), "Patient.name[0].middle"),
        (patched(PATIENT, contact=[{"name": {"family": "x", "nick": "y"}}]), "Patient.contact[0].name.nick"),
        (patched(PATIENT, _gender={"value": "x"}), "Patient.gender.value"),
        (patched(PATIENT, _name={"id": "x"}), "Patient._name"),
        (patched(PATIENT, birthdate="1980-01-01"), "Patient.birthdate"),
        (patched(OBSERVATION, valueFoo=1), "Observation.valueFoo"),
        (patched(OBSERVATION, value=1), "Observation.value"),
        (
            patched(OBSERVATION, code={"text": "x", "resourceType": "Observation"}),
            "Observation.code.resourceType",
        ),
    ],
)
def test_unknown_element(v: Validator, resource: dict[str, Any], expression: str) -> None:
    assert ("structure", expression) in errors(v, resource)


def test_unknown_choice_name_hints_at_the_typed_name(v: Validator) -> None:
    (issue,) = v.validate(patched(OBSERVATION, valueQuantity=_DELETE, value=1))
    assert "valueQuantity" in issue.diagnostics or "value" in issue.diagnostics


def test_fhir_comments_are_ignored(v: Validator) -> None:
    resource = patched(PATIENT, fhir_comments=["a comment"])
    resource["name"][0]["fhir_comments"] = ["another"]
    assert v.validate(resource) == []


# -- JSON types and primitive formats ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("active", "true"),
        ("active", 1),
        ("active", None),
        ("gender", 1),
        ("gender", ""),
        ("birthDate", 19800101),
        ("birthDate", "1980/01/01"),
        ("birthDate", "1980-02-30"),
        ("birthDate", "1981-02-29"),
        ("birthDate", "0000-01-01"),
        ("birthDate", "80-01-01"),
        ("birthDate", "1980-01-01T00:00:00Z"),
        ("deceasedDateTime", "2020-01-01T10:00:00"),  # a time needs a zone
        ("deceasedDateTime", "2020-01-01T10:00Z"),  # seconds are required
        ("deceasedDateTime", "2020-01-01T24:00:00Z"),
        ("deceasedDateTime", "2020-04-31"),
        ("deceasedBoolean", "false"),
        ("multipleBirthInteger", 1.5),
        ("multipleBirthInteger", True),
        ("multipleBirthInteger", "2"),
        ("multipleBirthInteger", 2**31),
        ("implicitRules", "http://example.org/a b"),
        ("implicitRules", ""),
        ("language", "en  GB"),
        ("language", " en"),
        ("id", "a_b"),
        ("id", "x" * 65),
        ("id", ""),
    ],
)
def test_bad_patient_value(v: Validator, field: str, value: Any) -> None:
    element = field.removesuffix("DateTime").removesuffix("Boolean").removesuffix("Integer")
    (error,) = errors(v, patched(PATIENT, **{field: value}))
    assert error[0] in ("value", "structure")
    assert error[1] is not None and error[1].startswith(f"Patient.{element}")


@pytest.mark.parametrize(
    ("field", "value", "expression"),
    [
        ("active", "true", "Patient.active"),
        ("birthDate", "1980-02-30", "Patient.birthDate"),
        ("deceasedDateTime", "2020-01-01T10:00:00", "Patient.deceased.ofType(dateTime)"),
        ("deceasedBoolean", "no", "Patient.deceased.ofType(boolean)"),
        ("multipleBirthInteger", 1.5, "Patient.multipleBirth.ofType(integer)"),
        ("id", "a_b", "Patient.id"),
        ("implicitRules", "a b", "Patient.implicitRules"),
    ],
)
def test_value_errors_have_code_value(v: Validator, field: str, value: Any, expression: str) -> None:
    assert errors(v, patched(PATIENT, **{field: value})) == [("value", expression)]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2020", True),
        ("2020-01", True),
        ("2020-01-02", True),
        ("2020-01-02T03:04:05Z", True),
        ("2020-01-02T03:04:05.123456+14:00", True),
        ("2020-01-02T03:04:05-05:30", True),
        ("2020-02-29T00:00:00Z", True),
        ("2020-01-02T03:04Z", False),
        ("2020-01-02T03:04:05", False),
        ("2020-01-02T03:04:05+15:00", False),
        ("2020-1-02", False),
        ("2019-02-29T00:00:00Z", False),
        ("2020-06-31", False),
        ("2020-01-02 03:04:05Z", False),
    ],
)
def test_datetime_format(v: Validator, value: str, ok: bool) -> None:
    resource = patched(OBSERVATION, effectiveDateTime=value)
    assert errors(v, resource) == ([] if ok else [("value", "Observation.effective.ofType(dateTime)")])


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("2020-01-02T03:04:05Z", True),
        ("2020-01-02T03:04:05.1+01:00", True),
        ("2020-01-02T03:04:05", False),
        ("2020-01-02", False),
        ("2020", False),
    ],
)
def test_instant_format(v: Validator, value: str, ok: bool) -> None:
    resource = patched(OBSERVATION, issued=value)
    assert errors(v, resource) == ([] if ok else [("value", "Observation.issued")])


@pytest.mark.parametrize(
    ("value", "ok"),
    [("10:00:00", True), ("23:59:60.5", True), ("10:00", False), ("24:00:00", False), ("10:00:00Z", False)],
)
def test_time_format(v: Validator, value: str, ok: bool) -> None:
    resource = patched(OBSERVATION, valueQuantity=_DELETE, valueTime=value)
    assert errors(v, resource) == ([] if ok else [("value", "Observation.value.ofType(time)")])


@pytest.mark.parametrize(
    ("type_code", "value", "ok"),
    [
        ("Oid", "urn:oid:1.2.840.113619.2.62", True),
        ("Oid", "urn:oid:1.02", False),
        ("Oid", "1.2.3", False),
        ("Uuid", "urn:uuid:c757873d-ec9a-4326-a141-556f43239520", True),
        ("Uuid", "urn:uuid:C757873D-EC9A-4326-A141-556F43239520", False),
        ("Uuid", "c757873d-ec9a-4326-a141-556f43239520", False),
        ("Uri", "urn:x", True),
        ("Uri", "has space", False),
        ("Url", "http://example.org/a", True),
        ("Url", "http://example.org/a b", False),
        ("Canonical", "http://example.org/vs|1.0", True),
        ("Canonical", "", False),
        ("Code", "a b", True),
        ("Code", "a  b", False),
        ("Code", "a ", False),
        ("Id", "abc-1.2", True),
        ("Id", "abc/1", False),
        ("Markdown", "**bold**\n", True),
        ("Markdown", "", False),
        ("String", " padded ", True),
        ("String", "", False),
        ("String", "vertical\x0btab", False),
        ("Base64Binary", "aGVsbG8=", True),
        ("Base64Binary", "aGVs\nbG8=", True),
        ("Base64Binary", "aGVsbG8", False),
        ("Base64Binary", "aGVsbG8*", False),
        ("Base64Binary", "a=Vsb G8", False),
        ("Decimal", 1.25, True),
        ("Decimal", -3, True),
        ("Decimal", "1.25", False),
        ("Decimal", True, False),
        ("Decimal", float("inf"), False),
        ("Integer", -2147483648, True),
        ("Integer", 2147483648, False),
        ("Integer", 1.0, False),
        ("PositiveInt", 1, True),
        ("PositiveInt", 0, False),
        ("UnsignedInt", 0, True),
        ("UnsignedInt", -1, False),
        ("Boolean", False, True),
        ("Boolean", 0, False),
        ("Date", "2020-02-29", True),
        ("Date", "2021-02-29", False),
        ("Instant", "2020-01-02T03:04:05Z", True),
        ("Time", "12:00:00", True),
    ],
)
def test_primitive_formats_in_extension_values(v: Validator, type_code: str, value: Any, ok: bool) -> None:
    """Extension.value[x] takes every primitive type, so it exercises each format check."""
    resource = patched(PATIENT, extension=[{"url": "http://example.org/x", f"value{type_code}": value}])
    expected = (
        [] if ok else [("value", f"Patient.extension[0].value.ofType({type_code[0].lower()}{type_code[1:]})")]
    )
    assert errors(v, resource) == expected


def test_decimal_parsed_as_decimal_is_accepted(v: Validator) -> None:
    from decimal import Decimal

    resource = patched(OBSERVATION, valueQuantity={"value": Decimal("72.0")})
    assert errors(v, resource) == []


def test_narrative_div(v: Validator) -> None:
    ok = patched(PATIENT, text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"/>'})
    assert errors(v, ok) == []
    for div in ("<div>no namespace</div>", "<p xmlns='http://www.w3.org/1999/xhtml'>x</p>", "", 1):
        bad = patched(PATIENT, text={"status": "generated", "div": div})
        assert errors(v, bad) == [("value", "Patient.text.div")]


def test_narrative_div_has_no_extensions(v: Validator) -> None:
    bad = patched(PATIENT, text={"status": "generated", "div": PATIENT["text"]["div"], "_div": {"id": "x"}})
    assert errors(v, bad) == [("structure", "Patient.text._div")]


# -- empty values and nulls ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (patched(PATIENT, name=[]), [("structure", "Patient.name")]),
        (patched(PATIENT, name=[{}]), [("structure", "Patient.name[0]")]),
        (patched(PATIENT, maritalStatus={}), [("structure", "Patient.maritalStatus")]),
        (patched(PATIENT, maritalStatus=None), [("structure", "Patient.maritalStatus")]),
        (patched(PATIENT, name=[None]), [("structure", "Patient.name[0]")]),
        (patched(PATIENT, birthDate=None), [("structure", "Patient.birthDate")]),
        (patched(PATIENT, name=[{"given": []}]), [("structure", "Patient.name[0].given")]),
        (patched(PATIENT, name=[{"given": [""]}]), [("value", "Patient.name[0].given[0]")]),
        (patched(PATIENT, name=[{"family": ""}]), [("value", "Patient.name[0].family")]),
        (patched(PATIENT, _birthDate={}), [("structure", "Patient.birthDate")]),
    ],
)
def test_empty_and_null(v: Validator, resource: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors(v, resource) == expected


def test_empty_resource_is_an_error(v: Validator) -> None:
    assert ("required", None) in errors(v, {})


# -- cardinality ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (patched(PATIENT, birthDate=["1980-01-01"]), [("structure", "Patient.birthDate")]),
        (patched(PATIENT, maritalStatus=[{"text": "x"}]), [("structure", "Patient.maritalStatus")]),
        (patched(PATIENT, name={"family": "x"}), [("structure", "Patient.name")]),
        (patched(PATIENT, name=[{"given": "Jane"}]), [("structure", "Patient.name[0].given")]),
        (patched(PATIENT, name=[{"family": ["a", "b"]}]), [("structure", "Patient.name[0].family")]),
        (patched(OBSERVATION, status=_DELETE), [("required", "Observation")]),
        (patched(OBSERVATION, code=_DELETE), [("required", "Observation")]),
        (patched(PATIENT, link=[{"type": "seealso"}]), [("required", "Patient.link[0]")]),
        (
            patched(OBSERVATION, component=[{"valueString": "x"}]),
            [("required", "Observation.component[0]")],
        ),
        (
            {"resourceType": "Bundle", "type": "collection", "entry": [{"link": [{"url": "http://x"}]}]},
            [("required", "Bundle.entry[0].link[0]")],
        ),
    ],
)
def test_cardinality(v: Validator, resource: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors(v, resource) == expected


def test_required_message_names_the_element(v: Validator) -> None:
    (issue,) = v.validate(patched(OBSERVATION, status=_DELETE))
    assert "Observation.status" in issue.diagnostics


def test_required_primitive_may_be_present_only_as_extension(v: Validator) -> None:
    absent = {
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}
        ]
    }
    resource = patched(OBSERVATION, status=_DELETE, _status=absent)
    assert errors(v, resource) == []


# -- choice types -----------------------------------------------------------------------------------------


def test_choice_accepts_each_allowed_type(v: Validator) -> None:
    for key, value in [
        ("valueString", "x"),
        ("valueBoolean", True),
        ("valueInteger", 3),
        ("valueCodeableConcept", {"text": "x"}),
        ("valueRange", {"low": {"value": 1}}),
        ("valuePeriod", {"start": "2020"}),
        ("valueSampledData", {"origin": {"value": 0}, "period": 1, "dimensions": 1}),
    ]:
        resource = patched(OBSERVATION, valueQuantity=_DELETE, **{key: value})
        assert errors(v, resource) == [], key


def test_choice_rejects_a_type_it_does_not_allow(v: Validator) -> None:
    resource = patched(OBSERVATION, valueQuantity=_DELETE, valueDate="2020-01-01")
    assert errors(v, resource) == [("structure", "Observation.valueDate")]


def test_only_one_choice(v: Validator) -> None:
    resource = patched(OBSERVATION, valueString="x")
    assert errors(v, resource) == [("structure", "Observation.valueString")]


def test_choice_with_its_own_primitive_extension_is_one_choice(v: Validator) -> None:
    resource = patched(OBSERVATION, valueQuantity=_DELETE, valueString="x", _valueString={"id": "a"})
    assert errors(v, resource) == []
    resource = patched(OBSERVATION, _valueString={"id": "a"})
    assert errors(v, resource) == [("structure", "Observation._valueString")]


def test_choice_type_errors_inside_the_value(v: Validator) -> None:
    resource = patched(OBSERVATION, valueQuantity={"value": "72"})
    assert errors(v, resource) == [("value", "Observation.value.ofType(Quantity).value")]
    resource = patched(OBSERVATION, valueQuantity={"comparator": "~"})
    assert errors(v, resource) == [("code-invalid", "Observation.value.ofType(Quantity).comparator")]


# -- primitive extensions ---------------------------------------------------------------------------------

EXT = {"url": "http://example.org/x", "valueString": "y"}


def test_primitive_extension(v: Validator) -> None:
    resource = patched(PATIENT, _birthDate={"id": "b", "extension": [EXT]})
    assert errors(v, resource) == []
    resource = patched(PATIENT, birthDate=_DELETE, _birthDate={"extension": [EXT]})
    assert errors(v, resource) == []


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        ("x", [("structure", "Patient.birthDate")]),
        ([{"id": "a"}], [("structure", "Patient.birthDate")]),
        (
            {"extension": {"url": "http://x", "valueString": "y"}},
            [("structure", "Patient.birthDate.extension")],
        ),
        ({"extension": [{"valueString": "y"}]}, [("required", "Patient.birthDate.extension[0]")]),
        (
            {"extension": [{"url": "http://x", "valueString": 1}]},
            [("value", "Patient.birthDate.extension[0].value.ofType(string)")],
        ),
        ({"id": 1}, [("value", "Patient.birthDate.id")]),
    ],
)
def test_bad_primitive_extension(v: Validator, ext: Any, expected: list[tuple[str, str]]) -> None:
    assert errors(v, patched(PATIENT, _birthDate=ext)) == expected


def test_primitive_array_extensions(v: Validator) -> None:
    name = {"given": ["Jane", None, "Ann"], "_given": [None, {"extension": [EXT]}, {"id": "g3"}]}
    assert errors(v, patched(PATIENT, name=[name])) == []
    name = {"_given": [{"extension": [EXT]}]}
    assert errors(v, patched(PATIENT, name=[name])) == []


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ({"given": ["a", None]}, [("structure", "Patient.name[0].given[1]")]),
        ({"given": ["a", None], "_given": [None, None]}, [("structure", "Patient.name[0].given[1]")]),
        ({"given": ["a", "b"], "_given": [None]}, [("structure", "Patient.name[0].given")]),
        ({"given": ["a"], "_given": {"id": "x"}}, [("structure", "Patient.name[0].given")]),
        ({"given": ["a"], "_given": [{"foo": 1}]}, [("structure", "Patient.name[0].given[0].foo")]),
        ({"_given": [None]}, [("structure", "Patient.name[0].given[0]")]),
        ({"_given": []}, [("structure", "Patient.name[0].given")]),
        ({"given": ["a", 1]}, [("value", "Patient.name[0].given[1]")]),
    ],
)
def test_bad_primitive_array(v: Validator, name: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors(v, patched(PATIENT, name=[name])) == expected


# -- extensions -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ext", "expected"),
    [
        ({"url": "http://x", "valueAddress": {"city": "Leeds"}}, []),
        ({"url": "http://x", "extension": [{"url": "a", "valueCode": "b"}]}, []),
        ({"valueString": "y"}, [("required", "Patient.extension[0]")]),
        ({"url": "", "valueString": "y"}, [("value", "Patient.extension[0].url")]),
        ({"url": "http://x"}, [("structure", "Patient.extension[0]")]),
        (
            {"url": "http://x", "valueString": "y", "extension": [EXT]},
            [("structure", "Patient.extension[0]")],
        ),
        (
            {"url": "http://x", "valueFoo": "y"},
            [("structure", "Patient.extension[0].valueFoo")],
        ),
        (
            {"url": "http://x", "valueString": "y", "valueCode": "z"},
            [("structure", "Patient.extension[0].valueCode")],
        ),
        (
            {"url": "http://x", "valueReference": {"reference": 1}},
            [("value", "Patient.extension[0].value.ofType(Reference).reference")],
        ),
    ],
)
def test_extension_structure(v: Validator, ext: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    assert errors(v, patched(PATIENT, extension=[ext])) == expected


def test_modifier_extension_and_nested(v: Validator) -> None:
    resource = patched(PATIENT, modifierExtension=[{"url": "http://x", "extension": [{"url": "a"}]}])
    assert errors(v, resource) == [("structure", "Patient.modifierExtension[0].extension[0]")]
    contact = {"modifierExtension": [{"valueString": "x"}], "name": {"family": "x"}}
    assert errors(v, patched(PATIENT, contact=[contact])) == [
        ("required", "Patient.contact[0].modifierExtension[0]")
    ]


# -- required bindings ------------------------------------------------------------------------------------


def test_required_binding_on_code(v: Validator) -> None:
    assert errors(v, patched(PATIENT, gender="F")) == [("code-invalid", "Patient.gender")]
    assert errors(v, patched(PATIENT, name=[{"use": "formal"}])) == [("code-invalid", "Patient.name[0].use")]
    assert errors(v, patched(OBSERVATION, status="done")) == [("code-invalid", "Observation.status")]


def test_required_binding_on_repeating_code(v: Validator) -> None:
    resource = {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2020",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "x"},
        "rest": [
            {
                "mode": "server",
                "resource": [
                    {
                        "type": "Patient",
                        "interaction": [{"code": "read"}],
                        "referencePolicy": ["literal", "bogus"],
                    }
                ],
            }
        ],
    }
    assert errors(v, resource) == [
        ("code-invalid", "CapabilityStatement.rest[0].resource[0].referencePolicy[1]")
    ]


def test_required_binding_on_codeable_concept(v: Validator) -> None:
    system = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [{"system": system, "code": "active"}]},
    }
    assert errors(v, condition) == []
    condition["clinicalStatus"] = {
        "coding": [{"system": "http://other", "code": "x"}, {"system": system, "code": "resolved"}]
    }
    assert errors(v, condition) == []
    condition["clinicalStatus"] = {"coding": [{"system": system, "code": "gone"}]}
    assert errors(v, condition) == [("code-invalid", "Condition.clinicalStatus")]
    condition["clinicalStatus"] = {"coding": [{"code": "active"}]}  # no system: not from the value set
    assert errors(v, condition) == [("code-invalid", "Condition.clinicalStatus")]


def test_text_only_concept_under_required_binding_is_a_warning(v: Validator) -> None:
    condition = {
        "resourceType": "Condition",
        "subject": {"reference": "Patient/p1"},
        "clinicalStatus": {"text": "active"},
    }
    issues = v.validate(condition)
    assert [(i.severity, i.code, i.expression) for i in issues] == [
        ("warning", "code-invalid", "Condition.clinicalStatus")
    ]
    assert v.is_valid(condition)


def test_required_binding_on_coding_with_custom_tables() -> None:
    tables = {
        "fhirVersion": "4.0.1",
        "primitives": {
            "code": {"json": "string", "regex": "[^\\s]+(\\s[^\\s]+)*"},
            "uri": {"json": "string", "regex": "\\S*"},
            "string": {"json": "string", "regex": "[ \\r\\n\\t\\S]+"},
        },
        "resources": ["Thing"],
        "types": {
            "Thing": {"kind": [1, "1", ["Coding"], "http://x/vs"]},
            "Coding": {"system": [0, "1", ["uri"], None], "code": [0, "1", ["code"], None]},
            "Extension": {"url": [1, "1", ["uri"], None]},
        },
        "valueSets": {"http://x/vs": {"http://x/cs": ["a", "b"]}},
    }
    v = Validator(structures.Definitions(tables))
    assert v.validate({"resourceType": "Thing", "kind": {"system": "http://x/cs", "code": "a"}}) == []
    issues = v.validate({"resourceType": "Thing", "kind": {"system": "http://x/cs", "code": "c"}})
    assert [(i.code, i.expression) for i in issues] == [("code-invalid", "Thing.kind")]


# -- nested resources and content references ----------------------------------------------------------------


def test_contained_resources_are_validated(v: Validator) -> None:
    resource = patched(
        PATIENT, contained=[{"resourceType": "Observation", "status": "x", "code": {"text": "y"}}]
    )
    assert errors(v, resource) == [("code-invalid", "Patient.contained[0].ofType(Observation).status")]
    resource = patched(PATIENT, contained=[{"id": "x"}])
    assert errors(v, resource) == [("required", "Patient.contained[0]")]
    resource = patched(PATIENT, contained={"resourceType": "Observation"})
    assert errors(v, resource) == [("structure", "Patient.contained")]


def test_bundle_entries_are_validated(v: Validator) -> None:
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": "urn:uuid:c757873d-ec9a-4326-a141-556f43239520",
                "resource": PATIENT,
                "request": {"method": "POST", "url": "Patient"},
            },
            {
                "resource": patched(PATIENT, birthDate="1980-02-30"),
                "request": {"method": "PUT", "url": "Patient/p1"},
            },
            {"resource": {"resourceType": "Bogus"}, "request": {"method": "POST", "url": "Bogus"}},
            {"request": {"method": "FETCH", "url": "Patient"}},
        ],
    }
    assert errors(v, bundle) == [
        ("value", "Bundle.entry[1].resource.ofType(Patient).birthDate"),
        ("structure", "Bundle.entry[2].resource"),
        ("code-invalid", "Bundle.entry[3].request.method"),
    ]


def test_nested_bundles_and_parameters(v: Validator) -> None:
    inner = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": {"resourceType": "Patient", "gender": "x"}}],
    }
    params = {
        "resourceType": "Parameters",
        "parameter": [{"name": "return", "resource": inner}, {"name": "n", "valueInteger": "1"}],
    }
    assert errors(v, params) == [
        (
            "code-invalid",
            "Parameters.parameter[0].resource.ofType(Bundle).entry[0].resource.ofType(Patient).gender",
        ),
        ("value", "Parameters.parameter[1].value.ofType(integer)"),
    ]
    params = {"resourceType": "Parameters", "parameter": [{"name": "x", "resource": "Patient/1"}]}
    assert errors(v, params) == [("value", "Parameters.parameter[0].resource")]


def test_content_reference_recursion(v: Validator) -> None:
    q = {
        "resourceType": "Questionnaire",
        "status": "active",
        "item": [
            {
                "linkId": "1",
                "type": "group",
                "item": [{"linkId": "1.1", "type": "group", "item": [{"type": "string", "prefiz": "a"}]}],
            }
        ],
    }
    assert sorted(errors(v, q)) == [
        ("required", "Questionnaire.item[0].item[0].item[0]"),
        ("structure", "Questionnaire.item[0].item[0].item[0].prefiz"),
    ]
    response = {
        "resourceType": "QuestionnaireResponse",
        "status": "completed",
        "item": [
            {
                "linkId": "1",
                "answer": [
                    {"valueString": "x", "item": [{"linkId": "2", "answer": [{"valueDate": "2020-13"}]}]}
                ],
            }
        ],
    }
    assert errors(v, response) == [
        ("value", "QuestionnaireResponse.item[0].answer[0].item[0].answer[0].value.ofType(date)")
    ]


def test_datatypes_nested_in_backbones(v: Validator) -> None:
    resource = patched(PATIENT, contact=[{"name": {"family": "x"}, "period": {"start": "yesterday"}}])
    assert errors(v, resource) == [("value", "Patient.contact[0].period.start")]
    timing = {
        "repeat": {"boundsPeriod": {"start": "2020"}, "frequency": 0, "period": 1, "periodUnit": "fortnight"}
    }
    request = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"text": "x"},
        "subject": {"reference": "Patient/1"},
        "dosageInstruction": [{"timing": timing}],
    }
    assert sorted(errors(v, request)) == [
        ("code-invalid", "MedicationRequest.dosageInstruction[0].timing.repeat.periodUnit"),
        ("value", "MedicationRequest.dosageInstruction[0].timing.repeat.frequency"),
    ]


# -- NHS numbers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["9434765918", "0000000000", "943 476 5919", "94347659", "9990000000"])
def test_bad_nhs_number_on_patient(v: Validator, value: str) -> None:
    resource = patched(
        PATIENT, identifier=[{"system": "urn:x", "value": "a"}, {"system": NHS, "value": value}]
    )
    issues = v.validate(resource)
    assert [(i.code, i.expression) for i in issues] == [("value", "Patient.identifier[1].value")]
    assert "NHS number" in issues[0].diagnostics


def test_good_nhs_numbers(v: Validator) -> None:
    resource = patched(PATIENT, identifier=[{"system": NHS, "value": "9000000009"}])
    assert errors(v, resource) == []


def test_nhs_number_only_checked_for_its_system(v: Validator) -> None:
    resource = patched(
        PATIENT, identifier=[{"system": "https://fhir.nhs.uk/Id/local", "value": "0000000000"}]
    )
    assert errors(v, resource) == []


def test_bad_nhs_number_anywhere(v: Validator) -> None:
    subject = {"identifier": {"system": NHS, "value": "1234567890"}, "display": "x"}
    assert errors(v, patched(OBSERVATION, subject=subject)) == [
        ("value", "Observation.subject.identifier.value")
    ]
    ext = {"url": "http://x", "valueIdentifier": {"system": NHS, "value": "1111111111"}}
    assert errors(v, patched(OBSERVATION, extension=[ext])) == [
        ("value", "Observation.extension[0].value.ofType(Identifier).value")
    ]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": patched(PATIENT, identifier=[{"system": NHS, "value": "9434765918"}])}],
    }
    assert errors(v, bundle) == [("value", "Bundle.entry[0].resource.ofType(Patient).identifier[0].value")]


# -- the tables ---------------------------------------------------------------------------------------------


def test_element_lookup() -> None:
    defs = structures.definitions()
    patient = defs.type_def("Patient")
    assert patient is not None and patient.is_resource
    assert patient.slots["birthDate"].type_code == "date"
    assert patient.slots["_birthDate"].kind == structures.PRIMITIVE_EXT
    assert patient.slots["deceasedBoolean"].element.choice
    assert patient.slots["contact"].type_code == "Patient.contact"
    assert patient.slots["id"].type_code == "id"
    item = defs.type_def("Questionnaire.item")
    assert item is not None and item.slots["item"].type_code == "Questionnaire.item"
    assert defs.type_def("NoSuchType") is None
    assert defs.primitives()["positiveInt"].json == "number"
    assert defs.fhir_version == "4.0.1"
