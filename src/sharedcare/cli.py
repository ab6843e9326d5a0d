"""The `sharedcare` command line: serve the FHIR API, or answer one request in process."""

from __future__ import annotations

import sys

import click

from sharedcare.settings import Settings


@click.group()
@click.version_option(package_name="sharedcare")
def main() -> None:
    """sharedcare: a shared health and care record over FHIR R4."""


@main.command()
@click.option(
    "--db", default=None, help="sqlite:///path/file.db (default sqlite:///sharedcare.db) or postgresql://..."
)
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port to listen on (default 8080).")
@click.option("--workers", default=None, type=int, help="Server processes sharing the port (default 1).")
@click.option("--secondary", is_flag=True, hidden=True, help="Started by a primary: serve requests only.")
@click.option("--ready-fd", type=int, default=None, hidden=True, help="A secondary: say so here once listening.")
def serve(
    db: str | None, host: str | None, port: int | None, workers: int | None, secondary: bool, ready_fd: int | None
) -> None:
    """Serve the FHIR R4 API at http://HOST:PORT/fhir."""
    import os

    from sharedcare.app import build
    from sharedcare.serving import announce_ready, listening_socket, run_uvicorn, secondaries, watch_primary

    settings = Settings.from_env(db=db, host=host, port=port, workers=workers)
    shared = settings.workers > 1
    if shared and settings.port == 0:
        raise click.UsageError("--workers above 1 needs a fixed --port (each process binds the same one)")
    if secondary:  # no background duties; stops when the primary goes
        watch_primary(os.getppid())
        server = build(settings, background=False)
        try:
            sock = listening_socket(settings.host, settings.port, shared=True)
            announce_ready(ready_fd)
            run_uvicorn(server.asgi, sock)
        finally:
            server.close()
        return
    sock = listening_socket(settings.host, settings.port, shared=shared)
    server = build(settings)  # first: migrations and schema are settled before any secondary opens the store
    with secondaries(settings.workers - 1, settings):
        click.echo(
            f"sharedcare: FHIR R4 base at http://{settings.host}:{settings.port}/fhir  (store: {settings.db}"
            + (f", {settings.workers} processes)" if shared else ")")
        )
        try:
            run_uvicorn(server.asgi, sock)
        finally:
            server.close()


@main.command()
@click.argument("path")
@click.option("--db", default=None, help="Database URL, as for serve.")
def get(path: str, db: str | None) -> None:
    """GET one FHIR path (e.g. `Patient/123` or `metadata`) in process, without opening a socket."""
    from urllib.parse import parse_qsl, urlsplit

    from sharedcare.app import build
    from sharedcare.errors import FhirError
    from sharedcare.fhir.outcome import outcome_bytes
    from sharedcare.types import FhirRequest

    server = build(Settings.from_env(db=db))
    try:
        parts = urlsplit(path)
        segments = [s for s in parts.path.strip("/").split("/") if s]
        req = FhirRequest("GET", segments, parse_qsl(parts.query), base_url="http://localhost/fhir")
        try:
            resp = server.handle(req)
            body, status = resp.body or b"", resp.status
        except FhirError as err:
            body, status = outcome_bytes(err.issues), err.status
        sys.stdout.write(body.decode() + "\n")
        sys.exit(0 if status < 400 else 1)
    finally:
        server.close()


# --- commands defined in their own modules, registered here (one line each) ------------------------------------
from sharedcare.resilience import commands as resilience  # noqa: E402

main.add_command(resilience.check)
main.add_command(resilience.backup)
main.add_command(resilience.restore)
main.add_command(resilience.migrate)
main.add_command(resilience.replica)
from sharedcare.generate import cli as generate_cli  # noqa: E402

main.add_command(generate_cli.generate)
main.add_command(generate_cli.demo)
from sharedcare.bulk import cli as bulk_cli  # noqa: E402

main.add_command(bulk_cli.import_command)
main.add_command(bulk_cli.export_command)
from sharedcare.auth import cli as security_cli  # noqa: E402

security_cli.add_dev_open(serve)
main.add_command(security_cli.client)
main.add_command(security_cli.user)
main.add_command(security_cli.token)
main.add_command(security_cli.keys)
main.add_command(security_cli.audit)
from sharedcare.matching import cli as matching_cli  # noqa: E402

main.add_command(matching_cli.mpi)
