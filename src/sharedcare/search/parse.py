"""Query string -> `SearchRequest` (http://hl7.org/fhir/R4/search.html). Knows parameters and values, not SQL.

Unknown or unsupported parameters are never silently dropped: they become issues (lenient, the default) or an
`InvalidRequest` (strict, `Prefer: handling=strict`). Malformed values of known parameters are always errors.
`applied` records each criterion and result parameter as it will be honoured, for the Bundle's self link.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sharedcare.errors import InvalidRequest, NotSupported
from sharedcare.fhir.indexing import STRING_INDEX_LENGTH, date_range, number_range
from sharedcare.search.model import (
    FULLTEXT,
    ID,
    LAST_UPDATED,
    LIST,
    PREFIXES,
    Chain,
    CompositeValue,
    Criterion,
    DateValue,
    Filter,
    Has,
    Include,
    Missing,
    NumberValue,
    OfTypeValue,
    QuantityValue,
    ReferenceValue,
    SearchRequest,
    SortKey,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from sharedcare.types import Issue


class Registry(Protocol):
    resource_types: Mapping[str, str]

    def params_for(self, resource_type: str) -> Mapping[str, Any]: ...

    def get(self, resource_type: str, code: str) -> Any: ...


IGNORED = frozenset({"_format", "_pretty"})
RESULT_PARAMS = frozenset(
    {"_count", "_sort", "_include", "_revinclude", "_total", "_summary", "_elements", "_type", "_cursor",
     "_offset", "_contained", "_containedType"}
)
UNSUPPORTED = {
    "_query": "named queries (_query) are not supported",
    "_filter": "the _filter parameter is not supported",
    "_contained": "searching contained resources (_contained) is not supported",
    "_containedType": "_containedType is not supported",
}
TEXT_NOTE = (
    "_text was matched against each resource's narrative together with its other text: the full-text index "
    "does not keep the narrative apart, so _text behaves like _content"
)
SUMMARY_MODES = ("true", "false", "text", "data", "count")
TOTAL_MODES = ("none", "estimate", "accurate")
MODIFIERS = {
    "string": {"exact", "contains", "missing"},
    "token": {"not", "text", "of-type", "missing"},
    "reference": {"identifier", "missing"},
    "date": {"missing"},
    "number": {"missing"},
    "quantity": {"missing"},
    "uri": {"below", "above", "missing"},
    "composite": {"missing"},
    ID: set(),
    LAST_UPDATED: set(),
    FULLTEXT: set(),
    LIST: set(),
}
KNOWN_UNSUPPORTED_MODIFIERS = {"in", "not-in", "above", "below", "text", "type", "iterate", "code-text",
                               "text-advanced", "contains", "exact", "identifier", "of-type", "not"}
SORTABLE = frozenset({"string", "token", "date", "number", "quantity", "uri", "reference", ID, LAST_UPDATED})
MAX_CHAIN_DEPTH = 4

_DATE_RE = re.compile(r"\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?")
_NUMBER_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_REF_RE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})(/_history/[^/]+)?")


class Unsupported(Exception):
    """A part of the query this server does not apply (reported, and left out of the self link)."""

    def __init__(self, message: str, code: str = "not-supported") -> None:
        super().__init__(message)
        self.message, self.code = message, code


@dataclass(frozen=True)
class ParseOptions:
    default_count: int = 50
    max_count: int = 1000
    strict: bool = False
    base_url: str = ""  # this server's FHIR base: absolute references to it are local
    not_ready: Callable[[Any], str | None] | None = None  # why a (custom) parameter cannot be searched yet


class QueryParser:
    def __init__(self, registry: Registry, options: ParseOptions) -> None:
        self.registry, self.options = registry, options
        self.resource_types = frozenset(registry.resource_types)

    # ------------------------------------------------------------------------------------------ request

    def parse(
        self, query: Sequence[tuple[str, str]], rtype: str | None, compartment: tuple[str, str] | None = None
    ) -> SearchRequest:
        types = (rtype,) if rtype else self._types(query)
        req = SearchRequest(types=types, compartment=compartment, count=self.options.default_count)
        if rtype is None and any(k == "_type" for k, _ in query) and types:
            req.applied.append(("_type", ",".join(types)))
        for name, value in query:
            if name in IGNORED or (name == "_type" and rtype is None):
                continue
            base = name.split(":", 1)[0]
            try:
                if name == "_type":
                    raise Unsupported("_type applies to system search ([base]?_type=...), not to a type's search")
                if base in UNSUPPORTED and not (base == "_contained" and value == "false"):
                    raise Unsupported(UNSUPPORTED[base])
                if base in RESULT_PARAMS:
                    self._result_param(req, name, value)
                elif value == "":
                    raise Unsupported(f"Parameter '{name}' has no value and was ignored", "invalid")
                else:
                    crit = self.criterion(types, name, value)
                    req.criteria = (*req.criteria, crit)
                    req.applied.append((name, value))
                    if base == "_text":
                        req.issues.append(Issue("information", "informational", TEXT_NOTE))
            except Unsupported as exc:
                self._report(req, exc)
        return req

    def _report(self, req: SearchRequest, exc: Unsupported) -> None:
        if self.options.strict:
            raise NotSupported(f"{exc.message} (Prefer: handling=strict)")
        req.issues.append(Issue("warning", exc.code, exc.message))

    def _types(self, query: Sequence[tuple[str, str]]) -> tuple[str, ...] | None:
        names: list[str] = []
        for k, v in query:
            if k == "_type":
                names += [t.strip() for t in v.split(",") if t.strip()]
        if not names:
            return None
        unknown = [t for t in names if t not in self.resource_types]
        if unknown:
            raise InvalidRequest(f"_type names unknown resource type(s): {', '.join(unknown)}")
        return tuple(dict.fromkeys(names))

    # ------------------------------------------------------------------------------------------ result params

    def _result_param(self, req: SearchRequest, name: str, value: str) -> None:
        base, _, modifier = name.partition(":")
        if base == "_count":
            req.count = min(_non_negative(name, value), self.options.max_count)
            req.applied.append(("_count", str(req.count)))
        elif base == "_offset":
            req.offset = _non_negative(name, value)
        elif base == "_cursor":
            req.cursor = value
        elif base == "_total":
            if value not in TOTAL_MODES:
                raise InvalidRequest(f"_total must be one of {', '.join(TOTAL_MODES)}; got '{value}'")
            req.total = value
            req.applied.append((name, value))
        elif base == "_summary":
            if value not in SUMMARY_MODES:
                raise InvalidRequest(f"_summary must be one of {', '.join(SUMMARY_MODES)}; got '{value}'")
            req.summary = None if value == "false" else value
            req.applied.append((name, value))
        elif base == "_elements":
            req.elements = tuple(e.strip() for e in value.split(",") if e.strip())
            req.applied.append((name, value))
        elif base == "_sort":
            self._sort(req, value)
        elif base in ("_include", "_revinclude"):
            self._include(req, base, modifier, value)
        elif base == "_contained":  # only `false`, the default, reaches here
            req.applied.append((name, value))

    def _sort(self, req: SearchRequest, value: str) -> None:
        keys: list[SortKey] = []
        shown: list[str] = []
        for raw in (v.strip() for v in value.split(",")):
            if not raw:
                continue
            desc = raw.startswith("-")
            code = raw[1:] if desc else raw
            try:
                keys.append(self._sort_key(req.types, code, desc))
                shown.append(raw)
            except Unsupported as exc:
                self._report(req, exc)
        if keys:
            req.sort = (*req.sort, *keys)
            req.applied.append(("_sort", ",".join(shown)))

    def _sort_key(self, types: tuple[str, ...] | None, code: str, desc: bool) -> SortKey:
        if code == "_id":
            return SortKey(code, ID, desc)
        if code == "_lastUpdated":
            return SortKey(code, LAST_UPDATED, desc)
        ptype = None
        for t in types or ("Resource",):
            p = self.registry.get(t, code)
            if p is None or (ptype is not None and p.type != ptype):
                raise Unsupported(f"Cannot sort by '{code}': not a search parameter of {t}")
            self._check_ready(p)
            ptype = p.type
        if ptype not in SORTABLE:
            raise Unsupported(f"Sorting by '{code}' ({ptype} parameter) is not supported")
        return SortKey(code, ptype or "", desc)

    def _include(self, req: SearchRequest, base: str, modifier: str, value: str) -> None:
        if modifier not in ("", "iterate", "recurse"):
            raise Unsupported(f"{base}:{modifier} is not supported (use :iterate)")
        reverse = base == "_revinclude"
        iterate = bool(modifier)
        parts = value.split(":")
        if value == "*":
            parts = ["*", "*"]
        if len(parts) not in (2, 3):
            raise InvalidRequest(f"{base} must look like Type:param or Type:param:TargetType; got '{value}'")
        source, code = parts[0], parts[1]
        target = parts[2] if len(parts) == 3 else None
        found: list[Include] = []
        if source == "*":
            sources = sorted(self.resource_types) if reverse or req.types is None else list(req.types)
        else:
            sources = [source]
        if source != "*" and source not in self.resource_types:
            raise Unsupported(f"{base}={value}: unknown resource type '{source}'")
        if target is not None and target not in self.resource_types:
            raise Unsupported(f"{base}={value}: unknown target type '{target}'")
        if not reverse and source != "*" and req.types is not None and source not in req.types and not iterate:
            raise Unsupported(f"{base}={value}: {source} is not a type being searched (use {base}:iterate)")
        for src in sources:
            params = self.registry.params_for(src)
            if code == "*":
                wanted = set(req.types or ()) if reverse else set()
                found += [Include(src, c, target, iterate, reverse) for c, p in params.items()
                          if p.type == "reference" and not c.startswith("_")
                          and (not wanted or not p.target or wanted & set(p.target))]
            else:
                p = params.get(code)
                if p is None or p.type != "reference":
                    raise Unsupported(f"{base}={value}: '{code}' is not a reference parameter of {src}")
                self._check_ready(p)
                found.append(Include(src, code, target, iterate, reverse))
        if reverse:
            req.revincludes = (*req.revincludes, *found)
        else:
            req.includes = (*req.includes, *found)
        req.applied.append((f"{base}:{modifier}" if modifier else base, value))

    # ------------------------------------------------------------------------------------------ criteria

    def criterion(self, types: tuple[str, ...] | None, name: str, value: str, depth: int = 0) -> Criterion:
        """Parse one `name=value` for the searched types; the same meaning is required across `types`."""
        parsed = [self._criterion_for(t, name, value, depth) for t in (types or (None,))]
        first = parsed[0]
        if any(p != first for p in parsed[1:]):
            raise Unsupported(f"Parameter '{name}' means different things across the searched types")
        return first

    def _param(self, rtype: str | None, code: str) -> Any:
        if rtype is None:
            p = self.registry.params_for("Resource").get(code)
            if p is None or not set(p.base) & {"Resource", "DomainResource"}:
                return None
            return p
        return self.registry.get(rtype, code)

    def _criterion_for(self, rtype: str | None, name: str, value: str, depth: int) -> Criterion:
        if depth > MAX_CHAIN_DEPTH:
            raise Unsupported(f"'{name}': chains deeper than {MAX_CHAIN_DEPTH} are not supported", "too-costly")
        if name.startswith("_has:"):
            return self._has(rtype, name, value, depth)
        head, dot, tail = name.partition(".")
        code, _, modifier = head.partition(":")
        where = rtype or "all resource types"
        if code in ("_id", "_lastUpdated", "_text", "_content", "_list"):
            return self._special(rtype, code, modifier, value, name)
        param = self._param(rtype, code)
        if param is None:
            raise Unsupported(f"Unknown search parameter '{code}' for {where}")
        self._check_ready(param)
        if dot:
            return self._chain(rtype, param, modifier, tail, value, name, depth)
        ptype = param.type
        if ptype == "special":
            raise Unsupported(f"Search parameter '{code}' (special) is not supported")
        if modifier == "missing":
            if value not in ("true", "false"):
                raise InvalidRequest(f"'{name}' must be true or false; got '{value}'")
            return Missing(code, ptype, value == "true")
        if ptype == "reference" and modifier and modifier in self.resource_types:
            targets = param.target or tuple(self.resource_types)
            if modifier not in targets:
                raise InvalidRequest(f"'{name}': {modifier} is not a target type of {code}")
            values = tuple(self._reference(v, param, modifier) for v in split_or(value))
            return Filter(code, ptype, "", values)
        if modifier and modifier not in MODIFIERS.get(ptype, set()):
            raise Unsupported(f"Modifier ':{modifier}' is not supported on '{code}' ({ptype} parameter)")
        if ptype == "composite":
            comps = tuple(c.type for c in param.components)
            values = tuple(self._composite(v, param, name) for v in split_or(value))
            return Filter(code, ptype, modifier, values, comps)
        values = tuple(self.value(ptype, modifier, v, name, param) for v in split_or(value))
        return Filter(code, ptype, modifier, values)

    def _check_ready(self, param: Any) -> None:
        if self.options.not_ready is not None and getattr(param, "custom", False):
            reason = self.options.not_ready(param)
            if reason:
                raise Unsupported(reason, "incomplete")

    def _special(self, rtype: str | None, code: str, modifier: str, value: str, name: str) -> Criterion:
        if modifier == "missing" and code in ("_id", "_lastUpdated"):
            if value not in ("true", "false"):
                raise InvalidRequest(f"'{name}' must be true or false; got '{value}'")
            return Missing(code, ID if code == "_id" else LAST_UPDATED, value == "true")
        if modifier and not (code == "_id" and modifier == "not"):
            raise Unsupported(f"Modifier ':{modifier}' is not supported on '{code}'")
        if code == "_id":
            ids = tuple(TokenValue(None, v) for v in split_or(value))
            return Filter(code, ID, modifier, ids)
        if code == "_lastUpdated":
            return Filter(code, LAST_UPDATED, "", tuple(self._date(v, name) for v in split_or(value)))
        if code in ("_text", "_content"):
            if rtype is not None and code == "_text" and self.registry.get(rtype, "_text") is None:
                raise Unsupported(f"'_text' does not apply to {rtype} (it has no narrative)")
            return Filter(code, FULLTEXT, "", tuple(self._text(v, name) for v in split_or(value)))
        values = []
        for v in split_or(value):
            if not _ID_RE.fullmatch(v):
                raise Unsupported(f"_list={v}: only List resource ids are supported (not functional lists)")
            values.append(ReferenceValue("List", v))
        return Filter(code, LIST, "", tuple(values))

    def _chain(
        self, rtype: str | None, param: Any, modifier: str, tail: str, value: str, name: str, depth: int
    ) -> Criterion:
        if param.type != "reference":
            raise Unsupported(f"'{name}': only reference parameters can be chained ('{param.code}' is {param.type})")
        targets = param.target or tuple(sorted(self.resource_types))
        if modifier:
            if modifier not in self.resource_types:
                raise Unsupported(f"'{name}': ':{modifier}' is not a resource type")
            if modifier not in targets:
                raise InvalidRequest(f"'{name}': {modifier} is not a target type of {param.code}")
            targets = (modifier,)
        inner_code = tail.split(".", 1)[0].split(":", 1)[0]
        found: list[tuple[str, Criterion]] = []
        for t in targets:
            if inner_code.startswith("_has") or inner_code in ("_id", "_lastUpdated", "_text", "_content") or (
                self.registry.get(t, inner_code) is not None
            ):
                found.append((t, self._criterion_for(t, tail, value, depth + 1)))
        if not found:
            raise Unsupported(f"'{name}': no target type of '{param.code}' has a parameter '{inner_code}'")
        return Chain(param.code, tuple(found))

    def _has(self, rtype: str | None, name: str, value: str, depth: int) -> Criterion:
        parts = name.split(":", 3)
        if len(parts) != 4 or not all(parts[1:]):
            raise InvalidRequest(f"'{name}': _has must look like _has:Type:reference-param:param")
        _, source, code, rest = parts
        if source not in self.resource_types:
            raise InvalidRequest(f"'{name}': unknown resource type '{source}'")
        param = self.registry.get(source, code)
        if param is None or param.type != "reference":
            raise InvalidRequest(f"'{name}': '{code}' is not a reference parameter of {source}")
        if rtype is not None and param.target and rtype not in param.target:
            raise InvalidRequest(f"'{name}': {source}.{code} cannot refer to {rtype}")
        return Has(source, code, self._criterion_for(source, rest, value, depth + 1))

    # ------------------------------------------------------------------------------------------ values

    def value(self, ptype: str, modifier: str, raw: str, name: str, param: Any = None) -> Value:
        if ptype == "string":
            return StringValue(raw[:STRING_INDEX_LENGTH])
        if ptype == "token":
            if modifier == "text":
                return StringValue(raw)
            if modifier == "of-type":
                parts = split_escaped(raw, "|")
                if len(parts) != 3 or not parts[1] or not parts[2]:
                    raise InvalidRequest(f"'{name}': :of-type values look like system|code|value; got '{raw}'")
                return OfTypeValue(parts[0], parts[1], parts[2])
            return parse_token(raw)
        if ptype == "reference":
            if modifier == "identifier":
                return parse_token(raw)
            return self._reference(raw, param, None)
        if ptype == "date":
            return self._date(raw, name)
        if ptype == "number":
            return parse_number(raw, name)
        if ptype == "quantity":
            return self._quantity(raw, name)
        if ptype == "uri":
            return UriValue(raw)
        raise Unsupported(f"Search parameter '{name}' ({ptype}) is not supported")

    def _date(self, raw: str, name: str) -> DateValue:
        prefix, text = split_prefix(raw)
        text = text.replace(" ", "+")  # an unencoded '+' in a time zone arrives as a space
        bounds = date_range(text) if _DATE_RE.fullmatch(text) else None
        if bounds is None:
            raise InvalidRequest(f"'{name}': '{raw}' is not a FHIR date, dateTime or instant")
        return DateValue(prefix, bounds[0], bounds[1])

    def _quantity(self, raw: str, name: str) -> QuantityValue:
        parts = split_escaped(raw, "|")
        if len(parts) not in (1, 3):
            raise InvalidRequest(f"'{name}': quantities look like [prefix]number|system|code; got '{raw}'")
        number = parse_number(parts[0], name)
        if len(parts) == 1:
            return QuantityValue(number, None, None)
        return QuantityValue(number, parts[1] or None, parts[2] or None)

    def _reference(self, raw: str, param: Any, type_modifier: str | None) -> ReferenceValue:
        targets = tuple(param.target) if param is not None and param.target else ()
        base = self.options.base_url.rstrip("/")
        text = raw
        if base and text.startswith(base + "/"):
            text = text[len(base) + 1 :]
        m = _REF_RE.fullmatch(text)
        if m and m.group(1) in self.resource_types:
            if type_modifier and m.group(1) != type_modifier:
                raise InvalidRequest(f"Reference '{raw}' does not match the type modifier :{type_modifier}")
            return ReferenceValue(m.group(1), m.group(2))
        if _ID_RE.fullmatch(text):
            if type_modifier:
                return ReferenceValue(type_modifier, text)
            return ReferenceValue(targets[0] if len(targets) == 1 else None, text)
        return ReferenceValue(None, None, raw)

    def _text(self, raw: str, name: str) -> TextValue:
        from sharedcare.fhir.indexing import normalise

        terms = tuple(t for t in re.split(r"[^\w]+", normalise(raw)) if t)
        if not terms:
            raise InvalidRequest(f"'{name}': no words to search for in '{raw}'")
        return TextValue(terms)

    def _composite(self, raw: str, param: Any, name: str) -> CompositeValue:
        comps = param.components
        parts = split_escaped(raw, "$")
        if len(parts) != len(comps):
            raise InvalidRequest(
                f"'{name}': a value needs {len(comps)} parts separated by '$' "
                f"({', '.join(c.code for c in comps)}); got '{raw}'"
            )
        values: list[Value] = []
        for comp, part in zip(comps, parts, strict=True):
            if comp.type == "reference":
                values.append(self._reference(part, self.registry.by_url(comp.definition)
                                              if hasattr(self.registry, "by_url") else None, None))
            elif comp.type in ("token", "string", "date", "number", "quantity", "uri"):
                values.append(self.value(comp.type, "", part, name))
            else:
                raise Unsupported(f"'{name}': composite component type {comp.type} is not supported")
        return CompositeValue(tuple(values))


# ---------------------------------------------------------------------------------------------- helpers


def parse_token(raw: str) -> TokenValue:
    parts = split_escaped(raw, "|", maxsplit=1)
    if len(parts) == 1:
        return TokenValue(None, parts[0])
    system, code = parts
    return TokenValue(system, code or None)


def parse_number(raw: str, name: str) -> NumberValue:
    prefix, text = split_prefix(raw)
    if not _NUMBER_RE.fullmatch(text):
        raise InvalidRequest(f"'{name}': '{raw}' is not a number")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidRequest(f"'{name}': '{raw}' is not a number") from None
    bounds = number_range(text)
    assert bounds is not None
    return NumberValue(prefix, float(value), bounds[0], bounds[1])


def split_prefix(raw: str) -> tuple[str, str]:
    if len(raw) > 2 and raw[:2] in PREFIXES and not raw[:2].isdigit():
        return raw[:2], raw[2:]
    return "eq", raw


def split_or(value: str) -> list[str]:
    """Split a parameter value on unescaped commas (http://hl7.org/fhir/R4/search.html#escaping)."""
    return split_escaped(value, ",")


def split_escaped(value: str, sep: str, maxsplit: int = -1) -> list[str]:
    """Split on `sep` unless escaped with a backslash; escapes are removed from the parts."""
    out: list[str] = []
    buf: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep and (maxsplit < 0 or len(out) < maxsplit):
            out.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    if escaped:
        buf.append("\\")
    out.append("".join(buf))
    return out


def _non_negative(name: str, raw: str) -> int:
    if not raw.isdigit():
        raise InvalidRequest(f"{name} must be a non-negative integer, got '{raw}'")
    return int(raw)
