"""Structural validation of FHIR R4 JSON resources against the base StructureDefinitions.

Runs on every write (bulk import included), so the walk is one pass over the JSON with precomputed element
maps and compiled regexes. It checks what the base definitions say about shape: known elements, JSON types,
primitive formats, cardinality, choice types, primitive extensions, required-binding codes and nested
resources. It does not evaluate FHIRPath invariants (bar ext-1) or profiles (meta.profile).

Issue expressions are FHIRPath locations: `Patient.name[0].given[1]`,
`Observation.value.ofType(Quantity).unit`, `Bundle.entry[2].resource.ofType(Patient).birthDate`,
`Patient.birthDate.extension[0].url`.
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sharedcare.fhir import structures
from sharedcare.fhir.nhs_number import NHS_NUMBER_SYSTEM, nhs_number_problem
from sharedcare.fhir.structures import (
    PRIMITIVE,
    PRIMITIVE_EXT,
    RESOURCE,
    UNBOUNDED,
    Definitions,
    PrimitiveDef,
    Slot,
    TypeDef,
    ValueSetCodes,
)
from sharedcare.types import Issue

Checker = Callable[[Any], str | None]

MAX_STRING_CHARS = 1024 * 1024  # "strings SHALL NOT exceed 1MB in size" (datatypes.html#string)
_INT32 = (-(2**31), 2**31 - 1)
_INT_MIN = {"integer": _INT32[0], "positiveInt": 1, "unsignedInt": 0}
# The R4 base64Binary regex backtracks badly on large attachments; same language, checked in linear time.
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}", re.ASCII)
_WHITESPACE = re.compile(r"\s+", re.ASCII)
_XHTML_START = re.compile(r"\s*<div\b[^>]*\bxmlns\s*=\s*[\"']http://www\.w3\.org/1999/xhtml[\"']", re.ASCII)
_DATED = frozenset({"date", "dateTime", "instant"})


def _shown(value: Any) -> str:
    """A short rendering of a bad value for diagnostics."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _bad_calendar_day(value: str) -> bool:
    """True for a well-formed date whose day does not exist in its month (the regexes allow 2019-02-31)."""
    if len(value) < 10 or value[8:10] <= "28":
        return False
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    return day > calendar.monthrange(year, month)[1]


def _base64_ok(value: str) -> bool:
    compact = _WHITESPACE.sub("", value) if not value.isalnum() else value
    return len(compact) % 4 == 0 and _BASE64.fullmatch(compact) is not None


def _string_checker(p: PrimitiveDef) -> Checker:
    """A checker for a primitive represented as a JSON string (all but boolean and the numbers)."""
    name = p.name
    if name == "xhtml":
        return _xhtml_checker
    if name == "base64Binary":
        match: Callable[[str], Any] = _base64_ok
    else:
        match = re.compile(p.regex or r"[\s\S]+", re.ASCII).fullmatch
    dated = name in _DATED

    def check(value: Any) -> str | None:
        if type(value) is not str:
            return f"{name} must be a JSON string, not {_json_kind(value)}"
        if not value:
            return f"{name} must not be an empty string"
        if len(value) > MAX_STRING_CHARS:
            return f"{name} exceeds the 1MB limit for strings"
        if not match(value):
            return f"{_shown(value)} is not a valid {name}"
        if dated and _bad_calendar_day(value):
            return f"{_shown(value)} is not a valid {name}: no such day"
        return None

    return check


def _xhtml_checker(value: Any) -> str | None:
    if type(value) is not str:
        return f"xhtml must be a JSON string, not {_json_kind(value)}"
    if not _XHTML_START.match(value):
        return (
            'narrative must be a <div> element in the XHTML namespace (xmlns="http://www.w3.org/1999/xhtml")'
        )
    return None


def _integer_checker(name: str) -> Checker:
    low = _INT_MIN[name]

    def check(value: Any) -> str | None:
        if type(value) is not int:
            return f"{name} must be a JSON number with no fraction, not {_json_kind(value)}"
        if value < low or value > _INT32[1]:
            return f"{value} is out of range for {name}"
        return None

    return check


def _decimal_check(value: Any) -> str | None:
    kind = type(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return None
    if kind is Decimal and value.is_finite():  # from json.loads(..., parse_float=Decimal)
        return None
    return f"decimal must be a JSON number, not {_json_kind(value)}"


def _boolean_check(value: Any) -> str | None:
    return None if type(value) is bool else f"boolean must be JSON true or false, not {_json_kind(value)}"


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return f"a string ({_shown(value)})"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def build_checkers(primitives: dict[str, PrimitiveDef]) -> dict[str, Checker]:
    """One checker per primitive type: returns None for a valid JSON value, else why it is invalid."""
    out: dict[str, Checker] = {}
    for name, p in primitives.items():
        if p.json == "boolean":
            out[name] = _boolean_check
        elif p.json == "decimal":
            out[name] = _decimal_check
        elif p.json == "number":
            out[name] = _integer_checker(name)
        else:
            out[name] = _string_checker(p)
    return out


def _error(code: str, diagnostics: str, expression: str | None) -> Issue:
    return Issue("error", code, diagnostics, expression)


def _null(expression: str) -> Issue:
    """FHIR JSON has no nulls, except to align the arrays of a repeating primitive and its `_name`."""
    return Issue("error", "structure", "null is not allowed: omit the element instead", expression)


class Validator:
    """Validates resources against the R4 base definitions; reusable and safe to share between threads."""

    def __init__(self, definitions: Definitions | None = None) -> None:
        self._defs = definitions or structures.definitions()
        self._checkers: dict[str, Checker] | None = None
        self._type_defs: dict[str, TypeDef] = {}

    def validate(self, resource: Any, *, expected_type: str | None = None) -> list[Issue]:
        """Every structural problem in `resource` (a parsed JSON object); an empty list when it is valid."""
        issues: list[Issue] = []
        if self._checkers is None:
            self._checkers = build_checkers(self._defs.primitives())
        if type(resource) is not dict:
            issues.append(
                _error("structure", f"A resource must be a JSON object, not {_json_kind(resource)}", None)
            )
            return issues
        rtype = resource.get("resourceType")
        if expected_type is not None and rtype != expected_type:
            issues.append(
                _error("invalid", f"Expected a {expected_type} resource, got {_shown(rtype)}", None)
            )
        self._resource(resource, "", issues)
        return issues

    def is_valid(self, resource: Any, *, expected_type: str | None = None) -> bool:
        """True when validation finds no errors (warnings allowed)."""
        issues = self.validate(resource, expected_type=expected_type)
        return not any(i.severity in ("error", "fatal") for i in issues)

    # -- the walk -------------------------------------------------------------------------------------------

    def _type_def(self, name: str) -> TypeDef:
        tdef = self._type_defs.get(name)
        if tdef is None:
            found = self._defs.type_def(name)
            if found is None:
                raise LookupError(f"no element map for {name}; regenerate the definitions")
            tdef = self._type_defs[name] = found
        return tdef

    def _resource(self, obj: dict[str, Any], path: str, issues: list[Issue]) -> None:
        """Validate a resource at `path` ("" at the root; else the element holding it)."""
        rtype = obj.get("resourceType")
        where = path or None
        if rtype is None:
            issues.append(_error("required", "A resource must have a resourceType", where))
            return
        if type(rtype) is not str or rtype not in self._defs.resource_types():
            issues.append(_error("structure", f"Unknown resourceType {_shown(rtype)}", where))
            return
        self._object(obj, self._type_def(rtype), f"{path}.ofType({rtype})" if path else rtype, issues)

    def _object(self, obj: dict[str, Any], tdef: TypeDef, path: str, issues: list[Issue]) -> None:
        """Validate the properties of one JSON object against an element map."""
        if not obj:
            issues.append(_error("structure", "An element must not be an empty object", path))
            return
        slots = tdef.slots
        checkers = self._checkers
        assert checkers is not None
        chosen: dict[str, str] | None = None
        for key, value in obj.items():
            slot = slots.get(key)
            if slot is None:
                if not (key == "fhir_comments" or (key == "resourceType" and tdef.is_resource)):
                    self._unknown(key, tdef, path, issues)
                continue
            el = slot.element
            if el.choice:
                if chosen is None:
                    chosen = {el.name: slot.value_key}
                elif chosen.setdefault(el.name, slot.value_key) != slot.value_key:
                    issues.append(
                        _error(
                            "structure",
                            f"Only one type of {el.name}[x] is allowed, found {chosen[el.name]} and {key}",
                            f"{path}.{key}",
                        )
                    )
            kind = slot.kind
            if kind == PRIMITIVE:
                if el.is_array:
                    self._primitive_array(obj, value, slot, path, issues)
                    continue
                msg = checkers[slot.type_code](value)
                if msg is not None:
                    if value is None:
                        issues.append(_null(f"{path}.{slot.label}"))
                    elif type(value) is list:
                        msg = f"{el.name} has at most one value, so it must not be an array"
                        issues.append(_error("structure", msg, f"{path}.{slot.label}"))
                    else:
                        issues.append(_error("value", msg, f"{path}.{slot.label}"))
                elif el.value_set is not None and value not in el.value_set.codes:
                    self._bad_code(value, el.value_set, f"{path}.{slot.label}", issues)
            elif kind == PRIMITIVE_EXT:
                if not el.is_array:
                    self._primitive_ext(value, f"{path}.{slot.label}", issues)
                elif slot.value_key not in obj:
                    self._ext_array_alone(value, slot, path, issues)
            elif el.is_array:
                if type(value) is not list:
                    msg = f"{el.name} can repeat, so it must be a JSON array"
                    issues.append(_error("structure", msg, f"{path}.{slot.label}"))
                    continue
                label = f"{path}.{slot.label}"
                if not value:
                    issues.append(_error("structure", "An array must not be empty", label))
                    continue
                self._count(len(value), el, label, issues)
                for i, item in enumerate(value):
                    self._node(item, slot, f"{label}[{i}]", issues)
            elif type(value) is list:
                msg = f"{el.name} has at most one value, so it must not be an array"
                issues.append(_error("structure", msg, f"{path}.{slot.label}"))
            else:
                self._node(value, slot, f"{path}.{slot.label}", issues)
        for el in tdef.required:
            for k in el.keys:
                if k in obj:
                    break
            else:
                name = f"{el.name}[x]" if el.choice else el.name
                issues.append(_error("required", f"{tdef.name}.{name} is required (min {el.min})", path))

    def _node(self, value: Any, slot: Slot, path: str, issues: list[Issue]) -> None:
        """Validate one complex value or contained resource."""
        if type(value) is not dict:
            if value is None:
                issues.append(_null(path))
                return
            what = "a resource" if slot.kind == RESOURCE else slot.type_code
            issues.append(_error("value", f"{what} must be a JSON object, not {_json_kind(value)}", path))
            return
        if slot.kind == RESOURCE:
            self._resource(value, path, issues)
            return
        tc = slot.type_code
        self._object(value, self._type_def(tc), path, issues)
        if tc == "Identifier":
            self._identifier(value, path, issues)
        elif tc == "Extension":
            self._extension(value, path, issues)
        vs = slot.element.value_set
        if vs is not None:
            if tc == "CodeableConcept":
                self._concept_binding(value, vs, path, issues)
            elif tc == "Coding":
                self._coding_binding(value, vs, path, issues)

    def _primitive_array(
        self, obj: dict[str, Any], values: Any, slot: Slot, path: str, issues: list[Issue]
    ) -> None:
        """A repeating primitive, with its optional parallel `_name` array of id/extension objects."""
        label = f"{path}.{slot.label}"
        el = slot.element
        if type(values) is not list:
            msg = f"{el.name} can repeat, so it must be a JSON array"
            issues.append(_error("structure", msg, label))
            return
        exts = obj.get("_" + slot.key)
        if exts is not None and type(exts) is not list:
            issues.append(_error("structure", f"_{slot.key} must be an array, like {slot.key}", label))
            exts = None
        if not values:
            issues.append(_error("structure", "An array must not be empty", label))
            return
        if exts is not None and len(exts) != len(values):
            msg = f"{slot.key} and _{slot.key} must be arrays of the same length"
            issues.append(_error("structure", msg, label))
        self._count(max(len(values), len(exts or ())), el, label, issues)
        check = self._checkers[slot.type_code]  # type: ignore[index]
        vs = el.value_set
        for i, v in enumerate(values):
            if v is None:
                if exts is None or i >= len(exts) or exts[i] is None:
                    msg = f"null is only allowed where _{slot.key} has an extension at the same index"
                    issues.append(_error("structure", msg, f"{label}[{i}]"))
                continue
            msg = check(v)
            if msg is not None:
                issues.append(_error("value", msg, f"{label}[{i}]"))
            elif vs is not None and v not in vs.codes:
                self._bad_code(v, vs, f"{label}[{i}]", issues)
        if exts:
            for i, ext in enumerate(exts):
                if ext is not None:
                    self._primitive_ext(ext, f"{label}[{i}]", issues)

    def _ext_array_alone(self, exts: Any, slot: Slot, path: str, issues: list[Issue]) -> None:
        """A `_name` array with no value array: every entry must carry an id or extensions."""
        label = f"{path}.{slot.label}"
        if type(exts) is not list:
            issues.append(_error("structure", f"_{slot.value_key} must be an array", label))
            return
        if not exts:
            issues.append(_error("structure", "An array must not be empty", label))
            return
        self._count(len(exts), slot.element, label, issues)
        for i, ext in enumerate(exts):
            self._primitive_ext(ext, f"{label}[{i}]", issues)

    def _primitive_ext(self, value: Any, path: str, issues: list[Issue]) -> None:
        """The `_name` object of a primitive: only `id` and `extension`."""
        if type(value) is not dict:
            if value is None:
                issues.append(_null(path))
                return
            msg = f"A primitive's id/extension must be a JSON object, not {_json_kind(value)}"
            issues.append(_error("structure", msg, path))
            return
        self._object(value, self._defs.primitive_element(), path, issues)

    def _count(self, n: int, el: structures.ElementDef, path: str, issues: list[Issue]) -> None:
        if el.max != UNBOUNDED and n > el.max:
            issues.append(_error("structure", f"{el.name} allows at most {el.max} values, found {n}", path))
        if n < el.min:
            issues.append(_error("required", f"{el.name} needs at least {el.min} values, found {n}", path))

    def _unknown(self, key: str, tdef: TypeDef, path: str, issues: list[Issue]) -> None:
        hint = ""
        for slot in tdef.slots.values():
            if slot.element.choice and slot.element.name == key:
                hint = f" ({key}[x] needs its type in the name, e.g. {slot.key})"
                break
        owner = tdef.name if "." in tdef.name or tdef.is_resource else f"the {tdef.name} type"
        issues.append(_error("structure", f"Unknown element '{key}' in {owner}{hint}", f"{path}.{key}"))

    # -- checks on particular types ---------------------------------------------------------------------

    def _identifier(self, ident: dict[str, Any], path: str, issues: list[Issue]) -> None:
        """NHS numbers are the join key: a value failing Modulus 11 must never be stored."""
        if ident.get("system") == NHS_NUMBER_SYSTEM:
            value = ident.get("value")
            if type(value) is str:
                problem = nhs_number_problem(value)
                if problem is not None:
                    msg = f"Invalid NHS number {_shown(value)}: {problem}"
                    issues.append(_error("value", msg, f"{path}.value"))

    def _extension(self, ext: dict[str, Any], path: str, issues: list[Issue]) -> None:
        """ext-1: an extension has either a value or nested extensions, not both and not neither."""
        has_value = any(k.startswith("value") for k in ext)
        if has_value == ("extension" in ext):
            msg = "An extension must have either a value[x] or nested extensions, not both (ext-1)"
            if not has_value:
                msg = "An extension must have either a value[x] or nested extensions (ext-1)"
            issues.append(_error("structure", msg, path))

    def _bad_code(self, code: Any, vs: ValueSetCodes, path: str, issues: list[Issue]) -> None:
        msg = f"Code {_shown(code)} is not in the required value set {vs.url}"
        issues.append(_error("code-invalid", msg, path))

    def _coding_binding(
        self, coding: dict[str, Any], vs: ValueSetCodes, path: str, issues: list[Issue]
    ) -> None:
        code = coding.get("code")
        if type(code) is str and not vs.has(coding.get("system"), code):
            system = coding.get("system")
            msg = f"Coding {_shown(system)}#{code} is not in the required value set {vs.url}"
            issues.append(_error("code-invalid", msg, path))

    def _concept_binding(
        self, concept: dict[str, Any], vs: ValueSetCodes, path: str, issues: list[Issue]
    ) -> None:
        """A required binding needs at least one coding from the value set."""
        codings = concept.get("coding")
        coded = []
        if type(codings) is list:
            coded = [c for c in codings if type(c) is dict and type(c.get("code")) is str]
        if not coded:
            msg = f"No coding from the required value set {vs.url}"
            issues.append(Issue("warning", "code-invalid", msg, path))
            return
        if not any(vs.has(c.get("system"), c["code"]) for c in coded):
            shown = ", ".join(f"{c.get('system')}#{c['code']}" for c in coded)
            msg = f"None of the codings ({_shown(shown)}) is in the required value set {vs.url}"
            issues.append(_error("code-invalid", msg, path))


_DEFAULT: Validator | None = None


def validate_resource(resource: Any, *, expected_type: str | None = None) -> list[Issue]:
    """Validate with a shared default Validator."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = Validator()
    return _DEFAULT.validate(resource, expected_type=expected_type)
