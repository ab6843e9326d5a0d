"""The access tables and their upkeep, inside each write transaction (a repository write hook).

    access_member        (rid, patient)                 every Patient compartment a resource was ever in
    access_version       (rid, version, source_org, source_agent)   who wrote each version
    access_label         (rid, version, category, source_org)       sensitivity categories of each version
    access_relationship  (src, patient, party, kind, start_at, end_at)   derived from the current versions
    access_consent       (src, patient, kind, party, start_at, end_at)   derived from the current versions
    access_grant         (id, subject, patient, kind, reason_code, reason, organisation, role, created_at,
                          expires_at)                   break glass and self-claimed relationships

Membership and labels are kept per version (never deleted) so that history is restricted as strictly as the
current version; relationships and consents describe the present, so a new version replaces its source's rows
and a deletion removes them: an objection takes effect in the transaction that records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sharedcare.access import derive, labels
from sharedcare.store.schema import Dialect


def ddl(d: Dialect) -> list[str]:
    return [
        """CREATE TABLE IF NOT EXISTS access_member (
            rid BIGINT NOT NULL, patient TEXT NOT NULL, PRIMARY KEY (rid, patient))""",
        "CREATE INDEX IF NOT EXISTS access_member_patient ON access_member (patient)",
        """CREATE TABLE IF NOT EXISTS access_version (
            rid BIGINT NOT NULL, version INTEGER NOT NULL, source_org TEXT, source_agent TEXT,
            PRIMARY KEY (rid, version))""",
        """CREATE TABLE IF NOT EXISTS access_label (
            rid BIGINT NOT NULL, version INTEGER NOT NULL, category TEXT NOT NULL, source_org TEXT)""",
        "CREATE INDEX IF NOT EXISTS access_label_rid ON access_label (rid, version)",
        """CREATE TABLE IF NOT EXISTS access_relationship (
            src TEXT NOT NULL, patient TEXT NOT NULL, party TEXT NOT NULL, kind TEXT NOT NULL,
            start_at TEXT, end_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS access_relationship_pp ON access_relationship (patient, party, end_at)",
        "CREATE INDEX IF NOT EXISTS access_relationship_party ON access_relationship (party, patient)",
        "CREATE INDEX IF NOT EXISTS access_relationship_src ON access_relationship (src)",
        """CREATE TABLE IF NOT EXISTS access_consent (
            src TEXT NOT NULL, patient TEXT NOT NULL, kind TEXT NOT NULL, party TEXT,
            start_at TEXT, end_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS access_consent_patient ON access_consent (patient, kind)",
        "CREATE INDEX IF NOT EXISTS access_consent_src ON access_consent (src)",
        """CREATE TABLE IF NOT EXISTS access_grant (
            id TEXT PRIMARY KEY, subject TEXT NOT NULL, patient TEXT NOT NULL, kind TEXT NOT NULL,
            reason_code TEXT, reason TEXT, organisation TEXT, role TEXT, created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS access_grant_patient ON access_grant (patient, subject, expires_at)",
    ]


class AccessTables:
    """Keeps the access tables in step with one saved version; all statements run on the write's cursor."""

    def __init__(self, dialect: Dialect) -> None:
        self.d = dialect

    def rids(self, cur: Any, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
        by_type: dict[str, list[str]] = {}
        for type, id in keys:
            by_type.setdefault(type, []).append(id)
        out: dict[tuple[str, str], int] = {}
        for type, ids in by_type.items():
            for chunk in _chunks(ids):
                marks = ", ".join("?" * len(chunk))
                cur.execute(
                    self.d.sql(f"SELECT id, rid FROM resources WHERE type = ? AND id IN ({marks})"), [type, *chunk]
                )
                out.update({(type, row[0]): int(row[1]) for row in cur.fetchall()})
        return out

    def current_patients_of(self, cur: Any, rids: Sequence[int]) -> dict[int, set[str]]:
        return self._by_rid(cur, "SELECT rid, comp_id FROM compartment WHERE comp_type = 'Patient' AND rid IN", rids)

    def past_patients_of(self, cur: Any, rids: Sequence[int]) -> dict[int, set[str]]:
        return self._by_rid(cur, "SELECT rid, patient FROM access_member WHERE rid IN", rids)

    def _by_rid(self, cur: Any, select: str, rids: Sequence[int]) -> dict[int, set[str]]:
        out: dict[int, set[str]] = {}
        for chunk in _chunks(list(rids)):
            cur.execute(self.d.sql(f"{select} ({', '.join('?' * len(chunk))})"), chunk)
            for rid, patient in cur.fetchall():
                out.setdefault(int(rid), set()).add(patient)
        return out

    def source(self, cur: Any, rid: int, version: int) -> tuple[str | None, str | None] | None:
        cur.execute(
            self.d.sql("SELECT source_org, source_agent FROM access_version WHERE rid = ? AND version = ?"),
            (rid, version),
        )
        row = cur.fetchone()
        return (row[0], row[1]) if row else None

    def record_many(self, cur: Any, saved: Sequence[Saved], source_agent: str, resolve: derive.Resolver) -> None:
        """Record saved versions of distinct resources, each table filled with one statement."""
        versions, members, labels_, rels, facts = [], [], [], [], []
        stale_rels, stale_consents = [], []
        for s in saved:
            stored, rid, resource = s.stored, s.rid, s.resource
            versions.append((rid, stored.version, s.source_org, source_agent))
            members += [(rid, p) for p in sorted(s.patients)]
            src = f"{stored.type}/{stored.id}"
            if stored.version > 1 and stored.type in derive.RELATIONSHIP_TYPES:  # a first version replaces nothing
                stale_rels.append((src,))
            if stored.version > 1 and stored.type in derive.CONSENT_TYPES:
                stale_consents.append((src,))
            if resource is None:
                continue
            labels_ += [(rid, stored.version, c, s.source_org) for c in sorted(labels.categories(resource))]
            rels += [
                (src, r.patient, r.party, r.kind, r.start, r.end)
                for r in derive.relationships(resource, stored.last_updated, resolve)
            ]
            facts += [(src, f.patient, f.kind, f.party, f.start, f.end) for f in derive.consents(resource)]
        sql = self.d.sql
        statements = [
            ("INSERT INTO access_version (rid, version, source_org, source_agent) VALUES (?, ?, ?, ?)", versions),
            ("INSERT INTO access_member (rid, patient) VALUES (?, ?) ON CONFLICT DO NOTHING", members),
            ("DELETE FROM access_relationship WHERE src = ?", stale_rels),
            ("DELETE FROM access_consent WHERE src = ?", stale_consents),
            ("INSERT INTO access_label (rid, version, category, source_org) VALUES (?, ?, ?, ?)", labels_),
            (
                "INSERT INTO access_relationship (src, patient, party, kind, start_at, end_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                rels,
            ),
            (
                "INSERT INTO access_consent (src, patient, kind, party, start_at, end_at) VALUES (?, ?, ?, ?, ?, ?)",
                facts,
            ),
        ]
        for statement, rows in statements:
            if rows:
                cur.executemany(sql(statement), rows)


@dataclass(frozen=True, slots=True)
class Saved:
    """One saved version as the access tables record it: its patients (compartments) and source organisation."""

    rid: int
    stored: Any
    resource: dict[str, Any] | None
    patients: set[str]
    source_org: str | None


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


def source_org_of(resource: dict[str, Any] | None) -> str | None:
    """The organisation named in `meta.source`, for data loaded by the operator on others' behalf.

    Recognised forms: `urn:sharedcare:source:<ODS>[/client]` (what sharedcare stamps) and any URL whose path
    ends `/Organization/<ODS>` (optionally followed by `#...`)."""
    source = ((resource or {}).get("meta") or {}).get("source")
    if not isinstance(source, str):
        return None
    if source.startswith(SOURCE_PREFIX):
        org = source[len(SOURCE_PREFIX) :].split("/", 1)[0]
        return org if org and org != "-" else None
    path = source.split("#", 1)[0].rstrip("/")
    parts = path.split("/")
    if len(parts) >= 2 and parts[-2] == "Organization" and parts[-1]:
        return parts[-1]
    return None


SOURCE_PREFIX = "urn:sharedcare:source:"


def source_uri(org: str | None, agent: str) -> str:
    """What sharedcare stamps in `meta.source` on a write: the writer's organisation and client."""
    return f"{SOURCE_PREFIX}{org or '-'}/{agent}"
