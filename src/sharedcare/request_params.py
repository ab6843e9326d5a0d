"""Typed reads of common query parameters, shared by the router and the operations."""

from __future__ import annotations

from datetime import UTC, datetime

from sharedcare.errors import InvalidRequest
from sharedcare.types import FhirRequest


def int_param(req: FhirRequest, name: str, default: int) -> int:
    raw = req.param(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer, got '{raw}'")
    return int(raw)


def instant_param(req: FhirRequest, name: str) -> str | None:
    """A FHIR instant in the store's fixed-width UTC form, so it compares as text with `last_updated`."""
    raw = req.param(name)
    return None if raw is None else parse_instant(raw, name)


def parse_instant(raw: str, name: str) -> str:
    """`raw` as the store's fixed-width UTC instant; a located error names the parameter `name`."""
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(f"{name} must be a FHIR instant such as 2024-01-31T10:00:00Z, got '{raw}'") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
