"""Transaction and batch Bundles inside a bulk load, with the semantics the API gives them.

A transaction goes through `BundleProcessor` (ordering, `urn:uuid:` full URLs, conditional references and creates)
inside a savepoint of the load's store transaction: all of it or none of it. A batch entry goes through the
repository's units of work, as the router runs each entry of `POST [base]` with a batch, each in its own savepoint.
Validation happens while planning, before any lock is needed where the caller allows it.
"""

from __future__ import annotations

from typing import Any

from sharedcare.bulk.prepare import Rejected, reject
from sharedcare.bundles import ORDER, BundleProcessor, Planned, located
from sharedcare.errors import FhirError, InvalidRequest, MultipleMatches, NotFound
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.service.repository import (
    Repository,
    WriteResult,
    parse_criteria,
    parse_if_match,
    parse_json_patch,
)
from sharedcare.store import bulk_sql
from sharedcare.store.sqlstore import SqlTxn
from sharedcare.types import FhirRequest

WHOLE_FILE = -1  # the `line` of an error that concerns a whole Bundle
Outcome = tuple[int, str]  # (line or entry, OperationOutcome JSON)


class BundleUnits:
    def __init__(self, repo: Repository, bundles: BundleProcessor) -> None:
        self.repo, self.bundles = repo, bundles

    # --- transactions ----------------------------------------------------------------------------------------
    def plan_transaction(self, doc: Any) -> list[Planned] | Rejected:
        """The writes of a transaction Bundle in the order the spec sets, every resource validated."""
        entries = bundle_entries(doc)
        if isinstance(entries, Rejected):
            return entries
        try:
            req = FhirRequest("POST", [])
            plan = [self.bundles.plan(req, e, n) for n, e in enumerate(entries)]
            self.bundles.check_duplicates(plan)
            writes = sorted((p for p in plan if p.method not in ("GET", "HEAD")), key=lambda p: ORDER[p.method])
            for p in writes:
                if p.method in ("POST", "PUT"):
                    with located(p):
                        self.repo.check(p.resource, p.type, f"{p.where}.resource.")
        except FhirError as err:
            return reject(WHOLE_FILE, err.issues)
        return writes

    def run_transaction(self, txn: SqlTxn, writes: list[Planned]) -> list[WriteResult | None] | str:
        """The results of each write, or the OperationOutcome (JSON) of the failure that undid them all."""
        try:
            with bulk_sql.savepoint(txn):
                self.bundles.run_writes(txn, writes)
        except FhirError as err:
            return outcome_bytes(err.issues).decode()
        return [p.result for p in writes]

    # --- batches ---------------------------------------------------------------------------------------------
    def plan_entry(self, n: int, entry: Any) -> Planned | Rejected:
        try:
            if not isinstance(entry, dict):
                raise InvalidRequest("Bundle.entry must be an object", expression=f"Bundle.entry[{n}]")
            p = self.bundles.plan(FhirRequest("POST", []), entry, n)
            if p.method in ("POST", "PUT"):
                with located(p):
                    self.repo.check(p.resource, p.type, f"{p.where}.resource.")
            return p
        except FhirError as err:
            return reject(n, err.issues)

    def run_entries(
        self, txn: SqlTxn, planned: list[Planned | Rejected], line: int | None = None
    ) -> tuple[list[WriteResult | None], list[Outcome]]:
        """Each entry on its own; errors are located at `line` when given (an NDJSON line), else at the entry."""
        results: list[WriteResult | None] = []
        errors: list[Outcome] = []
        for item in planned:
            if isinstance(item, Rejected):
                errors.append((item.line if line is None else line, item.outcome.decode()))
                continue
            try:
                with bulk_sql.savepoint(txn), located(item):
                    results.append(self.run_entry(txn, item))
            except FhirError as err:
                errors.append((item.index if line is None else line, outcome_bytes(err.issues).decode()))
        return results, errors

    def run_entry(self, txn: SqlTxn, p: Planned) -> WriteResult | None:
        """One batch entry through the repository's units of work, as the router runs it over HTTP."""
        repo, expected = self.repo, parse_if_match(p.if_match)
        if p.method in ("GET", "HEAD"):
            return None
        if p.method == "POST":
            criteria = parse_criteria(p.if_none_exist) if p.if_none_exist else None
            return repo.create_in(txn, p.type, p.resource, criteria)
        if p.method == "PUT" and p.query:
            return repo.conditional_update_in(txn, p.type, parse_criteria(p.query), p.resource, expected)
        if p.method == "PUT":
            assert p.id is not None
            repo.check_update_body(p.type, p.id, p.resource)
            return repo.update_in(txn, p.type, p.id, p.resource, expected)
        target = p.id or _single(txn, p)
        if target is None:
            return None
        if p.method == "PATCH":
            return repo.patch_in(txn, p.type, target, parse_json_patch(p.resource), expected)
        return repo.delete_in(txn, p.type, target)


def _single(txn: SqlTxn, p: Planned) -> str | None:
    txn.lock(f"conditional:{p.type}")
    ids = txn.search_ids(p.type, parse_criteria(p.query or ""), 2)
    if len(ids) > 1:
        raise MultipleMatches(f"Conditional {p.method.lower()} matched more than one {p.type}")
    if not ids and p.method == "PATCH":
        raise NotFound(f"Conditional patch matched no {p.type}")
    return ids[0] if ids else None


def bundle_entries(doc: Any) -> list[Any] | Rejected:
    entries = doc.get("entry", []) if isinstance(doc, dict) else None
    if not isinstance(entries, list):
        issues = InvalidRequest("Bundle.entry must be an array", expression="Bundle.entry").issues
        return reject(WHOLE_FILE, issues)
    return entries
