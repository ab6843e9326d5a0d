"""Resource -> search index rows (pure, no I/O), following http://hl7.org/fhir/R4/search.html.

The store calls `Indexer.index(resource)` on every write and stores the rows in the same transaction. Each
parameter's FHIRPath expression is compiled once per resource type into a plain-Python extractor
(`fhirpath_compile`); each extracted value is turned into rows by its parameter type and its FHIR data type.

Row conventions the search engine relies on:

- string: `value` is case- and accent-folded (`normalise`), `exact` as written; both cut to STRING_INDEX_LENGTH
  characters (cut the query the same way). HumanName gives a row for each of family, given, prefix, suffix, text;
  Address for each line, city, district, state, postalCode, country, text.
- token: Coding -> (system, code, text=folded display); CodeableConcept -> one row per coding, plus a row
  (None, None, text=folded text) for its text; Identifier -> (system, value, text=folded type.text) plus, for each
  type coding, a row under param "<code>:of-type" with system=type system and code "<type code>|<value>";
  ContactPoint -> (system=ContactPoint.system, code=value); code/string/id/uri -> (None, value);
  boolean -> (None, "true"/"false").
- reference: relative "Type/id" (version dropped) -> (Type, id, url=None). Absolute "http(s)://.../Type/id" ->
  (Type, id, url=as written), unless it starts with one of the indexer's `local_base_urls`, which makes it
  relative. `urn:uuid:`/`urn:oid:` and other unparsable references -> (None, None, url). Contained ("#id")
  references are skipped. A bare "id" -> (the single target type, or None, id). canonical/uri values ->
  (None, None, url=value), plus the version-less url when written as "url|version". Reference.identifier ->
  TokenRow under param "<code>:identifier". A whole resource (Bundle `composition`/`message`) -> (type, id).
- date: [low, high] in UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ" covering the value's precision; a value without a time
  zone is taken as UTC; Period ends missing -> DATE_MIN / DATE_MAX; Timing -> each event and repeat.boundsPeriod.
- number / quantity: [low, high] = value -/+ half a unit of its last written digit (100 -> [99.5, 100.5],
  1.5 -> [1.45, 1.55]); a quantity comparator "<"/"<=" opens low to -inf, ">"/">=" opens high to +inf;
  Range -> [low's low, high's high]; Money -> system "urn:iso:std:iso:4217", code = currency.
- uri: the value as written.
- composite: one CompositeRow per element selected by the composite expression and per combination of its
  components' keys (`composite_keys`), so values from the same element stay together:
    token "system|code" (system "" when absent, e.g. "|male"; a search without a system matches the part after
    the last "|"), quantity "low|high|system|code" (floats as repr, absent system/code ""), number "low|high",
    date "low|high", string the folded value, reference "Type/id" (or the url), uri the value.
- Location `near` (type special): NumberRows "near.latitude" and "near.longitude" with low == high.
- compartments: CompartmentRow(C, id) for each local reference to C/<id> made through one of the parameters the
  compartment definition lists for this resource type; a Patient (Encounter, ...) is in its own compartment.
- text: the narrative (tags stripped) and every string value, folded, for _text/_content.

Parameters marked `special` in the registry (_id, _lastUpdated, _text, _content, _list, _has, ...) get no rows.
"""

from __future__ import annotations

import html
import re
from calendar import monthrange
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from itertools import product
from typing import Any

from sharedcare.fhir.fhirpath_compile import (
    UNKNOWN,
    CompiledPath,
    ElementTypes,
    ExpressionCompiler,
    Items,
    guess_type,
)
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
from sharedcare.fhir.normalize import normalize_string
from sharedcare.fhir.search_parameters import SearchParam, SearchParameterRegistry

DATE_MIN = "0001-01-01T00:00:00.000000Z"
DATE_MAX = "9999-12-31T23:59:59.999999Z"
STRING_INDEX_LENGTH = 500
ISO_4217 = "urn:iso:std:iso:4217"
INF = float("inf")
Item = tuple[Any, str]

QUANTITY_TYPES = frozenset({"Quantity", "Age", "Duration", "Count", "Distance", "SimpleQuantity", "MoneyQuantity"})
NAME_PARTS = ("family", "given", "prefix", "suffix", "text")
ADDRESS_PARTS = ("line", "city", "district", "state", "postalCode", "country", "text")


# ------------------------------------------------------------------------------------------------ values


def normalise(text: str) -> str:
    """`normalize_string` (shared with the search side), with a fast path for ASCII, where it is lower+strip."""
    if text.isascii():
        return text.lower().strip()
    return normalize_string(text)


_DATE_RE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)


def date_range(text: str) -> tuple[str, str] | None:
    """The UTC instants bounding a FHIR date/dateTime/instant at its precision; None if it is not one."""
    m = _DATE_RE.fullmatch(text)
    if m is None:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    year = int(y)
    try:
        if mo is None:
            low, high = (year, 1, 1, 0, 0, 0, 0), (year, 12, 31, 23, 59, 59, 999999)
        elif d is None:
            month = int(mo)
            low, high = (
                (year, month, 1, 0, 0, 0, 0),
                (year, month, monthrange(year, month)[1], 23, 59, 59, 999999),
            )
        elif hh is None:
            day = (year, int(mo), int(d))
            low, high = (*day, 0, 0, 0, 0), (*day, 23, 59, 59, 999999)
        else:
            base = (year, int(mo), int(d), int(hh), int(mi))
            if ss is None:
                low, high = (*base, 0, 0), (*base, 59, 999999)
            elif frac is None:
                low, high = (*base, int(ss), 0), (*base, int(ss), 999999)
            else:
                digits = frac[:6]
                low = (*base, int(ss), int(digits.ljust(6, "0")))
                high = (*base, int(ss), int(digits.ljust(6, "9")))
        _check_date(low)
        _check_date(high)
    except ValueError:
        return None
    if tz is not None and tz != "Z" and tz not in ("+00:00", "-00:00"):
        return _shift(low, tz), _shift(high, tz)
    return _fmt(low), _fmt(high)


def _check_date(parts: tuple[int, ...]) -> None:
    if not (1 <= parts[1] <= 12 and 1 <= parts[2] <= monthrange(parts[0], parts[1])[1]):
        raise ValueError("day out of range")
    if parts[3] > 23 or parts[4] > 59 or parts[5] > 60:
        raise ValueError("time out of range")


def _fmt(p: tuple[int, ...]) -> str:
    return f"{p[0]:04d}-{p[1]:02d}-{p[2]:02d}T{p[3]:02d}:{p[4]:02d}:{min(p[5], 59):02d}.{p[6]:06d}Z"


def _shift(parts: tuple[int, ...], tz: str) -> str:
    """Convert a local time with offset `tz` to UTC, clamping at the ends of the calendar."""
    offset = timedelta(hours=int(tz[1:3]), minutes=int(tz[4:6]))
    local = datetime(*parts[:5], min(parts[5], 59), parts[6])
    try:
        utc = local - offset if tz[0] == "+" else local + offset
    except OverflowError:
        return DATE_MIN if tz[0] == "+" else DATE_MAX
    return _fmt((utc.year, utc.month, utc.day, utc.hour, utc.minute, utc.second, utc.microsecond))


def number_range(value: Any) -> tuple[float, float] | None:
    """Implicit precision range of a decimal as written: value -/+ half a unit of its last digit."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value - 0.5, value + 0.5
    if isinstance(value, float):
        if value != value or value in (INF, -INF):
            return None
        text = repr(value)
        if "e" in text or "E" in text:
            return _decimal_range(Decimal(text))
        places = len(text) - text.index(".") - 1
        half = 0.5 * 10.0**-places
        return round(value - half, places + 1), round(value + half, places + 1)
    if isinstance(value, Decimal | str):
        try:
            return _decimal_range(Decimal(value))
        except (InvalidOperation, ValueError):
            return None
    return None


def _decimal_range(d: Decimal) -> tuple[float, float] | None:
    if not d.is_finite():
        return None
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    return float(d - half), float(d + half)


def _strings(value: Any) -> Iterator[str]:
    """A primitive or list of primitives, as the strings in it."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        yield from (v for v in value if isinstance(v, str))


def _extension_value(ext: dict) -> Item | None:
    """An Extension's value[x] with its type (valueString -> string, valueQuantity -> Quantity)."""
    for key, val in ext.items():
        if key.startswith("value") and len(key) > 5:
            t = key[5:]
            return val, _PRIMITIVE_CAPS.get(t, t)
    return None


_PRIMITIVE_TYPES = (
    *("base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant", "integer"),
    *("markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid"),
)
_PRIMITIVE_CAPS = {t[0].upper() + t[1:]: t for t in _PRIMITIVE_TYPES}


# ------------------------------------------------------------------------------------------------ emitters

Emit = Callable[[str, Any, str, IndexRows, "_Context"], None]


@dataclass(slots=True)
class _Context:
    """What an emitter needs besides the value: the parameter and the indexer's settings."""

    param: SearchParam
    resource_types: frozenset[str]
    local_bases: tuple[str, ...]


def _emit_string(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    if isinstance(value, str):
        _string_row(rows, code, value)
    elif isinstance(value, dict):
        parts = NAME_PARTS if vtype == "HumanName" else ADDRESS_PARTS if vtype == "Address" else ("text",)
        for part in parts:
            for s in _strings(value.get(part)):
                _string_row(rows, code, s)


def _string_row(rows: IndexRows, code: str, text: str) -> None:
    if text:
        cut = text[:STRING_INDEX_LENGTH]
        rows.strings.append(StringRow(code, normalise(cut), cut))


def _emit_token(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    tokens = rows.tokens
    if isinstance(value, bool):
        tokens.append(TokenRow(code, None, "true" if value else "false"))
    elif isinstance(value, str):
        tokens.append(TokenRow(code, None, value))
    elif not isinstance(value, dict):
        return
    elif vtype == "CodeableConcept":
        for coding in value.get("coding", ()):
            _coding_row(tokens, code, coding)
        text = value.get("text")
        if isinstance(text, str) and text:
            tokens.append(TokenRow(code, None, None, normalise(text)))
    elif vtype == "Coding":
        _coding_row(tokens, code, value)
    elif vtype == "Identifier":
        _identifier_rows(tokens, code, value)
    elif vtype == "ContactPoint" and value.get("value") is not None:
        tokens.append(TokenRow(code, value.get("system"), value.get("value")))


def _coding_row(tokens: list[TokenRow], code: str, coding: dict) -> None:
    display = coding.get("display")
    if coding.get("code") is not None or coding.get("system") is not None or display:
        text = normalise(display) if isinstance(display, str) and display else None
        tokens.append(TokenRow(code, coding.get("system"), coding.get("code"), text))


def _identifier_rows(tokens: list[TokenRow], code: str, ident: dict) -> None:
    value, system = ident.get("value"), ident.get("system")
    itype = ident.get("type")
    type_text = itype.get("text") if isinstance(itype, dict) else None
    if value is not None or system is not None:
        text = normalise(type_text) if isinstance(type_text, str) and type_text else None
        tokens.append(TokenRow(code, system, value, text))
    if isinstance(itype, dict) and value is not None:
        for coding in itype.get("coding", ()):
            if coding.get("code") is not None:
                tokens.append(TokenRow(f"{code}:of-type", coding.get("system"), f"{coding['code']}|{value}"))


_ABS_REF_RE = re.compile(r"^https?://.+/([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_REL_REF_RE = re.compile(r"^([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")
_ID_RE = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


def parse_reference(
    ref: str, targets: tuple[str, ...], resource_types: frozenset[str], local_bases: tuple[str, ...] = ()
) -> tuple[str | None, str | None, str | None] | None:
    """(target_type, target_id, url) for a Reference.reference string; None for contained references."""
    if ref.startswith("#"):
        return None
    for base in local_bases:
        if ref.startswith(base):
            ref = ref[len(base) :].lstrip("/")
            break
    m = _REL_REF_RE.match(ref)
    if m and m.group(1) in resource_types:
        return m.group(1), m.group(2), None
    m = _ABS_REF_RE.match(ref)
    if m and m.group(1) in resource_types:
        return m.group(1), m.group(2), ref
    if _ID_RE.match(ref):
        return (targets[0] if len(targets) == 1 else None), ref, None
    return None, None, ref


def _emit_reference(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    if isinstance(value, str):
        _canonical_rows(rows.references, code, value)
        return
    if not isinstance(value, dict):
        return
    if vtype in ctx.resource_types:  # a whole resource, e.g. Bundle.entry[0].resource
        if isinstance(value.get("id"), str):
            rows.references.append(ReferenceRow(code, vtype, value["id"]))
        return
    ref = value.get("reference")
    if isinstance(ref, str) and ref:
        parsed = parse_reference(ref, ctx.param.target, ctx.resource_types, ctx.local_bases)
        if parsed is not None:
            rows.references.append(ReferenceRow(code, *parsed))
    ident = value.get("identifier")
    if isinstance(ident, dict) and (ident.get("value") is not None or ident.get("system") is not None):
        rows.tokens.append(TokenRow(f"{code}:identifier", ident.get("system"), ident.get("value")))


def _canonical_rows(refs: list[ReferenceRow], code: str, url: str) -> None:
    if not url:
        return
    refs.append(ReferenceRow(code, None, None, url))
    if "|" in url:
        refs.append(ReferenceRow(code, None, None, url.split("|", 1)[0]))


def _emit_date(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    if isinstance(value, str):
        bounds = date_range(value)
        if bounds is not None:
            rows.dates.append(DateRow(code, *bounds))
    elif isinstance(value, dict):
        if vtype == "Period":
            _period_row(rows.dates, code, value)
        elif vtype == "Timing":
            for event in _strings(value.get("event")):
                _emit_date(code, event, "dateTime", rows, ctx)
            repeat = value.get("repeat")
            if isinstance(repeat, dict) and isinstance(repeat.get("boundsPeriod"), dict):
                _period_row(rows.dates, code, repeat["boundsPeriod"])


def _period_row(dates: list[DateRow], code: str, period: dict) -> None:
    start, end = period.get("start"), period.get("end")
    low = date_range(start) if isinstance(start, str) else None
    high = date_range(end) if isinstance(end, str) else None
    if low is None and high is None:
        return
    dates.append(DateRow(code, low[0] if low else DATE_MIN, high[1] if high else DATE_MAX))


def _emit_number(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    bounds = number_range(value)
    if bounds is not None:
        rows.numbers.append(NumberRow(code, *bounds))


def _emit_quantity(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    row = quantity_row(code, value, vtype)
    if row is not None:
        rows.quantities.append(row)


def quantity_row(code: str, value: Any, vtype: str) -> QuantityRow | None:
    """A Quantity-like, Money or Range value as one QuantityRow (None if it carries no number)."""
    if not isinstance(value, dict):
        return None
    if vtype == "Range":
        return _range_row(code, value)
    bounds = number_range(value.get("value"))
    if bounds is None:
        return None
    if vtype == "Money":
        return QuantityRow(code, ISO_4217, value.get("currency"), None, *bounds)
    low, high = bounds
    comparator = value.get("comparator")
    if comparator in ("<", "<="):
        low = -INF
    elif comparator in (">", ">="):
        high = INF
    return QuantityRow(code, value.get("system"), value.get("code"), value.get("unit"), low, high)


def _range_row(code: str, value: dict) -> QuantityRow | None:
    low_q, high_q = value.get("low"), value.get("high")
    low = number_range(low_q.get("value")) if isinstance(low_q, dict) else None
    high = number_range(high_q.get("value")) if isinstance(high_q, dict) else None
    if low is None and high is None:
        return None
    unit_src = low_q if low is not None else high_q
    assert isinstance(unit_src, dict)
    return QuantityRow(
        code,
        unit_src.get("system"),
        unit_src.get("code"),
        unit_src.get("unit"),
        low[0] if low else -INF,
        high[1] if high else INF,
    )


def _emit_uri(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    if isinstance(value, str) and value:
        rows.uris.append(UriRow(code, value))


def _emit_special(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    """Location `near`: the position's coordinates, for a bounding-box or distance query."""
    if isinstance(value, dict):
        for axis in ("latitude", "longitude"):
            v = value.get(axis)
            if isinstance(v, int | float) and not isinstance(v, bool):
                rows.numbers.append(NumberRow(f"{code}.{axis}", float(v), float(v)))


EMITTERS: dict[str, Emit] = {
    "string": _emit_string,
    "token": _emit_token,
    "reference": _emit_reference,
    "date": _emit_date,
    "number": _emit_number,
    "quantity": _emit_quantity,
    "uri": _emit_uri,
    "special": _emit_special,
}


# ------------------------------------------------------------------------------------------------ composite


def composite_keys(ptype: str, value: Any, vtype: str, ctx: _Context) -> list[str]:
    """The match keys of one composite component value (format in the module docstring)."""
    if vtype == "Extension" and isinstance(value, dict):
        inner = _extension_value(value)
        if inner is None:
            return []
        value, vtype = inner
    if ptype == "token":
        rows = IndexRows()
        _emit_token("", value, vtype, rows, ctx)
        return [f"{t.system or ''}|{t.code}" for t in rows.tokens if t.code is not None and not t.param]
    if ptype == "quantity":
        q = quantity_row("", value, vtype)
        return [] if q is None else [f"{q.low!r}|{q.high!r}|{q.system or ''}|{q.code or ''}"]
    if ptype == "number":
        bounds = number_range(value)
        return [] if bounds is None else [f"{bounds[0]!r}|{bounds[1]!r}"]
    rows = IndexRows()
    EMITTERS.get(ptype, _emit_nothing)("", value, vtype, rows, ctx)
    if ptype == "date":
        return [f"{d.low}|{d.high}" for d in rows.dates]
    if ptype == "string":
        return [s.value for s in rows.strings]
    if ptype == "reference":
        return [
            f"{r.target_type}/{r.target_id}" if r.target_type else (r.url or r.target_id or "") for r in rows.references
        ]
    if ptype == "uri":
        return [u.uri for u in rows.uris]
    return []


def _emit_nothing(code: str, value: Any, vtype: str, rows: IndexRows, ctx: _Context) -> None:
    return None


# ------------------------------------------------------------------------------------------------ indexer


@dataclass(slots=True)
class _ParamPlan:
    code: str
    extract: CompiledPath
    emit: Emit
    ctx: _Context
    components: tuple[tuple[str, CompiledPath], ...] = ()  # composite: (component type, relative path)
    root_keys: frozenset[str] | None = None
    component_keys: tuple[frozenset[str], ...] = ()  # composite: skip unless each set meets the resource


@dataclass(slots=True)
class _TypePlan:
    params: list[_ParamPlan] = field(default_factory=list)
    compartments: dict[str, tuple[str, ...]] = field(default_factory=dict)  # param code -> compartment types
    self_compartment: bool = False


class Indexer:
    """Computes the index rows of a resource from a registry's search parameters.

    Compiled extractors are cached per resource type and rebuilt when the registry's version changes.
    `local_base_urls`: this server's own base URLs, so absolute references to it index as local ones.
    """

    def __init__(
        self,
        registry: SearchParameterRegistry,
        compiler: ExpressionCompiler | None = None,
        local_base_urls: Iterable[str] = (),
    ) -> None:
        self.registry = registry
        types = registry.element_types or ElementTypes.load()
        self.types = types
        self.compiler = compiler or ExpressionCompiler(types)
        self.local_bases = tuple(b.rstrip("/") + "/" for b in local_base_urls)
        self._resource_types = frozenset(registry.resource_types)
        self._plans: dict[str, _TypePlan] = {}
        self._version = registry.version

    def index(self, resource: dict) -> IndexRows:
        """All index rows for `resource` (which must already carry its final id)."""
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            raise ValueError("resource has no resourceType")
        plan = self._plan(rtype)
        rows = IndexRows()
        types = self.types
        present = resource.keys()
        for p in plan.params:
            if p.root_keys is not None and present.isdisjoint(p.root_keys):
                continue
            if p.component_keys and any(present.isdisjoint(k) for k in p.component_keys):
                continue
            values = p.extract(resource)
            if not values:
                continue
            if p.components:
                _composite_rows(p, values, resource, rows)
                continue
            emit, code, ctx = p.emit, p.code, p.ctx
            for value, vtype in values:
                if vtype == "Extension" or vtype == UNKNOWN or not types.known(vtype):
                    value, vtype = _unwrap(value, vtype)
                emit(code, value, vtype, rows, ctx)
        _dedupe(rows)
        rows.compartments = self._compartments(plan, rtype, resource, rows)
        rows.text = full_text(resource)
        return rows

    def fallback_expressions(self) -> list[tuple[str, str, str]]:
        """(resource type, param code, expression) of every compiled parameter evaluated by fhirpathpy."""
        out = []
        for rtype in sorted(self._resource_types):
            for p in self._plan(rtype).params:
                paths = [p.extract, *(c for _, c in p.components)]
                out += [(rtype, p.code, c.expression) for c in paths if c.fallback]
        return out

    def _plan(self, rtype: str) -> _TypePlan:
        if self._version != self.registry.version:
            self._plans = {}
            self._version = self.registry.version
        plan = self._plans.get(rtype)
        if plan is None:
            plan = self._plans[rtype] = self._build_plan(rtype)
        return plan

    def _build_plan(self, rtype: str) -> _TypePlan:
        plan = _TypePlan()
        for code, param in sorted(self.registry.params_for(rtype).items()):
            if not param.expression or (param.special and param.type != "special"):
                continue
            extract = self.compiler.compile(param.expression, rtype)
            if extract.fn is None:
                continue
            ctx = _Context(param, self._resource_types, self.local_bases)
            comps = tuple((c.type, self.compiler.compile(c.expression, rtype, relative=True)) for c in param.components)
            emit = EMITTERS.get(param.type, _emit_nothing)
            plan.params.append(
                _ParamPlan(code, extract, emit, ctx, comps, extract.root_keys, self._component_keys(param, rtype))
            )
        for comp, codes in self.registry.compartments_for(rtype).items():
            for code in codes:
                plan.compartments[code] = (*plan.compartments.get(code, ()), comp)
        plan.self_compartment = rtype in self.registry.compartment_types()
        return plan

    def _component_keys(self, param: SearchParam, rtype: str) -> tuple[frozenset[str], ...]:
        """For a composite over the resource itself (`Observation`), the top-level keys each component needs:
        when any is absent no row can be made, so the indexer skips the parameter."""
        if not param.components or param.expression != rtype:
            return ()
        keys = [self.compiler.compile(c.expression, rtype).root_keys for c in param.components]
        return tuple(k for k in keys if k is not None)

    def _compartments(self, plan: _TypePlan, rtype: str, resource: dict, rows: IndexRows) -> list[CompartmentRow]:
        out: dict[CompartmentRow, None] = {}
        if plan.self_compartment and isinstance(resource.get("id"), str):
            out[CompartmentRow(rtype, resource["id"])] = None
        if plan.compartments:
            for ref in rows.references:
                comps = plan.compartments.get(ref.param)
                if comps and ref.url is None and ref.target_type in comps and ref.target_id:
                    out[CompartmentRow(ref.target_type, ref.target_id)] = None
        return list(out)


def _unwrap(value: Any, vtype: str) -> Item:
    """Extensions index as their value; untyped values get a type from their shape."""
    if vtype == "Extension" and isinstance(value, dict):
        inner = _extension_value(value)
        return inner if inner is not None else (None, UNKNOWN)
    if vtype == UNKNOWN:
        return value, guess_type(value)
    return value, vtype


def _composite_rows(p: _ParamPlan, bases: Items, resource: dict, rows: IndexRows) -> None:
    """One row per base element and per combination of its components' keys.

    Components are evaluated last first: the value part is the selective one, so most misses end early.
    """
    for item in bases:
        per_component = []
        for ptype, path in reversed(p.components):
            keys: list[str] = []
            for value, vtype in path.relative([item], resource):
                keys.extend(composite_keys(ptype, value, vtype, p.ctx))
            if not keys:
                break
            per_component.append(dict.fromkeys(keys))
        else:
            per_component.reverse()
            rows.composites.extend(CompositeRow(p.code, combo) for combo in product(*per_component))


def _dedupe(rows: IndexRows) -> None:
    for name in ("strings", "tokens", "references", "dates", "numbers", "quantities", "uris", "composites"):
        items = getattr(rows, name)
        if len(items) > 1:
            setattr(rows, name, list(dict.fromkeys(items)))


# ------------------------------------------------------------------------------------------------ text

_TAG_RE = re.compile(r"<[^>]*>")
_SPACE_RE = re.compile(r"\s+")
_SKIP_TEXT_KEYS = frozenset({"resourceType", "id", "meta", "reference", "system", "url", "fullUrl", "data", "profile"})


def full_text(resource: dict) -> str:
    """Narrative text and every string value, folded: what _text and _content search."""
    parts: list[str] = []
    text = resource.get("text")
    if isinstance(text, dict) and isinstance(text.get("div"), str):
        parts.append(html.unescape(_TAG_RE.sub(" ", text["div"])))
    _collect_strings(resource, parts)
    return normalise(_SPACE_RE.sub(" ", " ".join(parts)).strip())


def _collect_strings(node: Any, out: list[str]) -> None:
    """String values, minus identifiers, links and metadata (the narrative is added separately)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _SKIP_TEXT_KEYS:
                continue
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, list) or (isinstance(value, dict) and key != "text"):
                _collect_strings(value, out)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, str):
                out.append(value)
            elif isinstance(value, dict | list):
                _collect_strings(value, out)
