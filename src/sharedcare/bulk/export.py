"""`$export` (FHIR Bulk Data Access IG v2, https://hl.7.org/fhir/uv/bulkdata/export.html): what to export and
the writer that streams it into NDJSON files, one or more per resource type.

The whole export reads one snapshot (one read transaction), so its files are consistent with each other and with
`transactionTime`. Rows are streamed in key order, a thousand at a time (a server-side cursor on PostgreSQL), and
the stored bytes are written as they are: memory stays bounded whatever the size of the store.

An export started by anyone but the operator is bound to its requester (issue 7): the requester's restriction
(JSON in the spec, taken at kick-off) is ANDed into every row, so opt-outs apply for secondary use, and its
resources are pseudonymised when the policy says so. Only the requester may poll the job and fetch its files.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sharedcare.access.restrictions import restriction_from_json, restriction_sql
from sharedcare.errors import InvalidRequest, NotFound
from sharedcare.service.repository import parse_criteria
from sharedcare.store import bulk_sql
from sharedcare.store.bulk_sql import ExportQuery
from sharedcare.store.sqlstore import SqlStore

MEMBER_CHUNK = 500


class Cancelled(Exception):
    """The job was cancelled (DELETE on its status URL) while it ran."""


@dataclass(frozen=True)
class ExportSpec:
    """A kick-off request, checked: level system | patient | group, and its filters."""

    level: str
    group: str | None = None
    types: tuple[str, ...] = ()  # empty: every type the level allows
    since: str | None = None
    type_filters: tuple[tuple[str, str], ...] = ()  # (type, query string)
    patients: tuple[str, ...] = ()  # the `patient` parameter (POST): restrict to these patients' compartments
    access: dict[str, Any] | None = None  # the requester's Restriction (JSON), ANDed into every row; None: operator
    pseudonymise: bool = False  # secondary use: identifiers hashed, names and contact details removed
    owner: str | None = None  # who started it (only they may poll it and fetch its files); None: the operator

    def to_json(self) -> dict[str, Any]:
        return {
            "access": self.access,
            "pseudonymise": self.pseudonymise,
            "owner": self.owner,
            "level": self.level,
            "group": self.group,
            "types": list(self.types),
            "since": self.since,
            "type_filters": [list(f) for f in self.type_filters],
            "patients": list(self.patients),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ExportSpec:
        return cls(
            data["level"],
            data.get("group"),
            tuple(data.get("types") or ()),
            data.get("since"),
            tuple((t, q) for t, q in data.get("type_filters") or ()),
            tuple(data.get("patients") or ()),
            data.get("access"),
            bool(data.get("pseudonymise")),
            data.get("owner"),
        )


@dataclass
class OutputFile:
    type: str
    name: str
    count: int = 0


@dataclass
class ExportResult:
    transaction_time: str
    files: list[OutputFile] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(f.count for f in self.files)


class ExportWriter:
    """Writes one export into a folder; knows the resource types and which belong to the Patient compartment."""

    def __init__(
        self,
        store: SqlStore,
        resource_types: Iterable[str],
        patient_types: Iterable[str],
        *,
        lines_per_file: int = 100_000,
    ) -> None:
        self.store = store
        self.resource_types = tuple(sorted(resource_types))
        self.patient_types = frozenset(patient_types) | {"Patient"}
        self.lines_per_file = lines_per_file
        self.pseudonymise: Callable[[bytes], bytes] | None = None  # set by the security wiring

    def check(self, spec: ExportSpec) -> None:
        """Reject at kick-off what the job could not do, so errors come back at once (400), not in the manifest."""
        for t in spec.types:
            if t not in self.resource_types:
                raise InvalidRequest(f"_type names an unknown resource type '{t}'")
        for rtype, query in spec.type_filters:
            if rtype not in self.resource_types:
                raise InvalidRequest(f"_typeFilter names an unknown resource type '{rtype}'")
            self.store.conditions.compile(rtype, parse_criteria(query), self.store.dialect)
        if spec.level == "group":
            group = self.store.read("Group", spec.group or "")
            if group is None or group.deleted:
                raise NotFound(f"Group/{spec.group} is not known")

    def types_for(self, spec: ExportSpec) -> list[str]:
        allowed = self.resource_types if spec.level == "system" else sorted(self.patient_types)
        return [t for t in allowed if t in spec.types] if spec.types else list(allowed)

    def run(
        self,
        spec: ExportSpec,
        folder: Path,
        cancelled: threading.Event,
        progress: Callable[[str, int], None] = lambda _type, _count: None,
    ) -> ExportResult:
        folder.mkdir(parents=True, exist_ok=True)
        with self.store.reading() as cur:
            result = ExportResult(bulk_sql.snapshot_time(self.store, cur))
            patients = self._patients(cur, spec)
            for rtype in self.types_for(spec):
                if cancelled.is_set():
                    raise Cancelled()
                self._write_type(cur, spec, rtype, patients, folder, result, cancelled, progress)
        return result

    def _patients(self, cur: Any, spec: ExportSpec) -> tuple[str, ...] | None:
        """Patient ids whose compartments bound the export; None: no bound (system) or every patient."""
        if spec.level == "group":
            members = set(self._group_members(cur, spec.group or ""))
            if spec.patients:
                members &= set(spec.patients)
            return tuple(sorted(members))
        return tuple(sorted(set(spec.patients))) if spec.patients else None

    def _group_members(self, cur: Any, group_id: str) -> list[str]:
        import orjson

        found = self.store.fetch_current(cur, "Group", group_id)
        if found is None or found.body is None:
            raise NotFound(f"Group/{group_id} is not known")
        group = orjson.loads(found.body)
        out = []
        for member in group.get("member") or []:
            ref = ((member or {}).get("entity") or {}).get("reference") or ""
            rtype, _, rid = ref.partition("/")
            if rtype == "Patient" and rid and not member.get("inactive"):
                out.append(rid.split("/")[0])
        return out

    def _queries(self, spec: ExportSpec, rtype: str, patients: tuple[str, ...] | None) -> list[ExportQuery]:
        filters = tuple(
            self.store.conditions.compile(rtype, parse_criteria(q), self.store.dialect)
            for t, q in spec.type_filters
            if t == rtype
        )
        filters = tuple((sql, tuple(args)) for sql, args in filters)
        access = None
        if spec.access is not None:  # the requester's restriction, compiled for this job's own query
            asql, aargs = restriction_sql(restriction_from_json(spec.access), "r")
            access = (asql, tuple(aargs)) if asql else None
        base = ExportQuery(
            rtype, spec.since, filters, any_patient=spec.level == "patient" and patients is None, access=access
        )
        if patients is None:
            return [base]
        chunks = [patients[i : i + MEMBER_CHUNK] for i in range(0, len(patients), MEMBER_CHUNK)]
        return [ExportQuery(rtype, spec.since, filters, patients=chunk, access=access) for chunk in chunks]

    def _shape(self, spec: ExportSpec) -> Callable[[bytes], bytes]:
        if not spec.pseudonymise:
            return lambda body: body
        if self.pseudonymise is None:  # fail closed: never write identifiable data for secondary use
            raise RuntimeError("This export must be pseudonymised, but no pseudonymiser is configured")
        return self.pseudonymise

    def _write_type(
        self,
        cur: Any,
        spec: ExportSpec,
        rtype: str,
        patients: tuple[str, ...] | None,
        folder: Path,
        result: ExportResult,
        cancelled: threading.Event,
        progress: Callable[[str, int], None],
    ) -> None:
        queries = self._queries(spec, rtype, patients)
        shape = self._shape(spec)
        seen: set[int] | None = set() if len(queries) > 1 else None  # a resource may be in two patients' chunks
        out: Any = None
        current: OutputFile | None = None
        try:
            for query in queries:
                for n, (rid, body) in enumerate(bulk_sql.export_rows(self.store, cur, query)):
                    if seen is not None:
                        if rid in seen:
                            continue
                        seen.add(rid)
                    if current is None or current.count >= self.lines_per_file:
                        if out is not None:
                            out.close()
                        current = OutputFile(rtype, f"{rtype}-{sum(f.type == rtype for f in result.files) + 1}.ndjson")
                        result.files.append(current)
                        out = (folder / current.name).open("wb", buffering=1 << 20)
                    out.write(shape(body))
                    out.write(b"\n")
                    current.count += 1
                    if n % 5000 == 4999:
                        if cancelled.is_set():
                            raise Cancelled()
                        progress(rtype, result.total)
        finally:
            if out is not None:
                out.close()
