"""Online backup while writes continue, restore into an empty store, verification against the manifest."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from click.testing import CliRunner

from sharedcare.app import build
from sharedcare.cli import main
from sharedcare.resilience.backup import BackupError, backup, compute_manifest, restore
from sharedcare.resilience.check import check_store
from sharedcare.settings import Settings


def _patient(n: int) -> dict:
    return {"resourceType": "Patient", "name": [{"family": f"Backup{n}"}], "birthDate": "1970-01-01"}


@pytest.fixture
def target(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty store of the same backend to restore into."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'store.db'}"
        return
    name = f"restore_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield db_url.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_backup_while_writing_then_restore_and_verify(db_url: str, target: str, tmp_path: Path) -> None:
    server = build(Settings(db=db_url))
    try:
        ids = [server.repo.create("Patient", _patient(n)).stored.id for n in range(60)]
        for rid in ids[:10]:
            server.repo.update("Patient", rid, {**_patient(1000), "id": rid})
        server.repo.delete("Patient", ids[10])
        stop, written = threading.Event(), []

        def keep_writing() -> None:
            while not stop.is_set():
                written.append(server.repo.create("Patient", _patient(len(written))).stored.id)

        writer = threading.Thread(target=keep_writing)
        writer.start()
        try:
            manifest = backup(db_url, tmp_path / "bk")
        finally:
            stop.set()
            writer.join()
        assert written, "the writer never ran during the backup"
        patients = manifest.types["Patient"]
        assert 59 <= patients.resources <= 59 + len(written) and patients.versions >= 71
    finally:
        server.close()

    expected, found = restore(tmp_path / "bk", target)
    assert found.content() == expected.content() == manifest.content()
    restored = build(Settings(db=target))
    try:
        report = check_store(restored.store, restored.repo.indexer)
        assert report.ok, report.problems
        assert restored.repo.read("Patient", ids[0]).body is not None
        with restored.store.reading() as cur:
            cur.execute("SELECT value FROM meta WHERE key = 'feed_epoch'")
            new_epoch = cur.fetchone()[0]
        assert new_epoch != _epoch(db_url), "a restored store must get a new feed epoch"
    finally:
        restored.close()

    with pytest.raises(BackupError, match="already|exists"):
        restore(tmp_path / "bk", target)  # never over an existing store


def _epoch(url: str) -> str:
    server = build(Settings(db=url))
    try:
        with server.store.reading() as cur:
            cur.execute("SELECT value FROM meta WHERE key = 'feed_epoch'")
            return str(cur.fetchone()[0])
    finally:
        server.close()


def test_restore_refuses_a_backup_that_does_not_match_its_manifest(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    server = build(Settings(db=url))
    server.repo.create("Patient", _patient(1))
    server.close()
    backup(url, tmp_path / "bk")
    path = tmp_path / "bk" / "manifest.json"
    manifest = orjson.loads(path.read_bytes())
    manifest["types"]["Patient"]["versions"] += 1
    manifest["versions"] += 1
    path.write_bytes(orjson.dumps(manifest))
    with pytest.raises(BackupError, match="does not match the manifest"):
        restore(tmp_path / "bk", f"sqlite:///{tmp_path / 'out.db'}")


def test_backup_and_restore_commands(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    server = build(Settings(db=url))
    server.repo.create("Patient", _patient(1))
    with server.store.reading() as cur:
        digest = compute_manifest(cur, "sqlite").digest
    server.close()
    runner = CliRunner()
    result = runner.invoke(main, ["backup", str(tmp_path / "bk"), "--db", url])
    assert result.exit_code == 0 and digest in result.output
    assert runner.invoke(main, ["backup", str(tmp_path / "bk"), "--db", url]).exit_code != 0  # not over a backup
    result = runner.invoke(main, ["restore", str(tmp_path / "bk"), "--db", f"sqlite:///{tmp_path / 'r.db'}"])
    assert result.exit_code == 0 and '"verified": true' in result.output and digest in result.output
