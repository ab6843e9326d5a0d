"""OperationOutcome values (http://hl7.org/fhir/R4/operationoutcome.html)."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from sharedcare.types import JSON, Issue


def outcome(issues: Sequence[Issue]) -> JSON:
    return {"resourceType": "OperationOutcome", "issue": [i.to_json() for i in issues]}


def outcome_bytes(issues: Sequence[Issue]) -> bytes:
    return orjson.dumps(outcome(issues))


def information(message: str) -> JSON:
    return outcome([Issue("information", "informational", message)])
