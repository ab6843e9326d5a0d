"""Batch and transaction Bundles (http://hl7.org/fhir/R4/http.html#transaction).

A batch runs each entry on its own. A transaction runs every write in one store transaction, all or nothing,
in the order the spec sets (DELETE, POST, PUT/PATCH, then GET after commit), with `urn:uuid:` full URLs and
conditional references (`Patient?identifier=...`) rewritten to the ids they resolve to.

A transaction is done in phases, so as little as possible happens while the store's write lock is held: before the
transaction opens, every entry is parsed and validated, and the creates and updates whose content and id are already
final (no reference to rewrite, not conditional) are indexed. Inside it: deletes, then targets and references are
resolved, then creates and updates are saved together with set-based SQL (`Repository.save_many_in`), then patches;
the write hooks run once over everything at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson

from sharedcare.errors import FhirError, InvalidRequest, MultipleMatches, NotFound, PreconditionFailed
from sharedcare.fhir.bundle import Entry, bundle_bytes
from sharedcare.fhir.index_rows import IndexRows
from sharedcare.fhir.outcome import outcome
from sharedcare.fhir.resource import check_id, new_id, parse_json
from sharedcare.service.repository import (
    PendingWrite,
    Repository,
    WriteResult,
    parse_criteria,
    parse_if_match,
    parse_json_patch,
)
from sharedcare.store.base import Txn
from sharedcare.store.bulk_sql import IndexJson
from sharedcare.types import JSON, FhirRequest, FhirResponse, Issue

ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}
STATUS_TEXT = {200: "OK", 201: "Created", 204: "No Content", 304: "Not Modified"}


@dataclass
class Planned:
    """One transaction entry, parsed and checked before the transaction opens."""

    index: int
    method: str
    type: str
    id: str | None
    query: str | None
    resource: Any
    full_url: str | None
    if_match: str | None
    if_none_exist: str | None
    raw: JSON
    target: str | None = None  # Type/id once resolved
    matched: bool = False  # a conditional create found an existing resource
    result: WriteResult | None = None
    response: FhirResponse | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    rewrite: bool = True  # may hold references to rewrite (else known not to: see `BundleProcessor.prepare`)
    preset_id: str | None = None  # a plain POST's new id, chosen before the transaction
    rows: IndexRows | None = None  # index rows computed before the transaction

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"


@dataclass(frozen=True)
class Early:
    """The index rows of a transaction's creates and updates, encoded before it opened (see `prepare`)."""

    entries: list[Planned]
    index: IndexJson

    def matches(self, batched: list[Planned]) -> bool:
        """Whether the entries saved together are those encoded, in order (not when a conditional create matched)."""
        return len(batched) == len(self.entries) and all(a is b for a, b in zip(batched, self.entries, strict=True))


class BundleProcessor:
    def __init__(
        self, repo: Repository, route: Callable[[FhirRequest], FhirResponse], resource_types: frozenset[str]
    ) -> None:
        self.repo, self.route, self.resource_types = repo, route, resource_types

    def __call__(self, req: FhirRequest) -> FhirResponse:
        bundle = req.parsed if req.parsed is not None else parse_json(req.body)
        if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
            raise InvalidRequest("POST to the FHIR base takes a Bundle of type batch or transaction")
        kind = bundle.get("type")
        entries = bundle.get("entry", [])
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise InvalidRequest("Bundle.entry must be an array of objects", expression="Bundle.entry")
        if kind == "batch":
            return self.batch(req, entries)
        if kind == "transaction":
            return self.transaction(req, entries)
        raise InvalidRequest(
            f"Bundle.type must be batch or transaction to be processed, not '{kind}'",
            expression="Bundle.type",
        )

    # --- batch ------------------------------------------------------------------------------------
    def batch(self, req: FhirRequest, entries: list[JSON]) -> FhirResponse:
        out = []
        for n, entry in enumerate(entries):
            try:
                sub = self.entry_request(req, entry, n)
                out.append(response_entry(sub_response(self.route, sub), req.base_url))
            except FhirError as err:
                out.append(error_entry(err))
        return FhirResponse(200, bundle_bytes("batch-response", out))

    # --- transaction --------------------------------------------------------------------------------
    def transaction(self, req: FhirRequest, entries: list[JSON]) -> FhirResponse:
        plan = [self.plan(req, entry, n) for n, entry in enumerate(entries)]
        self.check_duplicates(plan)
        writes = sorted((p for p in plan if p.method not in ("GET", "HEAD")), key=lambda p: ORDER[p.method])
        pause = getattr(self.repo.store, "yield_to_writer", _no_pause)
        for p in writes:
            if p.method in ("POST", "PUT"):
                pause()
                with located(p):
                    self.repo.check(p.resource, p.type, f"{p.where}.resource.")
        early = self.prepare(writes, req.body if isinstance(req.body, bytes) else None)
        self.repo.store.transact(lambda txn: self.run_writes(txn, writes, early))
        out = []
        for p in plan:
            if p.method in ("GET", "HEAD"):
                try:
                    sub = self.entry_request(req, p.raw, p.index)
                    out.append(response_entry(sub_response(self.route, sub), req.base_url))
                except FhirError as err:
                    out.append(error_entry(err))
            else:
                out.append(self.write_entry(req, p))
        return FhirResponse(200, bundle_bytes("transaction-response", out))

    def prepare(self, writes: list[Planned], raw: bytes | None = None) -> Early | None:
        """Work done before the transaction opens, so not while holding the write lock: find the entries with no
        reference to rewrite, give plain POSTs their ids, and index the entries whose content and id are final.
        `raw`, the Bundle's bytes, spares walking the resources when it shows there is nothing to rewrite."""
        full_urls = {p.full_url for p in writes if p.method in ("POST", "PUT", "PATCH") and p.full_url}
        pause = getattr(self.repo.store, "yield_to_writer", _no_pause)
        walk = full_urls or raw is None or any(mark in raw for mark in (b"urn:", b"?", b"\\u"))
        for p in writes:
            if p.method not in ("POST", "PUT"):
                continue
            p.rewrite = bool(walk) and any(self.rewritten(ref, full_urls) for ref in references(p.resource))
            if p.method == "POST" and not p.if_none_exist:
                p.preset_id = new_id()
            rid = p.preset_id if p.method == "POST" else p.id if p.query is None else None
            if rid is not None and not p.rewrite:
                pause()
                p.rows = self.repo.index_early(p.type, rid, p.resource)
        saved = [p for p in writes if p.method in ("POST", "PUT")]
        index = self.repo.encode_early([(p.type, p.rows) for p in saved])
        return Early(saved, index) if index is not None else None

    def rewritten(self, ref: str, full_urls: set[str]) -> bool:
        """Whether `resolve_reference` could replace `ref` (a full URL of the Bundle, a conditional reference, or
        an unresolved urn: which it refuses)."""
        if ref in full_urls or ref.startswith(("urn:uuid:", "urn:oid:")):
            return True
        type_name, sep, _ = ref.partition("?")
        return bool(sep) and type_name in self.resource_types

    def run_writes(self, txn: Txn, writes: list[Planned], early: Early | None = None) -> None:
        """All the writes, their write hooks run once over the lot at the end (inside the same transaction)."""
        try:
            with self.repo.hooks_deferred(txn):
                self._run_writes(txn, writes, early)
        except FhirError as err:  # a hook refused one resource: say which entry it came from
            refused = next((p for p in writes if err.resource_key and _key(p) == err.resource_key), None)
            if refused is None:
                raise
            with located(refused):
                raise

    def _run_writes(self, txn: Txn, writes: list[Planned], early: Early | None) -> None:
        for p in writes:
            if p.method == "DELETE":
                with located(p):
                    self.delete(txn, p)
        resolved: dict[str, str] = {}
        for p in writes:
            if p.method in ("POST", "PUT", "PATCH"):
                with located(p):
                    self.resolve_target(txn, p)
                if p.full_url and p.target:
                    resolved[p.full_url] = p.target
        for p in writes:
            if p.method in ("POST", "PUT") and p.rewrite:
                with located(p):
                    rewrite_references(p.resource, lambda ref: self.resolve_reference(txn, ref, resolved))
        self.save_all(txn, writes, early)

    def save_all(self, txn: Txn, writes: list[Planned], early: Early | None = None) -> None:
        """Creates and updates saved together (set-based), then patches and matched creates one by one.

        When two entries resolved to the same resource (conditional URLs may), each must see the other's version:
        then everything is saved in order, one by one."""
        targets = [p.target for p in writes if p.method != "DELETE"]
        if len(set(targets)) != len(targets):
            for p in writes:
                with located(p):
                    self.save(txn, p)
            return
        batched = [p for p in writes if p.method == "PUT" or (p.method == "POST" and not p.matched)]
        pending = []
        for p in batched:
            with located(p):
                pending.append(self.pending(p))
        index = early.index if early is not None and early.matches(batched) else None
        results = self.repo.save_many_in(txn, pending, lambda n: located(batched[n]), index)
        for p, result in zip(batched, results, strict=True):
            p.result = result
        for p in writes:
            if p.method == "PATCH" or (p.method == "POST" and p.matched):
                with located(p):
                    self.save(txn, p)

    def pending(self, p: Planned) -> PendingWrite:
        assert p.target is not None
        rtype, _, rid = p.target.partition("/")
        if p.method == "POST":
            return PendingWrite("POST", rtype, rid, p.resource, rows=p.rows)
        if p.query is None:
            self.repo.check_update_body(rtype, rid, p.resource)
        return PendingWrite("PUT", rtype, rid, p.resource, parse_if_match(p.if_match), p.rows)

    def delete(self, txn: Txn, p: Planned) -> None:
        if p.query is not None:
            ids = txn.search_ids(p.type, parse_criteria(p.query), 2)
            if len(ids) > 1:
                raise MultipleMatches(f"Conditional delete matched more than one {p.type}")
            p.result = self.repo.delete_in(txn, p.type, ids[0]) if ids else None
        else:
            assert p.id is not None
            try:
                p.result = self.repo.delete_in(txn, p.type, p.id)
            except NotFound:
                p.result = None

    def resolve_target(self, txn: Txn, p: Planned) -> None:
        if p.method == "POST":
            if p.if_none_exist:
                txn.lock(f"conditional:{p.type}")
                ids = txn.search_ids(p.type, parse_criteria(p.if_none_exist), 2)
                if len(ids) > 1:
                    raise MultipleMatches(f"ifNoneExist matched more than one {p.type}")
                if ids:
                    p.target, p.matched = f"{p.type}/{ids[0]}", True
                    return
            p.target = f"{p.type}/{p.preset_id or new_id()}"
        elif p.query is not None:
            txn.lock(f"conditional:{p.type}")
            ids = txn.search_ids(p.type, parse_criteria(p.query), 2)
            if len(ids) > 1:
                raise MultipleMatches(f"Conditional {p.method} matched more than one {p.type}")
            if not ids and p.method == "PATCH":
                raise NotFound(f"Conditional patch matched no {p.type}")
            body_id = p.resource.get("id") if isinstance(p.resource, dict) else None
            p.target = f"{p.type}/{ids[0] if ids else (body_id or new_id())}"
        else:
            p.target = f"{p.type}/{p.id}"

    def resolve_reference(self, txn: Txn, ref: str, resolved: dict[str, str]) -> str:
        if ref in resolved:
            return resolved[ref]
        type_name, sep, query = ref.partition("?")
        if sep and type_name in self.resource_types:
            ids = txn.search_ids(type_name, parse_criteria(query), 2)
            if not ids:
                raise PreconditionFailed(f"Conditional reference {ref} matched no resource")
            if len(ids) > 1:
                raise MultipleMatches(f"Conditional reference {ref} matched more than one resource")
            return f"{type_name}/{ids[0]}"
        if ref.startswith("urn:uuid:") or ref.startswith("urn:oid:"):
            raise InvalidRequest(f"Reference {ref} does not match any fullUrl in the transaction")
        return ref

    def save(self, txn: Txn, p: Planned) -> None:
        if p.method == "DELETE":
            return
        assert p.target is not None
        rtype, _, rid = p.target.partition("/")
        if p.method == "POST":
            if p.matched:
                existing = txn.current(rtype, rid)
                assert existing is not None
                p.result = WriteResult(existing, created=False, changed=False)
            else:
                p.result = self.repo.save_in(txn, rtype, rid, p.resource, 1, "POST")
        elif p.method == "PUT":
            self.repo.check_update_body(rtype, rid, p.resource) if p.query is None else None
            p.result = self.repo.update_in(txn, rtype, rid, p.resource, parse_if_match(p.if_match))
        else:
            ops = parse_json_patch(p.resource)
            p.result = self.repo.patch_in(txn, rtype, rid, ops, parse_if_match(p.if_match))

    def write_entry(self, req: FhirRequest, p: Planned) -> Entry:
        result = p.result
        if result is None:
            return Entry({"response": {"status": "204 No Content" if p.method == "DELETE" else "200 OK"}})
        s = result.stored
        if p.method == "DELETE":
            return Entry({"response": {"status": "204 No Content", "etag": s.etag}})
        status = 201 if result.created and result.changed else 200
        fields: JSON = {
            "fullUrl": f"{req.base_url}/{s.type}/{s.id}",
            "response": {
                "status": f"{status} {STATUS_TEXT[status]}",
                "location": f"{s.type}/{s.id}/_history/{s.version}",
                "etag": s.etag,
                "lastModified": s.last_updated,
            },
        }
        prefer = (req.header("prefer") or "").replace(" ", "")
        if "return=minimal" in prefer:
            return Entry(fields)
        if "return=OperationOutcome" in prefer:
            fields["response"]["outcome"] = outcome([Issue("information", "informational", "ok")])
            return Entry(fields)
        return Entry(fields, s.body)

    # --- parsing ------------------------------------------------------------------------------------
    def plan(self, req: FhirRequest, entry: JSON, n: int) -> Planned:
        where = f"Bundle.entry[{n}]"
        request = entry.get("request")
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            raise InvalidRequest(
                "Each transaction entry needs request.method and request.url", expression=f"{where}.request"
            )
        method, url = request["method"].upper(), request.get("url")
        if method not in ORDER or not isinstance(url, str) or not url:
            raise InvalidRequest(
                f"Unsupported request.method '{method}' or missing request.url", expression=f"{where}.request"
            )
        path, query = split_url(url, req.base_url)
        p = Planned(
            n,
            method,
            "",
            None,
            None,
            entry.get("resource"),
            entry.get("fullUrl"),
            request.get("ifMatch"),
            request.get("ifNoneExist"),
            entry,
        )
        if method in ("GET", "HEAD"):
            return p
        if not path or path[0] not in self.resource_types:
            raise InvalidRequest(
                f"request.url '{url}' does not name a known resource type", expression=f"{where}.request.url"
            )
        p.type = path[0]
        if len(path) == 2:
            check_id(path[1], f"{where}.request.url")
            p.id = path[1]
        elif len(path) > 2:
            raise InvalidRequest(
                f"request.url '{url}' is not a type or instance URL", expression=f"{where}.request.url"
            )
        p.query = query or None
        if method == "POST" and (p.id or p.query):
            raise InvalidRequest(
                "A POST entry's url must be the resource type alone", expression=f"{where}.request.url"
            )
        if method in ("PUT", "PATCH", "DELETE") and not p.id and not p.query:
            raise InvalidRequest(
                f"A {method} entry needs an id or search criteria in request.url",
                expression=f"{where}.request.url",
            )
        if method in ("POST", "PUT") and not isinstance(p.resource, dict):
            raise InvalidRequest(f"A {method} entry needs a resource", expression=f"{where}.resource")
        if method == "PATCH":
            p.resource = patch_body(p.resource, where)
        return p

    @staticmethod
    def check_duplicates(plan: list[Planned]) -> None:
        seen: dict[str, int] = {}
        for p in plan:
            if p.method in ("GET", "HEAD") or p.id is None:
                continue
            key = f"{p.type}/{p.id}"
            if key in seen:
                raise InvalidRequest(
                    f"{key} appears in entries {seen[key]} and {p.index}; a transaction may touch a resource once",
                    expression=f"Bundle.entry[{p.index}].request.url",
                )
            seen[key] = p.index

    def entry_request(self, req: FhirRequest, entry: JSON, n: int) -> FhirRequest:
        request = entry.get("request")
        if (
            not isinstance(request, dict)
            or not isinstance(request.get("method"), str)
            or not request.get("url")
        ):
            raise InvalidRequest(
                "Each entry needs request.method and request.url", expression=f"Bundle.entry[{n}].request"
            )
        path, query = split_url(request["url"], req.base_url)
        headers = {k: v for k, v in req.headers.items() if k == "prefer"}
        for field_name, header in (
            ("ifMatch", "if-match"),
            ("ifNoneMatch", "if-none-match"),
            ("ifNoneExist", "if-none-exist"),
            ("ifModifiedSince", "if-modified-since"),
        ):
            if isinstance(request.get(field_name), str):
                headers[header] = request[field_name]
        method = request["method"].upper()
        parsed = entry.get("resource")
        if parsed is not None and method == "PATCH":
            parsed = patch_body(parsed, f"Bundle.entry[{n}]")
            headers["content-type"] = "application/json-patch+json"
        query_pairs = parse_qsl(query, keep_blank_values=True)
        return FhirRequest(method, path, query_pairs, None, headers, req.base_url, parsed)


def _no_pause() -> None:
    """For stores without a single writer to defer to."""


def _key(p: Planned) -> str | None:
    """The "Type/id" an entry wrote."""
    if p.result is not None:
        return f"{p.result.stored.type}/{p.result.stored.id}"
    return p.target


class located:
    """Context manager that prefixes an entry's errors with its location in the Bundle."""

    def __init__(self, p: Planned) -> None:
        self.where = p.where

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if isinstance(exc, FhirError) and not getattr(exc, "_located", False):
            exc.issues = [
                Issue(
                    i.severity,
                    i.code,
                    f"{self.where}: {i.diagnostics}",
                    i.expression if (i.expression or "").startswith("Bundle.") else self.where,
                )
                for i in exc.issues
            ]
            exc._located = True  # type: ignore[attr-defined]


def patch_body(resource: Any, where: str) -> Any:
    """A PATCH entry carries its JSON Patch as a Binary (base64) or, leniently, as the array itself."""
    if isinstance(resource, list):
        return resource
    if isinstance(resource, dict) and resource.get("resourceType") == "Binary" and "data" in resource:
        import base64

        try:
            return orjson.loads(base64.b64decode(resource["data"]))
        except (ValueError, orjson.JSONDecodeError):
            raise InvalidRequest(
                "The PATCH Binary does not hold a JSON Patch", expression=f"{where}.resource"
            ) from None
    raise InvalidRequest(
        "A PATCH entry needs a Binary resource holding a JSON Patch", expression=f"{where}.resource"
    )


def split_url(url: str, base: str) -> tuple[list[str], str]:
    if base and url.startswith(base):
        url = url[len(base) :]
    parts = urlsplit(url)
    path = parts.path
    if "://" in url:
        raise InvalidRequest(f"request.url '{url}' is not relative to this server's base")
    return [s for s in path.strip("/").split("/") if s], parts.query


def references(node: Any) -> Iterator[str]:
    """Every `reference` string (in Reference elements, at any depth)."""
    for obj in _objects(node):
        ref = obj.get("reference")
        if isinstance(ref, str):
            yield ref


def rewrite_references(node: Any, resolve: Callable[[str], str]) -> None:
    """Replace every `reference` string (in Reference elements, at any depth) with what `resolve` returns."""
    for obj in _objects(node):
        ref = obj.get("reference")
        if isinstance(ref, str):
            obj["reference"] = resolve(ref)


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, dict):
            yield cur
            stack.extend(v for v in cur.values() if isinstance(v, dict | list))
        elif isinstance(cur, list):
            stack.extend(v for v in cur if isinstance(v, dict | list))


def sub_response(route: Callable[[FhirRequest], FhirResponse], sub: FhirRequest) -> FhirResponse:
    return route(sub)


def response_entry(resp: FhirResponse, base: str) -> Entry:
    status = f"{resp.status} {STATUS_TEXT.get(resp.status, '')}".strip()
    fields: JSON = {"response": {"status": status}}
    for header, name in (("location", "location"), ("etag", "etag")):
        if header in resp.headers:
            fields["response"][name] = resp.headers[header].removeprefix(base + "/")
    body = resp.body
    if body is not None and resp.status < 300:
        return Entry(fields, body)
    if body is not None:
        fields["response"]["outcome"] = orjson.loads(body)
    return Entry(fields)


def error_entry(err: FhirError) -> Entry:
    return Entry({"response": {"status": str(err.status), "outcome": outcome(err.issues)}})


def query_string(pairs: list[tuple[str, str]]) -> str:
    return urlencode(pairs)
