"""Access restrictions in a small typed form, and the SQL that enforces them inside a query.

A `Restriction` is what one caller may see, independent of what it asked for. The store ANDs its SQL into the
WHERE clause of every query (read by id, vread, history, search, counts, includes), before LIMIT/OFFSET/COUNT,
so nothing hidden is fetched, counted or paged over (architecture.md: "access compiled into the query").

    sql, args = restriction_sql(restriction, "r", dialect=store.dialect, criteria_sql=compile_criteria)
    if sql:
        where += f" AND {sql}"; params += args

The alias must be a row with `rid`, `type` and `version` columns: `resources` (current versions) or `versions`
(history), so one fragment serves both. It reads the store's `compartment` table and the access tables kept by
`sharedcare.access.tables` (membership, labels, relationships, consents, grants). Every value is a bound `?`
parameter; call `dialect.sql()` on the finished statement as for any other query.

A row passes when:
- its type is one the role may read (`types`), and any granular scope criteria for its type hold;
- every patient whose compartment holds it (now or in any earlier version) passes the `PatientGate`;
- none of its sensitivity categories is `withheld`, unless that version came from `withheld_except_org`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from sharedcare.access.scopes import Criteria

CriteriaSql = Callable[[str, Criteria, str], tuple[str, list[Any]]]
"""(type, criteria, alias) → a condition that the row `alias` matches the search criteria (granular scopes)."""


@dataclass(frozen=True, slots=True)
class PatientGate:
    """Which patients' data may be seen. Each enabled clause must hold for every patient a row belongs to.

    `only`: exactly these patients (patient users; `patient/` scopes in a launch context).
    `parties` + `since`: a legitimate relationship (access_relationship) with one of these parties, not ended
    before `since`; or an unexpired grant (break glass, self-claim) held by `grant_subject`.
    `honour_objection` / `denied_org`: exclude active whole-record objections and restrictions against this
    organisation; an unexpired break-glass grant overrides both.
    `secondary_opt_outs`: exclude National Data Opt-out and Type 1 opt-out patients (secondary use).
    """

    now: str
    only: frozenset[str] | None = None
    relationship_required: bool = False
    parties: tuple[str, ...] = ()
    since: str | None = None
    grant_subject: str | None = None
    honour_objection: bool = True
    denied_org: str | None = None
    secondary_opt_outs: bool = False


@dataclass(frozen=True, slots=True)
class Restriction:
    """What the store must AND into every query for one caller. `Restriction()` restricts nothing."""

    deny_all: bool = False
    types: frozenset[str] | None = None
    patients: PatientGate | None = None
    withheld: frozenset[str] = frozenset()
    withheld_except_org: str | None = None
    criteria: tuple[tuple[str, tuple[Criteria, ...]], ...] = ()  # (type, alternatives) from granular scopes

    @property
    def unrestricted(self) -> bool:
        return self == UNRESTRICTED

    def without_sensitivity(self) -> Restriction:
        """The same restriction with nothing withheld: counting the difference tells that items were withheld."""
        return replace(self, withheld=frozenset(), withheld_except_org=None)


UNRESTRICTED = Restriction()


def restriction_to_json(r: Restriction) -> dict[str, Any]:
    """A restriction as JSON, to bind a background job (a bulk export) to the caller who started it."""
    gate = r.patients
    return {
        "deny_all": r.deny_all,
        "types": sorted(r.types) if r.types is not None else None,
        "patients": None if gate is None else {
            "now": gate.now,
            "only": sorted(gate.only) if gate.only is not None else None,
            "relationship_required": gate.relationship_required,
            "parties": list(gate.parties),
            "since": gate.since,
            "grant_subject": gate.grant_subject,
            "honour_objection": gate.honour_objection,
            "denied_org": gate.denied_org,
            "secondary_opt_outs": gate.secondary_opt_outs,
        },
        "withheld": sorted(r.withheld),
        "withheld_except_org": r.withheld_except_org,
        "criteria": [[t, [list(map(list, c)) for c in alts]] for t, alts in r.criteria],
    }


def restriction_from_json(data: dict[str, Any]) -> Restriction:
    g = data.get("patients")
    gate = None
    if g is not None:
        gate = PatientGate(
            g["now"],
            only=frozenset(g["only"]) if g.get("only") is not None else None,
            relationship_required=bool(g.get("relationship_required")),
            parties=tuple(g.get("parties") or ()),
            since=g.get("since"),
            grant_subject=g.get("grant_subject"),
            honour_objection=bool(g.get("honour_objection", True)),
            denied_org=g.get("denied_org"),
            secondary_opt_outs=bool(g.get("secondary_opt_outs")),
        )
    return Restriction(
        deny_all=bool(data.get("deny_all")),
        types=frozenset(data["types"]) if data.get("types") is not None else None,
        patients=gate,
        withheld=frozenset(data.get("withheld") or ()),
        withheld_except_org=data.get("withheld_except_org"),
        criteria=tuple(
            (t, tuple(tuple((k, v) for k, v in c) for c in alts)) for t, alts in data.get("criteria") or ()
        ),
    )


def restriction_sql(
    r: Restriction, alias: str = "r", *, criteria_sql: CriteriaSql | None = None
) -> tuple[str, list[Any]]:
    """The condition on row `alias` that enforces `r`, with its parameters; ("", []) when unrestricted."""
    if r.deny_all:
        return "1 = 0", []
    conds: list[str] = []
    args: list[Any] = []
    if r.types is not None:
        if not r.types:
            return "1 = 0", []
        conds.append(f"{alias}.type IN ({_marks(r.types)})")
        args += sorted(r.types)
    for type, alternatives in r.criteria:
        sql, cargs = _criteria(type, alternatives, alias, criteria_sql)
        conds.append(sql)
        args += cargs
    if r.patients is not None:
        sql, gargs = patients_sql(r.patients, alias)
        conds.append(sql)
        args += gargs
    if r.withheld:
        sql, sargs = sensitivity_sql(r.withheld, r.withheld_except_org, alias)
        conds.append(sql)
        args += sargs
    return " AND ".join(conds), args


def patients_sql(gate: PatientGate, alias: str) -> tuple[str, list[Any]]:
    """Every patient compartment of the row, current (`compartment`) or past (`access_member`), passes the gate.

    A past patient that is also a current one is not checked twice."""
    ok_c, args_c = gate_sql(gate, "c.comp_id")
    ok_m, args_m = gate_sql(gate, "m.patient")
    sql = (
        f"NOT EXISTS (SELECT 1 FROM compartment c WHERE c.rid = {alias}.rid AND c.comp_type = 'Patient' "
        f"AND NOT ({ok_c})) AND NOT EXISTS (SELECT 1 FROM access_member m WHERE m.rid = {alias}.rid "
        "AND NOT EXISTS (SELECT 1 FROM compartment c2 WHERE c2.rid = m.rid AND c2.comp_type = 'Patient' "
        f"AND c2.comp_id = m.patient) AND NOT ({ok_m}))"
    )
    return sql, [*args_c, *args_m]


def gate_sql(gate: PatientGate, patient: str) -> tuple[str, list[Any]]:
    """The condition that the patient id in expression `patient` passes the gate."""
    conds: list[str] = []
    args: list[Any] = []
    if gate.only is not None:
        if not gate.only:
            return "1 = 0", []
        conds.append(f"{patient} IN ({_marks(gate.only)})")
        args += sorted(gate.only)
    if gate.relationship_required:
        alts: list[str] = []
        if gate.parties:
            alts.append(
                f"EXISTS (SELECT 1 FROM access_relationship lr WHERE lr.patient = {patient} "
                f"AND lr.party IN ({_marks(gate.parties)}) AND (lr.end_at IS NULL OR lr.end_at >= ?))"
            )
            args += [*gate.parties, gate.since or gate.now]
        if gate.grant_subject:
            alts.append(
                f"EXISTS (SELECT 1 FROM access_grant g WHERE g.patient = {patient} AND g.subject = ? "
                "AND g.expires_at > ?)"
            )
            args += [gate.grant_subject, gate.now]
        conds.append(f"({' OR '.join(alts)})" if alts else "1 = 0")
    blocks: list[tuple[str, list[Any]]] = []
    if gate.honour_objection:
        blocks.append(("k.kind = 'objection'", []))
    if gate.denied_org:
        blocks.append(("k.kind = 'org-deny' AND k.party = ?", [f"Organization/{gate.denied_org}"]))
    for cond, bargs in blocks:
        sql = (
            f"NOT EXISTS (SELECT 1 FROM access_consent k WHERE k.patient = {patient} AND {cond} "
            "AND (k.start_at IS NULL OR k.start_at <= ?) AND (k.end_at IS NULL OR k.end_at >= ?))"
        )
        cargs = [*bargs, gate.now, gate.now]
        if gate.grant_subject:
            sql = (
                f"({sql} OR EXISTS (SELECT 1 FROM access_grant bg WHERE bg.patient = {patient} "
                "AND bg.subject = ? AND bg.kind = 'break-glass' AND bg.expires_at > ?))"
            )
            cargs += [gate.grant_subject, gate.now]
        conds.append(sql)
        args += cargs
    if gate.secondary_opt_outs:
        conds.append(
            f"NOT EXISTS (SELECT 1 FROM access_consent o WHERE o.patient = {patient} "
            "AND o.kind IN ('secondary-opt-out', 'type1-opt-out') "
            "AND (o.start_at IS NULL OR o.start_at <= ?) AND (o.end_at IS NULL OR o.end_at >= ?))"
        )
        args += [gate.now, gate.now]
    return (" AND ".join(conds) if conds else "1 = 1"), args


def sensitivity_sql(withheld: frozenset[str], except_org: str | None, alias: str) -> tuple[str, list[Any]]:
    """No withheld category labels this version of the row, unless the version came from `except_org`."""
    sql = (
        f"NOT EXISTS (SELECT 1 FROM access_label l WHERE l.rid = {alias}.rid AND l.version = {alias}.version "
        f"AND l.category IN ({_marks(withheld)})"
    )
    args: list[Any] = sorted(withheld)
    if except_org:
        sql += " AND (l.source_org IS NULL OR l.source_org <> ?)"
        args.append(except_org)
    return sql + ")", args


def _criteria(
    type: str, alternatives: tuple[Criteria, ...], alias: str, criteria_sql: CriteriaSql | None
) -> tuple[str, list[Any]]:
    """Rows of `type` must match one granular scope's criteria; without a compiler the type is refused."""
    parts, args = [f"{alias}.type <> ?"], [type]
    if criteria_sql is not None:
        for criteria in alternatives:
            sql, cargs = criteria_sql(type, criteria, alias)
            parts.append(f"({sql})" if sql else "1 = 1")
            args += cargs
    return f"({' OR '.join(parts)})", args


def _marks(values: Any) -> str:
    return ", ".join("?" * len(values))
