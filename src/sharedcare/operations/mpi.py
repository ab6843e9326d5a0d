"""The MPI's human surface, as FHIR operations on Person (type level):

- `GET  /Person/$review-queue?_count=&_offset=`: open review items, a searchset Bundle of `Task`s (code
  `match-review`; `focus` is the arriving Patient, input `candidate` the other, with weight, grade, explanation).
- `POST /Person/$review-accept` {task, performer?, note?}: same person; their Persons are joined.
- `POST /Person/$review-reject` {task, performer?, note?}: different people; never linked again.
- `POST /Person/$merge` {source, target, performer?, reason?}: join Person `source` into `target`.
- `POST /Person/$unmerge` {provenance | patient, performer?, reason?}: undo a merge or accepted review, or take one
  wrongly linked source Patient out into its own Person.
- `POST /Person/$relink`: re-match the whole store (batch); answers with counts and timings.

Decisions answer with a Parameters resource naming the Provenance that records them (and the Person). Inputs come
from a Parameters body or the query string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from sharedcare.errors import InvalidRequest
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.matching.curation import Curation
from sharedcare.matching.relink import relink
from sharedcare.matching.service import MatchService
from sharedcare.operations.parameters import operation_inputs, parameters, reference_id
from sharedcare.request_params import int_param
from sharedcare.types import FhirRequest, FhirResponse

Handler = Callable[[FhirRequest], FhirResponse]
DEFAULT_WHO = "unidentified user"


def mpi_operations(service: MatchService, repo: Any, default_count: int, max_count: int) -> dict[str, Handler]:
    curation = Curation(service)

    def queue(req: FhirRequest) -> FhirResponse:
        _at(req, "$review-queue", ("GET", "HEAD"))
        count = min(int_param(req, "_count", default_count), max_count)
        offset = int_param(req, "_offset", 0)
        with service.mpi.reading() as sql:
            task_ids, total = sql.open_reviews(count, offset)
        entries = [
            Entry({"fullUrl": f"{req.base_url}/Task/{t}", "search": {"mode": "match"}}, repo.read("Task", t).body)
            for t in task_ids
        ]
        url = f"{req.base_url}/Person/$review-queue"
        links = [("self", f"{url}?_count={count}&_offset={offset}")]
        if offset + count < total:
            links.append(("next", f"{url}?_count={count}&_offset={offset + count}"))
        return FhirResponse(200, bundle_bytes("searchset", entries, total=total, links=links))

    def decision(name: str, act: Callable[[str, str, str | None], str]) -> Handler:
        def handler(req: FhirRequest) -> FhirResponse:
            _at(req, name, ("POST",))
            inputs = operation_inputs(req)
            task = reference_id(inputs.get("task"), "Task", "task")
            prov = act(task, _who(inputs), inputs.get("note"))
            return _answer({"provenance": f"Provenance/{prov}"})

        return handler

    def merge(req: FhirRequest) -> FhirResponse:
        _at(req, "$merge", ("POST",))
        inputs = operation_inputs(req)
        source = reference_id(inputs.get("source"), "Person", "source")
        target = reference_id(inputs.get("target"), "Person", "target")
        prov = curation.merge(source, target, _who(inputs), inputs.get("reason"))
        return _answer({"provenance": f"Provenance/{prov}", "person": f"Person/{target}"})

    def unmerge(req: FhirRequest) -> FhirResponse:
        _at(req, "$unmerge", ("POST",))
        inputs = operation_inputs(req)
        if inputs.get("provenance"):
            prov_id = reference_id(inputs["provenance"], "Provenance", "provenance")
            prov = curation.undo_merge(prov_id, _who(inputs), inputs.get("reason"))
        elif inputs.get("patient"):
            patient = reference_id(inputs["patient"], "Patient", "patient")
            prov = curation.split(patient, _who(inputs), inputs.get("reason"))
        else:
            raise InvalidRequest("$unmerge needs 'provenance' (a merge to undo) or 'patient' (a record to take out)")
        return _answer({"provenance": f"Provenance/{prov}"})

    def batch(req: FhirRequest) -> FhirResponse:
        _at(req, "$relink", ("POST",))
        report = relink(service)
        values: dict[str, Any] = {k: v for k, v in vars(report).items() if k != "timings"}
        values.update({f"seconds-{k}": round(v, 3) for k, v in report.timings.items()})
        return _answer(values)

    return {
        "$review-queue": queue,
        "$review-accept": decision("$review-accept", curation.accept),
        "$review-reject": decision("$review-reject", curation.reject),
        "$merge": merge,
        "$unmerge": unmerge,
        "$relink": batch,
    }


def _at(req: FhirRequest, name: str, methods: tuple[str, ...]) -> None:
    if req.path != ["Person", name] or req.method not in methods:
        raise InvalidRequest(f"{name} is {' or '.join(methods)} /Person/{name}")


def _who(inputs: dict[str, Any]) -> str:
    who = inputs.get("performer")
    return who if isinstance(who, str) and who.strip() else DEFAULT_WHO


def _answer(values: dict[str, Any]) -> FhirResponse:
    return FhirResponse(200, orjson.dumps(parameters(values)))
