"""Append-only, hash-chained storage of AuditEvents, with verification and search.

Two steps, so that a write and its audit record commit together without every writer queueing on the chain:
1. `stage_in(cur, events)` inserts into `audit_pending` on the write's own cursor: the event commits or rolls back
   with the data it describes.
2. `seal_in(cur)` (one sealer at a time: the chain lock) moves pending rows into `audit_log`, numbering them
   1, 2, 3, ... and chaining them: hash = SHA-256(seq | prev_hash | body). It also records the head (last seq and
   hash) with a signature by the server key, so truncating the tail is detected too.

`verify` recomputes everything: contiguous sequence numbers, each link and hash, the search terms of each row,
and the signed head. Triggers refuse UPDATE and DELETE on the log (defence in depth: the chain is the evidence).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sharedcare.audit.events import index_terms
from sharedcare.store.schema import Dialect

GENESIS = "0" * 64
CHAIN_LOCK = "audit-chain"

Signer = Callable[[bytes], str]
SignatureCheck = Callable[[str], bytes | None]


def ddl(d: Dialect) -> list[str]:
    stmts = [
        f"""CREATE TABLE IF NOT EXISTS audit_log (
            seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, recorded TEXT NOT NULL,
            prev_hash TEXT NOT NULL, hash TEXT NOT NULL, body {d.blob} NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_recorded ON audit_log (recorded)",
        "CREATE TABLE IF NOT EXISTS audit_index (seq BIGINT NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS audit_index_term ON audit_index (kind, value, seq)",
        "CREATE INDEX IF NOT EXISTS audit_index_seq ON audit_index (seq)",
        f"CREATE TABLE IF NOT EXISTS audit_pending (pid {d.serial_pk}, body {d.blob} NOT NULL)",
        "CREATE TABLE IF NOT EXISTS audit_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ]
    if d.name == "postgresql":
        stmts += [
            """CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
               BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""",
        ]
        for table in ("audit_log", "audit_index"):
            stmts += [
                f"""CREATE OR REPLACE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
                    FOR EACH ROW EXECUTE FUNCTION audit_append_only()""",
                f"""CREATE OR REPLACE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
                    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()""",
            ]
    else:
        for table in ("audit_log", "audit_index"):
            for op in ("UPDATE", "DELETE"):
                stmts.append(
                    f"""CREATE TRIGGER IF NOT EXISTS {table}_no_{op.lower()} BEFORE {op} ON {table}
                        BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"""
                )
    return stmts


def chain_hash(seq: int, prev: str, body: bytes) -> str:
    return hashlib.sha256(f"{seq}|{prev}|".encode() + body).hexdigest()


@dataclass
class VerifyReport:
    rows: int = 0
    pending: int = 0
    head: tuple[int, str] | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """The audit tables over one store; `lock` serialises sealers (a store's `lock_key`)."""

    def __init__(
        self,
        dialect: Dialect,
        lock: Callable[[Any, str], None],
        sign: Signer | None = None,
        check_signature: SignatureCheck | None = None,
    ) -> None:
        self.d, self.lock = dialect, lock
        self.sign, self.check_signature = sign, check_signature

    # --- writing ------------------------------------------------------------------------------------------
    def stage_in(self, cur: Any, events: Sequence[dict[str, Any]]) -> None:
        if events:
            cur.executemany(
                self.d.sql("INSERT INTO audit_pending (body) VALUES (?)"), [(orjson.dumps(e),) for e in events]
            )

    def seal_in(
        self,
        cur: Any,
        events: Sequence[dict[str, Any]] = (),
        *,
        sign: bool = True,
        encoded: Sequence[tuple[dict[str, Any], bytes]] = (),
    ) -> int:
        """Chain every pending event (oldest first), then `encoded` (events with their JSON bytes), then `events`;
        returns how many were sealed. With `sign` False the caller must call `sign_head` before its transaction
        commits (once for many seals)."""
        self.lock(cur, CHAIN_LOCK)
        cur.execute("SELECT pid, body FROM audit_pending ORDER BY pid")
        pending = [(row[0], bytes(row[1])) for row in cur.fetchall()]
        batch = [(orjson.loads(body), body) for _, body in pending] + list(encoded)
        batch += [(e, orjson.dumps(e)) for e in events]
        if not batch:
            return 0
        cur.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
        last = cur.fetchone()
        seq, prev = (int(last[0]), last[1]) if last else (0, GENESIS)
        rows, terms = [], []
        for event, body in batch:
            seq += 1
            digest = chain_hash(seq, prev, body)
            rows.append((seq, event["id"], event["recorded"], prev, digest, body))
            terms += [(seq, kind, value) for kind, value in index_terms(event)]
            prev = digest
        sql = self.d.sql
        cur.executemany(
            sql("INSERT INTO audit_log (seq, id, recorded, prev_hash, hash, body) VALUES (?, ?, ?, ?, ?, ?)"), rows
        )
        cur.executemany(sql("INSERT INTO audit_index (seq, kind, value) VALUES (?, ?, ?)"), terms)
        if pending:  # exactly those chained: on PostgreSQL a stager may commit a lower pid meanwhile
            cur.executemany(sql("DELETE FROM audit_pending WHERE pid = ?"), [(pid,) for pid, _ in pending])
        self._set_head(cur, seq, prev, sign)
        return len(batch)

    def unchained(
        self, cur: Any, encoded: Sequence[tuple[dict[str, Any], bytes]]
    ) -> list[tuple[dict[str, Any], bytes]]:
        """Those of `encoded` whose ids are not in the chain yet (a journal folded again after a crash)."""
        present: set[str] = set()
        ids = [e["id"] for e, _ in encoded]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            cur.execute(
                self.d.sql(f"SELECT id FROM audit_log WHERE id IN ({', '.join('?' * len(chunk))})"), chunk
            )
            present.update(row[0] for row in cur.fetchall())
        return [(e, body) for e, body in encoded if e["id"] not in present]

    def sign_head(self, cur: Any) -> None:
        """Sign the chain's current head (after seals made with `sign=False`)."""
        cur.execute(self.d.sql("SELECT value FROM audit_state WHERE key = 'head'"))
        row = cur.fetchone()
        if row is not None and self.sign is not None:
            self._write_state(cur, [("head_signature", self.sign(row[0].encode()))])

    def _set_head(self, cur: Any, seq: int, digest: str, sign: bool = True) -> None:
        head = f"{seq}:{digest}"
        values = [("head", head)]
        if self.sign is not None and sign:
            values.append(("head_signature", self.sign(head.encode())))
        self._write_state(cur, values)

    def _write_state(self, cur: Any, values: list[tuple[str, str]]) -> None:
        cur.executemany(
            self.d.sql(
                "INSERT INTO audit_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
            ),
            values,
        )

    # --- verification -------------------------------------------------------------------------------------
    def verify(self, cur: Any, batch: int = 2000) -> VerifyReport:
        """Recompute the chain from the first row; every departure is reported with its sequence number."""
        report = VerifyReport()
        expected_seq, prev = 1, GENESIS
        last_seq, after = 0, -(2**62)
        while True:
            cur.execute(
                self.d.sql(
                    "SELECT seq, id, recorded, prev_hash, hash, body FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?"
                ),
                (after, batch),
            )
            rows = cur.fetchall()
            if not rows:
                break
            terms = self._terms(cur, int(rows[0][0]), int(rows[-1][0]))
            for seq, id, recorded, prev_hash, digest, body in rows:
                seq, body = int(seq), bytes(body)
                self._check_row(report, seq, expected_seq, prev, id, recorded, prev_hash, digest, body, terms)
                report.rows += 1
                expected_seq, prev, last_seq, after = seq + 1, digest, seq, seq
        self._check_head(cur, report, last_seq, prev)
        cur.execute("SELECT COUNT(*) FROM audit_pending")
        report.pending = int(cur.fetchone()[0])
        return report

    def _terms(self, cur: Any, lo: int, hi: int) -> dict[int, list[tuple[str, str]]]:
        cur.execute(self.d.sql("SELECT seq, kind, value FROM audit_index WHERE seq >= ? AND seq <= ?"), (lo, hi))
        out: dict[int, list[tuple[str, str]]] = {}
        for seq, kind, value in cur.fetchall():
            out.setdefault(int(seq), []).append((kind, value))
        return out

    @staticmethod
    def _check_row(
        report: VerifyReport,
        seq: int,
        expected: int,
        prev: str,
        id: str,
        recorded: str,
        prev_hash: str,
        digest: str,
        body: bytes,
        terms: dict[int, list[tuple[str, str]]],
    ) -> None:
        problems = report.problems
        if seq != expected:
            problems.append(f"seq {seq}: expected seq {expected} (rows missing or reordered)")
        if prev_hash != prev:
            problems.append(f"seq {seq}: prev_hash does not match the previous row's hash (chain broken)")
        if chain_hash(seq, prev_hash, body) != digest:
            problems.append(f"seq {seq}: hash does not match the row's content (modified)")
        try:
            event = orjson.loads(body)
        except orjson.JSONDecodeError:
            problems.append(f"seq {seq}: body is not JSON (modified)")
            return
        if event.get("id") != id or event.get("recorded") != recorded:
            problems.append(f"seq {seq}: id or recorded column differs from the event (modified)")
        if sorted(terms.get(seq, [])) != index_terms(event):
            problems.append(f"seq {seq}: search index differs from the event (index modified)")

    def _check_head(self, cur: Any, report: VerifyReport, last_seq: int, last_hash: str) -> None:
        cur.execute("SELECT key, value FROM audit_state")
        state = dict(cur.fetchall())
        head = state.get("head")
        report.head = (last_seq, last_hash) if last_seq else None
        if head is None:
            if last_seq:
                report.problems.append("the signed head of the chain is missing")
            return
        if head != f"{last_seq}:{last_hash}":
            report.problems.append(f"the recorded head is {head.split(':')[0]} but the chain ends at {last_seq}")
        if self.check_signature is not None:
            signed = self.check_signature(state.get("head_signature", ""))
            if signed != head.encode():
                report.problems.append("the head's signature is not valid (head modified)")

    # --- search -------------------------------------------------------------------------------------------
    def search(
        self,
        cur: Any,
        terms: Sequence[tuple[str, Sequence[str]]],
        date_conds: Sequence[tuple[str, str]],
        count: int,
        offset: int,
    ) -> tuple[list[bytes], int]:
        """Events matching every (kind, any of values) term and date bound, newest first, and the total."""
        conds, args = ["1 = 1"], []
        for kind, values in terms:
            marks = ", ".join("?" * len(values))
            conds.append(
                f"EXISTS (SELECT 1 FROM audit_index i WHERE i.seq = a.seq AND i.kind = ? AND i.value IN ({marks}))"
            )
            args += [kind, *values]
        for op, value in date_conds:
            conds.append(f"a.recorded {op} ?")
            args.append(value)
        where = " AND ".join(conds)
        cur.execute(self.d.sql(f"SELECT COUNT(*) FROM audit_log a WHERE {where}"), args)
        total = int(cur.fetchone()[0])
        cur.execute(
            self.d.sql(f"SELECT a.body FROM audit_log a WHERE {where} ORDER BY a.seq DESC LIMIT ? OFFSET ?"),
            [*args, count, offset],
        )
        return [bytes(row[0]) for row in cur.fetchall()], total

    def read(self, cur: Any, id: str) -> bytes | None:
        cur.execute(self.d.sql("SELECT body FROM audit_log WHERE id = ?"), (id,))
        row = cur.fetchone()
        return bytes(row[0]) if row else None

    def patients_of(self, cur: Any, id: str) -> set[str]:
        cur.execute(
            self.d.sql(
                "SELECT i.value FROM audit_index i JOIN audit_log a ON a.seq = i.seq "
                "WHERE a.id = ? AND i.kind = 'patient'"
            ),
            (id,),
        )
        return {row[0] for row in cur.fetchall()}
