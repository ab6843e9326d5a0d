"""Query string -> SearchRequest, without a database (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

import pytest

from sharedcare.errors import InvalidRequest, NotSupported
from sharedcare.fhir.search_parameters import SearchParameterRegistry
from sharedcare.search.model import (
    Chain,
    CompositeValue,
    DateValue,
    Filter,
    Has,
    Missing,
    NumberValue,
    QuantityValue,
    ReferenceValue,
    TokenValue,
)
from sharedcare.search.parse import ParseOptions, QueryParser, split_escaped

REGISTRY = SearchParameterRegistry.load()


def parse(query: str, rtype: str | None = "Observation", **opts: object):  # noqa: ANN201
    pairs = [tuple(p.split("=", 1)) for p in query.split("&") if p]
    return QueryParser(REGISTRY, ParseOptions(**opts)).parse(pairs, rtype)  # type: ignore[arg-type]


def test_token_forms() -> None:
    crit = parse("code=a,b|c,|d,e|").criteria[0]
    assert isinstance(crit, Filter)
    assert crit.values == (TokenValue(None, "a"), TokenValue("b", "c"), TokenValue("", "d"), TokenValue("e", None))


def test_escaping() -> None:
    assert split_escaped(r"a\,b,c", ",") == ["a,b", "c"]
    assert split_escaped(r"a\|b|c", "|") == ["a|b", "c"]
    assert split_escaped(r"a\$b$c", "$") == ["a$b", "c"]


def test_dates_carry_their_precision() -> None:
    (crit,) = parse("date=ge2013-01").criteria
    assert isinstance(crit, Filter)
    assert crit.values == (DateValue("ge", "2013-01-01T00:00:00.000000Z", "2013-01-31T23:59:59.999999Z"),)
    (crit,) = parse("date=2013-01-14T10:00:00 01:00").criteria  # '+' decoded to a space
    assert isinstance(crit, Filter) and crit.values[0].low == "2013-01-14T09:00:00.000000Z"  # type: ignore[union-attr]
    with pytest.raises(InvalidRequest):
        parse("date=yesterday")


def test_numbers_and_quantities() -> None:
    (crit,) = parse("value-quantity=le5.40|http://unitsofmeasure.org|mg").criteria
    assert isinstance(crit, Filter)
    (q,) = crit.values
    assert isinstance(q, QuantityValue) and q.system == "http://unitsofmeasure.org" and q.code == "mg"
    assert q.number == NumberValue("le", 5.4, 5.395, 5.405)
    (crit,) = parse("value-quantity=5||mg").criteria
    assert crit.values[0] == QuantityValue(NumberValue("eq", 5.0, 4.5, 5.5), None, "mg")  # type: ignore[union-attr]


def test_references_chains_and_has() -> None:
    (crit,) = parse("subject=Patient/1,2,http://x.org/fhir/Patient/3", base_url="http://me/fhir").criteria
    assert isinstance(crit, Filter)
    assert crit.values == (ReferenceValue("Patient", "1"), ReferenceValue(None, "2"),
                           ReferenceValue(None, None, "http://x.org/fhir/Patient/3"))
    (crit,) = parse("subject=http://me/fhir/Patient/9", base_url="http://me/fhir").criteria
    assert crit.values == (ReferenceValue("Patient", "9"),)  # type: ignore[union-attr]
    (chain,) = parse("subject:Patient.name=peter").criteria
    assert isinstance(chain, Chain) and [t for t, _ in chain.targets] == ["Patient"]
    (chain,) = parse("subject.name=peter").criteria
    assert isinstance(chain, Chain) and {t for t, _ in chain.targets} == {"Patient", "Location"}
    (has,) = parse("_has:Observation:patient:code=1234", "Patient").criteria
    assert isinstance(has, Has) and has.source_type == "Observation" and isinstance(has.inner, Filter)


def test_composite_and_missing() -> None:
    (crit,) = parse("component-code-value-quantity=http://loinc.org|8480-6$gt100").criteria
    assert isinstance(crit, Filter) and crit.components == ("token", "quantity")
    (v,) = crit.values
    assert isinstance(v, CompositeValue) and v.parts[0] == TokenValue("http://loinc.org", "8480-6")
    (m,) = parse("value-quantity:missing=true").criteria
    assert m == Missing("value-quantity", "quantity", True)
    with pytest.raises(InvalidRequest):
        parse("component-code-value-quantity=8480-6")


def test_result_parameters() -> None:
    req = parse("_count=5000&_sort=-date,_id&_total=accurate&_summary=count&_include=Observation:patient"
                "&_revinclude:iterate=Provenance:target&_elements=code,subject")
    assert req.count == 1000 and req.total == "accurate" and req.summary == "count"
    assert [(k.code, k.descending) for k in req.sort] == [("date", True), ("_id", False)]
    assert req.includes[0].code == "patient" and req.revincludes[0].iterate
    assert req.elements == ("code", "subject")
    with pytest.raises(InvalidRequest):
        parse("_summary=maybe")


def test_unknown_and_unsupported_are_issues_or_errors() -> None:
    req = parse("colour=red&code:in=http://vs&_filter=x&code=1&_sort=nonsense")
    assert len(req.criteria) == 1
    assert len(req.issues) == 4
    assert req.applied == [("code", "1")]
    with pytest.raises(NotSupported):
        parse("colour=red", strict=True)


def test_system_search_uses_common_parameters_only() -> None:
    req = parse("_id=1&_lastUpdated=ge2020&code=1", None)
    assert len(req.criteria) == 2 and len(req.issues) == 1
    req = parse("_type=Observation,Condition&code=1", None)
    assert req.types == ("Observation", "Condition") and len(req.criteria) == 1
