"""The search-parameter registry: which parameters each resource type has, and the compartment definitions.

Built once by the app from the tables generated out of the official R4 package
(`tools/gen_search_parameters.py` -> `definitions/search_parameters.json`, `definitions/compartments.json`), then
extended at run time with SearchParameter resources that users post (`register`). `version` changes on every
registration so that caches built from the registry (the indexer's compiled extractors) know to rebuild.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from sharedcare.fhir.fhirpath_compile import CompileError, ElementTypes, parse

PARAM_TYPES = frozenset({"number", "date", "string", "token", "reference", "composite", "quantity", "uri", "special"})
ABSTRACT_BASES = ("Resource", "DomainResource")
COMPARTMENT_TYPES = ("Patient", "Encounter", "RelatedPerson", "Practitioner", "Device")

# Parameters the search engine handles itself; the indexer writes no rows for them. `_id` and `_lastUpdated` are
# store columns, `_text`/`_content` match `IndexRows.text`, the rest are query-level features.
ENGINE_HANDLED = frozenset({"_id", "_lastUpdated", "_text", "_content", "_list", "_has", "_filter", "_query"})

# Defined by the FHIR search specification, not by SearchParameter resources.
_SYNTHETIC = (
    ("_list", "http://hl7.org/fhir/R4/search.html#list"),
    ("_has", "http://hl7.org/fhir/R4/search.html#has"),
)
_CODE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-.]*$")


@dataclass(frozen=True, slots=True)
class Component:
    """One part of a composite parameter: evaluated relative to each element the composite expression selects."""

    definition: str  # canonical URL of the component's own SearchParameter
    code: str  # that parameter's code
    type: str  # that parameter's type: how the component's key is rendered and matched
    expression: str


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter as the indexer and the search engine need it.

    `special` marks parameters the engine handles itself (see ENGINE_HANDLED, and type `special` such as
    Location `near`): the indexer writes no ordinary rows for them.
    `modifiers` and `comparators` are what the definition declares (R4 core declares few modifiers; the engine
    applies the specification's defaults per type).
    """

    code: str
    type: str
    base: tuple[str, ...]
    expression: str | None
    url: str
    target: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()
    multiple_or: bool | None = None
    multiple_and: bool | None = None
    modifiers: tuple[str, ...] = ()
    comparators: tuple[str, ...] = ()
    chain: tuple[str, ...] = ()
    special: bool = False
    experimental: bool = False
    custom: bool = False  # registered at run time rather than shipped


class SearchParameterRegistry:
    """All search parameters by base type and code, plus compartment membership rules.

    Not a module singleton: the app builds one (`SearchParameterRegistry.load()`) and passes it around.
    """

    def __init__(
        self,
        params: Iterable[SearchParam],
        resource_types: Mapping[str, str],
        compartments: Mapping[str, Mapping[str, tuple[str, ...]]],
        element_types: ElementTypes | None = None,
    ) -> None:
        self.resource_types: Mapping[str, str] = MappingProxyType(dict(resource_types))
        self.element_types = element_types
        self._compartments = {c: dict(per) for c, per in compartments.items()}
        self._by_base: dict[str, dict[str, SearchParam]] = {}
        self._by_url: dict[str, SearchParam] = {}
        self._views: dict[str, Mapping[str, SearchParam]] = {}
        self._lock = threading.Lock()
        self.version = 0
        for p in params:
            self._add(p)

    # -- construction

    @classmethod
    def load(cls) -> SearchParameterRegistry:
        """The registry of the R4 core search parameters shipped in `sharedcare/fhir/definitions`."""
        defs = resources.files("sharedcare.fhir").joinpath("definitions")
        sp_table = json.loads(defs.joinpath("search_parameters.json").read_text())
        comp_table = json.loads(defs.joinpath("compartments.json").read_text())
        rtypes: dict[str, str] = sp_table["resourceTypes"]
        any_target = tuple(sorted(t for t in rtypes if t != "Parameters"))
        params = [_from_row(row, any_target) for row in sp_table["params"]]
        params += [SearchParam(code, "special", ("Resource",), None, url, special=True) for code, url in _SYNTHETIC]
        compartments = {
            comp: {rt: tuple(codes) for rt, codes in per.items()} for comp, per in comp_table["compartments"].items()
        }
        return cls(params, rtypes, compartments, ElementTypes.load())

    def _add(self, param: SearchParam) -> None:
        """Index `param` under each base; a parameter it displaces everywhere is dropped from the URL index."""
        displaced = []
        for base in param.base:
            per = self._by_base.setdefault(base, {})
            old = per.get(param.code)
            if old is not None and old is not param:
                displaced.append(old)
            per[param.code] = param
        for old in displaced:
            still_used = any(self._by_base.get(b, {}).get(old.code) is old for b in old.base)
            if not still_used and self._by_url.get(old.url) is old:
                del self._by_url[old.url]
        self._by_url[param.url] = param

    # -- lookups

    def params_for(self, resource_type: str) -> Mapping[str, SearchParam]:
        """Every parameter that applies to `resource_type`, by code, including Resource/DomainResource ones."""
        view = self._views.get(resource_type)
        if view is None:
            merged: dict[str, SearchParam] = dict(self._by_base.get("Resource", {}))
            if self.resource_types.get(resource_type, "DomainResource") == "DomainResource":
                merged.update(self._by_base.get("DomainResource", {}))
            merged.update(self._by_base.get(resource_type, {}))
            view = self._views[resource_type] = MappingProxyType(merged)
        return view

    def get(self, resource_type: str, code: str) -> SearchParam | None:
        return self.params_for(resource_type).get(code)

    def by_url(self, url: str) -> SearchParam | None:
        return self._by_url.get(url)

    def all(self) -> Iterator[SearchParam]:
        """Each distinct parameter once (a parameter shared by several bases is yielded once)."""
        seen: set[int] = set()
        for per in self._by_base.values():
            for p in per.values():
                if id(p) not in seen:
                    seen.add(id(p))
                    yield p

    def compartment_types(self) -> tuple[str, ...]:
        return tuple(self._compartments)

    def compartment_params(self, comp_type: str, resource_type: str) -> tuple[str, ...]:
        """Codes of the `resource_type` parameters whose references place a resource in a `comp_type` compartment."""
        return self._compartments.get(comp_type, {}).get(resource_type, ())

    def compartments_for(self, resource_type: str) -> dict[str, tuple[str, ...]]:
        """comp_type -> param codes, for every compartment type that lists `resource_type`."""
        out = {}
        for comp, per in self._compartments.items():
            codes = per.get(resource_type)
            if codes:
                out[comp] = codes
        return out

    # -- run-time registration

    def register(self, search_parameter: dict[str, Any]) -> SearchParam:
        """Add (or replace, by base and code) a parameter from a SearchParameter resource a user posted.

        Raises ValueError with a readable reason when the resource cannot define a usable parameter.
        """
        param = self.parse_resource(search_parameter)
        with self._lock:
            self._add(param)
            self._views = {}
            self.version += 1
        return param

    def parse_resource(self, sp: dict[str, Any]) -> SearchParam:
        """Validate a SearchParameter resource and turn it into a SearchParam (without registering it)."""
        if sp.get("resourceType") != "SearchParameter":
            raise ValueError("not a SearchParameter resource")
        code, ptype, url = sp.get("code"), sp.get("type"), sp.get("url")
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise ValueError(f"SearchParameter.code {code!r} is not a valid parameter name")
        if ptype not in PARAM_TYPES:
            raise ValueError(f"SearchParameter.type {ptype!r} is not a search parameter type")
        base = tuple(sp.get("base") or ())
        unknown = [b for b in base if b not in self.resource_types and b not in ABSTRACT_BASES]
        if not base or unknown:
            raise ValueError(f"SearchParameter.base must list resource types (unknown: {unknown or 'none given'})")
        expression = sp.get("expression")
        if ptype != "special" and not expression:
            raise ValueError("SearchParameter.expression is required")
        if expression:
            _check_expression(expression)
        components = tuple(self._component(c) for c in sp.get("component") or ())
        if ptype == "composite" and not components:
            raise ValueError("a composite SearchParameter needs components")
        target = tuple(sp.get("target") or ())
        if not isinstance(url, str) or not url:
            url = f"urn:sharedcare:searchparameter:{'-'.join(base)}-{code}"
        return SearchParam(
            code=code,
            type=ptype,
            base=base,
            expression=expression,
            url=url,
            target=target,
            components=components,
            multiple_or=sp.get("multipleOr"),
            multiple_and=sp.get("multipleAnd"),
            modifiers=tuple(sp.get("modifier") or ()),
            comparators=tuple(sp.get("comparator") or ()),
            chain=tuple(sp.get("chain") or ()),
            special=ptype == "special" or code in ENGINE_HANDLED,
            experimental=bool(sp.get("experimental")),
            custom=True,
        )

    def _component(self, comp: dict[str, Any]) -> Component:
        definition, expression = comp.get("definition"), comp.get("expression")
        target = self._by_url.get(definition) if isinstance(definition, str) else None
        if target is None:
            raise ValueError(f"component definition {definition!r} is not a known SearchParameter")
        if not isinstance(expression, str) or not expression:
            raise ValueError("a component needs an expression")
        _check_expression(expression)
        return Component(definition, target.code, target.type, expression)


def _check_expression(expression: str) -> None:
    """Reject text that is not FHIRPath (the full grammar parses; evaluation may still need fhirpathpy)."""
    try:
        parse(expression)
    except CompileError as exc:
        raise ValueError(f"invalid FHIRPath expression {expression!r}: {exc}") from exc


def _from_row(row: dict[str, Any], any_target: tuple[str, ...]) -> SearchParam:
    target = row.get("target", ())
    return SearchParam(
        code=row["code"],
        type=row["type"],
        base=tuple(row["base"]),
        expression=row.get("expression"),
        url=row["url"],
        target=any_target if target == "*" else tuple(target),
        components=tuple(Component(**c) for c in row.get("component", ())),
        multiple_or=row.get("multipleOr"),
        multiple_and=row.get("multipleAnd"),
        modifiers=tuple(row.get("modifier", ())),
        comparators=tuple(row.get("comparator", ())),
        chain=tuple(row.get("chain", ())),
        special=row["type"] == "special" or row["code"] in ENGINE_HANDLED,
        experimental=row.get("experimental", False),
    )
