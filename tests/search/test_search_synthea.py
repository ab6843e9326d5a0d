"""Search results checked against answers computed independently, in plain Python over the loaded JSON.

Data: Synthea patient bundles written by others (smart-on-fhir 2019: urn:uuid references; fhir-data-pipes 2021:
conditional references and conditional creates), loaded through the API as transactions. The expected answers
below never call sharedcare: they walk the original JSON, with references rewritten to the ids the server gave.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from searchkit import module_client, post_bundle, read_bundle, search_all  # noqa: F401
from starlette.testclient import TestClient

SMART = "data/synthea/smart-on-fhir-r4-2019"
PIPES = "data/synthea/fhir-data-pipes-hiv-2021"
SMART_FILES = [
    "Abdul_Koepp_e925b0f3-8006-43f6-aa31-94bd215e55e7.json.gz",
    "Adalberto_Hartmann_44ec4447-9e2c-4eb9-bd4f-0bdb416b806e.json.gz",
    "Adan_Portillo_22bbe238-220e-495c-8abc-0ce3aa28a605.json.gz",
    "Addie_Tremblay_4c875c3c-b4d6-4f6d-aabe-5ddc24892adc.json.gz",
    "Alda_Carter_ee1034c9-cb75-413c-8f36-da7e4268d2b5.json.gz",
    "Ali_Harris_eed1d00b-7665-4da3-88b7-c37cfb2ed245.json.gz",
]
PIPES_FILES = [
    "hospitalInformation1633536936158.json.gz",
    "practitionerInformation1633536936158.json.gz",
    "Alva958_Dickinson688_742fc10a-c565-f636-3c05-5dcd28672194.json.gz",
    "Bo157_Smith67_fa5aa9e4-255d-62cf-0278-9ae778a2620c.json.gz",
]
LOINC = "http://loinc.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"


# ---------------------------------------------------------------------------------------------- the oracle


class Data:
    """The loaded resources as plain JSON with server ids, and a few independent helpers over them."""

    def __init__(self) -> None:
        self.by_type: dict[str, list[dict]] = {}

    def add(self, resource: dict) -> None:
        self.by_type.setdefault(resource["resourceType"], []).append(resource)

    def all(self, rtype: str) -> list[dict]:
        return self.by_type.get(rtype, [])

    def get(self, ref: str) -> dict | None:
        rtype, _, rid = ref.partition("/")
        return next((r for r in self.all(rtype) if r["id"] == rid), None)

    def ids(self, rtype: str, pred: Callable[[dict], bool]) -> set[str]:
        return {r["id"] for r in self.all(rtype) if pred(r)}


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def codings(value: Any) -> list[tuple[str | None, str | None]]:
    """(system, code) of every Coding in a CodeableConcept, a Coding, or a list of them."""
    out: list[tuple[str | None, str | None]] = []
    for v in value if isinstance(value, list) else [value]:
        if not isinstance(v, dict):
            continue
        if "coding" in v:
            out += [(c.get("system"), c.get("code")) for c in v["coding"]]
        elif "code" in v:
            out.append((v.get("system"), v.get("code")))
    return out


def has_code(value: Any, system: str | None, code: str) -> bool:
    return any(c == code and (system is None or s == system) for s, c in codings(value))


def ref(value: Any) -> str | None:
    return value.get("reference") if isinstance(value, dict) else None


def instant(text: str) -> tuple[datetime, datetime]:
    """The range a FHIR date/dateTime covers at its precision, in UTC (both ends inclusive)."""
    if len(text) == 4:
        lo = datetime(int(text), 1, 1, tzinfo=UTC)
        return lo, datetime(int(text) + 1, 1, 1, tzinfo=UTC) - timedelta(microseconds=1)
    if len(text) == 7:
        y, m = int(text[:4]), int(text[5:7])
        nxt = datetime(y + (m == 12), m % 12 + 1, 1, tzinfo=UTC)
        return datetime(y, m, 1, tzinfo=UTC), nxt - timedelta(microseconds=1)
    if len(text) == 10:
        lo = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return lo, lo + timedelta(days=1) - timedelta(microseconds=1)
    t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    t = t.astimezone(UTC)
    if "." in text:
        return t, t
    return t, t + timedelta(seconds=1) - timedelta(microseconds=1)


def span(value: Any) -> tuple[datetime, datetime] | None:
    """A dateTime or a Period as a range."""
    if isinstance(value, str):
        return instant(value)
    if isinstance(value, dict) and ("start" in value or "end" in value):
        lo = instant(value["start"])[0] if "start" in value else datetime.min.replace(tzinfo=UTC)
        hi = instant(value["end"])[1] if "end" in value else datetime.max.replace(tzinfo=UTC)
        return lo, hi
    return None


def date_matches(target: tuple[datetime, datetime] | None, prefix: str, value: str) -> bool:
    """The prefix rules of http://hl7.org/fhir/R4/search.html#prefix, written out for ranges."""
    if target is None:
        return False
    lo, hi = target
    ql, qh = instant(value)
    contained = ql <= lo and hi <= qh
    return {
        "eq": contained,
        "ne": not contained,
        "gt": hi > qh,
        "lt": lo < ql,
        "ge": hi > qh or contained,
        "le": lo < ql or contained,
        "sa": lo > qh,
        "eb": hi < ql,
    }[prefix]


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)


# ---------------------------------------------------------------------------------------------- loading


def rewrite(node: Any, resolve: Callable[[str], str]) -> Any:
    if isinstance(node, dict):
        out = {k: rewrite(v, resolve) for k, v in node.items()}
        if isinstance(out.get("reference"), str):
            out["reference"] = resolve(out["reference"])
        return out
    if isinstance(node, list):
        return [rewrite(v, resolve) for v in node]
    return node


def load(client: TestClient, shared: Path) -> Data:
    data = Data()
    by_full_url: dict[str, str] = {}
    by_identifier: dict[tuple[str, str, str], str] = {}  # (type, system, value) -> Type/id

    def resolve(reference: str) -> str:
        if reference in by_full_url:
            return by_full_url[reference]
        if "?identifier=" in reference:
            rtype, _, ident = reference.partition("?identifier=")
            system, _, value = ident.partition("|")
            return by_identifier.get((rtype, system, value), reference)
        return reference

    files = [shared / SMART / f for f in SMART_FILES] + [shared / PIPES / f for f in PIPES_FILES]
    for path in files:
        bundle = read_bundle(path)
        results = post_bundle(client, bundle)
        for entry, loc in zip(bundle["entry"], results, strict=True):
            res = entry["resource"]
            if not loc:
                continue
            by_full_url[entry["fullUrl"]] = loc
            for ident in res.get("identifier", []):
                by_identifier[(res["resourceType"], ident.get("system", ""), ident.get("value", ""))] = loc
        seen = {d["id"] for rs in data.by_type.values() for d in rs}
        for entry, loc in zip(bundle["entry"], results, strict=True):
            if loc and loc.split("/")[1] not in seen:
                seen.add(loc.split("/")[1])
                res = rewrite(entry["resource"], resolve)
                res["id"] = loc.split("/")[1]
                data.add(res)
    return data


@pytest.fixture(scope="module")
def world(module_client: TestClient, shared: Path) -> tuple[TestClient, Data]:  # noqa: F811
    return module_client, load(module_client, shared)


def found_ids(client: TestClient, path: str) -> set[str]:
    resources = search_all(client, path)
    ids = [r["id"] for r in resources]
    assert len(ids) == len(set(ids)), f"duplicates across pages of {path}"
    return set(ids)


def check(client: TestClient, path: str, expected: set[str], *, allow_empty: bool = False) -> None:
    assert expected or allow_empty, f"test data gives no expected match for {path}: choose another value"
    got = found_ids(client, path)
    assert got == expected, f"{path}: missing {sorted(expected - got)[:5]}, unexpected {sorted(got - expected)[:5]}"


def patients(data: Data) -> list[dict]:
    return sorted(data.all("Patient"), key=lambda p: p["id"])


def q(text: str) -> str:
    return quote(text, safe="")


# ---------------------------------------------------------------------------------------------- tests


def test_everything_loaded(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for rtype in ("Patient", "Observation", "Encounter", "Condition", "Practitioner"):
        r = client.get(f"/fhir/{rtype}?_summary=count")
        assert r.json()["total"] == len(data.all(rtype)), rtype


def test_string_name_prefix_case_and_exact(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for p in patients(data):
        family = p["name"][0]["family"]
        prefix = family[:3].lower()
        expected = data.ids("Patient", lambda r, pre=prefix: any(
            fold(n.get("family", "")).startswith(pre) or any(fold(g).startswith(pre) for g in n.get("given", []))
            or any(fold(x).startswith(pre) for x in n.get("prefix", []) + n.get("suffix", []))
            for n in r.get("name", [])))
        check(client, f"/fhir/Patient?name={q(prefix.upper())}", expected)
        exact = data.ids("Patient", lambda r, f=family: any(n.get("family") == f for n in r.get("name", [])))
        check(client, f"/fhir/Patient?family:exact={q(family)}", exact)
        check(client, f"/fhir/Patient?family:exact={q(family.upper())}", set(), allow_empty=True)
        middle = fold(family[1:4])
        contains = data.ids("Patient", lambda r, m=middle: any(m in fold(n.get("family", ""))
                                                              for n in r.get("name", [])))
        check(client, f"/fhir/Patient?family:contains={q(middle)}", contains)


def test_token_forms_and_identifier_of_type(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for gender in ("male", "female"):
        check(client, f"/fhir/Patient?gender={gender}", data.ids("Patient", lambda r, g=gender: r.get("gender") == g))
    for p in patients(data):
        for ident in p.get("identifier", []):
            system, value = ident.get("system"), ident.get("value")
            check(client, f"/fhir/Patient?identifier={q(system)}|{q(value)}", data.ids(
                "Patient", lambda r, s=system, v=value: any(
                    i.get("system") == s and i.get("value") == v for i in r.get("identifier", []))))
            for code in [c.get("code") for c in ident.get("type", {}).get("coding", [])]:
                expected = data.ids("Patient", lambda r, c=code, v=value: any(
                    i.get("value") == v and any(t.get("code") == c and t.get("system") == V2_0203
                                                for t in i.get("type", {}).get("coding", []))
                    for i in r.get("identifier", [])))
                check(client, f"/fhir/Patient?identifier:of-type={q(V2_0203)}|{code}|{q(value)}", expected)


def test_observation_code_patient_category_date(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for p in patients(data):
        pref = f"Patient/{p['id']}"
        mine = [o for o in data.all("Observation") if ref(o.get("subject")) == pref]
        codes = sorted({c for o in mine for s, c in codings(o["code"]) if s == LOINC})[:4]
        for code in codes:
            check(client, f"/fhir/Observation?patient={q(pref)}&code={LOINC}|{code}",
                  {o["id"] for o in mine if has_code(o["code"], LOINC, code)})
            check(client, f"/fhir/Observation?subject={p['id']}&code={code}",
                  {o["id"] for o in mine if has_code(o["code"], None, code)})
        for prefix, day in (("ge", "2015-01-01"), ("lt", "2014-06-30"), ("le", "2012-03-04"), ("gt", "2016-12-31")):
            expected = {o["id"] for o in mine if has_code(o.get("category"), None, "vital-signs")
                        and date_matches(span(o.get("effectiveDateTime") or o.get("effectivePeriod")), prefix, day)}
            check(client, f"/fhir/Observation?patient={p['id']}&category=vital-signs&date={prefix}{day}",
                  expected, allow_empty=True)


def test_dates_over_periods_and_precisions(world: tuple[TestClient, Data]) -> None:
    client, data = world
    cases = [("ge", "2015-01-01"), ("lt", "2016"), ("eq", "2017"), ("eq", "2016-05"), ("ne", "2015"),
             ("sa", "2014-02-03"), ("eb", "2013-07"), ("le", "2018-11-30"), ("gt", "2019")]
    for prefix, value in cases:
        expected = data.ids("Encounter", lambda e, p=prefix, v=value: date_matches(span(e.get("period")), p, v))
        check(client, f"/fhir/Encounter?date={prefix}{value}", expected, allow_empty=True)
        expected = data.ids("Patient", lambda r, p=prefix, v=value: date_matches(
            span(r.get("birthDate")), p, v))
        check(client, f"/fhir/Patient?birthdate={prefix}{value}", expected, allow_empty=True)
    # an AND of two prefixes: a date window
    expected = data.ids("Encounter", lambda e: date_matches(span(e.get("period")), "ge", "2012-01-01")
                        and date_matches(span(e.get("period")), "lt", "2014-01-01"))
    check(client, "/fhir/Encounter?date=ge2012-01-01&date=lt2014-01-01", expected)


def test_quantity_and_composite(world: tuple[TestClient, Data]) -> None:
    client, data = world
    obs = data.all("Observation")
    weight = "29463-7"
    values = sorted(o["valueQuantity"]["value"] for o in obs
                    if has_code(o["code"], LOINC, weight) and "valueQuantity" in o)
    pivot = values[len(values) // 2]
    for prefix, op in (("gt", float.__gt__), ("le", float.__le__), ("lt", float.__lt__), ("ge", float.__ge__)):
        expected = {o["id"] for o in obs if has_code(o["code"], LOINC, weight) and "valueQuantity" in o
                    and op(float(o["valueQuantity"]["value"]), float(pivot))}
        check(client, f"/fhir/Observation?code={LOINC}|{weight}&value-quantity={prefix}{pivot}", expected)
        unit = "kg"
        expected_unit = {i for i in expected if any(
            o["id"] == i and o["valueQuantity"].get("code") == unit for o in obs)}
        check(client, f"/fhir/Observation?code={weight}&value-quantity={prefix}{pivot}|http://unitsofmeasure.org|{unit}",
              expected_unit)
    systolic = "8480-6"

    def systolic_over(o: dict, limit: float) -> bool:
        return any(has_code(c["code"], LOINC, systolic) and c.get("valueQuantity", {}).get("value", 0) > limit
                   for c in o.get("component", []))

    check(client, f"/fhir/Observation?component-code-value-quantity={LOINC}|{systolic}$gt125",
          {o["id"] for o in obs if systolic_over(o, 125)})
    check(client, f"/fhir/Observation?code-value-quantity={LOINC}|{weight}$gt{pivot}",
          {o["id"] for o in obs if has_code(o["code"], LOINC, weight)
           and float(o.get("valueQuantity", {}).get("value", -1)) > float(pivot)})


def test_chains_and_reverse_chains(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for p in patients(data)[:4]:
        family = p["name"][0]["family"]
        expected = {o["id"] for o in data.all("Condition")
                    if (pat := data.get(ref(o.get("subject")) or "")) is not None
                    and any(fold(n.get("family", "")).startswith(fold(family)) for n in pat.get("name", []))}
        check(client, f"/fhir/Condition?subject:Patient.family={q(family)}", expected)
        check(client, f"/fhir/Condition?patient.family={q(family)}", expected)
    # two levels: Observation -> Encounter -> Organization (serviceProvider) name
    orgs = {o["id"]: o.get("name", "") for o in data.all("Organization")}
    enc_org = {e["id"]: (ref(e.get("serviceProvider")) or "").partition("/")[2] for e in data.all("Encounter")}
    used = {enc_org.get((ref(o.get("encounter")) or "").partition("/")[2], "") for o in data.all("Observation")}
    some_org = sorted(used - {""})[0]
    prefix = orgs[some_org][:6]
    expected = {o["id"] for o in data.all("Observation")
                if fold(orgs.get(enc_org.get((ref(o.get("encounter")) or "").partition("/")[2], ""), ""))
                .startswith(fold(prefix))}
    check(client, f"/fhir/Observation?encounter.service-provider.name={q(prefix)}", expected)
    # reverse chaining, and nested: patients with a condition whose encounter is of a given class
    for code in sorted({c for cond in data.all("Condition") for _, c in codings(cond["code"])})[:3]:
        expected = {(ref(c.get("subject")) or "").partition("/")[2] for c in data.all("Condition")
                    if has_code(c["code"], None, code)}
        check(client, f"/fhir/Patient?_has:Condition:patient:code={code}", expected)
    amb = {e["id"] for e in data.all("Encounter") if e.get("class", {}).get("code") == "AMB"}
    expected = {(ref(c.get("subject")) or "").partition("/")[2] for c in data.all("Condition")
                if (ref(c.get("encounter")) or "").partition("/")[2] in amb}
    check(client, "/fhir/Patient?_has:Condition:patient:encounter.class=AMB", expected)
    expected = {(ref(e.get("subject")) or "").partition("/")[2] for e in data.all("Encounter")
                if any((ref(c.get("encounter")) or "") == f"Encounter/{e['id']}"
                       and has_code(c["code"], None, "44054006")
                       for c in data.all("Condition"))}
    check(client, "/fhir/Patient?_has:Encounter:patient:_has:Condition:encounter:code=44054006", expected,
          allow_empty=True)


def test_conditional_references_from_other_bundles(world: tuple[TestClient, Data]) -> None:
    """fhir-data-pipes bundles point at practitioners by identifier; chains must follow the resolved ids."""
    client, data = world
    npis = sorted({(ref(p.get("individual")) or "") for e in data.all("Encounter") for p in e.get("participant", [])
                   if (ref(p.get("individual")) or "").startswith("Practitioner/")})
    assert npis
    for pref in npis[:3]:
        prac = data.get(pref)
        assert prac is not None
        ident = prac["identifier"][0]
        same = {f"Practitioner/{x['id']}" for x in data.all("Practitioner") if any(
            i.get("system") == ident["system"] and i.get("value") == ident["value"] for i in x.get("identifier", []))}
        expected = data.ids("Encounter", lambda e, r=same: any(ref(p.get("individual")) in r
                                                                for p in e.get("participant", [])))
        check(client, f"/fhir/Encounter?participant.identifier={q(ident['system'])}|{q(ident['value'])}", expected)
        expected = data.ids("Encounter", lambda e, r=pref: any(ref(p.get("individual")) == r
                                                                for p in e.get("participant", [])))
        check(client, f"/fhir/Encounter?practitioner={q(pref)}", expected)


def test_sort_include_revinclude_and_paging(world: tuple[TestClient, Data]) -> None:
    client, data = world
    p = patients(data)[1]
    mine = [o for o in data.all("Observation") if ref(o.get("subject")) == f"Patient/{p['id']}"]
    got = search_all(client, f"/fhir/Observation?patient={p['id']}&_sort=-date,_id&_count=9")
    assert [o["id"] for o in got] == [o["id"] for o in sorted(
        sorted(mine, key=lambda o: o["id"]), key=lambda o: instant(o["effectiveDateTime"])[1], reverse=True)]
    got = search_all(client, f"/fhir/Observation?patient={p['id']}&_sort=date&_count=11")
    starts = [instant(o["effectiveDateTime"])[0] for o in got]
    assert starts == sorted(starts) and len(got) == len(mine)

    body = client.get(f"/fhir/Encounter?patient={p['id']}&_count=5&_include=Encounter:service-provider"
                      "&_revinclude=Condition:encounter").json()
    matched = [e["resource"] for e in body["entry"] if e["search"]["mode"] == "match"]
    included = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body["entry"]
                if e["search"]["mode"] == "include"}
    enc_refs = {f"Encounter/{e['id']}" for e in matched}
    expected = {ref(e["serviceProvider"]) for e in matched if "serviceProvider" in e}
    expected |= {f"Condition/{c['id']}" for c in data.all("Condition") if ref(c.get("encounter")) in enc_refs}
    assert included == expected

    # iterate: conditions of the patient, their encounters, and those encounters' providers
    body = client.get(f"/fhir/Condition?patient={p['id']}&_include=Condition:encounter"
                      "&_include:iterate=Encounter:service-provider").json()
    included = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in body["entry"]
                if e["search"]["mode"] == "include"}
    encounters = {ref(c["encounter"]) for c in data.all("Condition")
                  if ref(c.get("subject")) == f"Patient/{p['id']}" and "encounter" in c}
    providers = {ref(data.get(e)["serviceProvider"]) for e in encounters if "serviceProvider" in data.get(e)}
    assert included == encounters | providers


def test_counts_totals_and_compartments(world: tuple[TestClient, Data]) -> None:
    client, data = world
    for p in patients(data):
        pref = f"Patient/{p['id']}"
        claims = data.ids("Claim", lambda c, r=pref: ref(c.get("patient")) == r)
        assert client.get(f"/fhir/Claim?patient={p['id']}&_summary=count").json()["total"] == len(claims)
        body = client.get(f"/fhir/Claim?patient={p['id']}&_total=accurate&_count=2").json()
        assert body["total"] == len(claims) and len(body.get("entry", [])) == min(2, len(claims))
        conditions = data.ids("Condition", lambda c, r=pref: r in (ref(c.get("subject")), ref(c.get("asserter"))))
        check(client, f"/fhir/Patient/{p['id']}/Condition", conditions, allow_empty=True)
        active = data.ids("Condition", lambda c, r=pref: ref(c.get("subject")) == r
                          and has_code(c.get("clinicalStatus"), None, "active"))
        check(client, f"/fhir/Patient/{p['id']}/Condition?clinical-status=active", active, allow_empty=True)


def test_not_missing_text_and_fulltext(world: tuple[TestClient, Data]) -> None:
    client, data = world
    check(client, "/fhir/Condition?clinical-status:not=active",
          data.ids("Condition", lambda c: not has_code(c.get("clinicalStatus"), None, "active")), allow_empty=True)
    check(client, "/fhir/Condition?abatement-date:missing=true",
          data.ids("Condition", lambda c: "abatementDateTime" not in c and "abatementPeriod" not in c
                   and "abatementAge" not in c and "abatementRange" not in c))
    check(client, "/fhir/Patient?deceased=true",
          data.ids("Patient", lambda r: "deceasedDateTime" in r or r.get("deceasedBoolean") is True), allow_empty=True)
    check(client, "/fhir/Observation?value-concept:missing=false",
          data.ids("Observation", lambda o: "valueCodeableConcept" in o))
    check(client, "/fhir/Condition?code:text=diab",
          data.ids("Condition", lambda c: fold(c["code"].get("text", "")).startswith("diab") or any(
              fold(x.get("display", "")).startswith("diab") for x in c["code"].get("coding", []))), allow_empty=True)

    def words(res: dict) -> set[str]:
        return {w for s in strings(res) for w in re.split(r"[^\w]+", fold(s)) if w}

    for word in ("hypertension", "bronchitis", "pharyngitis"):
        check(client, f"/fhir/Condition?_content={word}", data.ids("Condition", lambda c, w=word: w in words(c)),
              allow_empty=True)
    expected = data.ids("Encounter", lambda e: "ambulatory" in words(e) and "encounter" in words(e))
    check(client, "/fhir/Encounter?_content=Ambulatory%20encounter", expected, allow_empty=True)


def test_system_search_and_common_parameters(world: tuple[TestClient, Data]) -> None:
    client, data = world
    p = patients(data)[0]
    cond = data.all("Condition")[0]
    check(client, f"/fhir?_type=Patient,Condition&_id={p['id']},{cond['id']}", {p["id"], cond["id"]})
    check(client, f"/fhir?_id={p['id']}", {p["id"]})
    tagged = {r["id"] for rs in data.by_type.values() for r in rs
              if any(t.get("code") == "synthea-5-2019" for t in r.get("meta", {}).get("tag", []))}
    check(client, "/fhir/Patient?_tag=https://smarthealthit.org/tags|synthea-5-2019",
          {i for i in tagged if i in {x["id"] for x in data.all("Patient")}})
    profiled = data.ids("Patient", lambda r: "http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"
                        in r.get("meta", {}).get("profile", []))
    check(client, "/fhir/Patient?_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient", profiled)
    assert len(found_ids(client, "/fhir/Patient?_lastUpdated=ge2000-01-01")) == len(data.all("Patient"))
    assert found_ids(client, "/fhir/Patient?_lastUpdated=lt2000-01-01") == set()


def all_ids(data: Data, types: Iterable[str]) -> set[str]:
    return {r["id"] for t in types for r in data.all(t)}
