"""The FHIR interactions over a store: read, vread, create, update, patch, delete, history.

Each write is a unit of work run inside one store transaction (`*_in` functions take the open transaction,
so transaction Bundles can compose them). Validation and the shape checks happen before the transaction opens.
Interactions follow http://hl7.org/fhir/R4/http.html.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl

import jsonpatch
import orjson

from sharedcare.errors import (
    FhirError,
    Gone,
    InvalidRequest,
    MultipleMatches,
    NotFound,
    PreconditionFailed,
    UnprocessableEntity,
)
from sharedcare.fhir.index_rows import IndexRows
from sharedcare.fhir.resource import check_id, new_id, stamp
from sharedcare.service.preindex import Preindexer
from sharedcare.store import batch_write
from sharedcare.store.base import HistoryPage, HistoryQuery, Store, Txn
from sharedcare.store.batch_write import NewVersion
from sharedcare.store.bulk_sql import IndexJson
from sharedcare.store.sqlstore import SqlTxn
from sharedcare.types import JSON, Issue, StoredResource

WriteHook = Callable[[Txn, StoredResource, JSON | None], None]
"""Runs inside the write transaction after each version is saved (the resource is None for a deletion).

A hook that raises aborts the whole transaction: this is where work that must commit with the data belongs
(audit records, patient matching). A hook may also offer `many(txn, written)` for a batch of saved versions (bulk
loads): the same effect as calling it on each in order, with set-based SQL instead of statements per resource."""

Written = Sequence[tuple[StoredResource, JSON | None]]
_DEFERRED: ContextVar[list[tuple[StoredResource, JSON | None]] | None] = ContextVar("sharedcare_hooks", default=None)


class ResourceValidator(Protocol):
    def validate(self, resource: JSON, *, expected_type: str | None = None) -> list[Issue]: ...


class ResourceIndexer(Protocol):
    def index(self, resource: JSON) -> IndexRows: ...


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: StoredResource
    created: bool = False
    changed: bool = True  # False when a conditional create matched an existing resource


@dataclass(frozen=True, slots=True)
class PendingWrite:
    """A create (POST, new id) or update (PUT) for `save_many_in`, its body already validated."""

    method: str  # POST | PUT
    type: str
    id: str
    resource: JSON
    expected: int | None = None  # If-Match version (PUT)
    rows: IndexRows | None = None  # indexed before the transaction (`index_early`), finished inside it


def parse_criteria(query: str) -> list[tuple[str, str]]:
    """Search criteria from an `If-None-Exist` header or a conditional URL's query string."""
    criteria = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if not k.startswith("_format")]
    if not criteria:
        raise InvalidRequest("A conditional interaction needs at least one search criterion")
    return criteria


def parse_if_match(value: str | None) -> int | None:
    if value is None:
        return None
    tag = value.strip().removeprefix("W/").strip('"')
    if not tag.isdigit():
        raise InvalidRequest(f'If-Match must be a version ETag such as W/"3", got {value!r}')
    return int(tag)


class Repository:
    """The interactions, bound to one store, validator and indexer."""

    def __init__(
        self, store: Store, validator: ResourceValidator, indexer: ResourceIndexer, *, validate: bool = True
    ) -> None:
        self.store, self.validator, self.indexer, self.validate = store, validator, indexer, validate
        self.write_hooks: list[WriteHook] = []
        self.preindexer = Preindexer(indexer)

    # --- checks -----------------------------------------------------------------------------------
    def check(self, resource: Any, type: str, where: str = "") -> None:
        """Reject what is not a valid R4 resource of `type`, with every problem located."""
        if not isinstance(resource, dict) or "resourceType" not in resource:
            raise InvalidRequest("The body must be a FHIR resource: a JSON object with a resourceType")
        if resource["resourceType"] != type:
            raise InvalidRequest(
                f"resourceType '{resource['resourceType']}' does not match the URL's type '{type}'",
                expression=f"{where}resourceType" if where else "resourceType",
            )
        if not self.validate:
            return
        issues = self.validator.validate(resource, expected_type=type)
        errors = [i for i in issues if i.severity in ("error", "fatal")]
        if errors:
            if where:
                issues = [
                    Issue(i.severity, i.code, i.diagnostics, _prefix(where, i.expression)) for i in issues
                ]
            cls = UnprocessableEntity if all(i.code == "business-rule" for i in errors) else InvalidRequest
            raise cls(f"{type} failed validation ({len(errors)} error(s))", issues=issues)

    # --- reads ------------------------------------------------------------------------------------
    def read(self, type: str, id: str) -> StoredResource:
        check_id(id)
        found = self.store.read(type, id)
        if found is None:
            raise NotFound(f"{type}/{id} is not known")
        if found.deleted:
            raise Gone(f"{type}/{id} was deleted (version {found.version})")
        return found

    def vread(self, type: str, id: str, version: str) -> StoredResource:
        check_id(id)
        if not version.isdigit():
            raise NotFound(f"{type}/{id} has no version '{version}'")
        found = self.store.vread(type, id, int(version))
        if found is None:
            raise NotFound(f"{type}/{id} has no version {version}")
        if found.deleted:
            raise Gone(f"Version {version} of {type}/{id} is a deletion")
        return found

    def history(self, query: HistoryQuery) -> HistoryPage:
        if query.id is not None:
            check_id(query.id)
            if self.store.read(query.type or "", query.id) is None:
                raise NotFound(f"{query.type}/{query.id} is not known")
        return self.store.history(query)

    def search_ids(self, type: str, criteria: Sequence[tuple[str, str]], limit: int = 2) -> list[str]:
        return self.store.search_ids(type, criteria, limit)

    # --- writes: one transaction each ---------------------------------------------------------------
    def create(self, type: str, resource: JSON, if_none_exist: str | None = None) -> WriteResult:
        self.check(resource, type)
        criteria = parse_criteria(if_none_exist) if if_none_exist else None
        return self.store.transact(lambda txn: self.create_in(txn, type, resource, criteria))

    def update(self, type: str, id: str, resource: JSON, if_match: str | None = None) -> WriteResult:
        self.check_update_body(type, id, resource)
        self.check(resource, type)
        expected = parse_if_match(if_match)
        return self.store.transact(lambda txn: self.update_in(txn, type, id, resource, expected))

    def conditional_update(
        self, type: str, query: str, resource: JSON, if_match: str | None = None
    ) -> WriteResult:
        self.check(resource, type)
        criteria, expected = parse_criteria(query), parse_if_match(if_match)
        return self.store.transact(
            lambda txn: self.conditional_update_in(txn, type, criteria, resource, expected)
        )

    def patch(self, type: str, id: str, patch: Any, if_match: str | None = None) -> WriteResult:
        check_id(id)
        ops = parse_json_patch(patch)
        expected = parse_if_match(if_match)
        return self.store.transact(lambda txn: self.patch_in(txn, type, id, ops, expected))

    def conditional_patch(
        self, type: str, query: str, patch: Any, if_match: str | None = None
    ) -> WriteResult:
        ops, criteria, expected = parse_json_patch(patch), parse_criteria(query), parse_if_match(if_match)

        def work(txn: Txn) -> WriteResult:
            return self.patch_in(txn, type, self.single_match(txn, type, criteria, "patch"), ops, expected)

        return self.store.transact(work)

    def delete(self, type: str, id: str) -> WriteResult:
        check_id(id)
        return self.store.transact(lambda txn: self.delete_in(txn, type, id))

    def conditional_delete(self, type: str, query: str) -> WriteResult | None:
        criteria = parse_criteria(query)

        def work(txn: Txn) -> WriteResult | None:
            txn.lock(f"conditional:{type}")
            ids = txn.search_ids(type, criteria, 2)
            if len(ids) > 1:
                raise MultipleMatches(f"Conditional delete matched more than one {type}; be more selective")
            return self.delete_in(txn, type, ids[0]) if ids else None

        return self.store.transact(work)

    # --- units of work inside an open transaction ---------------------------------------------------
    def create_in(
        self,
        txn: Txn,
        type: str,
        resource: JSON,
        criteria: Sequence[tuple[str, str]] | None,
        id: str | None = None,
    ) -> WriteResult:
        if criteria:
            txn.lock(f"conditional:{type}")
            ids = txn.search_ids(type, criteria, 2)
            if len(ids) > 1:
                raise MultipleMatches(f"If-None-Exist matched more than one {type}")
            if ids:
                existing = txn.current(type, ids[0])
                assert existing is not None
                return WriteResult(existing, created=False, changed=False)
        return self.save_in(txn, type, id or new_id(), resource, 1, "POST")

    def update_in(self, txn: Txn, type: str, id: str, resource: JSON, expected: int | None) -> WriteResult:
        current = txn.current(type, id)
        if expected is not None and (current is None or current.version != expected):
            have = "none" if current is None else f'W/"{current.version}"'
            raise PreconditionFailed(f'If-Match W/"{expected}" does not match the current version ({have})')
        version = 1 if current is None else current.version + 1
        result = self.save_in(txn, type, id, resource, version, "PUT")
        return WriteResult(result.stored, created=current is None or current.deleted)

    def conditional_update_in(
        self, txn: Txn, type: str, criteria: Sequence[tuple[str, str]], resource: JSON, expected: int | None
    ) -> WriteResult:
        txn.lock(f"conditional:{type}")
        ids = txn.search_ids(type, criteria, 2)
        if len(ids) > 1:
            raise MultipleMatches(f"Conditional update matched more than one {type}; be more selective")
        body_id = resource.get("id")
        if ids:
            if body_id is not None and body_id != ids[0]:
                raise InvalidRequest(f"The body's id '{body_id}' is not the matched resource's id '{ids[0]}'")
            return self.update_in(txn, type, ids[0], resource, expected)
        if body_id is not None:
            check_id(body_id)
            return self.update_in(txn, type, body_id, resource, expected)
        result = self.save_in(txn, type, new_id(), resource, 1, "PUT")
        return WriteResult(result.stored, created=True)

    def patch_in(
        self, txn: Txn, type: str, id: str, ops: jsonpatch.JsonPatch, expected: int | None
    ) -> WriteResult:
        current = txn.current(type, id)
        if current is None:
            raise NotFound(f"{type}/{id} is not known")
        if current.deleted or current.body is None:
            raise Gone(f"{type}/{id} was deleted")
        if expected is not None and current.version != expected:
            raise PreconditionFailed(
                f'If-Match W/"{expected}" does not match the current version {current.version}'
            )
        try:
            patched = ops.apply(orjson.loads(current.body))
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise UnprocessableEntity(f"The JSON Patch could not be applied: {exc}") from None
        if not isinstance(patched, dict) or patched.get("id") != id:
            raise UnprocessableEntity("A patch must not change the resource's id or resourceType")
        self.check(patched, type)
        return self.save_in(txn, type, id, patched, current.version + 1, "PATCH")

    def delete_in(self, txn: Txn, type: str, id: str) -> WriteResult:
        current = txn.current(type, id)
        if current is None:
            raise NotFound(f"{type}/{id} is not known")
        if current.deleted:
            return WriteResult(current, changed=False)
        stored = txn.save(type, id, current.version + 1, "DELETE", None, None)
        self.run_hooks(txn, stored, None)
        return WriteResult(stored)

    def save_in(self, txn: Txn, type: str, id: str, resource: JSON, version: int, method: str) -> WriteResult:
        stamped, body = stamp(resource, id, version, txn.now)
        stored = txn.save(type, id, version, method, body, self.indexer.index(stamped))
        self.run_hooks(txn, stored, stamped)
        return WriteResult(stored, created=version == 1)

    def index_early(self, type: str, id: str, resource: JSON) -> IndexRows | None:
        """Index rows for `save_many_in`, computed before its transaction opens (so outside the write lock);
        None when this type has to be indexed inside (see `preindex`)."""
        return self.preindexer.early(type, id, resource)

    @staticmethod
    def encode_early(items: Sequence[tuple[str, IndexRows | None]]) -> IndexJson | None:
        """Early index rows (type, rows) of the writes `save_many_in` will get, ready for the database, so that is
        done before the transaction too (None unless every write has them)."""
        ready = [(t, rows) for t, rows in items if rows is not None]
        return batch_write.encode_rows(ready) if ready and len(ready) == len(items) else None

    def save_many_in(
        self,
        txn: Txn,
        writes: Sequence[PendingWrite],
        guard: Callable[[int], AbstractContextManager[None]] = lambda n: nullcontext(),
        early_json: IndexJson | None = None,
    ) -> list[WriteResult]:
        """Creates and updates of distinct resources, as `save_in` / `update_in` one after the other would make
        them, with set-based SQL: one lock-and-read of the current versions, one insert per table.

        Errors about the n-th write (a failed If-Match) are raised inside `guard(n)`, so the caller can say where
        it came from. `early_json`, `encode_early` of every write's early rows, spares encoding them here. The write
        hooks then run over the saved versions in order."""
        sql_txn = cast(SqlTxn, txn)  # every store is an SqlStore; the batch path needs its cursor
        keys = [(w.type, w.id) for w in writes if w.method != "POST"]  # a POST's new id has no current version
        current = batch_write.current_versions(sql_txn, keys)
        items: list[NewVersion] = []
        stamped_all: list[JSON] = []
        memo: dict[Any, Any] = {}
        created: list[bool] = []
        for n, w in enumerate(writes):
            cur = current.get((w.type, w.id))
            if w.expected is not None and (cur is None or cur.version != w.expected):
                have = "none" if cur is None else f'W/"{cur.version}"'
                with guard(n):
                    raise PreconditionFailed(f'If-Match W/"{w.expected}" does not match the current version ({have})')
            version = 1 if cur is None else cur.version + 1
            stamped, body = stamp(w.resource, w.id, version, txn.now)
            if w.rows is None:
                rows = self.indexer.index(stamped)
            else:
                rows = self.preindexer.finish(w.type, w.rows, version, txn.now, memo)
            if rows is not w.rows:
                early_json = None  # the server meta changed some rows: encode the final ones
            items.append(NewVersion(w.type, w.id, version, w.method, body, rows, cur.rid if cur else 0))
            stamped_all.append(stamped)
            created.append(cur is None or cur.deleted)
        saved = batch_write.save_versions(sql_txn, items, early_json)
        for stored, stamped in zip(saved, stamped_all, strict=True):
            self.run_hooks(txn, stored, stamped)
        return [WriteResult(s, created=c) for s, c in zip(saved, created, strict=True)]

    def run_hooks(self, txn: Txn, stored: StoredResource, resource: JSON | None) -> None:
        deferred = _DEFERRED.get()
        if deferred is not None:
            deferred.append((stored, resource))
            return
        for hook in self.write_hooks:
            hook(txn, stored, resource)

    def run_hooks_many(self, txn: Txn, written: Written) -> None:
        """The write hooks over a batch of saved versions, hook by hook (each sees the whole batch at once).

        A hook's refusal names the resource it refused (`FhirError.resource_key`, "Type/id") when it can."""
        deferred = _DEFERRED.get()
        if deferred is not None:
            deferred.extend(written)
            return
        if not written:
            return
        made: list[tuple[StoredResource, JSON | None]] = []  # versions the hooks themselves save (Person, Task)
        token = _DEFERRED.set(made)
        try:
            for hook in self.write_hooks:
                many = getattr(hook, "many", None)
                if many is not None:
                    many(txn, written)
                    continue
                for stored, resource in written:
                    try:
                        hook(txn, stored, resource)
                    except FhirError as err:
                        err.resource_key = err.resource_key or f"{stored.type}/{stored.id}"
                        raise
        finally:
            _DEFERRED.reset(token)
        self.run_hooks_many(txn, made)  # their hooks in turn, batched too (as the server's own writes)

    @contextlib.contextmanager
    def hooks_deferred(self, txn: Txn) -> Iterator[None]:
        """Inside the block, saved versions are collected and the write hooks run once over all of them at its end
        (still inside the transaction): a transaction Bundle pays for set-based hooks, not one round per entry.
        Writes the hooks themselves make (a Person, a review Task) run their hooks at once."""
        if _DEFERRED.get() is not None:  # already collecting for an enclosing block
            yield
            return
        written: list[tuple[StoredResource, JSON | None]] = []
        token = _DEFERRED.set(written)
        try:
            yield
        finally:
            _DEFERRED.reset(token)
        self.run_hooks_many(txn, written)

    def single_match(self, txn: Txn, type: str, criteria: Sequence[tuple[str, str]], what: str) -> str:
        txn.lock(f"conditional:{type}")
        ids = txn.search_ids(type, criteria, 2)
        if not ids:
            raise NotFound(f"Conditional {what} matched no {type}")
        if len(ids) > 1:
            raise MultipleMatches(f"Conditional {what} matched more than one {type}")
        return ids[0]

    @staticmethod
    def check_update_body(type: str, id: str, resource: Any) -> None:
        check_id(id)
        if isinstance(resource, dict):
            if "id" not in resource:
                raise InvalidRequest("An update's body must carry the resource id", expression="id")
            if resource["id"] != id:
                raise InvalidRequest(
                    f"The body's id '{resource['id']}' does not match the URL's id '{id}'", expression="id"
                )


def parse_json_patch(patch: Any) -> jsonpatch.JsonPatch:
    if not isinstance(patch, list) or not all(isinstance(op, dict) and "op" in op for op in patch):
        raise InvalidRequest("A JSON Patch body must be an array of operations, each with an 'op'")
    try:
        return jsonpatch.JsonPatch(patch)
    except (jsonpatch.InvalidJsonPatch, jsonpatch.JsonPointerException, TypeError) as exc:
        raise InvalidRequest(f"Invalid JSON Patch: {exc}") from None


def _prefix(where: str, expression: str | None) -> str:
    return where.rstrip(".") if not expression else f"{where}{expression}"
