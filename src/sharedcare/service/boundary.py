"""The security boundary around the router: every FHIR request is authorised and audited here.

    asgi edge (actor from the bearer token) → Boundary.handle_http → checks → Router.handle → Boundary → audit

Moments, in order (architecture.md, "named moments"):
- request_started: classify the interaction; check scopes and role (403 before anything runs); refuse writes to
  AuditEvent; stamp `meta.source` on writes; serve the audit trail, access log, break glass and self-claims.
- query_restrictions: the caller's Restriction is put on the request context; the restricted store reads it
  for read, vread, history, search (matches, totals, includes, chain and _has inner searches), conditional
  matching and $everything/$match; $export is bound to it at kick-off (`_bind_export`). A Patient search by
  exact NHS number by someone who may break glass also returns banner fields of withheld Patients
  (`_discoverable`), so the patient can be found to break glass.
- resource_precommit: the repository write hooks (access tables and checks, then the AuditEvent) run inside the
  write transaction.
- resources_shown: pseudonymise for secondary use; then audit what was shown, or the refusal.

Bundle entries come back through `handle_nested` with the outer caller, so each entry is checked and audited.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from sharedcare.access import grants
from sharedcare.access.actor import INTERNAL, Actor, RequestContext, current, request_context
from sharedcare.access.interaction import Interaction, classify
from sharedcare.access.policy import NOT_AVAILABLE, AccessPolicy, now_instant
from sharedcare.access.redact import Pseudonymiser
from sharedcare.access.restrictions import Restriction, restriction_to_json
from sharedcare.access.roles import PATIENT, SECONDARY_USE
from sharedcare.access.tables import source_uri
from sharedcare.audit.events import OUTCOME_MINOR, OUTCOME_SERIOUS, OUTCOME_SUCCESS, AuditRecord, build
from sharedcare.audit.search import AuditSearch
from sharedcare.audit.trail import AuditTrail
from sharedcare.errors import FhirError, Forbidden, InvalidRequest, MethodNotAllowed, NotFound, Unauthorized
from sharedcare.fhir.resource import parse_json
from sharedcare.types import FhirRequest, FhirResponse

Handler = Callable[[FhirRequest], FhirResponse]
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
WRITE_METHODS = {"POST": "c", "PUT": "u", "PATCH": "u", "DELETE": "d"}
GRANT_OPERATIONS = {"$break-glass": grants.BREAK_GLASS, "$claim-relationship": grants.SELF_CLAIM}
# Import and record-linkage curation run outside any caller's restrictions: the operator's only. ($export is bound
# to its caller instead: see `_bind_export`.)
OPERATOR_OPERATIONS = frozenset(
    {"$import", "$merge", "$unmerge", "$relink", "$review-queue", "$review-accept", "$review-reject"}
)
EXPORT_REFUSED = (
    "$export is available to the store's operator and, for secondary use, to analysts (with opt-outs applied and "
    "identifiers pseudonymised)"
)
APPEND_ONLY = "The audit trail is append-only: AuditEvents cannot be created, changed or deleted"


@dataclass(frozen=True)
class BoundaryConfig:
    resource_types: frozenset[str]
    break_glass_minutes: int = 240
    self_claim_hours: int = 72


class Boundary:
    def __init__(
        self,
        route: Handler,
        *,
        store: Any,
        policy: AccessPolicy,
        trail: AuditTrail,
        audit_search: AuditSearch,
        pseudonymiser: Pseudonymiser,
        config: BoundaryConfig,
    ) -> None:
        self.route, self.store, self.policy = route, store, policy
        self.trail, self.audit_search, self.pseudonymiser = trail, audit_search, pseudonymiser
        self.config = config
        self.types = config.resource_types

    # --- entry points -------------------------------------------------------------------------------------
    def handle_http(self, req: FhirRequest) -> FhirResponse:
        """A request from the API edge: it must carry an actor (fail closed if the edge did not set one)."""
        if req.actor is None:
            if req.path == ["metadata"]:
                return self.route(req)  # the CapabilityStatement is public: it tells clients how to log in
            raise Unauthorized("Authentication is required")
        return self._handle(req, req.actor, defer_audit=True)

    def handle(self, req: FhirRequest) -> FhirResponse:
        """An in-process request (CLI, tests): the caller's actor, or the server itself."""
        return self._handle(req, req.actor or INTERNAL)

    def handle_nested(self, req: FhirRequest) -> FhirResponse:
        """A Bundle entry: the outer request's caller."""
        ctx = current()
        return self._handle(req, ctx.actor if ctx is not None else (req.actor or INTERNAL))

    def restriction_for(self, type: str | None, perm: str) -> Restriction | None:
        """The current caller's restriction (None: unrestricted), cached on the request context."""
        ctx = current()
        if ctx is None:
            return None
        key = (type, perm)
        cache = ctx.restrictions
        if key not in cache:
            restriction = self.policy.restriction(ctx.actor, type, perm)
            cache[key] = None if restriction.unrestricted else restriction
        return cache[key]

    # --- one request ----------------------------------------------------------------------------------------
    def _handle(self, req: FhirRequest, actor: Actor, *, defer_audit: bool = False) -> FhirResponse:
        """With `defer_audit`, a success's audit record is left for the edge to await (`pending_audit`) instead of
        holding this thread until the group commit; the edge still sends nothing before it is committed."""
        parent = current()
        request_id = parent.request_id if parent else _request_id(req)
        with request_context(actor, request_id) as ctx:
            it = classify(req, self.types)
            ctx.interaction = it
            try:
                resp = self._dispatch(req, ctx, it)
            except FhirError as err:
                self._audit(ctx, req, it, OUTCOME_MINOR if err.status < 500 else OUTCOME_SERIOUS, err.message)
                raise
            except Exception:
                self._audit(ctx, req, it, OUTCOME_SERIOUS, "Internal server error")
                raise
            resp.pending_audit = self._audit(ctx, req, it, OUTCOME_SUCCESS, None, resp, defer=defer_audit)
        return resp

    def _dispatch(self, req: FhirRequest, ctx: RequestContext, it: Interaction) -> FhirResponse:
        actor = ctx.actor
        if it.kind == "capabilities":
            return self.route(req)
        if it.type == "AuditEvent":
            return self._audit_api(req, ctx, it)
        if it.kind == "operation":
            return self._operation(req, ctx, it)
        if it.kind in ("batch", "transaction"):
            if it.kind == "transaction":
                self._prepare_transaction(req, actor)
            return self.route(req)
        if it.perm is None or (it.type is not None and it.type not in self.types):
            return self.route(req)  # the router answers unknown paths and types
        self.policy.check(actor, it.type or "*", it.perm)
        if it.perm in ("c", "u", "d"):
            self._prepare_write(req, actor, it)
            return self.route(req)
        if it.compartment:
            self._check_compartment(actor, it.compartment)
        self.restriction_for(it.type, it.perm)
        resp = self.route(req)
        if it.kind == "search-type" and it.type == "Patient":
            resp = self._discoverable(req, actor, resp)
        return self._shown(actor, resp)

    # --- finding a patient to break glass for -------------------------------------------------------------
    def _discoverable(self, req: FhirRequest, actor: Actor, resp: FhirResponse) -> FhirResponse:
        """`Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|N` by someone who may break glass or self-claim:
        Patients with that exact NHS number that the search withheld come back as banner fields only (tagged
        SUBSETTED), with an outcome saying how to get access, so the person can be found before access is granted.
        Nothing else is shown: no clinical data, no address, and only for an exact NHS number."""
        nhs = _exact_nhs_number(req)
        if nhs is None or resp.status != 200 or not resp.body or actor.unrestricted:
            return resp
        if self.restriction_for("Patient", "s") is None:
            return resp
        kinds = []
        for kind in (grants.BREAK_GLASS, grants.SELF_CLAIM):
            try:
                grants.check_may_request(actor, kind)
                kinds.append(kind)
            except Forbidden:
                pass
        if not kinds:
            return resp
        bundle = orjson.loads(resp.body)
        entries = bundle.get("entry") or []
        shown = {(e.get("resource") or {}).get("id") for e in entries if isinstance(e, dict)}
        hidden = [(pid, body) for pid, body in self._patients_by_nhs_number(nhs) if pid not in shown]
        if not hidden:
            return resp
        ways = " or ".join("break glass" if k == grants.BREAK_GLASS else "self-claim a relationship" for k in kinds)
        note = (
            "Only identifying details are shown for a patient whose record is not available to you; "
            f"to open the record, {ways} (Patient/[id]/$break-glass, Patient/[id]/$claim-relationship) with a reason"
        )
        outcome = {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "suppressed", "diagnostics": note}]}
        extra = [{"fullUrl": f"urn:uuid:{_uuid()}", "resource": outcome, "search": {"mode": "outcome"}}]
        for pid, body in hidden:
            extra.append({"fullUrl": f"{req.base_url}/Patient/{pid}", "resource": _banner(body),
                          "search": {"mode": "match"}})
        bundle["entry"] = [*extra, *entries]
        if isinstance(bundle.get("total"), int):
            bundle["total"] += len(hidden)
        resp.body = orjson.dumps(bundle)
        return resp

    def _patients_by_nhs_number(self, nhs: str) -> list[tuple[str, bytes]]:
        false = "FALSE" if self.store.dialect.name == "postgresql" else "0"
        sql = (
            "SELECT r.id, v.body FROM idx_token i JOIN resources r ON r.rid = i.rid JOIN versions v ON v.seq = r.seq "
            "WHERE i.type = 'Patient' AND i.param = 'identifier' AND i.system = ? AND i.code = ? "
            f"AND r.deleted = {false} ORDER BY r.rid LIMIT 20"
        )
        with self.store.reading() as cur:
            cur.execute(self.store.dialect.sql(sql), [NHS_NUMBER_SYSTEM, nhs])
            return [(str(row[0]), bytes(row[1])) for row in cur.fetchall() if row[1] is not None]

    # --- writes -------------------------------------------------------------------------------------------
    def _prepare_write(self, req: FhirRequest, actor: Actor, it: Interaction) -> None:
        """Record the writer as the source; a patch may not rewrite it."""
        if actor.unrestricted or it.perm == "d":
            return
        if req.parsed is None and req.body:
            req.parsed = parse_json(req.body)
        if it.kind in ("patch", "conditional-patch"):
            _refuse_source_patch(req.parsed)
        elif isinstance(req.parsed, dict):
            _stamp_source(req.parsed, actor)

    def _prepare_transaction(self, req: FhirRequest, actor: Actor) -> None:
        """Check every write entry's type-level rights before the transaction opens (all or nothing)."""
        bundle = req.parsed if req.parsed is not None else parse_json(req.body)
        req.parsed = bundle
        entries = bundle.get("entry") if isinstance(bundle, dict) else None
        for n, entry in enumerate(entries if isinstance(entries, list) else []):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict):
                continue
            perm = WRITE_METHODS.get(str(request.get("method", "")).upper())
            url = str(request.get("url", "")).removeprefix(req.base_url).lstrip("/")
            type = url.split("?")[0].split("/")[0]
            if perm is None or type not in self.types:
                continue
            if type == "AuditEvent":
                raise MethodNotAllowed(APPEND_ONLY, expression=f"Bundle.entry[{n}]")
            try:
                self.policy.check(actor, type, perm)
            except Forbidden as err:
                raise Forbidden(f"Bundle.entry[{n}]: {err.message}", expression=f"Bundle.entry[{n}]") from None
            resource = entry.get("resource")
            patchless = isinstance(resource, dict) and resource.get("resourceType") != "Binary"  # Binary: a patch
            if not actor.unrestricted and perm in ("c", "u") and patchless:
                _stamp_source(resource, actor)

    # --- reads ----------------------------------------------------------------------------------------------
    def _check_compartment(self, actor: Actor, compartment: str) -> None:
        comp_type, _, comp_id = compartment.partition("/")
        if actor.unrestricted or comp_type != "Patient":
            return
        restriction = self.restriction_for("Patient", "r")
        if restriction is None:
            return
        if restriction.deny_all or restriction.patients is None:
            raise Forbidden(NOT_AVAILABLE)
        with self.store.reading() as cur:
            if not self.policy.patient_passes(cur, self.store.dialect, restriction.patients, comp_id):
                raise Forbidden(NOT_AVAILABLE)

    def _shown(self, actor: Actor, resp: FhirResponse) -> FhirResponse:
        """resources_shown: pseudonymise for secondary use."""
        redaction = self.policy.redaction(actor)
        if redaction is not None and redaction.pseudonymise and resp.body and resp.status < 300:
            resp.body = self.pseudonymiser.body(resp.body)
        return resp

    # --- operations ------------------------------------------------------------------------------------------
    def _operation(self, req: FhirRequest, ctx: RequestContext, it: Interaction) -> FhirResponse:
        actor, op = ctx.actor, it.operation or ""
        if op in GRANT_OPERATIONS:
            return self._grant(req, ctx, it, GRANT_OPERATIONS[op])
        if op == "$access-log":
            return self._access_log(req, ctx, it)
        if op == "$validate":
            return self.route(req)
        if op in OPERATOR_OPERATIONS and not actor.unrestricted:
            raise Forbidden(f"{op} is available to the store's operator only")
        if op == "$export" and not actor.unrestricted:
            self._bind_export(ctx)
            return self._shown(actor, self.route(req))
        if op == "$export-poll-status" and not actor.unrestricted:
            return self.route(req)  # the job's owner is checked by the bulk layer (bound at kick-off)
        self.policy.check(actor, it.type or "*", "r")
        if it.type == "Patient" and it.id:
            self._check_compartment(actor, f"Patient/{it.id}")
        return self._shown(actor, self.route(req))

    def _bind_export(self, ctx: RequestContext) -> None:
        """`$export` by anyone but the operator: secondary use only, bound to the caller's restriction (opt-outs,
        the role's types, sensitivity) and pseudonymised as the policy says. Direct-care roles, organisation
        systems and patients are refused: a bulk copy of the record outside the viewer is not direct care."""
        actor = ctx.actor
        if actor.purpose != SECONDARY_USE or actor.policy is None:
            raise Forbidden(EXPORT_REFUSED)
        restriction = self.policy.restriction(actor, None, "r")
        if restriction.deny_all or restriction.criteria:
            raise Forbidden(EXPORT_REFUSED)
        redaction = self.policy.redaction(actor)
        ctx.export_access = {
            "access": restriction_to_json(restriction),
            "pseudonymise": bool(redaction and redaction.pseudonymise),
            "owner": export_owner(actor),
        }

    def _grant(self, req: FhirRequest, ctx: RequestContext, it: Interaction, kind: str) -> FhirResponse:
        actor = ctx.actor
        if it.type != "Patient" or not it.id or req.method != "POST":
            raise MethodNotAllowed(f"{it.operation} is POST [base]/Patient/{{id}}/{it.operation}")
        grants.check_may_request(actor, kind)
        reason, code, minutes = grants.parse_reason(_parameters(req))
        limit = self.config.break_glass_minutes if kind == grants.BREAK_GLASS else self.config.self_claim_hours * 60
        found = self.store.read("Patient", it.id)
        if found is None or found.deleted:
            raise NotFound(f"Patient/{it.id} is not known")
        with self.store.writing() as cur:
            grant = grants.create_grant(
                cur, self.store.dialect, actor, it.id, kind, reason, code, min(minutes or limit, limit)
            )
            record = self._record(ctx, req, it, OUTCOME_SUCCESS, None)
            record.patients, record.alert = {it.id}, kind
            record.break_glass_reason = reason if kind == grants.BREAK_GLASS else None
            record.outcome_desc = f"{kind}: {reason}"
            self.trail.write_in(cur, [build(record)])
        ctx.audited = True
        self.trail.seal_soon()
        return FhirResponse(200, orjson.dumps(grant.to_parameters()))

    def _access_log(self, req: FhirRequest, ctx: RequestContext, it: Interaction) -> FhirResponse:
        """`GET Patient/{id}/$access-log`: who looked at this record (the patient themself, or audit roles)."""
        if it.type != "Patient" or not it.id:
            raise NotFound("$access-log is GET [base]/Patient/{id}/$access-log")
        patient = self._audit_scope(ctx.actor, "s")
        if patient is not None and patient != it.id:
            raise Forbidden(NOT_AVAILABLE)
        self.trail.flush()
        query = [(k, v) for k, v in req.query if k != "patient"]
        sub = FhirRequest(req.method, req.path, query, base_url=req.base_url)
        path = f"Patient/{it.id}/$access-log"
        return self.audit_search.search(sub, patient=it.id, path=path, redact=patient is not None)

    # --- the audit trail as a FHIR API -----------------------------------------------------------------------
    def _audit_api(self, req: FhirRequest, ctx: RequestContext, it: Interaction) -> FhirResponse:
        if it.perm in ("c", "u", "d") or it.kind in ("batch", "transaction"):
            raise MethodNotAllowed(APPEND_ONLY)
        if it.kind not in ("read", "search-type"):
            raise MethodNotAllowed("The audit trail offers read and search only")
        patient = self._audit_scope(ctx.actor, "r" if it.kind == "read" else "s")
        self.trail.flush()
        if it.kind == "read":
            assert it.id is not None
            return self.audit_search.read(it.id, patient=patient)
        return self.audit_search.search(req, patient=patient, redact=patient is not None)

    def _audit_scope(self, actor: Actor, perm: str) -> str | None:
        """None: the whole trail (privacy officer, operator); a patient id: only that patient's events."""
        self.policy.check(actor, "AuditEvent", perm)
        if actor.unrestricted:
            return None
        policy = actor.policy
        if policy is not None and policy.reads_audit:
            return None
        if actor.is_person and actor.role == PATIENT and actor.patient:
            return actor.patient
        raise Forbidden(f"The role '{actor.role}' may not read the audit trail")

    # --- audit ----------------------------------------------------------------------------------------------
    def _audit(
        self,
        ctx: RequestContext,
        req: FhirRequest,
        it: Interaction,
        outcome: str,
        desc: str | None,
        resp: FhirResponse | None = None,
        *,
        defer: bool = False,
    ) -> Any:
        """Record the request; returns the pending record when `defer` leaves the wait to the caller."""
        if it.kind == "capabilities" or ctx.audited:
            return None
        if outcome == OUTCOME_SUCCESS and ctx.writes:
            self.trail.seal_soon()  # the events were staged inside the write transaction
            return None
        record = self._record(ctx, req, it, outcome, desc)
        if resp is not None and resp.body and _shows_bundle(it, resp.body):
            record.response = resp.body
        wait = self.trail.sync_reads
        job = self.trail.record(record, wait=wait and not defer)
        return job if wait and defer else None

    def _record(
        self, ctx: RequestContext, req: FhirRequest, it: Interaction, outcome: str, desc: str | None
    ) -> AuditRecord:
        entities: list[str] = []
        if it.type and it.id:
            entities.append(f"{it.type}/{it.id}" + (f"/_history/{it.version}" if it.version else ""))
        patients = set()
        if it.compartment and it.compartment.startswith("Patient/"):
            patients.add(it.compartment.split("/", 1)[1])
        query = urlencode(req.query) if req.query and (it.kind.startswith("search") or it.operation) else None
        return AuditRecord(
            actor=ctx.actor,
            request_id=ctx.request_id,
            kind=it.kind,
            action=it.action,
            outcome=outcome,
            recorded=now_instant(),
            outcome_desc=desc,
            entities=entities,
            patients=patients,
            query=query,
            operation=it.operation,
        )


def _shows_bundle(it: Interaction, body: bytes) -> bool:
    """Searches, histories and operations answering with a Bundle: the entries shown are audited."""
    return it.kind.startswith(("search", "history")) or (it.kind == "operation" and b'"Bundle"' in body[:200])


NHS_NUMBER_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}
BANNER_FIELDS = ("name", "gender", "birthDate", "managingOrganization")
PAGING_PARAMS = frozenset({"_count", "_format", "_pretty", "_total", "_summary", "_elements"})


def _exact_nhs_number(req: FhirRequest) -> str | None:
    """The NHS number when the search is exactly `identifier=https://fhir.nhs.uk/Id/nhs-number|NNNNNNNNNN`."""
    idents = [v for k, v in req.query if k == "identifier"]
    if len(idents) != 1 or any(k not in PAGING_PARAMS and k != "identifier" for k, _ in req.query):
        return None
    system, _, code = idents[0].partition("|")
    return code if system == NHS_NUMBER_SYSTEM and len(code) == 10 and code.isdigit() else None


def _banner(body: bytes) -> dict[str, Any]:
    """The banner fields of a Patient (name, gender, birth date, NHS number, managing organisation), SUBSETTED."""
    full = orjson.loads(body)
    out: dict[str, Any] = {"resourceType": "Patient", "id": full.get("id"), "meta": {"tag": [SUBSETTED]}}
    nhs = [i for i in full.get("identifier") or [] if isinstance(i, dict) and i.get("system") == NHS_NUMBER_SYSTEM]
    if nhs:
        out["identifier"] = [{"system": NHS_NUMBER_SYSTEM, "value": nhs[0].get("value")}]
    for name in BANNER_FIELDS:
        if name in full:
            out[name] = full[name]
    return out


def _uuid() -> str:
    import uuid

    return str(uuid.uuid4())


def export_owner(actor: Actor) -> str:
    """Who a bound export belongs to: the same person through the same client."""
    return f"{actor.kind}|{actor.subject}|{actor.client_id}"


def _request_id(req: FhirRequest) -> str:
    from sharedcare.access.actor import new_request_id

    given = req.header("x-request-id")
    return given if given and REQUEST_ID.match(given) else new_request_id()


def _stamp_source(resource: dict[str, Any], actor: Actor) -> None:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        meta = {}
        resource["meta"] = meta
    meta["source"] = source_uri(actor.organisation, actor.client_id)


def _refuse_source_patch(patch: Any) -> None:
    for op in patch if isinstance(patch, list) else []:
        path = str(op.get("path", "")) if isinstance(op, dict) else ""
        if path in ("/meta", "/meta/source") or path.startswith("/meta/source"):
            raise Forbidden("meta.source records who wrote a resource and cannot be patched")


def _parameters(req: FhirRequest) -> dict[str, str]:
    """Operation inputs from a Parameters body, a form body, or the query string."""
    params = {k: v for k, v in req.query}
    body = req.parsed
    if body is None and req.body:
        text = req.body.decode("utf-8", "replace")
        if text.lstrip().startswith("{"):
            body = parse_json(req.body)
        else:
            params.update(parse_qsl(text))
    if isinstance(body, dict):
        if body.get("resourceType") != "Parameters":
            raise InvalidRequest("The operation takes a Parameters resource")
        for p in body.get("parameter") or []:
            if isinstance(p, dict) and "name" in p:
                value = next((v for k, v in p.items() if k.startswith("value")), None)
                if isinstance(value, dict):
                    value = value.get("code") or value.get("text")
                if value is not None:
                    params[str(p["name"])] = str(value)
    return params
