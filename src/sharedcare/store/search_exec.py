"""Run a compiled search on an open read cursor: one page of matches, the total if asked, and includes.

Paging is keyset paging inside a snapshot (http://hl7.org/fhir/R4/http.html#paging). The first page fixes the
snapshot as the highest resource key (`rid`) then visible; later pages see only resources up to it, so resources
created after the search started never shift or join its pages. Each page continues from the sort-key values and
`rid` of the row it follows (or precedes, going backwards), not from an offset, so deletions and updates of rows
on earlier pages never make later pages skip or repeat a resource. A resource updated so that it no longer
matches drops out; one whose sort value changes is found where its new value puts it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sharedcare.errors import InvalidRequest
from sharedcare.search.model import (
    Include,
    Match,
    PagePosition,
    SearchRequest,
    SearchResult,
)
from sharedcare.store.schema import Dialect
from sharedcare.store.searchsql import Part, SqlCompiler
from sharedcare.types import Issue, StoredResource

MAX_INCLUDED = 1000  # includes per page, all rounds of :iterate together
MAX_ITERATE_ROUNDS = 10
CHUNK = 500


Restrict = Callable[[str], tuple[str, list[Any]]]
"""alias -> (condition, args) that a `resources` row must also meet: the caller's access restriction, ANDed into
the matches (before LIMIT and COUNT) and into what `_include`/`_revinclude` add."""


WITHHELD_NOTICE = "Some information is withheld"


def run_search(
    cur: Any,
    dialect: Dialect,
    req: SearchRequest,
    position: PagePosition | None,
    restrict: Restrict | None = None,
    unlabelled: Restrict | None = None,
) -> SearchResult:
    """One page (one statement: keys, bodies and, on a first page, the snapshot), the total if asked, includes.

    `restrict` is ANDed into the matches, the count, includes and every chain/_has inner search. `unlabelled` (the
    same restriction without the sensitivity part) asks for a cheap check that something matched but was withheld
    for sensitivity: then an information issue `suppressed` says so, never what."""
    sql = SqlCompiler(dialect, _estimator(cur, dialect), restrict)
    extra: list[Part] = []
    if req.compartment is not None:
        extra.append(sql.compartment("r", req.types, *req.compartment))
    where, args = sql.where("r", req.types, req.criteria, extra)
    if position is not None:  # a first page sees everything its own read sees, and reports that as its snapshot
        where += " AND r.rid <= ?"
        args.append(position.snapshot)
    result = SearchResult([], [], position.snapshot if position is not None else 0, False)
    if restrict is not None:
        rsql, rargs = restrict("r")
        if rsql:
            if unlabelled is not None and _withheld(cur, dialect, where, args, rsql, rargs, unlabelled):
                result.issues.append(Issue("information", "suppressed", WITHHELD_NOTICE))
            where += f" AND {rsql}"
            args += rargs
    if req.wants_total:
        shortcut = None if restrict is not None else sql.count_shortcut(req.types, req.criteria, extra)
        if shortcut is not None:
            text, sargs = shortcut
            if position is not None:
                text, sargs = text + " WHERE d.rid <= ?", [*sargs, position.snapshot]
            cur.execute(dialect.sql(text), sargs)
        else:
            cur.execute(dialect.sql(f"SELECT COUNT(*) FROM resources r WHERE {where}"), args)
        result.total = int(cur.fetchone()[0])
    if req.count == 0 or req.summary == "count":
        return result
    nkeys = len(req.sort)
    rows, more = _page(cur, sql, req, where, args, position)
    result.more = more
    result.matches = [
        Match(StoredResource(r[nkeys + 1], r[nkeys + 2], r[nkeys + 3], r[nkeys + 4],
                             None if r[nkeys + 5] is None else bytes(r[nkeys + 5]), r[nkeys + 6]),
              (*r[1 : nkeys + 1], r[0]))
        for r in rows
    ]
    if position is None:
        result.snapshot = int(rows[0][-1]) if rows else 0
    if req.total == "none" and result.total is None and position is None and req.offset == 0 and not more:
        result.total = len(result.matches)  # the whole result is on this page: its size is free
    if req.includes or req.revincludes:
        page = [(r[0], m.resource) for r, m in zip(rows, result.matches, strict=True)]
        result.included, truncated = includes(cur, dialect, req, page, restrict)
        if truncated:
            result.issues.append(Issue("warning", "too-costly",
                                       f"Included resources were cut at {MAX_INCLUDED} for this page"))
    return result


def _withheld(
    cur: Any, dialect: Dialect, where: str, args: list[Any], rsql: str, rargs: list[Any], unlabelled: Restrict
) -> bool:
    """Does a row match that the caller could see but for a sensitivity label? (One EXISTS, stops at the first.)"""
    usql, uargs = unlabelled("r")
    text = f"SELECT 1 FROM resources r WHERE {where} AND {usql or '1 = 1'} AND NOT ({rsql}) LIMIT 1"
    cur.execute(dialect.sql(text), [*args, *uargs, *rargs])
    return cur.fetchone() is not None


def _estimator(cur: Any, dialect: Dialect) -> Callable[[str, list[Any]], int] | None:
    """Capped row counts for choosing a driving criterion on SQLite (PostgreSQL's planner has statistics)."""
    if dialect.name == "postgresql":
        return None

    def estimate(text: str, args: list[Any]) -> int:
        cur.execute(dialect.sql(text), args)
        return int(cur.fetchone()[0])

    return estimate


def max_rid(cur: Any) -> int:
    cur.execute("SELECT COALESCE(MAX(rid), 0) FROM resources")
    return int(cur.fetchone()[0])


def _page(
    cur: Any, sql: SqlCompiler, req: SearchRequest, where: str, args: list[Any], position: PagePosition | None
) -> tuple[list[tuple[Any, ...]], bool]:
    """Rows (rid, sort keys..., type, id, version, last_updated, body, method[, snapshot]) of one page in order:
    the keys are chosen (with LIMIT) in a subquery, then joined to their current versions."""
    backwards = position is not None and position.backwards
    exprs = [sql.sort_expr("r", key) for key in req.sort]
    select = ", ".join(["r.rid", *(f"{e} AS k{n}" for n, (e, _) in enumerate(exprs))])
    sel_args = [a for _, ea in exprs for a in ea]
    conds, cond_args = where, list(args)
    if position is not None and position.keys is not None:
        if len(position.keys) != len(req.sort) + 1:
            raise InvalidRequest("_cursor does not belong to this search (its sort keys differ)")
        kcond, kargs = _keyset(exprs, [k.descending for k in req.sort], list(position.keys), backwards)
        conds += f" AND ({kcond})"
        cond_args += kargs
    order = []
    for n, key in enumerate(req.sort):
        desc = key.descending != backwards
        order.append(f"k{n} {'DESC' if desc else 'ASC'} NULLS {'FIRST' if backwards else 'LAST'}")
    order.append("r.rid DESC" if backwards else "r.rid ASC")
    inner = f"SELECT {select} FROM resources r WHERE {conds} ORDER BY {', '.join(order)} LIMIT ?"
    tail: list[Any] = [req.count + 1]
    if position is None and req.offset:
        inner += " OFFSET ?"
        tail.append(req.offset)
    keys = "".join(f", p.k{n}" for n in range(len(exprs)))
    snapshot = ", (SELECT MAX(rid) FROM resources)" if position is None else ""
    outer_order = ", ".join(o.replace("k", "p.k", 1) if o.startswith("k") else o.replace("r.rid", "p.rid")
                            for o in order)
    text = (
        f"SELECT p.rid{keys}, r.type, r.id, v.version, v.last_updated, v.body, v.method{snapshot} "
        f"FROM ({inner}) p JOIN resources r ON r.rid = p.rid JOIN versions v ON v.seq = r.seq ORDER BY {outer_order}"
    )
    cur.execute(sql.d.sql(text), [*sel_args, *cond_args, *tail])
    rows = [tuple(r) for r in cur.fetchall()]
    more = len(rows) > req.count
    rows = rows[: req.count]
    if backwards:
        rows.reverse()
    return rows, more


def _keyset(
    exprs: Sequence[tuple[str, list[Any]]], descending: Sequence[bool], boundary: list[Any], backwards: bool
) -> tuple[str, list[Any]]:
    """Rows strictly after `boundary` in the page order (NULL sort values last going forwards)."""
    ors: list[str] = []
    args: list[Any] = []
    keys = [*exprs, ("r.rid", [])]
    for n, (expr, eargs) in enumerate(keys):
        ands: list[str] = []
        a: list[Any] = []
        for m in range(n):
            prev, pargs = keys[m]
            ands.append(f"{prev} IS NOT DISTINCT FROM ?")
            a += [*pargs, boundary[m]]
        value = boundary[n]
        if n == len(exprs):  # rid: never null, ascending
            ands.append(f"r.rid {'<' if backwards else '>'} ?")
            a.append(value)
        else:
            desc = descending[n] != backwards
            cmp = "<" if desc else ">"
            if value is None:
                if not backwards:
                    continue  # nothing sorts after NULL going forwards, except by a later key
                ands.append(f"{expr} IS NOT NULL")
                a += eargs
            elif backwards:
                ands.append(f"{expr} {cmp} ?")
                a += [*eargs, value]
            else:
                ands.append(f"({expr} {cmp} ? OR {expr} IS NULL)")
                a += [*eargs, value, *eargs]
        ors.append("(" + " AND ".join(ands) + ")")
        args += a
    return " OR ".join(ors), args


def load(cur: Any, dialect: Dialect, rids: Sequence[int]) -> dict[int, StoredResource]:
    """Current versions of the given resources, by rid."""
    out: dict[int, StoredResource] = {}
    for chunk in _chunks(rids):
        marks = ", ".join("?" * len(chunk))
        cur.execute(
            dialect.sql(
                "SELECT r.rid, r.type, r.id, v.version, v.last_updated, v.body, v.method FROM resources r "
                f"JOIN versions v ON v.seq = r.seq WHERE r.rid IN ({marks})"
            ),
            list(chunk),
        )
        for rid, rtype, rid_id, version, lu, body, method in cur.fetchall():
            out[rid] = StoredResource(rtype, rid_id, version, lu, None if body is None else bytes(body), method)
    return out


def includes(
    cur: Any,
    dialect: Dialect,
    req: SearchRequest,
    matches: list[tuple[int, StoredResource]],
    restrict: Restrict | None = None,
) -> tuple[list[StoredResource], bool]:
    """`_include` and `_revinclude` for a page; `:iterate` ones repeat over what was included."""
    seen = {rid for rid, _ in matches}
    found: list[StoredResource] = []
    frontier = matches
    rules = [*req.includes, *req.revincludes]
    for round_no in range(MAX_ITERATE_ROUNDS):
        active = rules if round_no == 0 else [r for r in rules if r.iterate]
        if not active or not frontier:
            break
        new: list[int] = []
        for rule in active:
            for rid in _follow(cur, dialect, rule, frontier, restrict):
                if rid not in seen:
                    seen.add(rid)
                    new.append(rid)
        if len(found) + len(new) > MAX_INCLUDED:
            new = new[: MAX_INCLUDED - len(found)]
            loaded = load(cur, dialect, new)
            found += [loaded[r] for r in new if r in loaded]
            return found, True
        loaded = load(cur, dialect, new)
        frontier = [(r, loaded[r]) for r in new if r in loaded]
        found += [s for _, s in frontier]
    return found, False


def _follow(
    cur: Any, dialect: Dialect, rule: Include, frontier: list[tuple[int, StoredResource]], restrict: Restrict | None
) -> list[int]:
    rsql, rargs = restrict("r") if restrict is not None else ("", [])
    extra = f" AND {rsql}" if rsql else ""
    if not rule.reverse:
        rids = [rid for rid, s in frontier if s.type == rule.source]
        out: list[int] = []
        for chunk in _chunks(rids):
            marks = ", ".join("?" * len(chunk))
            target = " AND i.target_type = ?" if rule.target else ""
            cur.execute(
                dialect.sql(
                    "SELECT DISTINCT r.rid FROM idx_reference i JOIN resources r ON r.type = i.target_type "
                    f"AND r.id = i.target_id WHERE i.rid IN ({marks}) AND i.param = ?{target} AND r.deleted = "
                    + ("FALSE" if dialect.name == "postgresql" else "0") + extra
                ),
                [*chunk, rule.code, *([rule.target] if rule.target else []), *rargs],
            )
            out += [row[0] for row in cur.fetchall()]
        return out
    by_type: dict[str, list[str]] = {}
    for _, s in frontier:
        if rule.target is None or s.type == rule.target:
            by_type.setdefault(s.type, []).append(s.id)
    out = []
    for ttype, ids in by_type.items():
        for chunk in _chunks(ids):
            marks = ", ".join("?" * len(chunk))
            cur.execute(
                dialect.sql(
                    "SELECT DISTINCT i.rid FROM idx_reference i JOIN resources r ON r.rid = i.rid "
                    f"WHERE i.target_id IN ({marks}) AND i.target_type = ? AND i.param = ? AND i.type = ?{extra}"
                ),
                [*chunk, ttype, rule.code, rule.source, *rargs],
            )
            out += [row[0] for row in cur.fetchall()]
    return out


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for n in range(0, len(items), CHUNK):
        yield items[n : n + CHUNK]
