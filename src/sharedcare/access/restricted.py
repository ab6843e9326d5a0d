"""A store bound to the caller: read, vread and history with the caller's restriction inside the SQL.

The repository is given this wrapper instead of the raw store, so the router's read, vread and history run
unchanged while the query itself decides what the caller may see (architecture.md: "a repository bound to the
caller"; Medplum's `getRepoForLogin`). History totals and paging therefore count only visible versions. Other
store methods pass through untouched (writes are checked by the write hook); search, `$everything` and `$export`
take the same `restriction_sql` through `restrict` / `search_restrict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sharedcare.access.policy import NOT_AVAILABLE, WITHHELD
from sharedcare.access.restrictions import PatientGate, Restriction, gate_sql, restriction_sql
from sharedcare.access.scopes import Criteria
from sharedcare.errors import Forbidden
from sharedcare.store.base import HistoryPage, HistoryQuery
from sharedcare.types import StoredResource

RestrictionFor = Callable[[str | None, str], Restriction | None]
"""(type or None, perm letter) → the current caller's restriction, or None when the caller is unrestricted."""


class RestrictedStore:
    def __init__(self, store: Any, restriction_for: RestrictionFor) -> None:
        self._store = store
        self._restriction_for = restriction_for
        self.dialect = store.dialect
        self._compiled: dict[tuple[int, str], tuple[Restriction, str, list[Any]]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    # --- reads ------------------------------------------------------------------------------------------
    def read(self, type: str, id: str) -> StoredResource | None:
        restriction = self._restriction_for(type, "r")
        if restriction is None:
            return self._store.read(type, id)
        cond, args = self._sql(restriction, "t")
        sql = (
            "SELECT v.version, v.last_updated, v.body, v.method FROM resources t JOIN versions v ON v.seq = t.seq "
            f"WHERE t.type = ? AND t.id = ? AND {cond}"
        )
        with self._store.reading() as cur:
            cur.execute(self.dialect.sql(sql), [type, id, *args])
            row = cur.fetchone()
            if row is None:
                self._explain(cur, restriction, "resources t", "t.type = ? AND t.id = ?", [type, id])
                return None
        return StoredResource(type, id, row[0], row[1], _bytes(row[2]), row[3])

    def vread(self, type: str, id: str, version: int) -> StoredResource | None:
        restriction = self._restriction_for(type, "r")
        if restriction is None:
            return self._store.vread(type, id, version)
        cond, args = self._sql(restriction, "t")
        where = "t.type = ? AND t.id = ? AND t.version = ?"
        sql = f"SELECT t.version, t.last_updated, t.body, t.method FROM versions t WHERE {where} AND {cond}"
        with self._store.reading() as cur:
            cur.execute(self.dialect.sql(sql), [type, id, version, *args])
            row = cur.fetchone()
            if row is None:
                self._explain(cur, restriction, "versions t", where, [type, id, version])
                return None
        return StoredResource(type, id, row[0], row[1], _bytes(row[2]), row[3])

    def _explain(self, cur: Any, restriction: Restriction, table: str, where: str, args: list[Any]) -> None:
        """Nothing visible: not found (None) if nothing exists, else say withheld or not available — never why."""
        cur.execute(self.dialect.sql(f"SELECT 1 FROM {table} WHERE {where}"), args)
        if cur.fetchone() is None:
            return
        cond, rargs = self._sql(restriction.without_sensitivity(), "t")
        cur.execute(self.dialect.sql(f"SELECT 1 FROM {table} WHERE {where} AND {cond}"), [*args, *rargs])
        raise Forbidden(WITHHELD if cur.fetchone() is not None else NOT_AVAILABLE)

    # --- history -------------------------------------------------------------------------------------------
    def history(self, q: HistoryQuery) -> HistoryPage:
        restriction = self._restriction_for(q.type, "r" if q.id else "s")
        if restriction is None:
            return self._store.history(q)
        return self._store.history(q, self._sql(restriction, "v"))

    # --- for search, $everything and conditional matching ---------------------------------------------------
    def restrict(self, type: str | None, perm: str = "s") -> Callable[[str], tuple[str, list[Any]]] | None:
        """The current caller's restriction in the shape `store.search_page(..., restrict=)` takes: alias →
        (condition, args); None when the caller is unrestricted."""
        restriction = self._restriction_for(type, perm)
        if restriction is None:
            return None
        return lambda alias: self._sql(restriction, alias)

    def search_restrict(
        self, types: tuple[str, ...] | None, *, notice: bool = False, perm: str = "s"
    ) -> tuple[Callable[[str], tuple[str, list[Any]]] | None, Callable[[str], tuple[str, list[Any]]] | None]:
        """(restrict, unlabelled) for a search over `types`: the caller's restriction, and (when `notice` and
        something is withheld for sensitivity) the same without its sensitivity part, to tell that rows were
        withheld. (None, None) when the caller is unrestricted."""
        type = types[0] if types is not None and len(types) == 1 else None
        restriction = self._restriction_for(type, perm)
        if restriction is None:
            return None, None
        unlabelled = None
        if notice and restriction.withheld and not restriction.deny_all:
            plain = restriction.without_sensitivity()
            unlabelled = lambda alias: restriction_sql(plain, alias, criteria_sql=self._criteria_sql)  # noqa: E731
        return (lambda alias: self._sql(restriction, alias)), unlabelled

    def record_restrict(
        self, patients: list[str], perm: str = "r"
    ) -> tuple[Callable[[str], tuple[str, list[Any]]] | None, Callable[[str], tuple[str, list[Any]]] | None]:
        """(restrict, unlabelled) for one person's longitudinal record (`$everything` over linked Patients).

        The caller has passed the patient gate for the Patient it asked for (the boundary checks that first); the
        other source Patients linked to the same person share that relationship, so the gate becomes "only these
        linked Patients" while each one's objections, organisation restrictions and opt-outs still apply, as do
        the role's types and the sensitivity rules (another organisation's sensitive items stay withheld)."""
        restriction = self._restriction_for(None, perm)
        if restriction is None:
            return None, None
        if restriction.deny_all:
            raise Forbidden(NOT_AVAILABLE)
        if restriction.patients is not None and not self._any_passes(restriction.patients, patients):
            raise Forbidden(NOT_AVAILABLE)  # e.g. Person/{id}/$everything, which the boundary does not gate
        if restriction.patients is not None:
            gate = replace(restriction.patients, only=frozenset(patients), relationship_required=False)
            restriction = replace(restriction, patients=gate)
        plain = restriction.without_sensitivity() if restriction.withheld and not restriction.deny_all else None

        def restrict(alias: str) -> tuple[str, list[Any]]:
            return restriction_sql(restriction, alias, criteria_sql=self._criteria_sql)

        def unlabelled(alias: str) -> tuple[str, list[Any]]:
            assert plain is not None
            return restriction_sql(plain, alias, criteria_sql=self._criteria_sql)

        return restrict, (unlabelled if plain is not None else None)

    def _any_passes(self, gate: PatientGate, patients: list[str]) -> bool:
        """Does the caller pass the patient gate for at least one of these Patients?"""
        cond, args = gate_sql(gate, "x.pid")
        sql = self.dialect.sql(f"SELECT 1 FROM (SELECT CAST(? AS TEXT) AS pid) x WHERE {cond}")
        with self._store.reading() as cur:
            for patient in patients:
                cur.execute(sql, [patient, *args])
                if cur.fetchone() is not None:
                    return True
        return False

    # --- SQL ----------------------------------------------------------------------------------------------
    def _sql(self, restriction: Restriction, alias: str) -> tuple[str, list[Any]]:
        """The restriction's SQL, built once per restriction object (policies keep one per token per second)."""
        key = (id(restriction), alias)
        hit = self._compiled.get(key)
        if hit is not None and hit[0] is restriction:
            return hit[1], hit[2]
        sql, args = restriction_sql(restriction, alias, criteria_sql=self._criteria_sql)
        if len(self._compiled) > 2048:
            self._compiled.clear()
        self._compiled[key] = (restriction, sql or "1 = 1", args)
        return sql or "1 = 1", args

    def _criteria_sql(self, type: str, criteria: Criteria, alias: str) -> tuple[str, list[Any]]:
        """Granular scope criteria through the store's own search compiler, on an inner `resources r`."""
        conditions = getattr(self._store, "conditions", None)
        if conditions is None:
            return "1 = 0", []
        try:
            sql, args = conditions.compile(type, list(criteria), self.dialect)
        except TypeError:
            sql, args = conditions.compile(type, list(criteria))
        if not sql:
            return "1 = 1", []
        return f"EXISTS (SELECT 1 FROM resources r WHERE r.rid = {alias}.rid AND {sql})", list(args)


def _bytes(value: Any) -> bytes | None:
    return None if value is None else bytes(value)
