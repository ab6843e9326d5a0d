"""The access matrix: role x relationship x consent x sensitivity x interaction, against expected allow/deny.

The data: 60 patients, one per (relationship with organisation A) x (consent), each with six Observations, one
per sensitivity. Every patient is also registered with organisation B's practice, so actors of B have a
relationship with everyone. Grants (self-claim, break glass) are requested through the API by A's people.

The expectations come from `expected_*` below: a plain restatement of the rules in domain-uk.md §6 and
issue 7, written independently of `sharedcare.access` (the code under test). Requests go through the real path
(token → Actor → security boundary → router → restricted store); only the HTTP socket is skipped.

Leak channels that go through search ($everything, _include, _revinclude, _has, chains, totals) are enforced
since part 2 of issue 7 (`SEARCH_CHANNELS`); $export is bound to its caller (kick-off rows below).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest
from support.security import BACKENDS, operator_token, reset_postgres, secure_settings, token

from sharedcare.app import Server, build
from sharedcare.types import FhirRequest, FhirResponse

ORG_A, ORG_B = "A81001", "B82002"
RELATIONSHIPS = (
    "none",
    "gp",
    "encounter-recent",
    "encounter-old",
    "episode",
    "care-team",
    "referral",
    "appointment",
    "self-claim",
    "break-glass",
)
CONSENTS = ("none", "objection", "org-deny-A", "org-deny-B", "ndoo", "type1")
SENSITIVITIES = ("plain", "sexual-health", "restricted", "safeguarding", "third-party", "own-org-sensitive")
DATA_RELATIONSHIPS = {"gp", "encounter-recent", "episode", "care-team", "referral", "appointment"}
SECURITY = {
    "sexual-health": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"},
    "restricted": {"system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality", "code": "R"},
    "safeguarding": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "SDV"},
    "third-party": {"system": "https://sharedcare.nhs.example/CodeSystem/sensitivity", "code": "third-party"},
    "own-org-sensitive": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HIV"},
}
SECRET_WORDS = ("HIV", "SDV", "third-party", "Confidentiality", "secret-finding")


@dataclass(frozen=True)
class Who:
    name: str
    role: str
    kind: str = "user"
    org: str | None = None
    grants: bool = False  # requests self-claim and (if the role may) break-glass grants
    break_glass: bool = False


ACTORS = (
    Who("clinician@A", "clinician", org=ORG_A, grants=True, break_glass=True),
    Who("nurse@A", "nurse", org=ORG_A, grants=True, break_glass=True),
    Who("social-care@A", "social-care", org=ORG_A, grants=True, break_glass=True),
    Who("administrator@A", "administrator", org=ORG_A, grants=True),
    Who("privacy-officer@A", "privacy-officer", org=ORG_A),
    Who("analyst", "analyst"),
    Who("system@A", "system", kind="system", org=ORG_A),
    Who("clinician@B", "clinician", org=ORG_B),
    Who("patient-self", "patient"),
    Who("patient-other", "patient"),
    Who("operator", "administrator", kind="system"),
)


@dataclass(frozen=True)
class Case:
    relationship: str
    consent: str

    @property
    def patient(self) -> str:
        return f"p-{self.relationship}-{self.consent}"

    def obs(self, sensitivity: str) -> str:
        return f"o-{self.relationship}-{self.consent}-{sensitivity}"


CASES = [Case(r, c) for r in RELATIONSHIPS for c in CONSENTS]
OTHER = Case("gp", "none-other")  # the record of "patient-other", registered with A and B, no consent


# --- expectations: the rules, restated ------------------------------------------------------------------------


def gate(who: Who, case: Case) -> bool:
    """May this actor see this patient's record at all?"""
    r, c = case.relationship, case.consent
    if who.name == "operator":
        return True
    if who.name == "patient-self":
        return True  # their own record, whatever they objected to
    if who.name == "patient-other":
        return False
    if who.role == "analyst":  # secondary use: no relationship, opt-outs and objection apply
        return c not in ("objection", "ndoo", "type1")
    if who.org == ORG_B:
        return c not in ("objection", "org-deny-B")  # B is the GP practice of every patient
    break_glass = who.break_glass and r == "break-glass"
    if c in ("objection", "org-deny-A") and not break_glass:
        return False
    if who.role == "privacy-officer":
        return True
    related = r in DATA_RELATIONSHIPS or (who.grants and r == "self-claim") or break_glass
    return related


def reads_observations(who: Who) -> bool:
    """Administrators see demographics only; social care sees its own set of types (no Observations)."""
    return who.name == "operator" or who.role not in ("social-care", "administrator", "privacy-officer")


def sensitivity_shown(who: Who, sensitivity: str) -> bool:
    if who.name == "operator" or sensitivity == "plain":
        return True
    if who.role == "patient":
        return sensitivity in ("sexual-health", "own-org-sensitive")  # not third-party, safeguarding, restricted
    if sensitivity == "own-org-sensitive" and who.org == ORG_A:
        return True  # written by organisation A: its own staff and systems see it
    if who.role in ("clinician", "nurse"):
        return sensitivity in ("safeguarding", "third-party")
    return False


def expected_read(who: Who, case: Case, sensitivity: str | None) -> bool:
    if not gate(who, case):
        return False
    if sensitivity is None:
        return True
    return reads_observations(who) and sensitivity_shown(who, sensitivity)


def expected_create(who: Who, case: Case) -> bool:
    """May this actor add an Observation to this patient's record?"""
    if who.name == "operator" or who.name == "patient-self":
        return True
    if who.role in ("social-care", "administrator", "privacy-officer", "analyst") or who.name == "patient-other":
        return False
    if who.name == "system@A":  # an organisation's feed needs no relationship, but objection blocks contribution
        return case.consent not in ("objection", "org-deny-A")
    return gate(who, case)


# --- the server and its data ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=BACKENDS)
def matrix(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    if request.param == "postgresql":
        url = str(request.getfixturevalue("pg_url"))
        reset_postgres(url)
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('matrix') / 'matrix.db'}"
    server = build(secure_settings(url, audit_sync_reads=False, sqlite_synchronous="OFF"))
    try:
        m = Matrix(server)
        m.load()
        yield m
    finally:
        server.close()


class Matrix:
    def __init__(self, server: Server) -> None:
        self.server = server
        assert server.security is not None
        self.tokens = server.security.tokens
        self.op = operator_token(server)
        self._actors: dict[tuple[str, str], Any] = {}

    def actor(self, who: Who, case: Case) -> Any:
        """The verified Actor for `who` (patients: the patient of `case`, or another one)."""
        if who.role == "patient":
            pid = case.patient if who.name == "patient-self" else OTHER.patient
            key = (who.name, pid)
            if key not in self._actors:
                tok = token(self.server, role="patient", patient=pid, subject=f"user-{pid}", scopes="patient/*.cruds")
                self._actors[key] = self.tokens.actor(tok)
            return self._actors[key]
        key = (who.name, "")
        if key not in self._actors:
            if who.name == "operator":
                tok = self.op
            else:
                scopes = "system/*.cruds" if who.kind == "system" else "user/*.cruds"
                tok = token(self.server, role=who.role, kind=who.kind, org=who.org, subject=who.name, scopes=scopes)
            self._actors[key] = self.tokens.actor(tok)
        return self._actors[key]

    def call(self, actor: Any, method: str, path: str, body: Any = None, **headers: str) -> FhirResponse:
        assert self.server.security is not None and self.server.security.boundary is not None
        parts, _, query = path.partition("?")
        req = FhirRequest(
            method,
            [p for p in parts.split("/") if p],
            parse_qsl(query),
            orjson.dumps(body) if body is not None else None,
            {"content-type": "application/fhir+json", **headers},
            "http://testserver/fhir",
            body,
            actor,
        )
        try:
            return self.server.security.boundary.handle_http(req)
        except Exception as exc:
            status = getattr(exc, "status", 500)
            issues = getattr(exc, "issues", [])
            text = orjson.dumps({"issue": [i.to_json() for i in issues]}) if issues else str(exc).encode()
            return FhirResponse(status, text)

    # --- loading --------------------------------------------------------------------------------------------
    def load(self) -> None:
        op = self.tokens.actor(self.op)
        directory = [
            {"resourceType": "Organization", "id": ORG_A, "name": "Practice A"},
            {"resourceType": "Organization", "id": ORG_B, "name": "Practice B"},
            {"resourceType": "HealthcareService", "id": "hs-A", "providedBy": {"reference": f"Organization/{ORG_A}"}},
        ]
        self.transaction(op, directory)
        for case in [*CASES, OTHER]:
            self.transaction(op, patient_resources(case))
        for who in ACTORS:
            if who.grants:
                self.request_grants(who)

    def transaction(self, actor: Any, resources: list[dict[str, Any]]) -> None:
        entries = [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}} for r in resources
        ]
        resp = self.call(actor, "POST", "", {"resourceType": "Bundle", "type": "transaction", "entry": entries})
        assert resp.status == 200, resp.body

    def request_grants(self, who: Who) -> None:
        actor = self.actor(who, CASES[0])
        for case in CASES:
            op = {"self-claim": "$claim-relationship", "break-glass": "$break-glass"}.get(case.relationship)
            if op is None:
                continue
            params = {
                "resourceType": "Parameters",
                "parameter": [{"name": "reason", "valueString": "Seen in clinic today"}],
            }
            resp = self.call(actor, "POST", f"Patient/{case.patient}/{op}", params)
            allowed = op == "$claim-relationship" or who.break_glass
            assert (resp.status == 200) == allowed, (who.name, case, resp.status, resp.body)


def patient_resources(case: Case) -> list[dict[str, Any]]:
    pid = case.patient
    now = datetime.now(UTC)
    gps = [{"reference": f"Organization/{ORG_B}"}]
    if case.relationship == "gp":
        gps.append({"reference": f"Organization/{ORG_A}"})
    out: list[dict[str, Any]] = [
        {"resourceType": "Patient", "id": pid, "name": [{"family": f"Family-{pid}"}], "generalPractitioner": gps}
    ]
    subject = {"reference": f"Patient/{pid}"}
    a = {"reference": f"Organization/{ORG_A}"}
    rel = case.relationship
    if rel in ("encounter-recent", "encounter-old"):
        end = now - timedelta(days=10 if rel == "encounter-recent" else 400)
        period = {"start": (end - timedelta(hours=2)).isoformat(), "end": end.isoformat()}
        out.append(
            {
                "resourceType": "Encounter",
                "id": f"e-{pid}",
                "status": "finished",
                "class": {"code": "AMB"},
                "subject": subject,
                "serviceProvider": a,
                "period": period,
            }
        )
    elif rel == "episode":
        out.append(
            {
                "resourceType": "EpisodeOfCare",
                "id": f"eoc-{pid}",
                "status": "active",
                "patient": subject,
                "managingOrganization": a,
            }
        )
    elif rel == "care-team":
        out.append(
            {
                "resourceType": "CareTeam",
                "id": f"ct-{pid}",
                "status": "active",
                "subject": subject,
                "participant": [{"member": a}],
            }
        )
    elif rel == "referral":
        out.append(
            {
                "resourceType": "ServiceRequest",
                "id": f"sr-{pid}",
                "status": "active",
                "intent": "order",
                "subject": subject,
                "performer": [a],
            }
        )
    elif rel == "appointment":
        start = now + timedelta(days=5)
        out.append(
            {
                "resourceType": "Appointment",
                "id": f"ap-{pid}",
                "status": "booked",
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=20)).isoformat(),
                "participant": [
                    {"actor": subject, "status": "accepted"},
                    {"actor": {"reference": "HealthcareService/hs-A"}, "status": "accepted"},
                ],
            }
        )
    consent = consent_resource(case)
    if consent is not None:
        out.append(consent)
    for sensitivity in SENSITIVITIES:
        out.append(observation(case, sensitivity))
    return out


def consent_resource(case: Case) -> dict[str, Any] | None:
    if case.consent in ("none", "none-other"):
        return None
    provision: dict[str, Any] = {"type": "deny"}
    category = [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}]
    if case.consent.startswith("org-deny"):
        org = ORG_A if case.consent == "org-deny-A" else ORG_B
        provision["actor"] = [
            {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": f"Organization/{org}"}}
        ]
    elif case.consent == "ndoo":
        reason = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
        provision["purpose"] = [{"system": reason, "code": "HRESCH"}, {"system": reason, "code": "HOPERAT"}]
    elif case.consent == "type1":
        category.append({"coding": [{"system": "http://snomed.info/sct", "code": "827241000000103"}]})
    return {
        "resourceType": "Consent",
        "id": f"c-{case.patient}",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": category,
        "patient": {"reference": f"Patient/{case.patient}"},
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTOUT"}]},
        "provision": provision,
    }


def observation(case: Case, sensitivity: str) -> dict[str, Any]:
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": case.obs(sensitivity),
        "status": "final",
        "code": {"text": "secret-finding" if sensitivity != "plain" else "blood pressure"},
        "subject": {"reference": f"Patient/{case.patient}"},
    }
    if sensitivity in SECURITY:
        obs["meta"] = {"security": [SECURITY[sensitivity]]}
    if sensitivity == "own-org-sensitive":
        obs["meta"]["source"] = f"urn:sharedcare:source:{ORG_A}/gp-feed"
    return obs


# --- the matrix ----------------------------------------------------------------------------------------------

Check = Callable[[Matrix, Who, Case], tuple[bool, bool]]  # (expected allowed, actually allowed)


def _allowed(resp: FhirResponse) -> bool:
    if resp.status in (401, 403):
        assert not any(w.encode() in (resp.body or b"") for w in SECRET_WORDS), resp.body  # refusals leak nothing
        return False
    assert resp.status < 300, (resp.status, resp.body)
    return True


def read_patient(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    resp = m.call(m.actor(who, case), "GET", f"Patient/{case.patient}")
    allowed = _allowed(resp)
    if allowed and who.role == "analyst":
        assert b"Family-" not in (resp.body or b""), "secondary use must not show names"
    return expected_read(who, case, None), allowed


def read_obs(sensitivity: str) -> Check:
    def check(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
        resp = m.call(m.actor(who, case), "GET", f"Observation/{case.obs(sensitivity)}")
        return expected_read(who, case, sensitivity), _allowed(resp)

    return check


def vread_obs(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    resp = m.call(m.actor(who, case), "GET", f"Observation/{case.obs('plain')}/_history/1")
    return expected_read(who, case, "plain"), _allowed(resp)


def vread_sensitive(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    resp = m.call(m.actor(who, case), "GET", f"Observation/{case.obs('restricted')}/_history/1")
    return expected_read(who, case, "restricted"), _allowed(resp)


def history_obs(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    resp = m.call(m.actor(who, case), "GET", f"Observation/{case.obs('plain')}/_history")
    allowed = _allowed(resp)
    if allowed:
        assert orjson.loads(resp.body or b"{}")["total"] == 1
    return expected_read(who, case, "plain"), allowed


def create_obs(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "new reading"},
        "subject": {"reference": f"Patient/{case.patient}"},
    }
    resp = m.call(m.actor(who, case), "POST", "Observation", body)
    return expected_create(who, case), _allowed(resp)


def compartment_gate(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    """Patient/{id}/Observation: refused outright when the patient is not available (enforced now)."""
    resp = m.call(m.actor(who, case), "GET", f"Patient/{case.patient}/Observation")
    expected = gate(who, case) and reads_observations(who)
    return expected, _allowed(resp)


def _visible_ids(who: Who, case: Case) -> set[str]:
    return {case.obs(s) for s in SENSITIVITIES if expected_read(who, case, s)}


def _bundle_ids(resp: FhirResponse, type: str = "Observation") -> set[str]:
    if resp.status >= 300:
        return set()
    bundle = orjson.loads(resp.body or b"{}")
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["resource"]["resourceType"] == type}


def _rows_check(path: Callable[[Case], str], type: str = "Observation") -> Check:
    """A search-shaped channel must show exactly the visible resources (and count only them)."""

    def check(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
        resp = m.call(m.actor(who, case), "GET", path(case))
        shown = _bundle_ids(resp, type) - {i for i in _bundle_ids(resp, type) if not i.startswith("o-")}
        expected = _visible_ids(who, case)
        if resp.status < 300 and "_summary=count" in path(case):
            return True, orjson.loads(resp.body or b"{}").get("total") == len(expected)
        return True, shown == expected

    return check


ENFORCED: dict[str, Check] = {
    "read Patient": read_patient,
    **{f"read Observation [{s}]": read_obs(s) for s in SENSITIVITIES},
    "vread Observation [plain]": vread_obs,
    "vread Observation [restricted]": vread_sensitive,
    "history Observation/{id}": history_obs,
    "create Observation": create_obs,
    "search Patient/{id}/Observation (gate)": compartment_gate,
}


def has_check(m: Matrix, who: Who, case: Case) -> tuple[bool, bool]:
    """_has must match only through Observations the caller may see: the restricted one must not count."""
    path = f"Patient?_id={case.patient}&_has:Observation:subject:_security=R"
    shown = _bundle_ids(m.call(m.actor(who, case), "GET", path), "Patient")
    expected = {case.patient} if expected_read(who, case, "restricted") else set()
    return True, shown == expected


SEARCH_CHANNELS: dict[str, Check] = {
    "search Patient/{id}/Observation (rows)": _rows_check(lambda c: f"Patient/{c.patient}/Observation"),
    "search Observation?subject": _rows_check(lambda c: f"Observation?subject=Patient/{c.patient}"),
    "search total (_summary=count)": _rows_check(  # only the six loaded (create Observation adds more)
        lambda c: f"Observation?subject=Patient/{c.patient}&_id={','.join(map(c.obs, SENSITIVITIES))}&_summary=count"
    ),
    "_revinclude": _rows_check(lambda c: f"Patient?_id={c.patient}&_revinclude=Observation:subject"),
    "chain subject.family": _rows_check(lambda c: f"Observation?subject.family:exact=Family-{c.patient}"),
    "_has": lambda m, w, c: has_check(m, w, c),
    "$everything": _rows_check(lambda c: f"Patient/{c.patient}/$everything"),
}


@pytest.mark.parametrize("who", ACTORS, ids=[w.name for w in ACTORS])
@pytest.mark.parametrize("interaction", list(ENFORCED))
def test_matrix(matrix: Matrix, who: Who, interaction: str) -> None:
    check = ENFORCED[interaction]
    wrong = []
    for case in CASES:
        expected, actual = check(matrix, who, case)
        if expected != actual:
            wrong.append(f"{case.relationship}/{case.consent}: expected {'allow' if expected else 'deny'}")
    assert not wrong, f"{who.name} {interaction}: {len(wrong)} of {len(CASES)} wrong: {wrong}"


@pytest.mark.parametrize("who", ACTORS, ids=[w.name for w in ACTORS])
@pytest.mark.parametrize("interaction", list(SEARCH_CHANNELS))
def test_matrix_search_channels(matrix: Matrix, who: Who, interaction: str) -> None:
    check = SEARCH_CHANNELS[interaction]
    wrong = [c for c in CASES if not check(matrix, who, c)[1]]
    assert not wrong, f"{who.name} {interaction}: {len(wrong)} of {len(CASES)} leak or hide wrongly"


@pytest.mark.parametrize("who", ACTORS, ids=[w.name for w in ACTORS])
def test_type_history_counts_only_visible_versions(matrix: Matrix, who: Who) -> None:
    """GET Observation/_history: the entries and the total are those of visible Observations only."""
    own = OTHER if who.name == "patient-other" else Case("gp", "none")
    resp = matrix.call(matrix.actor(who, own), "GET", "Observation/_history?_count=1000")
    if not reads_observations(who):
        assert resp.status == 403
        return
    assert resp.status == 200, resp.body
    bundle = orjson.loads(resp.body or b"{}")
    entries = [e for e in bundle.get("entry", []) if "resource" in e]
    assert bundle["total"] == len(bundle.get("entry", []))
    seen = {e["resource"]["id"] for e in entries if e["resource"]["id"].startswith("o-")}
    if who.role == "patient":
        self_view = ACTORS[[a.name for a in ACTORS].index("patient-self")]
        expected = _visible_ids(self_view, own)
    else:
        expected = set().union(*(_visible_ids(who, c) for c in [*CASES, OTHER]))
    assert seen == expected


@pytest.mark.parametrize("who", ACTORS, ids=[w.name for w in ACTORS])
def test_bulk_export_is_for_the_operator_and_secondary_use(matrix: Matrix, who: Who) -> None:
    """$export: the operator in full; an analyst bound to its restriction (opt-outs) and pseudonymised (see
    test_search_privacy.py for what the files hold); everyone else refused."""
    resp = matrix.call(matrix.actor(who, CASES[0]), "GET", "Patient/$export", prefer="respond-async")
    assert _allowed(resp) == (who.name in ("operator", "analyst")), (resp.status, resp.body)


def matrix_size() -> dict[str, int]:
    """For the report: cases per kind."""
    return {
        "enforced": len(ACTORS) * len(ENFORCED) * len(CASES),
        "search channels": len(ACTORS) * len(SEARCH_CHANNELS) * len(CASES),
        "type-history aggregates": len(ACTORS),
        "$export kick-off": len(ACTORS),
    }


def test_matrix_dimensions() -> None:
    assert len(CASES) == len(RELATIONSHIPS) * len(CONSENTS) == 60
    assert matrix_size()["enforced"] == len(ACTORS) * 12 * 60 == 7920
    assert matrix_size()["search channels"] == len(ACTORS) * 7 * 60 == 4620
