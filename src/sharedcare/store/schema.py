"""The storage schema, one definition for both dialects.

`resources` holds one row per logical resource (its current version number and whether it is deleted);
`versions` holds every version's exact JSON bytes, keyed by a global sequence number that orders system history
and anchors stable history paging. The `idx_*` tables hold search index rows for current, non-deleted versions
only; the store replaces them in the same transaction as the write.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SCHEMA_VERSION = 1  # the baseline a new store starts at; every later change is a numbered store/migrations step


@dataclass(frozen=True)
class Dialect:
    name: str
    serial_pk: str  # an auto-increment 64-bit primary key column type
    blob: str
    real: str
    placeholder: str  # "?" or "%s"

    def sql(self, text: str) -> str:
        """Queries are written with `?` placeholders; PostgreSQL (psycopg) wants `%s`."""
        return text if self.placeholder == "?" else text.replace("?", "%s")


SQLITE = Dialect("sqlite", "INTEGER PRIMARY KEY", "BLOB", "REAL", "?")
POSTGRES = Dialect("postgresql", "BIGSERIAL PRIMARY KEY", "BYTEA", "DOUBLE PRECISION", "%s")

# (table, columns after rid/type, indexes as column lists). Each search index ends with `rid`, so the subquery
# that drives a search (`SELECT rid FROM idx_... WHERE type = ? AND param = ? AND ...`) and its counts are answered
# from the index alone, without a table lookup per row (see store/searchsql.py).
INDEX_TABLES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]] = {
    "idx_string": (("param", "value", "exact"), (("type", "param", "value", "rid"),)),
    "idx_token": (
        ("param", "system", "code", "text"),
        (("type", "param", "code", "system", "rid"), ("type", "param", "system", "rid")),
    ),
    "idx_reference": (
        ("param", "target_type", "target_id", "url"),
        (("target_id", "target_type", "param", "type", "rid"), ("type", "param", "url", "rid")),
    ),
    "idx_date": (
        ("param", "low", "high"),
        (("type", "param", "low", "high", "rid"), ("type", "param", "high", "low", "rid")),
    ),
    "idx_number": (("param", "low", "high"), (("type", "param", "low", "high", "rid"),)),
    "idx_quantity": (
        ("param", "system", "code", "unit", "low", "high"),
        (("type", "param", "code", "low", "high", "rid"),),
    ),
    "idx_uri": (("param", "uri"), (("type", "param", "uri", "rid"),)),
    "idx_composite": (("param", "c1", "c2", "c3"), (("type", "param", "c1", "c2", "rid"),)),
}
NUMERIC_COLUMNS = {
    ("idx_number", "low"),
    ("idx_number", "high"),
    ("idx_quantity", "low"),
    ("idx_quantity", "high"),
}


def ddl(d: Dialect) -> list[str]:
    """Every statement that creates the schema, idempotent (IF NOT EXISTS)."""
    bool_t = "BOOLEAN" if d.name == "postgresql" else "INTEGER"
    stmts = [
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS resources (
            rid {d.serial_pk}, type TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL,
            seq BIGINT NOT NULL, last_updated TEXT NOT NULL, deleted {bool_t} NOT NULL,
            UNIQUE (type, id))""",
        "CREATE INDEX IF NOT EXISTS resources_type_lu ON resources (type, last_updated)",
        f"""CREATE TABLE IF NOT EXISTS versions (
            seq {d.serial_pk}, rid BIGINT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL,
            version INTEGER NOT NULL, last_updated TEXT NOT NULL, method TEXT NOT NULL, body {d.blob},
            UNIQUE (rid, version))""",
        "CREATE INDEX IF NOT EXISTS versions_type_seq ON versions (type, seq)",
        "CREATE INDEX IF NOT EXISTS versions_lu ON versions (last_updated)",
        """CREATE TABLE IF NOT EXISTS compartment (
            rid BIGINT NOT NULL, type TEXT NOT NULL, comp_type TEXT NOT NULL, comp_id TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS compartment_member ON compartment (comp_id, comp_type, type, rid)",
        "CREATE INDEX IF NOT EXISTS compartment_rid ON compartment (rid)",
        "CREATE TABLE IF NOT EXISTS fulltext_rows (rid BIGINT PRIMARY KEY, type TEXT NOT NULL, content TEXT)",
    ]
    for table, (cols, indexes) in INDEX_TABLES.items():
        coldefs = ", ".join(f"{c} {d.real if (table, c) in NUMERIC_COLUMNS else 'TEXT'}" for c in cols)
        stmts.append(
            f"CREATE TABLE IF NOT EXISTS {table} (rid BIGINT NOT NULL, type TEXT NOT NULL, {coldefs})"
        )
        stmts.append(f"CREATE INDEX IF NOT EXISTS {table}_rid ON {table} (rid)")
        for n, idx in enumerate(indexes):
            stmts.append(f"CREATE INDEX IF NOT EXISTS {table}_{n} ON {table} ({', '.join(idx)})")
    return stmts + search_ddl(d)


def search_ddl(d: Dialect) -> list[str]:
    """What the search engine adds: a covering index for type scans in key order, and full-text search.

    SQLite: an FTS5 table without its own copy of the text (`content=''`), fed from `fulltext_rows` by triggers
    (a row is removed from FTS5 by replaying its old text, which is how contentless tables delete).
    PostgreSQL: a GIN index over `to_tsvector('simple', content)`, plus a pattern index for string prefixes.
    """
    stmts = ["CREATE INDEX IF NOT EXISTS resources_type_live ON resources (type, deleted, rid)"]
    if d.name == "postgresql":
        return stmts + [
            "CREATE INDEX IF NOT EXISTS fulltext_rows_tsv ON fulltext_rows "
            "USING GIN (to_tsvector('simple'::regconfig, content))",
            "CREATE INDEX IF NOT EXISTS idx_string_prefix ON idx_string (type, param, value text_pattern_ops)",
            "CREATE INDEX IF NOT EXISTS idx_token_text ON idx_token (type, param, text text_pattern_ops)",
        ]
    return stmts + [
        "CREATE VIRTUAL TABLE IF NOT EXISTS fulltext_fts USING fts5(content, content='', "
        "tokenize='unicode61 remove_diacritics 2')",
        """CREATE TRIGGER IF NOT EXISTS fulltext_rows_ai AFTER INSERT ON fulltext_rows BEGIN
            INSERT INTO fulltext_fts (rowid, content) VALUES (new.rid, new.content); END""",
        """CREATE TRIGGER IF NOT EXISTS fulltext_rows_ad AFTER DELETE ON fulltext_rows BEGIN
            INSERT INTO fulltext_fts (fulltext_fts, rowid, content) VALUES ('delete', old.rid, old.content); END""",
    ]


_CREATES = re.compile(r"CREATE\s+(?:UNIQUE\s+)?(?:TABLE|INDEX)\s+IF\s+NOT\s+EXISTS\s+(\w+)", re.IGNORECASE)
_TRIGGER = re.compile(r"CREATE\s+OR\s+REPLACE\s+TRIGGER\s+(\w+)", re.IGNORECASE)
_FUNCTION = re.compile(r"CREATE\s+OR\s+REPLACE\s+FUNCTION\s+(\w+)", re.IGNORECASE)


def pending_ddl(cur: Any, d: Dialect, statements: Sequence[str]) -> list[str]:
    """The statements that create something not there yet.

    On PostgreSQL even `CREATE INDEX IF NOT EXISTS` of an existing index, or `CREATE OR REPLACE TRIGGER`, takes a
    lock on its table; a second process starting beside a busy server (an import, a CLI command) then deadlocked
    with the server's writers. Objects already present are skipped, so starting takes no table lock. SQLite: all
    (its writer lock already serialises DDL with writes)."""
    if d.name != "postgresql":
        return list(statements)
    out = []
    for stmt in statements:
        if m := _CREATES.match(stmt.strip()):
            cur.execute("SELECT to_regclass(%s) IS NOT NULL", (m.group(1),))
        elif m := _TRIGGER.match(stmt.strip()):
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = %s)", (m.group(1),))
        elif m := _FUNCTION.match(stmt.strip()):
            cur.execute("SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = %s)", (m.group(1),))
        else:
            out.append(stmt)
            continue
        if not cur.fetchone()[0]:
            out.append(stmt)
    return out
