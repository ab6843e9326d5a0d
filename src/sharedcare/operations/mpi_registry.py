"""The matching and longitudinal-record operations, as the composition root registers them.

`MPI_OPERATIONS` feeds the CapabilityStatement; `mpi_handlers` the router's operations table.
"""

from __future__ import annotations

from typing import Any

from sharedcare.capability import OperationInfo
from sharedcare.matching.resources import BASE
from sharedcare.matching.service import MatchService
from sharedcare.operations import everything, match
from sharedcare.operations.mpi import mpi_operations

MPI_OPERATIONS = (
    OperationInfo("everything", everything.DEFINITION, ("instance",), ("Patient", "Person")),
    OperationInfo("match", match.DEFINITION, ("type",), ("Patient",)),
    *(
        OperationInfo(name, f"{BASE}/OperationDefinition/Person-{name}", ("type",), ("Person",))
        for name in ("review-queue", "review-accept", "review-reject", "merge", "unmerge", "relink")
    ),
)


def mpi_handlers(matcher: MatchService, repo: Any, config: Any) -> dict[str, Any]:
    """name → handler for the router; `config` supplies the page sizes."""
    handlers: dict[str, Any] = {
        "$everything": everything.everything_operation(matcher, repo, config.default_page_size, config.max_page_size),
        "$match": match.match_operation(matcher, repo),
    }
    handlers.update(mpi_operations(matcher, repo, config.default_page_size, config.max_page_size))
    return handlers
