"""The resilience commands: check, backup, restore, migrate, replica (registered in `sharedcare.cli`)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import orjson

from sharedcare.settings import Settings

DB_HELP = "Database URL: sqlite:///path/file.db or postgresql://... (default: SHAREDCARE_DB or sqlite:///sharedcare.db)"


def _echo_json(data: object) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@click.command()
@click.option("--db", default=None, help=DB_HELP)
@click.option("--no-index", is_flag=True, help="Skip re-indexing every resource (much faster on big stores).")
def check(db: str | None, no_index: bool) -> None:
    """Verify the store is consistent: versions, bytes, search index, change feed. Exit 1 on any problem."""
    from sharedcare.app import build
    from sharedcare.resilience.check import check_store

    server = build(Settings.from_env(db=db, auto_migrate=False))
    try:
        started = time.monotonic()
        report = check_store(server.store, server.repo.indexer, index=not no_index)
        _echo_json({**report.to_json(), "seconds": round(time.monotonic() - started, 2)})
    finally:
        server.close()
    sys.exit(0 if report.ok else 1)


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--db", default=None, help=DB_HELP)
def backup(dest: Path, db: str | None) -> None:
    """Back up the store, online, into the new directory DEST (data file + manifest.json)."""
    from sharedcare.resilience.backup import BackupError
    from sharedcare.resilience.backup import backup as run_backup

    settings = Settings.from_env(db=db)
    try:
        manifest = run_backup(settings.db, dest)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    info = manifest.to_json()
    info.pop("types")
    _echo_json(info)


@click.command()
@click.argument("source", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--db", default=None, help="Target database (must be empty): " + DB_HELP)
def restore(source: Path, db: str | None) -> None:
    """Restore the backup in SOURCE into an empty store and verify it against the backup's manifest."""
    from sharedcare.resilience.backup import BackupError
    from sharedcare.resilience.backup import restore as run_restore

    settings = Settings.from_env(db=db)
    try:
        expected, found = run_restore(source, settings.db)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    _echo_json(
        {
            "verified": True,
            "resources": found.resources,
            "versions": found.versions,
            "digest": found.digest,
            "seconds": round(found.seconds, 3),
        }
    )


@click.command()
@click.option("--db", default=None, help=DB_HELP)
@click.option("--check", "check_only", is_flag=True, help="Only say what would change (exit 1 if anything would).")
@click.option("--to", "target", type=int, default=None, help="Schema version to go to (default: the latest).")
def migrate(db: str | None, check_only: bool, target: int | None) -> None:
    """Upgrade (or, with --to, roll back) the store's schema."""
    from sharedcare.app import open_store
    from sharedcare.fhir.search_parameters import SearchParameterRegistry
    from sharedcare.store import migrations

    settings = Settings.from_env(db=db, auto_migrate=False)
    store = open_store(settings.db, SearchParameterRegistry.load(), settings)
    try:
        if check_only:
            current, steps = migrations.pending(store, target)
        else:
            current, steps = migrations.migrate(store, target)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close()
    verb = "would run" if check_only else "ran"
    click.echo(f"schema version {current}; latest {migrations.LATEST}; {verb} {len(steps)} step(s)")
    for step in steps:
        click.echo(f"  {step.direction} {step.number}: {step.name}")
        for stmt in step.statements if check_only else ():
            click.echo("    " + " ".join(stmt.split()) + ";")
    sys.exit(1 if check_only and steps else 0)


@click.command()
@click.option("--primary", required=True, help="The primary's base URL, e.g. http://primary:8080")
@click.option("--db", default="sqlite:///replica.db", show_default=True, help="The replica's own store.")
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=8081, show_default=True, type=int, help="Port to listen on.")
def replica(primary: str, db: str, host: str | None, port: int) -> None:
    """Keep a complete read-only copy of PRIMARY from its change feed, and serve it (continuity mode)."""
    from sharedcare.app import build
    from sharedcare.serving import listening_socket, run_uvicorn

    settings = Settings.from_env(db=db, host=host, port=port, replica_primary=primary)
    server = build(settings)
    click.echo(f"sharedcare replica of {primary}: read-only FHIR at http://{settings.host}:{port}/fhir")
    try:
        run_uvicorn(server.asgi, listening_socket(settings.host, port))
    finally:
        server.close()


COMMANDS = (check, backup, restore, migrate, replica)
