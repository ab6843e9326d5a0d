"""`Patient/$match` (http://hl7.org/fhir/R4/patient-operation-match.html): candidates for a Patient resource.

Input: a Parameters body with `resource` (the Patient), optional `onlyCertainMatches` and `count` (default 10),
or the Patient itself as the body. Output: a searchset Bundle of stored source Patients, best first, each with
`search.score` (the match probability), the `match-grade` extension (certain, probable, possible) on `search`,
and on the entry the match weight in bits and the Person the candidate belongs to. Candidates are read through
the caller's access restriction: those the caller may not see are left out (withheld ones are announced by an
outcome entry with issue `suppressed`, never named).
"""

from __future__ import annotations

from typing import Any

from sharedcare.access.policy import WITHHELD
from sharedcare.errors import Forbidden, Gone, InvalidRequest, NotFound
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.matching.resources import MATCH_GRADE_URL, MATCH_WEIGHT_URL, PERSON_URL
from sharedcare.matching.rules import Outcome, match_grade
from sharedcare.matching.service import MatchService
from sharedcare.operations.everything import withheld_entry
from sharedcare.operations.parameters import operation_inputs
from sharedcare.types import FhirRequest, FhirResponse

DEFINITION = "http://hl7.org/fhir/OperationDefinition/Patient-match"
DEFAULT_COUNT = 10


def match_operation(service: MatchService, repo: Any) -> Any:
    def handler(req: FhirRequest) -> FhirResponse:
        if req.method != "POST" or req.path != ["Patient", "$match"]:
            raise InvalidRequest("$match is POSTed to /Patient/$match with a Parameters body")
        inputs = operation_inputs(req)
        patient = inputs.get("resource")
        if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
            raise InvalidRequest("$match needs a Patient in the 'resource' parameter")
        only_certain = str(inputs.get("onlyCertainMatches", "false")).lower() == "true"
        count = _count(inputs.get("count", DEFAULT_COUNT))
        entries = []
        withheld = False
        for c in service.score(patient, count * 3):
            if c.decision.outcome not in (Outcome.LINK, Outcome.REVIEW):
                continue
            grade = match_grade(c.decision, service.weights)
            if only_certain and grade != "certain":
                continue
            try:  # read through the caller's restriction: a candidate the caller may not see is left out
                stored = repo.read("Patient", c.record.patient_id)
            except Forbidden as err:
                withheld = withheld or err.message == WITHHELD
                continue
            except (NotFound, Gone):
                continue
            entries.append(_entry(req.base_url, stored, c, grade, service))
            if len(entries) >= count:
                break
        total = len(entries)
        if withheld:
            entries.insert(0, withheld_entry())
        return FhirResponse(200, bundle_bytes("searchset", entries, total=total))

    return handler


def _entry(base: str, stored: Any, c: Any, grade: str, service: MatchService) -> Entry:
    score = service.weights.probability(c.decision.weight)
    if grade == "certain":
        score = max(score, service.weights.probability(service.weights.upper))
    fields = {
        "fullUrl": f"{base}/Patient/{stored.id}",
        "extension": [
            {"url": MATCH_WEIGHT_URL, "valueDecimal": round(c.decision.weight, 2)},
            {"url": PERSON_URL, "valueReference": {"reference": f"Person/{c.person_id}"}},
        ],
        "search": {
            "extension": [{"url": MATCH_GRADE_URL, "valueCode": grade}],
            "mode": "match",
            "score": round(score, 6),
        },
    }
    return Entry(fields, stored.body)


def _count(raw: Any) -> int:
    try:
        count = int(raw)
    except (TypeError, ValueError):
        raise InvalidRequest(f"count must be a positive integer, got {raw!r}") from None
    if count < 1:
        raise InvalidRequest("count must be at least 1")
    return min(count, 100)
