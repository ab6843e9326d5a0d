"""Search features through the HTTP API on both engines: types, modifiers, prefixes, result parameters, paging,
and honesty about what is not supported (http://hl7.org/fhir/R4/search.html)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from searchkit import search_all
from starlette.testclient import TestClient

FHIR_JSON = {"content-type": "application/fhir+json"}
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"


def create(client: TestClient, resource: dict) -> str:
    r = client.post(f"/fhir/{resource['resourceType']}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def update(client: TestClient, resource: dict) -> None:
    r = client.put(f"/fhir/{resource['resourceType']}/{resource['id']}", json=resource, headers=FHIR_JSON)
    assert r.status_code == 200, r.text


def ids(client: TestClient, path: str, **kw: Any) -> list[str]:
    r = client.get(f"/fhir/{path}", **kw)
    assert r.status_code == 200, r.text
    return [e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"]


def bundle(client: TestClient, path: str, **kw: Any) -> dict:
    r = client.get(f"/fhir/{path}", **kw)
    assert r.status_code == 200, r.text
    return r.json()


def link(body: dict, rel: str) -> str | None:
    return next((x["url"] for x in body.get("link", []) if x["relation"] == rel), None)


def patient(family: str, given: str = "Ann", **extra: Any) -> dict:
    return {"resourceType": "Patient", "name": [{"family": family, "given": [given]}], **extra}


def observation(subject: str, code: str, when: str | None, value: float | None = None, **extra: Any) -> dict:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "vital-signs"}]}],
        "code": {"coding": [{"system": LOINC, "code": code, "display": f"Code {code}"}], "text": "Body weight"},
        "subject": {"reference": subject},
        **({"effectiveDateTime": when} if when else {}),
        **extra,
    }
    if value is not None:
        obs["valueQuantity"] = {"value": value, "unit": "kg", "system": UCUM, "code": "kg"}
    return obs


# ---------------------------------------------------------------------------------------------- strings


def test_string_default_exact_contains_and_accents(client: TestClient) -> None:
    a = create(client, patient("Chalmers", "Peter"))
    b = create(client, patient("Chálmerson", "Jim"))
    c = create(client, patient("Windsor", "Chloé"))
    assert set(ids(client, "Patient?name=chal")) == {a, b}
    assert set(ids(client, "Patient?family=CHALMERS")) == {a, b}
    assert ids(client, "Patient?family:exact=Chalmers") == [a]
    assert ids(client, "Patient?family:exact=chalmers") == []
    assert set(ids(client, "Patient?family:contains=ALMER")) == {a, b}
    assert ids(client, "Patient?given=chloe") == [c]
    assert set(ids(client, "Patient?given=peter,jim")) == {a, b}
    assert ids(client, "Patient?name=chal&given=jim") == [b]
    assert set(ids(client, "Patient?family:missing=false")) == {a, b, c}


# ---------------------------------------------------------------------------------------------- tokens


def test_token_system_code_forms_not_text_of_type(client: TestClient) -> None:
    mr = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "MR"}],
          "text": "Medical record"}
    a = create(client, patient("A", identifier=[{"system": "urn:sys1", "value": "111", "type": mr}], gender="male"))
    b = create(client, patient("B", identifier=[{"value": "111"}], gender="female"))
    c = create(client, patient("C", identifier=[{"system": "urn:sys2", "value": "222"}]))
    assert set(ids(client, "Patient?identifier=111")) == {a, b}
    assert ids(client, "Patient?identifier=urn:sys1|111") == [a]
    assert ids(client, "Patient?identifier=|111") == [b]
    assert ids(client, "Patient?identifier=urn:sys2|") == [c]
    assert set(ids(client, "Patient?gender:not=male")) == {b, c}
    assert ids(client, "Patient?identifier:text=medical") == [a]
    assert ids(client, "Patient?identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|111") == [a]
    assert set(ids(client, "Patient?gender:missing=true")) == {c}
    assert ids(client, "Patient?active=true") == []


def test_token_text_on_codeable_concept_and_display(client: TestClient) -> None:
    p = create(client, patient("P"))
    o = create(client, observation(f"Patient/{p}", "29463-7", "2020-01-01"))
    assert ids(client, "Observation?code:text=body") == [o]
    assert ids(client, "Observation?code:text=code%2029463") == [o]
    assert ids(client, "Observation?code:text=weightless") == []


# ---------------------------------------------------------------------------------------------- references


def test_reference_forms(client: TestClient) -> None:
    p = create(client, patient("Ref"))
    q = create(client, patient("Other"))
    o1 = create(client, observation(f"Patient/{p}", "1", "2020-01-01"))
    o2 = create(client, observation(f"Patient/{q}", "1", "2020-01-01"))
    o3 = create(client, {**observation(f"Patient/{q}", "1", "2020-01-01"),
                         "subject": {"identifier": {"system": "urn:nhs", "value": "999"}}})
    o4 = create(client, {**observation(f"Patient/{q}", "1", "2020-01-01"),
                         "subject": {"reference": "http://elsewhere.example/fhir/Patient/77"}})
    assert ids(client, f"Observation?subject=Patient/{p}") == [o1]
    assert ids(client, f"Observation?subject={p}") == [o1]
    assert ids(client, f"Observation?subject:Patient={p}") == [o1]
    assert ids(client, f"Observation?patient={p}") == [o1]
    assert ids(client, f"Observation?subject=http://testserver/fhir/Patient/{p}") == [o1]
    assert set(ids(client, f"Observation?subject=Patient/{p},Patient/{q}")) == {o1, o2}
    assert ids(client, "Observation?subject:identifier=urn:nhs|999") == [o3]
    assert ids(client, "Observation?subject=http://elsewhere.example/fhir/Patient/77") == [o4]
    assert ids(client, f"Observation?subject:Group={p}") == []
    assert set(ids(client, "Observation?subject:missing=false")) == {o1, o2, o3, o4}


def test_chain_any_depth_and_has(client: TestClient) -> None:
    org = create(client, {"resourceType": "Organization", "name": "Leeds General"})
    gp = create(client, {"resourceType": "Practitioner", "name": [{"family": "Who"}]})
    p1 = create(client, patient("Smith", managingOrganization={"reference": f"Organization/{org}"},
                                generalPractitioner=[{"reference": f"Practitioner/{gp}"}]))
    p2 = create(client, patient("Jones"))
    o1 = create(client, observation(f"Patient/{p1}", "8480-6", "2021-01-01"))
    o2 = create(client, observation(f"Patient/{p2}", "8480-6", "2021-01-01"))
    create(client, observation(f"Patient/{p2}", "1234-5", "2021-01-01"))
    assert ids(client, "Observation?subject:Patient.name=smith") == [o1]
    assert ids(client, "Observation?patient.family=jones&code=8480-6") == [o2]
    assert ids(client, "Observation?subject:Patient.organization.name=leeds") == [o1]
    assert ids(client, "Observation?subject:Patient.general-practitioner:Practitioner.name=who") == [o1]
    assert ids(client, "Observation?subject:Patient.organization.name=york") == []
    assert set(ids(client, "Patient?_has:Observation:patient:code=8480-6")) == {p1, p2}
    assert ids(client, "Patient?_has:Observation:patient:code=1234-5") == [p2]
    assert ids(client, "Organization?_has:Patient:organization:_has:Observation:patient:code=8480-6") == [org]
    assert ids(client, "Organization?_has:Patient:organization:_has:Observation:patient:code=1234-5") == []


# ---------------------------------------------------------------------------------------------- dates


def test_date_prefixes_and_precision(client: TestClient) -> None:
    p = f"Patient/{create(client, patient('D'))}"
    day = create(client, observation(p, "1", "2013-01-14"))
    minute = create(client, observation(p, "1", "2013-01-14T10:00:00+01:00"))
    year = create(client, observation(p, "1", "2012"))
    period = create(client, observation(p, "1", None, effectivePeriod={"start": "2013-01-10", "end": "2013-01-20"}))
    open_period = create(client, observation(p, "1", None, effectivePeriod={"start": "2014-05-01"}))

    def found(q: str) -> set[str]:
        return set(ids(client, f"Observation?date={q}&_count=100"))

    assert found("2013-01-14") == {day, minute}
    assert found("eq2013-01") == {day, minute, period}
    assert found("2013-01-14T09:00:00Z") == {minute}
    assert found("2013-01-14T10:00:00%2B01:00") == {minute}
    assert found("2013-01-14T10:00:00+01:00") == {minute}  # an unencoded '+' arrives as a space
    assert found("ne2013-01-14") == {year, period, open_period}
    assert found("lt2013-01-14") == {year, period}
    assert found("gt2013-01-14") == {period, open_period}
    assert found("ge2013-01-14") == {day, minute, period, open_period}
    assert found("le2013-01-14") == {day, minute, year, period}
    assert found("sa2013-01-14") == {open_period}
    assert found("eb2013-01-14") == {year}
    assert found("ap2013-01-14") >= {day, minute}
    assert found("ge2013-01-01&date=lt2013-02-01") == {day, minute, period}
    r = client.get("/fhir/Observation?date=2013-13-45")
    assert r.status_code == 400


def test_last_updated_and_birthdate(client: TestClient) -> None:
    a = create(client, patient("Old", birthDate="1950-05-06"))
    b = create(client, patient("Young", birthDate="2001"))
    stamp = client.get(f"/fhir/Patient/{b}").json()["meta"]["lastUpdated"]
    assert ids(client, "Patient?birthdate=lt1960") == [a]
    assert ids(client, "Patient?birthdate=2001-03-04") == []
    assert ids(client, "Patient?birthdate=ge2001-03-04") == [b]
    assert set(ids(client, "Patient?_lastUpdated=ge2000-01-01")) == {a, b}
    assert b in ids(client, f"Patient?_lastUpdated=ge{stamp}")
    assert ids(client, "Patient?_lastUpdated=gt2999-01-01") == []


# ---------------------------------------------------------------------------------------------- numbers


def test_number_quantity_and_composite(client: TestClient) -> None:
    p = f"Patient/{create(client, patient('Q'))}"
    light = create(client, observation(p, "29463-7", "2020-01-01", 70.2))
    heavy = create(client, observation(p, "29463-7", "2020-01-01", 100))
    grams = create(client, {**observation(p, "29463-7", "2020-01-01"),
                            "valueQuantity": {"value": 100, "unit": "g", "system": UCUM, "code": "g"}})
    bp = create(client, {**observation(p, "85354-9", "2020-01-01"), "component": [
        {"code": {"coding": [{"system": LOINC, "code": "8480-6"}]},
         "valueQuantity": {"value": 140, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}},
        {"code": {"coding": [{"system": LOINC, "code": "8462-4"}]},
         "valueQuantity": {"value": 90, "unit": "mmHg", "system": UCUM, "code": "mm[Hg]"}}]})

    def found(q: str) -> set[str]:
        return set(ids(client, f"Observation?{q}"))

    assert found("value-quantity=100") == {heavy, grams}
    assert found("value-quantity=100.4") == set()
    assert found("value-quantity=1e2") == {light, heavy, grams}  # one significant figure: [50, 150)
    assert found(f"value-quantity=100|{UCUM}|kg") == {heavy}
    assert found("value-quantity=100||g") == {grams}
    assert found("value-quantity=lt80") == {light}
    assert found("value-quantity=ge70.2") == {light, heavy, grams}
    assert found("value-quantity=gt70.2") == {heavy, grams}
    assert found("value-quantity=ne100") == {light}
    assert found("value-quantity=ap98") == {heavy, grams}
    assert found(f"component-code-value-quantity={LOINC}|8480-6$gt130") == {bp}
    assert found(f"component-code-value-quantity={LOINC}|8480-6$lt130") == set()
    assert found("component-code-value-quantity=8462-4$90") == {bp}
    assert found(f"component-code-value-quantity={LOINC}|8480-6$90") == set()  # values stay with their code
    assert found(f"code-value-quantity={LOINC}|29463-7$gt90|{UCUM}|kg") == {heavy}
    assert found(f"code-value-quantity={LOINC}|29463-7$gt90") == {heavy, grams}
    r = client.get("/fhir/Observation?value-quantity=abc")
    assert r.status_code == 400


def test_number_parameter(client: TestClient) -> None:
    three = create(client, {"resourceType": "RiskAssessment", "status": "final",
                            "subject": {"reference": "Patient/x"}, "prediction": [{"probabilityDecimal": 0.3}]})
    create(client, {"resourceType": "RiskAssessment", "status": "final", "subject": {"reference": "Patient/x"},
                    "prediction": [{"probabilityDecimal": 0.81}]})
    assert ids(client, "RiskAssessment?probability=0.3") == [three]
    assert ids(client, "RiskAssessment?probability=lt0.5") == [three]
    assert len(ids(client, "RiskAssessment?probability=gt0.1")) == 2


# ---------------------------------------------------------------------------------------------- uri, text


def test_uri_below_above_and_profile_source(client: TestClient) -> None:
    a = create(client, {"resourceType": "ValueSet", "status": "active", "url": "http://acme.org/fhir/ValueSet/123"})
    b = create(client, {"resourceType": "ValueSet", "status": "active", "url": "http://acme.org/fhir/ValueSet/124"})
    assert ids(client, "ValueSet?url=http://acme.org/fhir/ValueSet/123") == [a]
    assert set(ids(client, "ValueSet?url:below=http://acme.org/fhir/")) == {a, b}
    assert ids(client, "ValueSet?url:above=http://acme.org/fhir/ValueSet/123/_history/5") == [a]
    p = create(client, patient("Prof", meta={"profile": ["http://example.org/P"], "source": "http://src.example/x",
                                             "tag": [{"system": "urn:t", "code": "t1"}],
                                             "security": [{"system": "urn:s", "code": "R"}]}))
    assert ids(client, "Patient?_profile=http://example.org/P") == [p]
    assert ids(client, "Patient?_source=http://src.example/x") == [p]
    assert ids(client, "Patient?_tag=urn:t|t1") == [p]
    assert ids(client, "Patient?_security=R") == [p]


def test_full_text(client: TestClient) -> None:
    div = '<div xmlns="http://www.w3.org/1999/xhtml">Allergic to penicillin</div>'
    a = create(client, {**patient("Text"), "text": {"status": "generated", "div": div}})
    b = create(client, patient("Penicillin-free", "Bob"))
    assert set(ids(client, "Patient?_content=penicillin")) == {a, b}
    assert ids(client, "Patient?_text=allergic") == [a]
    assert ids(client, "Patient?_content=allergic%20penicillin") == [a]
    assert set(ids(client, "Patient?_content=allergic,bob")) == {a, b}
    assert ids(client, "Patient?_content=nothing") == []
    # the index follows updates and deletes
    client.delete(f"/fhir/Patient/{b}")
    assert ids(client, "Patient?_content=penicillin") == [a]


# ---------------------------------------------------------------------------------------------- results


def test_sort_count_total_and_summary(client: TestClient) -> None:
    made = [create(client, patient(name, **({"birthDate": bd} if bd else {})))
            for name, bd in (("Cole", "1990"), ("Abel", "1970-02-02"), ("Bird", "1980"), ("Dean", None))]
    assert ids(client, "Patient?_sort=family") == [made[1], made[2], made[0], made[3]]
    assert ids(client, "Patient?_sort=-family") == [made[3], made[0], made[2], made[1]]
    assert ids(client, "Patient?_sort=birthdate") == [made[1], made[2], made[0], made[3]]  # missing last
    assert ids(client, "Patient?_sort=-birthdate") == [made[0], made[2], made[1], made[3]]
    assert ids(client, "Patient?_sort=-_id") == sorted(made, reverse=True)
    body = bundle(client, "Patient?_count=2")
    assert len(body["entry"]) == 2 and "total" not in body
    assert bundle(client, "Patient?_count=2&_total=accurate")["total"] == 4
    count = bundle(client, "Patient?_summary=count")
    assert count["total"] == 4 and "entry" not in count
    summary = bundle(client, "Patient?_summary=true&_count=1")["entry"][0]["resource"]
    assert summary["meta"]["tag"][0]["code"] == "SUBSETTED"
    elements = bundle(client, "Patient?_elements=birthDate&_sort=family&_count=1")["entry"][0]["resource"]
    assert set(elements) == {"resourceType", "id", "meta", "birthDate"}
    assert bundle(client, "Patient?_count=0&_total=accurate")["total"] == 4


def test_include_revinclude_and_iterate(client: TestClient) -> None:
    org = create(client, {"resourceType": "Organization", "name": "Org"})
    p = create(client, patient("Inc", managingOrganization={"reference": f"Organization/{org}"}))
    o = create(client, observation(f"Patient/{p}", "1", "2020-01-01"))
    body = bundle(client, f"Observation?_id={o}&_include=Observation:patient&_include:iterate=Patient:organization")
    modes = {(e["resource"]["resourceType"], e["search"]["mode"]) for e in body["entry"]}
    assert modes == {("Observation", "match"), ("Patient", "include"), ("Organization", "include")}
    body = bundle(client, f"Patient?_id={p}&_revinclude=Observation:subject")
    assert {(e["resource"]["id"], e["search"]["mode"]) for e in body["entry"]} == {(p, "match"), (o, "include")}
    body = bundle(client, f"Observation?_id={o}&_include=*")
    assert {e["resource"]["id"] for e in body["entry"] if e["search"]["mode"] == "include"} == {p}


def test_post_search_system_search_and_compartment(client: TestClient) -> None:
    p = create(client, patient("Sys"))
    o = create(client, observation(f"Patient/{p}", "8480-6", "2020-01-01"))
    other = create(client, observation("Patient/nobody", "8480-6", "2020-01-01"))
    r = client.post("/fhir/Observation/_search", content="code=8480-6&_count=1",
                    headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and len(r.json()["entry"]) == 1
    assert "code=8480-6" in link(r.json(), "self")
    assert set(ids(client, f"?_type=Patient,Observation&_id={p},{o}")) == {p, o}
    assert set(ids(client, f"?_id={p},{o}")) == {p, o}
    assert ids(client, f"Patient/{p}/Observation") == [o]
    assert ids(client, f"Patient/{p}/Observation?code=8480-6") == [o]
    assert other not in ids(client, f"Patient/{p}/Observation")
    assert client.get(f"/fhir/Patient/{p}/Organization").status_code == 400


def test_list_parameter(client: TestClient) -> None:
    a = create(client, patient("L1"))
    create(client, patient("L2"))
    lst = create(client, {"resourceType": "List", "status": "current", "mode": "working",
                          "entry": [{"item": {"reference": f"Patient/{a}"}}]})
    assert ids(client, f"Patient?_list={lst}") == [a]


# ---------------------------------------------------------------------------------------------- honesty


def test_unknown_and_unsupported_are_reported_or_rejected(client: TestClient) -> None:
    a = create(client, patient("Honest"))
    body = bundle(client, "Patient?family=honest&colour=blue&code:in=http://vs&_filter=x&name:below=a")
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcome) == 1
    text = " ".join(i["diagnostics"] for i in outcome[0]["resource"]["issue"])
    assert "colour" in text and "_filter" in text and "below" in text
    assert [e["resource"]["id"] for e in body["entry"] if e["search"]["mode"] == "match"] == [a]
    self_link = link(body, "self")
    assert self_link is not None
    assert parse_qs(urlsplit(self_link).query) == {"family": ["honest"], "_count": ["50"]}
    strict = client.get("/fhir/Patient?family=honest&colour=blue", headers={"prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["resourceType"] == "OperationOutcome"
    ok = client.get("/fhir/Patient?family=honest", headers={"prefer": "handling=strict"})
    assert ok.status_code == 200


# ---------------------------------------------------------------------------------------------- paging


def test_paging_links_walk_forwards_and_backwards(client: TestClient) -> None:
    made = [create(client, patient(f"Page{n:02d}")) for n in range(7)]
    first = bundle(client, "Patient?_count=3&_sort=family")
    assert link(first, "previous") is None
    pages = [first]
    while (nxt := link(pages[-1], "next")) is not None:
        pages.append(client.get(nxt).json())
    seen = [e["resource"]["id"] for page in pages for e in page.get("entry", [])]
    assert seen == made
    back = client.get(link(pages[-1], "previous")).json()
    assert [e["resource"]["id"] for e in back["entry"]] == made[3:6]
    back = client.get(link(back, "previous")).json()
    assert [e["resource"]["id"] for e in back["entry"]] == made[0:3]
    assert link(back, "previous") is None


def test_paging_stays_correct_while_writes_happen(client: TestClient) -> None:
    made = [create(client, patient("Stable", birthDate=f"19{50 + n}")) for n in range(10)]
    for query in ("Patient?family=stable&_count=4", "Patient?family=stable&_count=4&_sort=-birthdate"):
        expected = ids(client, query.replace("_count=4", "_count=100"))
        first = bundle(client, query)
        got = [e["resource"]["id"] for e in first["entry"]]
        # writes between pages: a new match, an update of a seen and of an unseen resource, a delete of a seen one
        create(client, patient("Stable", birthDate="2000"))
        for rid in (got[0], expected[-1]):
            res = client.get(f"/fhir/Patient/{rid}").json()
            res["gender"] = "other"
            update(client, res)
        assert client.delete(f"/fhir/Patient/{got[1]}").status_code in (200, 204)
        url = link(first, "next")
        while url:
            page = client.get(url).json()
            got += [e["resource"]["id"] for e in page.get("entry", [])]
            url = link(page, "next")
        assert got == expected, query  # nothing skipped, nothing repeated, nothing new
        create(client, patient("Stable", given="Restore", birthDate="1949"))
    assert len(made) == 10


def test_offset_and_count_bounds(client: TestClient) -> None:
    made = [create(client, patient(f"Off{n}")) for n in range(5)]
    assert ids(client, "Patient?_offset=3") == made[3:]
    assert len(ids(client, "Patient?_count=100000")) == 5
    assert client.get("/fhir/Patient?_count=-1").status_code == 400
    assert client.get("/fhir/Patient?_cursor=garbage").status_code == 400


def test_results_reflect_committed_writes_immediately(client: TestClient) -> None:
    p = create(client, patient("Immediate"))
    assert ids(client, "Patient?family=immediate") == [p]
    res = client.get(f"/fhir/Patient/{p}").json()
    res["name"] = [{"family": "Changed"}]
    update(client, res)
    assert ids(client, "Patient?family=immediate") == []
    assert ids(client, "Patient?family=changed") == [p]
    client.delete(f"/fhir/Patient/{p}")
    assert ids(client, "Patient?family=changed") == []


def test_search_all_helper_follows_pages(client: TestClient) -> None:
    made = {create(client, patient("Helper")) for _ in range(5)}
    assert {r["id"] for r in search_all(client, "/fhir/Patient?_count=2")} == made


def test_paging_with_missing_sort_values_both_ways(client: TestClient) -> None:
    births = ["1990", None, "1970", None, "1980", "1970", None]
    made = [create(client, patient(f"Null{n}", **({"birthDate": b} if b else {}))) for n, b in enumerate(births)]
    for sort in ("birthdate", "-birthdate"):
        full = ids(client, f"Patient?_sort={sort},_id&_count=100")
        assert len(full) == len(made) and set(full[-3:]) == {made[1], made[3], made[6]}  # missing last
        pages = [bundle(client, f"Patient?_sort={sort},_id&_count=2")]
        while (nxt := link(pages[-1], "next")) is not None:
            pages.append(client.get(nxt).json())
        assert [e["resource"]["id"] for p in pages for e in p.get("entry", [])] == full
        back = [pages[-1]]
        while (prev := link(back[-1], "previous")) is not None:
            back.append(client.get(prev).json())
        assert [e["resource"]["id"] for p in reversed(back) for e in p.get("entry", [])] == full


def test_text_is_reported_as_matching_all_text(client: TestClient) -> None:
    create(client, patient("Narrated"))
    body = bundle(client, "Patient?_text=narrated")
    outcome = [e for e in body["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["resource"]["issue"][0]["severity"] == "information"


def test_revinclude_wildcard(client: TestClient) -> None:
    p = create(client, patient("Wild"))
    o = create(client, observation(f"Patient/{p}", "1", "2020-01-01"))
    enc = create(client, {"resourceType": "Encounter", "status": "finished",
                          "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                          "subject": {"reference": f"Patient/{p}"}})
    body = bundle(client, f"Patient?_id={p}&_revinclude=*")
    included = {e["resource"]["id"]: e["resource"]["resourceType"] for e in body["entry"]
                if e["search"]["mode"] == "include"}
    assert {o, enc} <= set(included)  # and what the server itself wrote (audit, provenance, matching)
    assert set(included.values()) - {"Observation", "Encounter"} <= {"AuditEvent", "Provenance", "Person"}
