"""`sharedcare backup` / `sharedcare restore`: consistent online backups, verified against a manifest.

A backup is a directory: the data file and `manifest.json`. The manifest is computed from the very snapshot that
was copied, so it describes the backup exactly: per resource type, the number of current resources and of versions
and a digest over every version (type, id, version, method, lastUpdated, sha256 of the bytes), plus totals and the
feed head. The digest is a sum of per-version hashes modulo 2**256: independent of row order (so any engine,
collation or physical layout gives the same value), streamed in constant memory.

- SQLite: the online backup API copies the whole database in one step from a read transaction. In WAL mode that
  transaction sees one committed state and blocks no writer. The manifest is then computed from the copy.
- PostgreSQL: one REPEATABLE READ transaction exports its snapshot; `pg_dump --snapshot` dumps exactly that
  snapshot (custom format) while the manifest is computed in the same transaction. Writers carry on throughout.

Restore goes into an empty target only (an SQLite path that does not exist, or a PostgreSQL database without
sharedcare tables), recomputes the manifest from the restored store and fails unless it matches. The restored
store gets a new feed epoch: its positions restart from the backup's, so followers of the old store must not
mistake them for their own.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import sqlite3
import subprocess
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import psycopg

FORMAT = "sharedcare-backup/1"
MODULUS = 2**256
SQLITE_FILE = "sharedcare.sqlite"
PG_FILE = "sharedcare.pgdump"
VERSIONS = "SELECT type, id, version, method, last_updated, body FROM versions"
NEW_EPOCH = {
    "sqlite": "UPDATE meta SET value = lower(hex(randomblob(16))) WHERE key = 'feed_epoch'",
    "postgresql": "UPDATE meta SET value = md5(random()::text || clock_timestamp()::text) WHERE key = 'feed_epoch'",
}


class BackupError(Exception):
    pass


@dataclass
class TypeTotals:
    resources: int = 0
    versions: int = 0
    digest: int = 0


@dataclass
class Manifest:
    backend: str
    schema_version: int
    head: int
    types: dict[str, TypeTotals] = field(default_factory=dict)
    created: str = ""
    file: str = ""
    file_bytes: int = 0
    seconds: float = 0.0

    @property
    def resources(self) -> int:
        return sum(t.resources for t in self.types.values())

    @property
    def versions(self) -> int:
        return sum(t.versions for t in self.types.values())

    @property
    def digest(self) -> str:
        return f"{sum(t.digest for t in self.types.values()) % MODULUS:064x}"

    def content(self) -> dict[str, Any]:
        """What must match between a backup and its restore (not where or when it was made)."""
        return {
            "resources": self.resources,
            "versions": self.versions,
            "digest": self.digest,
            "types": {
                k: {"resources": t.resources, "versions": t.versions, "digest": f"{t.digest:064x}"}
                for k, t in sorted(self.types.items())
            },
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "backend": self.backend,
            "created": self.created,
            "file": self.file,
            "file_bytes": self.file_bytes,
            "seconds": round(self.seconds, 3),
            "schema_version": self.schema_version,
            "feed_head": self.head,
            **self.content(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("format") != FORMAT:
            raise BackupError(f"not a sharedcare backup manifest (format {data.get('format')!r})")
        types = {k: TypeTotals(v["resources"], v["versions"], int(v["digest"], 16)) for k, v in data["types"].items()}
        m = cls(data["backend"], data["schema_version"], data["feed_head"], types, data["created"], data["file"])
        m.file_bytes = data.get("file_bytes", 0)
        return m


def compute_manifest(cur: Any, backend: str) -> Manifest:
    """The manifest of what `cur`'s snapshot holds; streams every version once."""
    cur.execute("SELECT value FROM meta WHERE key = 'schema_version'")
    schema = int(cur.fetchone()[0])
    head = 0
    if schema >= 2:
        cur.execute("SELECT COALESCE(MAX(pos), 0) FROM changes")
        head = int(cur.fetchone()[0])
    types: dict[str, TypeTotals] = defaultdict(TypeTotals)
    false = "FALSE" if backend == "postgresql" else "0"
    cur.execute(f"SELECT type, COUNT(*) FROM resources WHERE deleted = {false} GROUP BY type")
    for rtype, n in cur.fetchall():
        types[rtype].resources = int(n)
    for rtype, rid, version, method, last_updated, body in _stream(cur, VERSIONS):
        t = types[rtype]
        t.versions += 1
        t.digest = (t.digest + _version_hash(rtype, rid, version, method, last_updated, body)) % MODULUS
    return Manifest(backend, schema, head, dict(types))


def _stream(cur: Any, sql: str) -> Iterator[tuple[Any, ...]]:
    """Rows without holding them all: psycopg streams in chunks, sqlite3 fetches in batches."""
    if hasattr(cur, "stream"):
        yield from cur.stream(sql, size=2000)
        return
    cur.execute(sql)
    while rows := cur.fetchmany(2000):
        yield from rows


def _version_hash(rtype: str, rid: str, version: int, method: str, last_updated: str, body: Any) -> int:
    body_hash = hashlib.sha256(bytes(body)).hexdigest() if body is not None else "-"
    line = f"{rtype}\x00{rid}\x00{version}\x00{method}\x00{last_updated}\x00{body_hash}".encode()
    return int.from_bytes(hashlib.sha256(line).digest(), "big")


# --- backup ---------------------------------------------------------------------------------------------
def backup(url: str, dest: Path) -> Manifest:
    """Back up the store at `url` into the new directory `dest`; returns the manifest written beside the data."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} exists and is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    if url.startswith("sqlite:///"):
        manifest = _backup_sqlite(_sqlite_path(url), dest / SQLITE_FILE)
    elif url.startswith(("postgresql://", "postgres://")):
        manifest = _backup_postgres(url, dest / PG_FILE)
    else:
        raise BackupError(f"unsupported database URL {url!r}")
    manifest.seconds = time.monotonic() - started
    manifest.created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    manifest.file_bytes = (dest / manifest.file).stat().st_size
    _write_durably(dest / "manifest.json", orjson.dumps(manifest.to_json(), option=orjson.OPT_INDENT_2))
    return manifest


def _backup_sqlite(source: str, target: Path) -> Manifest:
    if not os.path.exists(source):
        raise BackupError(f"no SQLite database at {source}")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)  # pages=-1: the whole database in one step, from one read transaction
        dst.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file
        manifest = compute_manifest(dst.cursor(), "sqlite")
    finally:
        dst.close()
        src.close()
    _fsync(target)
    manifest.file = target.name
    return manifest


def _backup_postgres(url: str, target: Path) -> Manifest:
    pg_dump = _pg_tool("pg_dump")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]  # type: ignore[index]
        dump = subprocess.Popen(
            [
                pg_dump,
                "--format=custom",
                f"--snapshot={snapshot}",
                "--no-owner",
                "--no-privileges",
                "-f",
                str(target),
                url,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            with conn.cursor() as cur:
                manifest = compute_manifest(cur, "postgresql")
        finally:
            _, err = dump.communicate()
        conn.execute("COMMIT")
    if dump.returncode != 0:
        raise BackupError(f"pg_dump failed: {err.decode(errors='replace')[-500:]}")
    _fsync(target)
    manifest.file = target.name
    return manifest


# --- restore --------------------------------------------------------------------------------------------
def read_manifest(source: Path) -> Manifest:
    path = source / "manifest.json"
    if not path.exists():
        raise BackupError(f"{source} has no manifest.json: not a sharedcare backup")
    return Manifest.from_json(orjson.loads(path.read_bytes()))


def restore(source: Path, url: str) -> tuple[Manifest, Manifest]:
    """Restore the backup in `source` into the empty store at `url`; returns (expected, found), which match."""
    expected = read_manifest(source)
    started = time.monotonic()
    if url.startswith("sqlite:///"):
        found = _restore_sqlite(source / expected.file, _sqlite_path(url), expected)
    elif url.startswith(("postgresql://", "postgres://")):
        found = _restore_postgres(source / expected.file, url, expected)
    else:
        raise BackupError(f"unsupported database URL {url!r}")
    found.seconds = time.monotonic() - started
    if found.content() != expected.content():
        raise BackupError(f"restored store does not match the manifest: {_difference(expected, found)}")
    return expected, found


def _restore_sqlite(data: Path, target: str, expected: Manifest) -> Manifest:
    if expected.backend != "sqlite":
        raise BackupError(f"this is a {expected.backend} backup; restore it into a {expected.backend} database")
    if os.path.exists(target):
        raise BackupError(f"{target} already exists; restore only into a new file")
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    partial = target + ".restoring"
    src = sqlite3.connect(f"file:{data}?mode=ro", uri=True)
    dst = sqlite3.connect(partial)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
        dst.execute(NEW_EPOCH["sqlite"])
        dst.commit()
        found = compute_manifest(dst.cursor(), "sqlite")
    finally:
        dst.close()
        src.close()
    _fsync(Path(partial))
    os.replace(partial, target)  # the target appears only once complete
    return found


def _restore_postgres(data: Path, url: str, expected: Manifest) -> Manifest:
    if expected.backend != "postgresql":
        raise BackupError(f"this is a {expected.backend} backup; restore it into a {expected.backend} database")
    with psycopg.connect(url, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass('resources') IS NOT NULL").fetchone()[0]  # type: ignore[index]
    if exists:
        raise BackupError("the target database already holds sharedcare tables; restore only into an empty one")
    cmd = [_pg_tool("pg_restore"), "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
    result = subprocess.run([*cmd, "-d", url, str(data)], capture_output=True)
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.decode(errors='replace')[-500:]}")
    with psycopg.connect(url) as conn:
        conn.execute(NEW_EPOCH["postgresql"])
        conn.commit()
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with conn.cursor() as cur:
            return compute_manifest(cur, "postgresql")


# --- helpers --------------------------------------------------------------------------------------------
def _difference(expected: Manifest, found: Manifest) -> str:
    want, have = expected.content(), found.content()
    diffs = [k for k in ("resources", "versions", "digest") if want[k] != have[k]]
    types = sorted(k for k in set(want["types"]) | set(have["types"]) if want["types"].get(k) != have["types"].get(k))
    return f"{', '.join(diffs)} differ; types affected: {', '.join(types[:20]) or 'none'}"


def _sqlite_path(url: str) -> str:
    path = url.removeprefix("sqlite:///")
    if not path or path == ":memory:":
        raise BackupError("an SQLite backup or restore needs a file path: sqlite:///path/file.db")
    return path


def _pg_tool(name: str) -> str:
    """The newest installed client tool (pg_dump must be at least the server's major version)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_major)
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise BackupError(f"{name} not found: install the PostgreSQL client tools")


def _major(path: str) -> int:
    part = path.split("/")[-3]
    return int(part) if part.isdigit() else 0


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _write_durably(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    _fsync(tmp)
    os.replace(tmp, path)
    _fsync(path)
