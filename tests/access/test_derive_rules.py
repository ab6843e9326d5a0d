"""Pure rules: relationships and consents derived from resources, sensitivity labels, restriction SQL."""

from __future__ import annotations

import sqlite3

from sharedcare.access import derive, labels
from sharedcare.access.restrictions import PatientGate, Restriction, restriction_sql
from sharedcare.access.tables import source_org_of

ORGS = {"PractitionerRole/pr1": "Organization/A1", "HealthcareService/hs1": "Organization/B2"}


def resolve(ref: str) -> str | None:
    return ORGS.get(ref)


def test_relationships_from_the_data() -> None:
    patient = {
        "resourceType": "Patient",
        "id": "p",
        "generalPractitioner": [{"reference": "PractitionerRole/pr1"}, {"reference": "Organization/G1"}],
    }
    got = {(r.party, r.kind) for r in derive.relationships(patient, "2024-01-01T00:00:00.000000Z", resolve)}
    assert got == {
        ("PractitionerRole/pr1", "registration"),
        ("Organization/A1", "registration"),
        ("Organization/G1", "registration"),
    }
    enc = {
        "resourceType": "Encounter",
        "status": "finished",
        "subject": {"reference": "Patient/p"},
        "serviceProvider": {"reference": "Organization/H1"},
        "period": {"start": "2024-02-01", "end": "2024-02-03"},
    }
    [rel] = derive.relationships(enc, "2024-03-01T00:00:00.000000Z", resolve)
    assert (rel.patient, rel.party, rel.end) == ("p", "Organization/H1", "2024-02-03T23:59:59.999999Z")
    open_enc = {**enc, "status": "in-progress", "period": {"start": "2024-02-01"}}
    assert derive.relationships(open_enc, "2024-03-01T00:00:00.000000Z", resolve)[0].end is None
    assert derive.relationships({**enc, "status": "entered-in-error"}, "x", resolve) == []
    appt = {
        "resourceType": "Appointment",
        "status": "booked",
        "start": "2030-01-01T09:00:00Z",
        "participant": [{"actor": {"reference": "Patient/p"}}, {"actor": {"reference": "HealthcareService/hs1"}}],
    }
    assert [(r.patient, r.party) for r in derive.relationships(appt, "x", resolve)] == [("p", "Organization/B2")]
    referral = {
        "resourceType": "ServiceRequest",
        "status": "completed",
        "intent": "order",
        "subject": {"reference": "Patient/p"},
        "performer": [{"reference": "Organization/R1"}],
    }
    assert (
        derive.relationships(referral, "2024-05-05T00:00:00.000000Z", resolve)[0].end == "2024-05-05T00:00:00.000000Z"
    )


def test_consents_and_opt_outs() -> None:
    base = {"resourceType": "Consent", "status": "active", "patient": {"reference": "Patient/p"}}
    assert [f.kind for f in derive.consents({**base, "provision": {"type": "deny"}})] == ["objection"]
    org = {**base, "provision": {"type": "deny", "actor": [{"reference": {"reference": "Organization/X"}}]}}
    assert [(f.kind, f.party) for f in derive.consents(org)] == [("org-deny", "Organization/X")]
    nested = {
        **base,
        "provision": {
            "type": "permit",
            "provision": [{"type": "deny", "actor": [{"reference": {"reference": "Organization/Y"}}]}],
        },
    }
    assert [(f.kind, f.party) for f in derive.consents(nested)] == [("org-deny", "Organization/Y")]
    ndoo = {**base, "provision": {"type": "deny", "purpose": [{"code": "HRESCH"}]}}
    assert [f.kind for f in derive.consents(ndoo)] == ["secondary-opt-out"]
    type1 = {
        "resourceType": "Flag",
        "status": "active",
        "subject": {"reference": "Patient/p"},
        "code": {"coding": [{"system": "http://snomed.info/sct", "code": "827241000000103"}]},
    }
    assert [f.kind for f in derive.consents(type1)] == ["type1-opt-out"]
    assert derive.consents({**base, "status": "inactive", "provision": {"type": "deny"}}) == []
    assert derive.consents({**base, "provision": {"type": "permit"}}) == []
    timed = {**base, "provision": {"type": "deny", "period": {"end": "2020-01-01"}}}
    assert derive.consents(timed)[0].end == "2020-01-01T23:59:59.999999Z"


def test_sensitivity_labels() -> None:
    def cats(security: list[dict[str, str]], **extra: object) -> frozenset[str]:
        return labels.categories({"resourceType": "Observation", "meta": {"security": security}, **extra})

    assert cats([{"system": labels.CONFIDENTIALITY, "code": "R"}]) == {"restricted"}
    assert cats([{"system": labels.CONFIDENTIALITY, "code": "N"}]) == frozenset()
    assert cats([{"system": labels.ACT_CODE, "code": "HIV"}]) == {"sexual-health"}
    assert cats([{"system": labels.ACT_CODE, "code": "PSY"}]) == {"restricted"}
    assert cats([{"system": "https://generator.example/tags", "code": "IVF"}]) == {"ivf"}
    assert cats([], code={"coding": [{"system": labels.SNOMED, "code": "57797005"}]}) == {"termination"}


def test_source_organisation_from_meta_source() -> None:
    assert source_org_of({"meta": {"source": "urn:sharedcare:source:A1/feed"}}) == "A1"
    assert source_org_of({"meta": {"source": "https://ods.example/fhir/Organization/B2#sys"}}) == "B2"
    assert source_org_of({"meta": {"source": "urn:sharedcare:source:-/cli"}}) is None
    assert source_org_of({}) is None


def test_restriction_sql_binds_every_value() -> None:
    gate = PatientGate(
        "2024-01-01T00:00:00.000000Z",
        only=frozenset({"p1"}),
        relationship_required=True,
        parties=("Organization/A1",),
        since="2023-10-01T00:00:00.000000Z",
        grant_subject="u1",
        denied_org="A1",
        secondary_opt_outs=True,
    )
    restriction = Restriction(
        types=frozenset({"Observation", "Patient"}),
        patients=gate,
        withheld=frozenset({"restricted"}),
        withheld_except_org="A1",
        criteria=(("Observation", ((("category", "lab"),),)),),
    )
    sql, args = restriction_sql(restriction, "r")
    assert sql.count("?") == len(args)
    assert "'; DROP" not in sql and "A1" not in sql  # values travel as parameters only
    assert restriction_sql(Restriction(), "r") == ("", [])
    assert restriction_sql(Restriction(deny_all=True), "r") == ("1 = 0", [])
    db = sqlite3.connect(":memory:")  # the fragment is valid SQL over the expected tables
    for ddl in (
        "CREATE TABLE resources (rid, type, version)",
        "CREATE TABLE compartment (rid, type, comp_type, comp_id)",
        "CREATE TABLE access_member (rid, patient)",
        "CREATE TABLE access_label (rid, version, category, source_org)",
        "CREATE TABLE access_relationship (patient, party, end_at)",
        "CREATE TABLE access_consent (patient, kind, party, start_at, end_at)",
        "CREATE TABLE access_grant (patient, subject, kind, expires_at)",
    ):
        db.execute(ddl)
    db.execute(f"SELECT * FROM resources r WHERE {sql}", args).fetchall()
