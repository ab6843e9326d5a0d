"""Compile a parsed FHIR search (`sharedcare.search.model`) into SQL over the shared index tables.

Every criterion becomes a condition on a `resources` alias. Values always travel as bound parameters; text is
written with `?` placeholders and converted per dialect by `Dialect.sql`.

Plan shape. SQLite's planner cannot judge how selective an index condition is, so the compiler picks one
*driving* criterion (the most selective by a fixed ranking: `_id`, compartment, a reference to one resource, a
token code, a string...) and emits it as `alias.rid IN (SELECT rid FROM idx_... WHERE type = ? AND param = ? AND
...)`, which the engine runs first and walks in resource-key order. The other criteria become correlated
`EXISTS` probes keyed by `rid`. A selective search therefore touches only the rows of its driving criterion, however
large the tables grow. PostgreSQL plans both forms as semi-joins with its own statistics.

Unsupported criteria raise rather than being ignored: `ConditionCompiler.compile` serves conditional
create/update/delete, where a silently dropped criterion would touch the wrong resource.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sharedcare.errors import InvalidRequest, NotSupported
from sharedcare.search.model import (
    FULLTEXT,
    ID,
    LAST_UPDATED,
    LIST,
    Chain,
    CompositeValue,
    Criterion,
    DateValue,
    Filter,
    Has,
    Missing,
    NumberValue,
    OfTypeValue,
    QuantityValue,
    ReferenceValue,
    SortKey,
    StringValue,
    TextValue,
    TokenValue,
    UriValue,
    Value,
)
from sharedcare.search.parse import ParseOptions, QueryParser, Unsupported
from sharedcare.store.schema import SQLITE, Dialect

TABLES = {
    "string": "idx_string",
    "token": "idx_token",
    "reference": "idx_reference",
    "date": "idx_date",
    "number": "idx_number",
    "quantity": "idx_quantity",
    "uri": "idx_uri",
    "composite": "idx_composite",
}
NO_DRIVER = 99
ESTIMATE_CAP = 5000
Estimator = Callable[[str, list[Any]], int]  # (SELECT COUNT(*) ..., args) -> count
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(slots=True)
class Part:
    """One compiled criterion: a condition on the outer alias, and optionally a rid-set that can drive the plan."""

    probe: str
    args: list[Any]
    driver: str | None = None  # "SELECT x.rid FROM ..." (the rid-set)
    driver_args: list[Any] | None = None
    rank: int = NO_DRIVER
    live: bool = False  # the driver reads index rows, which exist only for current, live resources of its type

    def estimate_sql(self) -> str:
        """Count the driver's rows up to ESTIMATE_CAP without reading more than its index."""
        assert self.driver is not None
        body = self.driver.split(" ", 2)[2]  # drop "SELECT x.rid"
        return f"SELECT COUNT(*) FROM (SELECT 1 {body} LIMIT {ESTIMATE_CAP}) e"


class SqlCompiler:
    """Compiles criteria for one dialect; aliases are numbered so nested subqueries never clash."""

    def __init__(
        self,
        dialect: Dialect = SQLITE,
        estimate: Estimator | None = None,
        restrict: Callable[[str], tuple[str, list[Any]]] | None = None,
    ) -> None:
        self.d = dialect
        self.estimate = estimate
        self.restrict = restrict  # the caller's access restriction, ANDed into every inner (chain, _has) search
        self.pg = dialect.name == "postgresql"
        self.false = "FALSE" if self.pg else "0"
        self._n = 0

    def alias(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    # ------------------------------------------------------------------------------------------ where

    def where(
        self,
        a: str,
        types: Sequence[str] | None,
        criteria: Sequence[Criterion],
        extra: Sequence[Part] = (),
        *,
        base: bool = True,
    ) -> tuple[str, list[Any]]:
        """Conditions on resources alias `a`: its type(s), not deleted (if `base`), and every criterion."""
        parts = [*extra, *(self.criterion(a, types, c) for c in criteria)]
        conds: list[str] = []
        args: list[Any] = []
        if base:
            tcond, targs = self.type_cond(f"{a}.type", types)
            if tcond:
                conds.append(tcond)
                args += targs
            conds.append(f"{a}.deleted = {self.false}")
        best = self.choose_driver([p for p in parts if p.driver is not None])
        if best is not None:
            conds.append(f"{a}.rid IN ({best.driver})")
            args += best.driver_args or []
        for p in parts:
            if p is not best:
                conds.append(p.probe)
                args += p.args
        return " AND ".join(conds), args

    def count_shortcut(
        self, types: Sequence[str] | None, criteria: Sequence[Criterion], extra: Sequence[Part] = ()
    ) -> tuple[str, list[Any]] | None:
        """`SELECT COUNT(DISTINCT rid)` straight from the index for a search of one indexed criterion (no join to
        `resources`: index rows exist only for live, current resources). None when that does not apply."""
        if types is None or len(criteria) + len(extra) != 1:
            return None
        part = extra[0] if extra else self.criterion("r", types, criteria[0])
        if not part.live or part.driver is None:
            return None
        return f"SELECT COUNT(DISTINCT d.rid) FROM ({part.driver}) d", list(part.driver_args or [])

    def choose_driver(self, drivers: list[Part]) -> Part | None:
        """The most selective candidate by rank; when no candidate names one resource (rank <= 1) and an
        estimator is given (SQLite, which keeps no statistics), the one with the fewest rows, counted up to
        ESTIMATE_CAP, so a rare code beats a common one and a selective chain beats both."""
        if not drivers:
            return None
        best = min(drivers, key=lambda p: p.rank)
        if self.estimate is None or best.rank <= 1 or len(drivers) < 2:
            return best
        counts = []
        for p in sorted(drivers, key=lambda p: p.rank):
            n = self.estimate(p.estimate_sql(), p.driver_args or [])
            counts.append((n, p.rank, p))
            if n == 0:
                break
        return min(counts, key=lambda c: (c[0], c[1]))[2]

    def in_set(self, expr: str, sub: str) -> str:
        """`expr IN (sub)`, evaluated inner-first. On PostgreSQL as `= ANY(ARRAY(sub))`, an init plan run once:
        the planner cannot then choose to re-run a chain's inner search per outer row when its statistics are
        missing or stale (just after a bulk load, before autovacuum has analysed the tables)."""
        return f"{expr} = ANY(ARRAY({sub}))" if self.pg else f"{expr} IN ({sub})"

    def type_cond(self, column: str, types: Sequence[str] | None) -> tuple[str, list[Any]]:
        if types is None:
            return "", []
        if len(types) == 1:
            return f"{column} = ?", [types[0]]
        return f"{column} IN ({', '.join('?' * len(types))})", list(types)

    def ridset(
        self, types: Sequence[str] | None, criteria: Sequence[Criterion], column: str = "rid"
    ) -> tuple[str, list[Any]]:
        a = self.alias("r")
        cond, args = self.where(a, types, criteria)
        if self.restrict is not None:  # a chained or _has target the caller may not see must not match
            rsql, rargs = self.restrict(a)
            if rsql:
                cond += f" AND {rsql}"
                args = [*args, *rargs]
        return f"SELECT {a}.{column} FROM resources {a} WHERE {cond}", args

    # ------------------------------------------------------------------------------------------ criteria

    def criterion(self, a: str, types: Sequence[str] | None, c: Criterion) -> Part:
        if isinstance(c, Filter):
            return self.filter(a, types, c)
        if isinstance(c, Missing):
            return self.missing(a, c)
        if isinstance(c, Chain):
            return self.chain(a, types, c)
        if isinstance(c, Has):
            return self.has(a, types, c)
        raise TypeError(f"not a criterion: {c!r}")

    def filter(self, a: str, types: Sequence[str] | None, f: Filter) -> Part:
        if f.type == ID:
            return self.ids(a, types, f)
        if f.type == LAST_UPDATED:
            return self.last_updated(a, types, f)
        if f.type == FULLTEXT:
            return self.fulltext(a, types, f)
        if f.type == LIST:
            return self.list_members(a, types, f)
        table = TABLES.get(f.type)
        if table is None:
            raise InvalidRequest(f"Search parameter '{f.code}' ({f.type}) is not supported")
        i = self.alias("i")
        ors: list[str] = []
        args: list[Any] = []
        rank = NO_DRIVER
        for v in f.values:
            sql, vargs, vrank = self.value_cond(i, f, v)
            ors.append(f"({sql})")
            args += vargs
            rank = max(rank if rank != NO_DRIVER else 0, vrank)
        cond = ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"
        param = f"{f.code}:of-type" if f.modifier == "of-type" else f.code
        if f.type == "reference" and f.modifier == "identifier":
            table, param = "idx_token", f"{f.code}:identifier"
        if f.modifier == "not":
            probe = f"NOT EXISTS (SELECT 1 FROM {table} {i} WHERE {i}.rid = {a}.rid AND {i}.param = ? AND {cond})"
            return Part(probe, [param, *args])
        return self.indexed(a, types, table, i, param, cond, args, rank)

    def indexed(
        self, a: str, types: Sequence[str] | None, table: str, i: str, param: str, cond: str, args: list[Any], rank: int
    ) -> Part:
        probe = f"EXISTS (SELECT 1 FROM {table} {i} WHERE {i}.rid = {a}.rid AND {i}.param = ? AND {cond})"
        if rank == NO_DRIVER:
            return Part(probe, [param, *args])
        tcond, targs = self.type_cond(f"{i}.type", types)
        driver = f"SELECT {i}.rid FROM {table} {i} WHERE {tcond + ' AND ' if tcond else ''}{i}.param = ? AND {cond}"
        return Part(probe, [param, *args], driver, [*targs, param, *args], rank, live=True)

    def missing(self, a: str, m: Missing) -> Part:
        if m.type == ID:
            return Part(f"{a}.id IS NULL" if m.missing else f"{a}.id IS NOT NULL", [])
        if m.type == LAST_UPDATED:
            return Part(f"{a}.last_updated IS NULL" if m.missing else f"{a}.last_updated IS NOT NULL", [])
        table = TABLES.get(m.type)
        if table is None:
            raise InvalidRequest(f"':missing' is not supported on '{m.code}'")
        i = self.alias("i")
        exists = f"EXISTS (SELECT 1 FROM {table} {i} WHERE {i}.rid = {a}.rid AND {i}.param = ?)"
        args: list[Any] = [m.code]
        if m.type == "reference":  # a reference given only by identifier has no idx_reference row
            j = self.alias("i")
            exists = f"({exists} OR EXISTS (SELECT 1 FROM idx_token {j} WHERE {j}.rid = {a}.rid AND {j}.param = ?))"
            args.append(f"{m.code}:identifier")
        return Part(f"NOT {exists}" if m.missing else exists, args)

    def chain(self, a: str, types: Sequence[str] | None, c: Chain) -> Part:
        i = self.alias("i")
        ors: list[str] = []
        args: list[Any] = []
        for target, inner in c.targets:
            sub, sargs = self.ridset((target,), [inner], column="id")
            ors.append(f"({i}.target_type = ? AND {self.in_set(f'{i}.target_id', sub)})")
            args += [target, *sargs]
        cond = ors[0] if len(ors) == 1 else "(" + " OR ".join(ors) + ")"
        return self.indexed(a, types, "idx_reference", i, c.code, cond, args, 3)

    def has(self, a: str, types: Sequence[str] | None, h: Has) -> Part:
        sub, sargs = self.ridset((h.source_type,), [h.inner])
        x = self.alias("h")
        probe = (
            f"EXISTS (SELECT 1 FROM idx_reference {x} WHERE {x}.target_id = {a}.id AND {x}.target_type = {a}.type "
            f"AND {x}.param = ? AND {x}.type = ? AND {self.in_set(f'{x}.rid', sub)})"
        )
        args = [h.code, h.source_type, *sargs]
        b = self.alias("r")
        tcond, targs = self.type_cond(f"{b}.type", types)
        driver = (
            f"SELECT {b}.rid FROM idx_reference {x} JOIN resources {b} ON {b}.type = {x}.target_type "
            f"AND {b}.id = {x}.target_id WHERE {x}.type = ? AND {x}.param = ? AND {self.in_set(f'{x}.rid', sub)}"
            + (f" AND {tcond}" if tcond else "")
        )
        return Part(probe, args, driver, [h.source_type, h.code, *sargs, *targs], 3)

    def compartment(self, a: str, types: Sequence[str] | None, comp_type: str, comp_id: str) -> Part:
        """Membership of a compartment (http://hl7.org/fhir/R4/compartmentdefinition.html), computed on write."""
        c = self.alias("c")
        probe = (
            f"EXISTS (SELECT 1 FROM compartment {c} WHERE {c}.rid = {a}.rid "
            f"AND {c}.comp_type = ? AND {c}.comp_id = ?)"
        )
        tcond, targs = self.type_cond(f"{c}.type", types)
        driver = (
            f"SELECT {c}.rid FROM compartment {c} WHERE {c}.comp_id = ? AND {c}.comp_type = ?"
            + (f" AND {tcond}" if tcond else "")
        )
        return Part(probe, [comp_type, comp_id], driver, [comp_id, comp_type, *targs], 1, live=True)

    def ids(self, a: str, types: Sequence[str] | None, f: Filter) -> Part:
        ids = [v.code for v in f.values if isinstance(v, TokenValue) and v.code]
        marks = ", ".join("?" * len(ids))
        if f.modifier == "not":
            return Part(f"{a}.id NOT IN ({marks})", ids)
        b = self.alias("r")
        tcond, targs = self.type_cond(f"{b}.type", types)
        driver = f"SELECT {b}.rid FROM resources {b} WHERE {tcond + ' AND ' if tcond else ''}{b}.id IN ({marks})"
        return Part(f"{a}.id IN ({marks})", ids, driver, [*targs, *ids], 0)

    def last_updated(self, a: str, types: Sequence[str] | None, f: Filter) -> Part:
        ors: list[str] = []
        args: list[Any] = []
        for v in f.values:
            assert isinstance(v, DateValue)
            sql, vargs = self.date_cond(f"{a}.last_updated", f"{a}.last_updated", v)
            ors.append(f"({sql})")
            args += vargs
        return Part("(" + " OR ".join(ors) + ")", args)

    def fulltext(self, a: str, types: Sequence[str] | None, f: Filter) -> Part:
        groups = [v.terms for v in f.values if isinstance(v, TextValue)]
        if self.pg:
            query = " | ".join("(" + " & ".join(terms) + ")" for terms in groups)
            x = self.alias("f")
            match = f"to_tsvector('simple'::regconfig, {x}.content) @@ to_tsquery('simple'::regconfig, ?)"
            probe = f"EXISTS (SELECT 1 FROM fulltext_rows {x} WHERE {x}.rid = {a}.rid AND {match})"
            tcond, targs = self.type_cond(f"{x}.type", types)
            driver = f"SELECT {x}.rid FROM fulltext_rows {x} WHERE {tcond + ' AND ' if tcond else ''}{match}"
            return Part(probe, [query], driver, [*targs, query], 3)
        query = " OR ".join("(" + " ".join(f'"{t}"' for t in terms) + ")" for terms in groups)
        sub = "SELECT rowid FROM fulltext_fts WHERE fulltext_fts MATCH ?"
        return Part(f"{a}.rid IN ({sub})", [query], sub, [query], 3)

    def list_members(self, a: str, types: Sequence[str] | None, f: Filter) -> Part:
        ids = [v.id for v in f.values if isinstance(v, ReferenceValue)]
        marks = ", ".join("?" * len(ids))
        x, lst, b = self.alias("l"), self.alias("r"), self.alias("r")
        items = (
            f"SELECT {x}.target_type, {x}.target_id FROM idx_reference {x} WHERE {x}.type = 'List' "
            f"AND {x}.param = 'item' AND {x}.rid IN (SELECT {lst}.rid FROM resources {lst} WHERE {lst}.type = 'List' "
            f"AND {lst}.id IN ({marks}) AND {lst}.deleted = {self.false})"
        )
        tcond, targs = self.type_cond(f"{b}.type", types)
        driver = (
            f"SELECT {b}.rid FROM resources {b} JOIN ({items}) m ON {b}.type = m.target_type "
            f"AND {b}.id = m.target_id" + (f" WHERE {tcond}" if tcond else "")
        )
        return Part(f"{a}.rid IN ({driver})", [*ids, *targs], driver, [*ids, *targs], 2)

    # ------------------------------------------------------------------------------------------ values

    def value_cond(self, i: str, f: Filter, v: Value) -> tuple[str, list[Any], int]:
        """SQL over index-row alias `i` for one value, and its rank as a driver (lower is more selective)."""
        t = f.type
        if t == "string":
            assert isinstance(v, StringValue)
            if f.modifier == "exact":
                return f"{i}.exact = ?", [v.text], 2
            folded = _fold(v.text)
            if f.modifier == "contains":
                return f"{i}.value LIKE ? ESCAPE '\\'", [f"%{_like(folded)}%"], NO_DRIVER
            sql, args = self.prefix(f"{i}.value", folded)
            return sql, args, 3
        if t == "token" or (t == "reference" and f.modifier == "identifier"):
            if f.modifier == "text":
                assert isinstance(v, StringValue)
                sql, args = self.prefix(f"{i}.text", _fold(v.text))
                return sql, args, 4
            if isinstance(v, OfTypeValue):
                sql = f"{i}.code = ?" + (f" AND {i}.system = ?" if v.system else "")
                return sql, [f"{v.code}|{v.value}", *([v.system] if v.system else [])], 1
            assert isinstance(v, TokenValue)
            return self.token(i, v)
        if t == "reference":
            assert isinstance(v, ReferenceValue)
            return self.reference(i, v)
        if t == "date":
            assert isinstance(v, DateValue)
            sql, args = self.date_cond(f"{i}.low", f"{i}.high", v)
            return sql, args, 5
        if t == "number":
            assert isinstance(v, NumberValue)
            sql, args = self.number_cond(f"{i}.low", f"{i}.high", v)
            return sql, args, 6
        if t == "quantity":
            assert isinstance(v, QuantityValue)
            sql, args = self.number_cond(f"{i}.low", f"{i}.high", v.number)
            if v.system is not None:
                sql += f" AND {i}.system = ?"
                args.append(v.system)
                if v.code is not None:
                    sql += f" AND {i}.code = ?"
                    args.append(v.code)
            elif v.code is not None:
                sql += f" AND ({i}.code = ? OR {i}.unit = ?)"
                args += [v.code, v.code]
            return sql, args, 6
        if t == "uri":
            assert isinstance(v, UriValue)
            return self.uri(i, f.modifier, v)
        if t == "composite":
            assert isinstance(v, CompositeValue)
            return self.composite(i, f, v)
        raise InvalidRequest(f"Search parameter '{f.code}' ({t}) is not supported")

    def token(self, i: str, v: TokenValue) -> tuple[str, list[Any], int]:
        if v.code is None:
            return f"{i}.system = ?", [v.system], 7
        if v.system is None:
            return f"{i}.code = ?", [v.code], 2
        if v.system == "":
            return f"{i}.code = ? AND {i}.system IS NULL", [v.code], 2
        return f"{i}.code = ? AND {i}.system = ?", [v.code, v.system], 2

    def reference(self, i: str, v: ReferenceValue) -> tuple[str, list[Any], int]:
        if v.url is not None:
            return f"{i}.url = ?", [v.url], 2
        if v.type is None:
            return f"{i}.target_id = ?", [v.id], 1
        return f"{i}.target_id = ? AND {i}.target_type = ?", [v.id, v.type], 1

    def uri(self, i: str, modifier: str, v: UriValue) -> tuple[str, list[Any], int]:
        if modifier == "below":
            return f"{i}.uri LIKE ? ESCAPE '\\'", [_like(v.uri) + "%"], 4
        if modifier == "above":
            prefixes = _uri_prefixes(v.uri)
            return f"{i}.uri IN ({', '.join('?' * len(prefixes))})", prefixes, 3
        return f"{i}.uri = ?", [v.uri], 2

    def prefix(self, column: str, text: str) -> tuple[str, list[Any]]:
        """Starts-with over folded text: a byte range on SQLite; LIKE on PostgreSQL (collation-independent)."""
        if self.pg:
            return f"{column} LIKE ? ESCAPE '\\'", [_like(text) + "%"]
        return f"{column} >= ? AND {column} < ?", [text, text + "\U0010ffff"]

    def date_cond(self, lo: str, hi: str, v: DateValue) -> tuple[str, list[Any]]:
        """Date prefixes over ranges (http://hl7.org/fhir/R4/search.html#prefix): the target [lo, hi] against
        the search value's precision range [ql, qh]. The extra bounds are implied, and let an index range help."""
        ql, qh = v.low, v.high
        p = v.prefix
        if p == "eq":
            return f"{lo} >= ? AND {lo} <= ? AND {hi} <= ?", [ql, qh, qh]
        if p == "ne":
            return f"NOT ({lo} >= ? AND {hi} <= ?)", [ql, qh]
        if p == "gt":
            return f"{hi} > ?", [qh]
        if p == "lt":
            return f"{lo} < ?", [ql]
        if p == "ge":
            return f"{hi} >= ? AND ({hi} > ? OR {lo} >= ?)", [ql, qh, ql]
        if p == "le":
            return f"{lo} <= ? AND ({lo} < ? OR {hi} <= ?)", [qh, ql, qh]
        if p == "sa":
            return f"{lo} > ?", [qh]
        if p == "eb":
            return f"{hi} < ?", [ql]
        low, high = _approximate(ql, qh)
        return f"{lo} <= ? AND {hi} >= ?", [high, low]

    def number_cond(self, lo: str, hi: str, v: NumberValue) -> tuple[str, list[Any]]:
        """Number prefixes: the target's value (the middle of its stored precision range) against the search
        value; `eq` matches the search value's implicit range [low, high) (so 100 matches 99.5 to 100.5)."""
        mid = f"(({lo}) + ({hi})) / 2"
        p = v.prefix
        if p == "eq":
            return f"{mid} >= ? AND {mid} < ?", [v.low, v.high]
        if p == "ne":
            return f"NOT ({mid} >= ? AND {mid} < ?)", [v.low, v.high]
        if p in ("gt", "sa"):
            return f"{mid} > ?", [v.value]
        if p in ("lt", "eb"):
            return f"{mid} < ?", [v.value]
        if p == "ge":
            return f"{mid} >= ?", [v.value]
        if p == "le":
            return f"{mid} <= ?", [v.value]
        delta = abs(v.value) * 0.1
        return f"{mid} >= ? AND {mid} <= ?", [v.value - delta, v.value + delta]

    # ------------------------------------------------------------------------------------------ composite

    def composite(self, i: str, f: Filter, v: CompositeValue) -> tuple[str, list[Any], int]:
        conds: list[str] = []
        args: list[Any] = []
        for n, (ctype, part) in enumerate(zip(f.components, v.parts, strict=True)):
            col = f"{i}.c{n + 1}"
            sql, pargs = self.component(col, ctype, part)
            conds.append(f"({sql})")
            args += pargs
        return " AND ".join(conds), args, 2

    def component(self, col: str, ctype: str, v: Value) -> tuple[str, list[Any]]:
        if ctype == "token":
            assert isinstance(v, TokenValue)
            if v.code is None:
                return f"{col} LIKE ? ESCAPE '\\'", [_like(f"{v.system}|") + "%"]
            if v.system is None:
                return f"{col} LIKE ? ESCAPE '\\'", ["%|" + _like(v.code)]
            return f"{col} = ?", [f"{v.system}|{v.code}"]
        if ctype == "string":
            assert isinstance(v, StringValue)
            return self.prefix(col, _fold(v.text))
        if ctype == "quantity":
            assert isinstance(v, QuantityValue)
            sql, args = self.number_cond(self.part_real(col, 1), self.part_real(col, 2), v.number)
            if v.system is not None or v.code is not None:
                unit = f"{v.system}|{v.code or ''}" if v.system is not None else (v.code or "")
                pattern = "%|" + _like(unit) if v.code is not None else "%|" + _like(unit) + "|%"
                sql += f" AND {col} LIKE ? ESCAPE '\\'"
                args.append(pattern)
            return sql, args
        if ctype == "number":
            assert isinstance(v, NumberValue)
            return self.number_cond(self.part_real(col, 1), self.part_real(col, 2), v)
        if ctype == "date":
            assert isinstance(v, DateValue)
            return self.date_cond(f"substr({col}, 1, 27)", f"substr({col}, 29, 27)", v)
        if ctype == "reference":
            assert isinstance(v, ReferenceValue)
            if v.url is not None:
                return f"{col} = ?", [v.url]
            if v.type is None:
                return f"{col} LIKE ? ESCAPE '\\'", ["%/" + _like(v.id or "")]
            return f"{col} = ?", [f"{v.type}/{v.id}"]
        if ctype == "uri":
            assert isinstance(v, UriValue)
            return f"{col} = ?", [v.uri]
        raise InvalidRequest(f"Composite component type {ctype} is not supported")

    def part_real(self, col: str, n: int) -> str:
        """The n-th (1 or 2) '|'-separated field of a composite key, as a number ('inf'/'-inf' included)."""
        if self.pg:
            return f"split_part({col}, '|', {n})::float8"
        if n == 1:
            text = f"substr({col}, 1, instr({col}, '|') - 1)"
        else:
            rest = f"substr({col}, instr({col}, '|') + 1)"
            text = f"(CASE instr({rest}, '|') WHEN 0 THEN {rest} ELSE substr({rest}, 1, instr({rest}, '|') - 1) END)"
        return f"(CASE {text} WHEN 'inf' THEN 1e999 WHEN '-inf' THEN -1e999 ELSE CAST({text} AS REAL) END)"

    # ------------------------------------------------------------------------------------------ sorting

    def sort_expr(self, a: str, key: SortKey) -> tuple[str, list[Any]]:
        """The value a resource sorts by: its lowest value ascending, its highest descending (dates: the start
        of the lowest range ascending, the end of the highest descending)."""
        if key.type == ID:
            return f"{a}.id", []
        if key.type == LAST_UPDATED:
            return f"{a}.last_updated", []
        agg = "MAX" if key.descending else "MIN"
        table = TABLES[key.type]
        s = self.alias("s")
        column = {
            "string": f"{s}.value",
            "token": f"{s}.code",
            "date": f"{s}.high" if key.descending else f"{s}.low",
            "number": f"{s}.high" if key.descending else f"{s}.low",
            "quantity": f"{s}.high" if key.descending else f"{s}.low",
            "uri": f"{s}.uri",
            "reference": f"COALESCE({s}.target_type || '/' || {s}.target_id, {s}.url)",
        }[key.type]
        return f"(SELECT {agg}({column}) FROM {table} {s} WHERE {s}.rid = {a}.rid AND {s}.param = ?)", [key.code]


class ConditionCompiler:
    """`compile(type, criteria) -> (sql, args)`: criteria as a condition on `r`, for conditional interactions.

    Parses strictly (an unknown or unsupported criterion raises) and compiles with `SqlCompiler`.
    """

    def __init__(self, params: Any) -> None:
        self.params = params
        self._parser = QueryParser(params, ParseOptions(strict=True))

    def set_not_ready(self, not_ready: Callable[[Any], str | None]) -> None:
        """Refuse custom parameters whose reindex job has not finished (see `store.reindex`)."""
        self._parser = QueryParser(self.params, ParseOptions(strict=True, not_ready=not_ready))

    def parse(self, type: str, criteria: Sequence[tuple[str, str]]) -> list[Criterion]:
        out = []
        for name, value in criteria:
            if name in ("_format", "_pretty"):
                continue
            try:
                out.append(self._parser.criterion((type,), name, value))
            except Unsupported as exc:
                raise NotSupported(f"{exc.message}; a conditional interaction cannot ignore a criterion") from None
        return out

    def compile(
        self,
        type: str,
        criteria: Sequence[tuple[str, str]],
        dialect: Dialect = SQLITE,
        *,
        restrict: Callable[[str], tuple[str, list[Any]]] | None = None,
    ) -> tuple[str, list[Any]]:
        """`restrict` (the caller's access restriction) also binds the inner searches of chains and `_has`."""
        parsed = self.parse(type, criteria)
        if not parsed:
            return "", []
        return SqlCompiler(dialect, restrict=restrict).where("r", (type,), parsed, base=False)


# ---------------------------------------------------------------------------------------------- helpers


def _fold(text: str) -> str:
    from sharedcare.fhir.indexing import normalise

    return normalise(text)


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _uri_prefixes(uri: str) -> list[str]:
    """`:above`: the value and each of its parents at a '/' boundary (http://hl7.org/fhir/R4/search.html#uri)."""
    out = [uri]
    cut = uri.rstrip("/")
    while "/" in cut:
        cut = cut.rsplit("/", 1)[0]
        if cut.endswith(":/") or cut.endswith(":") or not cut:
            break
        out.append(cut)
    return list(dict.fromkeys(out))


def _approximate(ql: str, qh: str) -> tuple[str, str]:
    """`ap` on dates: widen the range by 10% of its distance from now (http://hl7.org/fhir/R4/search.html#prefix)."""
    low = datetime.strptime(ql, DATE_FORMAT).replace(tzinfo=UTC)
    high = datetime.strptime(qh, DATE_FORMAT).replace(tzinfo=UTC)
    now = datetime.now(UTC)
    gap = max(abs(now - low), abs(now - high)) * 0.1
    try:
        low -= gap
    except OverflowError:
        low = datetime.min.replace(tzinfo=UTC)
    try:
        high += gap
    except OverflowError:
        high = datetime.max.replace(tzinfo=UTC)
    return _instant(low), _instant(high)


def _instant(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}.{t.microsecond:06d}Z"
