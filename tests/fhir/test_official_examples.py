"""Acceptance: the official R4 examples (and some real-world data) validate cleanly.

Reads the reference data in ../shared; every test here skips when it is absent (a user's checkout has none).
"""

from __future__ import annotations

import copy
import gzip
import importlib.util
import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from sharedcare.fhir import structures
from sharedcare.fhir.validation import Validator

SHARED = Path(os.environ.get("SHAREDCARE_SHARED") or Path(__file__).resolve().parents[2].parent / "shared")
EXAMPLES = SHARED / "data" / "fhir-examples" / "r4-spec-examples"
INDEX = SHARED / "data" / "fhir-examples" / "r4-spec-examples.index.json"
SYNTHEA = SHARED / "data" / "synthea"
UKCORE_EXAMPLES = SHARED / "fhir" / "ukcore-2.0.0" / "examples"
CORE_PACKAGE = SHARED / "fhir" / "hl7.fhir.r4.core-4.0.1.tgz"
GENERATOR = Path(__file__).resolve().parents[2] / "tools" / "gen_definitions.py"

# Official examples that are genuinely invalid R4 (spec errata), with the reason and the issue that proves it.
ERRATA: dict[str, tuple[str, str, str]] = {
    "Questionnaire-qs1.json": (
        "Its 'display' items (the fly-over help texts nested in groups) have no linkId, "
        "but Questionnaire.item.linkId is 1..1",
        "required",
        "Questionnaire.item[0].item[0]",
    ),
}

needs_examples = pytest.mark.skipif(not INDEX.is_file(), reason="shared R4 examples not available")


def _example_files() -> list[str]:
    if not INDEX.is_file():
        return []
    return [entry["file"] for entry in json.loads(INDEX.read_text())["files"]]


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@needs_examples
def test_index_lists_every_example() -> None:
    files = _example_files()
    assert len(files) == 747
    assert sorted(p.name for p in EXAMPLES.glob("*.json")) == sorted(files)


@needs_examples
@pytest.mark.parametrize("name", _example_files())
def test_official_example(validator: Validator, name: str) -> None:
    resource = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    errors = [i for i in validator.validate(resource, expected_type=resource["resourceType"]) if i.severity == "error"]
    if name in ERRATA:
        _reason, code, expression = ERRATA[name]
        assert any(i.code == code and i.expression == expression for i in errors), errors
        return
    assert errors == []


@needs_examples
def test_examples_cover_every_resource_type_they_claim() -> None:
    index = json.loads(INDEX.read_text())
    assert set(index["by_type"]) <= structures.resource_types()


@pytest.mark.skipif(not CORE_PACKAGE.is_file(), reason="shared R4 core package not available")
def test_generated_tables_are_up_to_date() -> None:
    """The committed tables must be exactly what tools/gen_definitions.py makes from the core package."""
    spec = importlib.util.spec_from_file_location("gen_definitions", GENERATOR)
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    tables, skipped = gen.build(CORE_PACKAGE)
    assert gen.render(tables) == gen.DEFAULT_OUT.read_text(encoding="utf-8")
    assert len(tables["resources"]) == 146
    assert "http://hl7.org/fhir/ValueSet/ucum-units" in skipped  # external terminology: left unchecked


# -- Synthea: real-shaped data written by someone else -------------------------------------------------------


def _synthea_files() -> list[Path]:
    picked: list[Path] = []
    for folder in ("smart-on-fhir-r4-2019", "fhir-data-pipes-hiv-2021"):
        picked.extend(sorted((SYNTHEA / folder).glob("*.json.gz"))[:2])
    return picked


@pytest.mark.skipif(not SYNTHEA.is_dir(), reason="shared Synthea data not available")
@pytest.mark.parametrize("path", _synthea_files(), ids=lambda p: p.name[:40])
def test_synthea_bundle(validator: Validator, path: Path) -> None:
    bundle = json.loads(gzip.decompress(path.read_bytes()))
    assert [i for i in validator.validate(bundle) if i.severity == "error"] == []


# -- UK Core examples (XML, converted with the same structure tables) ----------------------------------------

FHIR_NS = "{http://hl7.org/fhir}"
XHTML_NS = "http://www.w3.org/1999/xhtml"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _xml_primitive(raw: str | None, kind: str) -> Any:
    if raw is None:
        return None
    if kind == "boolean":
        return {"true": True, "false": False}.get(raw, raw)
    if kind == "number":
        return int(raw)
    if kind == "decimal":
        return float(raw) if any(c in raw for c in ".eE") else int(raw)
    return raw


def _xhtml(elem: ET.Element) -> str:
    div = copy.deepcopy(elem)
    div.tail = None
    ET.register_namespace("", XHTML_NS)
    return ET.tostring(div, encoding="unicode")


def _xml_object(elem: ET.Element, tdef: structures.TypeDef | None) -> dict[str, Any]:
    """Convert the children of `elem` per the element map; unknown names are kept so validation flags them."""
    defs = structures.definitions()
    out: dict[str, Any] = {k: v for k, v in elem.attrib.items() if k in ("id", "url")}
    arrays: dict[str, tuple[list[Any], list[Any]]] = {}
    for child in elem:
        if not isinstance(child.tag, str):
            continue
        name = _local(child.tag)
        slot = tdef.slots.get(name) if tdef else None
        if slot is None:
            out[name] = _xml_object(child, None)
            continue
        if slot.kind == structures.PRIMITIVE:
            if slot.type_code == "xhtml":
                out[name] = _xhtml(child)
                continue
            value: Any = _xml_primitive(child.get("value"), defs.primitives()[slot.type_code].json)
            ext = _xml_object(child, defs.primitive_element())
            if slot.element.is_array:
                values, exts = arrays.setdefault(name, ([], []))
                values.append(value)
                exts.append(ext or None)
            else:
                if value is not None:
                    out[name] = value
                if ext:
                    out["_" + name] = ext
            continue
        if slot.kind == structures.RESOURCE:
            inner = next(c for c in child if isinstance(c.tag, str))
            value = xml_resource(inner)
        else:
            value = _xml_object(child, defs.type_def(slot.type_code))
        if slot.element.is_array:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value
    for name, (values, exts) in arrays.items():
        if any(v is not None for v in values):
            out[name] = values
        if any(e is not None for e in exts):
            out["_" + name] = exts
    return out


def xml_resource(elem: ET.Element) -> dict[str, Any]:
    """A FHIR XML resource as FHIR JSON."""
    rtype = _local(elem.tag)
    return {"resourceType": rtype, **_xml_object(elem, structures.definitions().type_def(rtype))}


# UK Core 2.0.0 examples that are genuinely invalid, with the reason and the issue that proves it.
UKCORE_ERRATA: dict[str, tuple[str, str, str]] = {
    "Extension-UKCore-ConditionEpisode-Example.xml": (
        "The extension carries both valueCode and valueCodeableConcept; value[x] allows one",
        "structure",
        "Condition.extension[0].valueCodeableConcept",
    ),
    "UKCore-Patient-BabyPatient-Example.xml": (
        "NHS number 9912003890 fails Modulus 11 (the check digit for 991200389 is 6)",
        "value",
        "Patient.identifier[0].value",
    ),
}


def _ukcore_files() -> list[Path]:
    return sorted(UKCORE_EXAMPLES.glob("*.xml")) if UKCORE_EXAMPLES.is_dir() else []


def test_xml_conversion_of_primitive_arrays() -> None:
    xml = (
        '<Patient xmlns="http://hl7.org/fhir"><name><given value="A"/>'
        '<given><extension url="http://x"><valueString value="B"/></extension></given></name></Patient>'
    )
    patient = xml_resource(ET.fromstring(xml))
    assert patient["name"][0]["given"] == ["A", None]
    assert patient["name"][0]["_given"][0] is None
    assert Validator().validate(patient) == []


@pytest.mark.skipif(not UKCORE_EXAMPLES.is_dir(), reason="shared UK Core examples not available")
@pytest.mark.parametrize("path", _ukcore_files(), ids=lambda p: p.name)
def test_ukcore_example(validator: Validator, path: Path) -> None:
    resource = xml_resource(ET.parse(path).getroot())
    errors = [i for i in validator.validate(resource) if i.severity == "error"]
    if path.name in UKCORE_ERRATA:
        _reason, code, expression = UKCORE_ERRATA[path.name]
        assert [(i.code, i.expression) for i in errors] == [(code, expression)]
        return
    assert errors == []
