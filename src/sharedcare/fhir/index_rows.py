"""Dialect-neutral search index rows derived from one resource (pure values, no I/O).

Each field maps to one index table in `sharedcare.store.schema`; the store adds the resource key and type.
Strings are stored twice: `value` normalised (case- and accent-folded, for the default starts-with and :contains
matches) and `exact` as written (for :exact). Dates, numbers and quantities are ranges, because FHIR search
compares the implicit precision range of a value, not a point.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class StringRow:
    param: str
    value: str  # normalised: lower case, accents removed
    exact: str


@dataclass(frozen=True, slots=True)
class TokenRow:
    param: str
    system: str | None
    code: str | None
    text: str | None = None  # normalised display / CodeableConcept.text, for :text


@dataclass(frozen=True, slots=True)
class ReferenceRow:
    param: str
    target_type: str | None
    target_id: str | None
    url: str | None = None  # absolute or canonical reference as written, when not a local Type/id


@dataclass(frozen=True, slots=True)
class DateRow:
    param: str
    low: str  # instant in UTC, fixed format "YYYY-MM-DDTHH:MM:SS.ffffffZ" (sorts as text)
    high: str


@dataclass(frozen=True, slots=True)
class NumberRow:
    param: str
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityRow:
    param: str
    system: str | None
    code: str | None
    unit: str | None
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class UriRow:
    param: str
    uri: str


@dataclass(frozen=True, slots=True)
class CompositeRow:
    """One composite value: its components, each already rendered as `type|...` match keys by the indexer."""

    param: str
    components: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompartmentRow:
    comp_type: str  # Patient | Encounter | RelatedPerson | Practitioner | Device
    comp_id: str


@dataclass(slots=True)
class IndexRows:
    strings: list[StringRow] = field(default_factory=list)
    tokens: list[TokenRow] = field(default_factory=list)
    references: list[ReferenceRow] = field(default_factory=list)
    dates: list[DateRow] = field(default_factory=list)
    numbers: list[NumberRow] = field(default_factory=list)
    quantities: list[QuantityRow] = field(default_factory=list)
    uris: list[UriRow] = field(default_factory=list)
    composites: list[CompositeRow] = field(default_factory=list)
    compartments: list[CompartmentRow] = field(default_factory=list)
    text: str = ""  # narrative + all string content, for _text/_content full-text search
