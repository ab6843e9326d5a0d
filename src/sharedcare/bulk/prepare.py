"""The CPU half of a bulk load, kept free of I/O so it can run in worker processes while the writer commits.

Each NDJSON line is parsed, checked exactly as the API checks a write (`Repository.check`), stamped as version 1
and indexed. The stamp carries a placeholder time of the same width as a real one; the writer swaps in the
transaction's time with one byte replacement, so nothing is re-serialised under the write lock. Index rows do not
depend on `meta.versionId` or `meta.lastUpdated`, so they are computed here too.

A line without an `id` gets one derived from the file's fingerprint and the line number: loading the same file
again gives the same id, so nothing is created twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from sharedcare.errors import FhirError, InvalidRequest
from sharedcare.fhir.index_rows import IndexRows
from sharedcare.fhir.outcome import outcome_bytes
from sharedcare.fhir.resource import check_id, json_depth_exceeds, stamp
from sharedcare.service.repository import Repository
from sharedcare.store.bulk_sql import IndexJson, encode_index_rows
from sharedcare.types import JSON, Issue

PLACEHOLDER_TIME = "0001-01-01T00:00:00.000000Z"  # the width of `utc_now()`
PLACEHOLDER_META = f'"versionId":"1","lastUpdated":"{PLACEHOLDER_TIME}"'.encode()
ID_NAMESPACE = uuid.UUID("5b0c7a3e-1f7e-4a8e-9c55-2b1d1c1a0b5e")


@dataclass(frozen=True, slots=True)
class Prepared:
    """A valid resource ready to write: body stamped as version 1 at `PLACEHOLDER_TIME`, and its index rows."""

    line: int
    type: str
    id: str
    body: bytes
    index: IndexRows


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line that cannot be loaded, with the OperationOutcome (JSON) that says why."""

    line: int
    outcome: bytes


@dataclass(frozen=True, slots=True)
class BundleLine:
    """An NDJSON line holding a transaction or batch Bundle: processed with its semantics by the writer."""

    line: int
    raw: bytes


Result = Prepared | Rejected | BundleLine
PROCESSED_BUNDLES = ("transaction", "batch")


@dataclass(slots=True)
class PreparedBatch:
    """A batch in the shape that crosses the process boundary cheaply: a few big values rather than many small."""

    lines_done: int  # the last line (or entry count) this batch covers: the checkpoint once it commits
    items: list[tuple[int, str, str]]  # (line, type, id) of each valid resource
    bodies: list[bytes]  # stamped as version 1 at PLACEHOLDER_TIME
    index: IndexJson  # index rows per table, rows keyed by position in `items`
    rejected: list[tuple[int, bytes]]  # (line, OperationOutcome JSON)
    bundles: list[tuple[int, bytes]]  # (line, raw transaction/batch Bundle), in line order

    @classmethod
    def of(cls, lines_done: int, results: Sequence[Result]) -> PreparedBatch:
        ok = [r for r in results if isinstance(r, Prepared)]
        return cls(
            lines_done,
            [(r.line, r.type, r.id) for r in ok],
            [r.body for r in ok],
            encode_index_rows([(r.type, r.index) for r in ok]),
            [(r.line, r.outcome) for r in results if isinstance(r, Rejected)],
            [(r.line, r.raw) for r in results if isinstance(r, BundleLine)],
        )

    @classmethod
    def empty(cls, lines_done: int) -> PreparedBatch:
        return cls(lines_done, [], [], {}, [], [])

    def __len__(self) -> int:
        return len(self.items) + len(self.rejected) + len(self.bundles)


@dataclass(frozen=True, slots=True)
class PrepareConfig:
    """What a worker process needs to build its own validator and indexer (picklable)."""

    validate: bool = True
    local_base_urls: tuple[str, ...] = ()
    max_depth: int = 64  # the API's max_json_depth


class Preparer:
    """Parses, validates, stamps and indexes lines; one per process."""

    def __init__(self, repo: Repository, resource_types: frozenset[str], max_depth: int = 64) -> None:
        self.repo, self.resource_types, self.max_depth = repo, resource_types, max_depth

    @classmethod
    def build(cls, config: PrepareConfig) -> Preparer:
        from sharedcare.fhir import structures
        from sharedcare.fhir.indexing import Indexer
        from sharedcare.fhir.search_parameters import SearchParameterRegistry
        from sharedcare.fhir.validation import Validator

        indexer = Indexer(SearchParameterRegistry.load(), local_base_urls=config.local_base_urls)
        repo = Repository(None, Validator(), indexer, validate=config.validate)  # type: ignore[arg-type]
        return cls(repo, structures.resource_types(), config.max_depth)

    def lines(self, source: str, lines: Sequence[tuple[int, bytes]]) -> PreparedBatch:
        return PreparedBatch.of(lines[-1][0], [self.line(source, n, raw) for n, raw in lines])

    def line(self, source: str, n: int, raw: bytes) -> Result:
        try:
            resource = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return reject(n, [Issue("error", "structure", f"Line {n} is not valid JSON: {exc}")])
        is_bundle = isinstance(resource, dict) and resource.get("resourceType") == "Bundle"
        if is_bundle and resource.get("type") in PROCESSED_BUNDLES:
            return BundleLine(n, raw)
        return self.resource(source, n, resource)

    def resource(self, source: str, n: int, resource: Any) -> Result:
        try:
            rtype = self.check(resource)
            rid = resource.get("id")
            if rid is None:
                rid = str(uuid.uuid5(ID_NAMESPACE, f"{source}:{n}"))
            elif not isinstance(rid, str):
                return reject(n, [Issue("error", "invalid", "id must be a string", f"{rtype}.id")])
            else:
                check_id(rid, f"{rtype}.id")
            self.repo.check(resource, rtype)
            stamped, body = stamp(resource, rid, 1, PLACEHOLDER_TIME)
            rows = self.repo.indexer.index(stamped)
        except FhirError as err:
            return reject(n, err.issues)
        except RecursionError:
            return reject(n, [Issue("error", "structure", "The resource nests too deeply to process")])
        except (ValueError, TypeError, KeyError) as exc:  # indexing a value of an unexpected shape
            return reject(n, [Issue("error", "processing", f"Could not index the resource: {exc}")])
        return Prepared(n, rtype, rid, body, rows)

    def check(self, resource: Any) -> str:
        """The resource's type, once it is known to be an object of a known type no deeper than the API allows."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            raise InvalidRequest("A line must hold a FHIR resource: a JSON object with a resourceType")
        rtype: str = resource["resourceType"]
        if rtype not in self.resource_types:
            raise InvalidRequest(f"Unknown resource type '{rtype[:80]}'", expression="resourceType")
        if json_depth_exceeds(resource, self.max_depth):
            raise InvalidRequest(f"The resource nests deeper than {self.max_depth} levels")
        return rtype


def reject(n: int, issues: Sequence[Issue]) -> Rejected:
    return Rejected(n, outcome_bytes(issues))


def restamp(body: bytes, version: int, now: str) -> bytes:
    """The final body: version 1 at the placeholder time becomes `version` at `now`."""
    if version == 1:
        return body.replace(PLACEHOLDER_META, f'"versionId":"1","lastUpdated":"{now}"'.encode(), 1)
    stamped = orjson.loads(body)
    _, out = stamp(stamped, stamped["id"], version, now)
    return out


def content_equal(stored: bytes, prepared: bytes) -> bool:
    """Same resource apart from the server-owned `meta.versionId` and `meta.lastUpdated`."""
    return _content(orjson.loads(stored)) == _content(orjson.loads(prepared))


def _content(resource: JSON) -> JSON:
    meta = {k: v for k, v in (resource.get("meta") or {}).items() if k not in ("versionId", "lastUpdated")}
    out = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        out["meta"] = meta
    return out


# --- worker-process entry points ---------------------------------------------------------------------------------

_worker: Preparer | None = None


def init_worker(config: PrepareConfig) -> None:
    global _worker
    _worker = Preparer.build(config)


def prepare_in_worker(source: str, lines: Sequence[tuple[int, bytes]]) -> PreparedBatch:
    assert _worker is not None, "init_worker was not run in this process"
    return _worker.lines(source, lines)
