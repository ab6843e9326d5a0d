"""The typed form of a FHIR search (http://hl7.org/fhir/R4/search.html): what `parse` produces and the store runs.

Nothing here knows SQL. A `SearchRequest` is the parsed query: criteria (ANDed; each criterion ORs its values),
result parameters, and what was applied or left out. Criteria are a small tree:

    Filter   one parameter with a modifier and its parsed values (OR)
    Missing  `:missing=true|false`
    Chain    `subject:Patient.name=x`: a reference parameter whose targets must match an inner criterion
    Has      `_has:Observation:patient:code=x`: resources that some other resource references, where that
             resource matches an inner criterion (reverse chaining)
    Compartment membership is separate (`SearchRequest.compartment`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sharedcare.types import Issue, StoredResource

PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

# Pseudo parameter types for what the engine handles itself rather than through the idx_* tables.
ID = "_id"  # resources.id
LAST_UPDATED = "_lastUpdated"  # resources.last_updated
FULLTEXT = "_fulltext"  # _text / _content over the full-text index
LIST = "_list"  # members of a List resource


# ---------------------------------------------------------------------------------------------- values


@dataclass(frozen=True, slots=True)
class StringValue:
    text: str  # as the client wrote it (unescaped)


@dataclass(frozen=True, slots=True)
class TokenValue:
    """`code` (system None: any system), `|code` (system "": no system), `system|code`, `system|` (code None)."""

    system: str | None
    code: str | None


@dataclass(frozen=True, slots=True)
class OfTypeValue:
    """Identifier `:of-type`: `system|code|value` (the type coding, then the identifier's value)."""

    system: str
    code: str
    value: str


@dataclass(frozen=True, slots=True)
class ReferenceValue:
    """A local reference (type may be None for a bare id) or, when `url` is set, an absolute/canonical one."""

    type: str | None
    id: str | None
    url: str | None = None


@dataclass(frozen=True, slots=True)
class DateValue:
    """A date search value as the UTC instants bounding its precision (both inclusive, store format)."""

    prefix: str
    low: str
    high: str


@dataclass(frozen=True, slots=True)
class NumberValue:
    """A number with its implicit precision range [low, high) (http://hl7.org/fhir/R4/search.html#number)."""

    prefix: str
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class QuantityValue:
    number: NumberValue
    system: str | None  # None: any system
    code: str | None  # None: any unit; matched against code, or code or unit when no system is given


@dataclass(frozen=True, slots=True)
class UriValue:
    uri: str


@dataclass(frozen=True, slots=True)
class TextValue:
    """Full-text terms (all must match)."""

    terms: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CompositeValue:
    """One value per component, each typed by that component's parameter type."""

    parts: tuple[Value, ...]


Value = (
    StringValue
    | TokenValue
    | OfTypeValue
    | ReferenceValue
    | DateValue
    | NumberValue
    | QuantityValue
    | UriValue
    | TextValue
    | CompositeValue
)


# ---------------------------------------------------------------------------------------------- criteria


@dataclass(frozen=True, slots=True)
class Filter:
    """Parameter `code` of type `type` (or a pseudo type above) with a modifier; matches if any value matches."""

    code: str
    type: str
    modifier: str
    values: tuple[Value, ...]
    components: tuple[str, ...] = ()  # composite: the component parameter types, in order


@dataclass(frozen=True, slots=True)
class Missing:
    code: str
    type: str
    missing: bool


@dataclass(frozen=True, slots=True)
class Chain:
    """A reference parameter whose target, of one of `targets`, matches that target type's inner criterion."""

    code: str
    targets: tuple[tuple[str, Criterion], ...]


@dataclass(frozen=True, slots=True)
class Has:
    """Resources referenced by a `source_type` resource through its parameter `code`, which matches `inner`."""

    source_type: str
    code: str
    inner: Criterion


Criterion = Filter | Missing | Chain | Has


@dataclass(frozen=True, slots=True)
class SortKey:
    code: str
    type: str  # parameter type, or ID / LAST_UPDATED
    descending: bool


@dataclass(frozen=True, slots=True)
class Include:
    """`_include` (reverse=False) or `_revinclude`: follow `code` of `source` resources, to `target` type if set."""

    source: str
    code: str
    target: str | None
    iterate: bool
    reverse: bool


@dataclass(slots=True)
class SearchRequest:
    types: tuple[str, ...] | None  # None: every resource type (system search without _type)
    criteria: tuple[Criterion, ...] = ()
    compartment: tuple[str, str] | None = None  # (compartment type, id)
    sort: tuple[SortKey, ...] = ()
    count: int = 50
    offset: int = 0
    total: str = "none"  # none | estimate | accurate
    summary: str | None = None  # true | text | data | count | false
    elements: tuple[str, ...] | None = None
    includes: tuple[Include, ...] = ()
    revincludes: tuple[Include, ...] = ()
    cursor: str | None = None  # opaque paging position from a next/previous link
    applied: list[tuple[str, str]] = field(default_factory=list)  # what the self link shows
    issues: list[Issue] = field(default_factory=list)  # unknown or unsupported parts, left out

    @property
    def wants_total(self) -> bool:
        return self.total in ("accurate", "estimate") or self.summary == "count" or self.count == 0


# ---------------------------------------------------------------------------------------------- store seam


@dataclass(frozen=True, slots=True)
class PagePosition:
    """Where a page starts: keyset values of the row it follows (or precedes, going backwards)."""

    snapshot: int  # highest resource key visible to this search (fixed on the first page)
    keys: tuple[object, ...] | None = None  # sort-key values then the resource key of the boundary row
    backwards: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    resource: StoredResource
    keys: tuple[object, ...]  # sort-key values then the resource key, for the next/previous cursor


@dataclass(slots=True)
class SearchResult:
    matches: list[Match]
    included: list[StoredResource]
    snapshot: int
    more: bool  # another page exists in the direction of travel
    total: int | None = None
    issues: list[Issue] = field(default_factory=list)


class SearchStore(Protocol):
    def search_page(self, request: SearchRequest, position: PagePosition | None) -> SearchResult: ...
