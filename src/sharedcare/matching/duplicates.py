"""Fingerprints of clinical facts, so the same fact sent by two organisations can be flagged (never dropped).

A fingerprint is the kind of fact, its code and its day (and an observation's value): a GP's MedicationRequest
and a hospital's MedicationStatement for the same drug on the same day share one, as do a lab result sent to
both the practice and the trust. Kinds group resource types that record the same sort of fact.
"""

from __future__ import annotations

from typing import Any

KINDS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    # type: (kind, code elements, date elements) -- first present wins
    "MedicationRequest": ("medication", ("medicationCodeableConcept",), ("authoredOn",)),
    "MedicationStatement": (
        "medication",
        ("medicationCodeableConcept",),
        ("effectiveDateTime", "effectivePeriod", "dateAsserted"),
    ),
    "MedicationDispense": ("dispense", ("medicationCodeableConcept",), ("whenHandedOver", "whenPrepared")),
    "Observation": ("observation", ("code",), ("effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued")),
    "Condition": ("condition", ("code",), ("onsetDateTime", "onsetPeriod", "recordedDate")),
    "AllergyIntolerance": ("allergy", ("code",), ()),
    "Immunization": ("immunization", ("vaccineCode",), ("occurrenceDateTime",)),
    "Procedure": ("procedure", ("code",), ("performedDateTime", "performedPeriod")),
    "DiagnosticReport": ("report", ("code",), ("effectiveDateTime", "effectivePeriod", "issued")),
}
FACT_TYPES = frozenset(KINDS)
PREFERRED_SYSTEMS = ("http://snomed.info/sct", "https://dmd.nhs.uk", "http://loinc.org")


def _code(concept: Any) -> str | None:
    if not isinstance(concept, dict):
        return None
    codings = [c for c in concept.get("coding") or () if isinstance(c, dict) and c.get("code")]
    for system in PREFERRED_SYSTEMS:
        for c in codings:
            if c.get("system") == system:
                return f"{system}|{c['code']}"
    if codings:
        return f"{codings[0].get('system', '')}|{codings[0]['code']}"
    text = concept.get("text")
    return f"text|{text.strip().lower()}" if isinstance(text, str) and text.strip() else None


def _day(value: Any) -> str:
    if isinstance(value, dict):  # a Period: its start
        value = value.get("start")
    return value[:10] if isinstance(value, str) else ""


def _value(resource: dict[str, Any]) -> str:
    q = resource.get("valueQuantity")
    if isinstance(q, dict) and isinstance(q.get("value"), int | float):
        return f"{float(q['value']):g} {q.get('code') or q.get('unit') or ''}".strip()
    concept = resource.get("valueCodeableConcept")
    if concept is not None:
        return _code(concept) or ""
    for key in ("valueString", "valueBoolean", "valueInteger"):
        if key in resource:
            return str(resource[key])
    return ""


def fingerprint(resource: dict[str, Any] | None) -> str | None:
    """The fact's fingerprint, or None when the resource is not a comparable fact (no code)."""
    if not resource:
        return None
    kind = KINDS.get(resource.get("resourceType", ""))
    if kind is None:
        return None
    name, code_elements, date_elements = kind
    code = next((c for c in (_code(resource.get(e)) for e in code_elements) if c), None)
    if code is None:
        return None
    day = next((d for d in (_day(resource.get(e)) for e in date_elements) if d), "")
    parts = [name, code, day]
    if name == "observation":
        parts.append(_value(resource))
    return "~".join(parts)
