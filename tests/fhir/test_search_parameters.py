"""The search-parameter registry and the FHIRPath-to-Python compiler behind the indexer."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from sharedcare.fhir.fhirpath_compile import (
    UNKNOWN,
    CompileError,
    ElementTypes,
    ExpressionCompiler,
    guess_type,
    parse,
    reference_type,
)
from sharedcare.fhir.search_parameters import SearchParam, SearchParameterRegistry

EXAMPLES = (
    Path(os.environ.get("SHAREDCARE_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")
    / "data"
    / "fhir-examples"
    / "r4-spec-examples"
)
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason="shared reference data not available")


@pytest.fixture(scope="module")
def registry() -> SearchParameterRegistry:
    return SearchParameterRegistry.load()


@pytest.fixture(scope="module")
def compiler(registry: SearchParameterRegistry) -> ExpressionCompiler:
    assert registry.element_types is not None
    return ExpressionCompiler(registry.element_types)


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------ registry


def test_loads_every_r4_parameter(registry: SearchParameterRegistry) -> None:
    params = list(registry.all())
    assert len(params) >= 1390
    assert len({p.url for p in params}) == len(params)
    assert "Observation" in registry.resource_types
    assert registry.resource_types["Bundle"] == "Resource"
    assert registry.resource_types["Patient"] == "DomainResource"


def test_params_for_includes_resource_level_params(registry: SearchParameterRegistry) -> None:
    patient = registry.params_for("Patient")
    for code in ("name", "birthdate", "_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"):
        assert code in patient
    for code in ("_text", "_content", "_list", "_has"):
        assert patient[code].special, code
    assert patient["_id"].special and patient["_lastUpdated"].special
    assert not patient["_tag"].special and patient["_tag"].type == "token"
    assert patient["_profile"].type == "uri"
    assert "_text" not in registry.params_for("Bundle")  # Bundle is not a DomainResource
    assert registry.get("Location", "near") is not None and registry.get("Location", "near").special


def test_get_and_shared_parameters(registry: SearchParameterRegistry) -> None:
    patient_param = registry.get("Observation", "patient")
    assert patient_param is not None
    assert patient_param is registry.get("Condition", "patient")  # one definition, many bases
    assert patient_param.target == ("Group", "Patient") or "Patient" in patient_param.target
    assert registry.get("Observation", "no-such-param") is None
    assert registry.get("Observation", "value-quantity").comparators[:2] == ("eq", "ne")


def test_any_target_is_expanded(registry: SearchParameterRegistry) -> None:
    focus = registry.get("Observation", "focus")
    assert focus is not None
    assert "Patient" in focus.target and "Parameters" not in focus.target and len(focus.target) > 100


def test_composite_components(registry: SearchParameterRegistry) -> None:
    cvq = registry.get("Observation", "code-value-quantity")
    assert cvq is not None and cvq.type == "composite"
    assert [(c.code, c.type, c.expression) for c in cvq.components] == [
        ("code", "token", "code"),
        ("value-quantity", "quantity", "value.as(Quantity)"),
    ]
    # R4 erratum repaired by the generator: the definitions were swapped relative to their expressions.
    rel = registry.get("DocumentReference", "relationship")
    assert rel is not None
    assert [(c.type, c.expression) for c in rel.components] == [("token", "code"), ("reference", "target")]


def test_compartments(registry: SearchParameterRegistry) -> None:
    assert registry.compartment_types() == ("Device", "Encounter", "Patient", "Practitioner", "RelatedPerson")
    assert registry.compartment_params("Patient", "Observation") == ("performer", "subject")
    assert registry.compartment_params("Patient", "Patient") == ("link",)
    assert registry.compartment_params("Encounter", "Encounter") == ()  # {def}: membership of itself is implicit
    assert registry.compartment_params("Patient", "NoSuchType") == ()
    assert set(registry.compartments_for("Observation")) == set(registry.compartment_types())
    assert set(registry.compartments_for("Account")) == {"Device", "Patient", "Practitioner"}


CUSTOM = {
    "resourceType": "SearchParameter",
    "url": "http://example.org/fhir/SearchParameter/patient-eye-colour",
    "name": "eyeColour",
    "status": "active",
    "code": "eye-colour",
    "base": ["Patient"],
    "type": "token",
    "expression": "Patient.extension('http://example.org/eye-colour')",
}


def test_register_custom_parameter() -> None:
    registry = SearchParameterRegistry.load()
    version = registry.version
    param = registry.register(CUSTOM)
    assert param.custom and param.type == "token" and param.base == ("Patient",)
    assert registry.version == version + 1
    assert registry.get("Patient", "eye-colour") is param
    assert registry.by_url(CUSTOM["url"]) is param
    replaced = registry.register({**CUSTOM, "type": "string"})
    assert registry.get("Patient", "eye-colour") is replaced and replaced.type == "string"


def test_register_composite_uses_known_definitions() -> None:
    registry = SearchParameterRegistry.load()
    param = registry.register(
        {
            **CUSTOM,
            "code": "code-status",
            "base": ["Observation"],
            "type": "composite",
            "expression": "Observation",
            "component": [
                {"definition": "http://hl7.org/fhir/SearchParameter/clinical-code", "expression": "code"},
                {"definition": "http://hl7.org/fhir/SearchParameter/Observation-status", "expression": "status"},
            ],
        }
    )
    assert [c.type for c in param.components] == ["token", "token"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"resourceType": "Patient"}, "not a SearchParameter"),
        ({"code": "bad code"}, "not a valid parameter name"),
        ({"type": "fuzzy"}, "not a search parameter type"),
        ({"base": ["Martian"]}, "base"),
        ({"base": []}, "base"),
        ({"expression": None}, "expression is required"),
        ({"expression": "Patient.name.where("}, "invalid FHIRPath"),
        ({"type": "composite"}, "needs components"),
        ({"component": [{"definition": "http://nowhere/x", "expression": "code"}]}, "not a known"),
    ],
)
def test_register_rejects_unusable_definitions(change: dict[str, Any], message: str) -> None:
    registry = SearchParameterRegistry.load()
    with pytest.raises(ValueError, match=message):
        registry.register({**CUSTOM, **change})
    assert registry.version == 0


def test_search_param_is_frozen() -> None:
    param = SearchParam("x", "token", ("Patient",), "Patient.x", "urn:x")
    with pytest.raises(AttributeError):
        param.code = "y"  # type: ignore[misc]


# ------------------------------------------------------------------------------------------------ compiler


def test_every_r4_expression_compiles_without_fallback(
    registry: SearchParameterRegistry, compiler: ExpressionCompiler
) -> None:
    fallbacks = []
    compiled = 0
    for p in registry.all():
        if not p.expression:
            continue
        bases = sorted(registry.resource_types) if p.base[0] in ("Resource", "DomainResource") else p.base
        for rtype in bases:
            compiled += 1
            if compiler.compile(p.expression, rtype).fallback:
                fallbacks.append((rtype, p.code))
            for c in p.components:
                if compiler.compile(c.expression, rtype, relative=True).fallback:
                    fallbacks.append((rtype, f"{p.code}.{c.code}"))
    assert compiled > 2500
    assert fallbacks == []


PATIENT = {
    "resourceType": "Patient",
    "id": "p1",
    "name": [{"family": "Smith", "given": ["Ann", "Jo"]}, {"text": "Annie"}],
    "telecom": [{"system": "phone", "value": "0123"}, {"system": "email", "value": "a@b.c"}],
    "deceasedDateTime": "2020-01-01",
    "extension": [{"url": "http://x/ext", "valueString": "hello"}],
    "generalPractitioner": [{"reference": "Practitioner/d1"}, {"reference": "#org"}],
    "contained": [{"resourceType": "Organization", "id": "org"}],
}


def run(compiler: ExpressionCompiler, expression: str, resource: dict[str, Any] = PATIENT) -> list:
    compiled = compiler.compile(expression, resource["resourceType"])
    assert not compiled.fallback, expression
    return compiled(resource)


def test_paths_unions_and_types(compiler: ExpressionCompiler) -> None:
    assert run(compiler, "Patient.name.given") == [("Ann", "string"), ("Jo", "string")]
    assert run(compiler, "Patient.name.family | Patient.name.text") == [("Smith", "string"), ("Annie", "string")]
    assert [t for _, t in run(compiler, "Patient.name")] == ["HumanName", "HumanName"]
    assert [t for _, t in run(compiler, "Patient.telecom")] == ["ContactPoint", "ContactPoint"]
    assert run(compiler, "Patient.name.first().family") == [("Smith", "string")]
    assert run(compiler, "Patient.name[1].text") == [("Annie", "string")]
    assert run(compiler, "Resource.id") == [("p1", "string")]


def test_other_resource_branches_are_pruned(compiler: ExpressionCompiler) -> None:
    compiled = compiler.compile("Practitioner.name | Patient.gender", "Patient")
    assert compiled.root_keys == frozenset({"gender"})
    assert compiler.compile("Practitioner.name", "Patient").fn is None


def test_choice_types(compiler: ExpressionCompiler) -> None:
    obs = {"resourceType": "Observation", "valueQuantity": {"value": 5}, "effectivePeriod": {"start": "2020"}}
    assert run(compiler, "(Observation.value as Quantity)", obs) == [({"value": 5}, "Quantity")]
    assert run(compiler, "Observation.value.as(Quantity)", obs) == [({"value": 5}, "Quantity")]
    assert run(compiler, "Observation.value.ofType(Quantity)", obs) == [({"value": 5}, "Quantity")]
    assert run(compiler, "Observation.value.ofType(FHIR.Quantity)", obs) == [({"value": 5}, "Quantity")]
    assert run(compiler, "Observation.value is Quantity", obs) == [(True, "boolean")]
    assert run(compiler, "(Observation.value as CodeableConcept)", obs) == []
    assert run(compiler, "Observation.effective", obs) == [({"start": "2020"}, "Period")]
    assert run(compiler, "Patient.deceased.as(dateTime)") == [("2020-01-01", "dateTime")]
    keys = compiler.compile("(Observation.value as Quantity)", "Observation").root_keys
    assert keys == frozenset({"valueQuantity"})


def test_where_filters(compiler: ExpressionCompiler) -> None:
    assert run(compiler, "Patient.telecom.where(system='email')") == [
        ({"system": "email", "value": "a@b.c"}, "ContactPoint")
    ]
    assert run(compiler, "Patient.generalPractitioner.where(resolve() is Practitioner)") == [
        ({"reference": "Practitioner/d1"}, "Reference")
    ]
    # a contained reference resolves to the contained resource's type
    assert run(compiler, "Patient.generalPractitioner.where(resolve() is Organization)") == [
        ({"reference": "#org"}, "Reference")
    ]
    assert run(compiler, "Patient.name.where(given.exists() and family = 'Smith').family") == [("Smith", "string")]


def test_extensions(compiler: ExpressionCompiler) -> None:
    assert run(compiler, "Patient.extension('http://x/ext')") == [(PATIENT["extension"][0], "Extension")]
    assert run(compiler, "Patient.extension.where(url = 'http://x/ext').value") == [("hello", "string")]
    assert run(compiler, "Patient.where(hasExtension('http://x/ext')).id") == [("p1", "string")]


def test_boolean_expressions(compiler: ExpressionCompiler) -> None:
    deceased = "Patient.deceased.exists() and Patient.deceased != false"
    assert run(compiler, deceased) == [(True, "boolean")]
    assert run(compiler, deceased, {"resourceType": "Patient", "deceasedBoolean": False}) == [(False, "boolean")]
    assert run(compiler, deceased, {"resourceType": "Patient"}) == [(False, "boolean")]
    assert run(compiler, "Patient.name.empty()") == [(False, "boolean")]
    assert run(compiler, "Patient.name.count() > 1") == [(True, "boolean")]


def test_bundle_entry_resource_and_variables(compiler: ExpressionCompiler) -> None:
    bundle = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Composition", "id": "c"}}]}
    assert run(compiler, "Bundle.entry[0].resource", bundle) == [(bundle["entry"][0]["resource"], "Composition")]
    seq = {"resourceType": "MolecularSequence", "referenceSeq": {"chromosome": {"text": "1"}}, "variant": [{}]}
    comp = compiler.compile("%resource.referenceSeq.chromosome", "MolecularSequence", relative=True)
    assert comp.relative([({}, "MolecularSequence.variant")], seq) == [({"text": "1"}, "CodeableConcept")]


def test_unsupported_expressions_fall_back_to_fhirpathpy(compiler: ExpressionCompiler) -> None:
    compiled = compiler.compile("Patient.name.given.select($this & '!')", "Patient")
    assert compiled.fallback
    assert compiled(PATIENT) == [("Ann!", "string"), ("Jo!", "string")]
    dated = compiler.compile("Patient.deceased.as(dateTime) < @2021-01-01", "Patient")
    assert dated.fallback and dated(PATIENT) == [(True, "boolean")]
    quantity = compiler.compile("5 'mg'", "Patient")
    assert quantity(PATIENT) == [
        ({"value": 5, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}, "Quantity")
    ]


def test_parser_errors() -> None:
    with pytest.raises(CompileError):
        parse("Patient.name.where(")
    with pytest.raises(CompileError):
        parse("Patient.name £")
    with pytest.raises(CompileError):
        parse("Patient..name")
    assert parse("Patient.birthDate < @2020-01-01")[0] == "binop"  # parses; evaluated by the fallback
    assert parse("Observation.value > 5 'mg'")[3] == ("quantity", "5", "mg")
    assert parse("Patient.name") == ("member", ("member", None, "Patient"), "name")


def test_helpers() -> None:
    assert reference_type({"reference": "Patient/1/_history/2"}) == "Patient"
    assert reference_type({"reference": "https://x.org/fhir/Observation/a.b"}) == "Observation"
    assert reference_type({"type": "Device"}) == "Device"
    assert reference_type({"reference": "urn:uuid:1234"}) is None
    assert guess_type({"coding": []}) == "CodeableConcept"
    assert guess_type({"family": "x"}) == "HumanName"
    assert guess_type(True) == "boolean" and guess_type(1.5) == "decimal" and guess_type([]) == UNKNOWN


def test_element_types(registry: SearchParameterRegistry) -> None:
    types = registry.element_types
    assert isinstance(types, ElementTypes)
    assert types.is_subtype("Age", "Quantity") and types.is_subtype("code", "string")
    assert types.is_subtype("Patient", "DomainResource") and not types.is_subtype("Quantity", "Age")
    assert dict(types.candidates("Observation", "value", "Quantity")) == {"valueQuantity": "Quantity"}
    assert types.element("Questionnaire.item", "item") == "Questionnaire.item"  # contentReference
    assert types.normalise_type("DateTime") == "dateTime" and types.normalise_type("FHIR.Quantity") == "Quantity"


# ------------------------------------------------------------------------------------------------ against fhirpathpy


def _canon(value: Any) -> str:
    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, int | float) and not isinstance(v, bool):
            return str(v)
        return v

    return json.dumps(walk(value), sort_keys=True, default=str)


@needs_examples
@pytest.mark.parametrize(
    "name",
    ["Observation-example.json", "Observation-blood-pressure.json", "Patient-example.json", "Condition-f201.json"]
    + ["Encounter-home.json", "MedicationRequest-medrx0302.json", "Questionnaire-f201.json", "Location-1.json"],
)
def test_agrees_with_fhirpathpy(registry: SearchParameterRegistry, compiler: ExpressionCompiler, name: str) -> None:
    """Same values as the reference engine (as sets: FHIRPath unions remove duplicates, the indexer does later)."""
    import fhirpathpy
    from fhirpathpy.models import models

    resource = example(name)
    rtype = resource["resourceType"]
    checked = 0
    for code, p in registry.params_for(rtype).items():
        expr = p.expression
        if not expr or "resolve()" in expr or "hasExtension" in expr:
            continue  # fhirpathpy implements neither
        expr_for_fp = expr.replace("Resource.", f"{rtype}.")  # fhirpathpy does not match `Resource` to a subtype
        try:
            theirs = fhirpathpy.evaluate(json.loads(json.dumps(resource)), expr_for_fp, model=models["r4"])
        except Exception:  # noqa: BLE001 - fhirpathpy is stricter about singletons than the indexer needs
            continue
        mine = compiler.compile(expr, rtype)(resource)
        assert {_canon(v) for v, _ in mine} == {_canon(v) for v in theirs}, code
        checked += 1
    assert checked > 5
