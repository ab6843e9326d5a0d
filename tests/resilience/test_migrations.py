"""Schema migrations forward and back with data in the store, and `sharedcare migrate --check`."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from sharedcare.app import build
from sharedcare.cli import main
from sharedcare.errors import NotSupported
from sharedcare.resilience.backup import compute_manifest
from sharedcare.resilience.check import check_store
from sharedcare.settings import Settings
from sharedcare.store import migrations
from sharedcare.store.changes import ChangeFeed

PATIENT = {"resourceType": "Patient", "name": [{"family": "Migrate", "given": ["Data"]}], "gender": "female"}


def _content(server):  # type: ignore[no-untyped-def]
    with server.store.reading() as cur:
        return compute_manifest(cur, server.store.dialect.name).content()


def _write_some(server, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    ids = [server.repo.create("Patient", {**PATIENT, "birthDate": f"19{50 + k}-01-01"}).stored.id for k in range(n)]
    server.repo.update("Patient", ids[0], {**PATIENT, "id": ids[0], "gender": "male"})
    server.repo.delete("Patient", ids[1])
    return ids


def _version(server) -> int:  # type: ignore[no-untyped-def]
    with server.store.reading() as cur:
        return migrations.current_version(cur)


def test_store_created_at_an_earlier_schema_upgrades_and_rolls_back_with_data_intact(db_url: str) -> None:
    server = build(Settings(db=db_url, auto_migrate=False))  # what an earlier release created
    try:
        assert _version(server) == 1
        with pytest.raises(NotSupported):
            ChangeFeed(server.store).read(0)
        _write_some(server, 6)
        before = _content(server)

        start, steps = migrations.migrate(server.store)
        assert (start, [s.number for s in steps]) == (1, [2]) and _version(server) == 2
        assert _content(server) == before
        page = ChangeFeed(server.store).read(0)
        assert len(page.entries) == before["versions"] and page.complete  # history backfilled into the feed
        new_id = _write_some(server, 3)[0]
        assert ChangeFeed(server.store).read(page.position).entries[0].id == new_id
        report = check_store(server.store, server.repo.indexer)
        assert report.ok and not [w for w in report.warnings if "schema" in w], report.to_json()

        upgraded = _content(server)
        start, steps = migrations.migrate(server.store, 1)
        assert (start, [(s.number, s.direction) for s in steps]) == (2, [(2, "down")]) and _version(server) == 1
        assert _content(server) == upgraded
        assert check_store(server.store, server.repo.indexer).ok
        _write_some(server, 2)  # the rolled-back schema still takes writes

        migrations.migrate(server.store)
        assert _version(server) == 2 and check_store(server.store, server.repo.indexer).ok
        assert len(ChangeFeed(server.store).read(0, 5000).entries) == _content(server)["versions"]
    finally:
        server.close()


def test_migrate_check_says_what_would_change_and_changes_nothing(db_url: str) -> None:
    build(Settings(db=db_url, auto_migrate=False)).close()
    runner = CliRunner()
    result = runner.invoke(main, ["migrate", "--check", "--db", db_url])
    assert result.exit_code == 1, result.output
    assert "schema version 1; latest 2; would run 1 step(s)" in result.output
    assert "up 2: change feed" in result.output and "CREATE TABLE IF NOT EXISTS changes" in result.output

    assert runner.invoke(main, ["migrate", "--check", "--db", db_url]).exit_code == 1  # still pending: --check
    result = runner.invoke(main, ["migrate", "--db", db_url])
    assert result.exit_code == 0 and "ran 1 step(s)" in result.output
    result = runner.invoke(main, ["migrate", "--check", "--db", db_url])
    assert result.exit_code == 0 and "would run 0 step(s)" in result.output
    result = runner.invoke(main, ["migrate", "--check", "--to", "1", "--db", db_url])
    assert result.exit_code == 1 and "down 2" in result.output and "DROP TABLE IF EXISTS changes" in result.output
    assert runner.invoke(main, ["migrate", "--to", "0", "--db", db_url]).exit_code != 0


def test_plan_refuses_a_store_from_a_newer_release() -> None:
    with pytest.raises(ValueError):
        migrations.plan(migrations.LATEST + 1)
    assert migrations.plan(migrations.LATEST) == []
