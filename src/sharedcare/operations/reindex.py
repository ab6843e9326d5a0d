"""`GET [base]/SearchParameter/[id]/$reindex`: the reindex jobs of a posted SearchParameter and their progress.

Each job reports its status (queued, running, done, failed), how many resources it has re-indexed, how many it
expects, and, once finished, the count check (`alive`). See `sharedcare.store.reindex`.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from sharedcare.errors import InvalidRequest, NotFound
from sharedcare.store.reindex import Reindexer, job_parameters
from sharedcare.types import FhirRequest, FhirResponse


def reindex_operation(reindexer: Reindexer) -> Callable[[FhirRequest], FhirResponse]:
    def handle(req: FhirRequest) -> FhirResponse:
        if len(req.path) != 3 or req.path[0] != "SearchParameter" or req.method not in ("GET", "HEAD"):
            raise InvalidRequest("Use GET [base]/SearchParameter/[id]/$reindex to see a reindex job's progress")
        jobs = reindexer.jobs(req.path[1])
        if not jobs:
            raise NotFound(f"SearchParameter/{req.path[1]} has no reindex job")
        return FhirResponse(200, orjson.dumps(job_parameters(jobs)))

    return handle
