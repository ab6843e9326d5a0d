"""`sharedcare generate` and `sharedcare demo`."""

from __future__ import annotations

from pathlib import Path

import click

from sharedcare.generate.nhs_numbers import CAPACITY


@click.command()
@click.option(
    "--patients",
    default=1000,
    show_default=True,
    type=click.IntRange(1, CAPACITY),
    help="People in the region (the 999 NHS number test range caps it at 899,991).",
)
@click.option("--seed", default=1, show_default=True, type=int, help="Same seed, same bytes.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output directory (new, empty, or a previous generation's).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["both", "ndjson", "bundles"]),
    default="both",
    show_default=True,
    help="NDJSON per organisation and type, transaction Bundles, or both.",
)
@click.option(
    "--missing-nhs",
    type=click.FloatRange(0, 1),
    default=None,
    help="Share of records without an NHS number: every source sends at least this many (default: its own rate).",
)
@click.option(
    "--typos",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of records with one more keying error (name letter, birth date, NHS number digit, postcode).",
)
def generate(patients: int, seed: int, out: Path, fmt: str, missing_nhs: float | None, typos: float) -> None:
    """Generate a synthetic UK-style region: each organisation's feed, plus ground_truth.csv for matching."""
    from sharedcare.generate.region import RegionConfig, generate_region

    config = RegionConfig(
        patients=patients,
        seed=seed,
        out=out,
        ndjson=fmt != "bundles",
        bundles=fmt != "ndjson",
        missing_nhs=missing_nhs,
        typos=typos,
    )
    summary = generate_region(config)
    click.echo(
        f"sharedcare generate: {summary.patients:,} people, {summary.patient_records:,} patient records across "
        f"{summary.organisations} organisations, {summary.resources:,} resources in {summary.seconds:.1f}s "
        f"({summary.rate:,.0f} resources/s) -> {out}"
    )


@click.command()
@click.option(
    "--patients", default=1000, show_default=True, type=click.IntRange(1, 200_000), help="People in the demo region."
)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--db", default=None, help="Store URL (default: a fresh SQLite file in a temporary directory).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
def demo(patients: int, seed: int, db: str | None, host: str, port: int) -> None:
    """Generate a small synthetic region, load it into a fresh store and serve it."""
    from sharedcare.generate.demo import demo_banner, operator_token, prepare_demo

    server = prepare_demo(patients, seed, db, echo=click.echo)
    from sharedcare.serving import listening_socket, run_uvicorn
    from sharedcare.web.demo_accounts import accounts_banner, create_demo_accounts

    click.echo(accounts_banner(create_demo_accounts(server), host, port))
    token = operator_token(server) if server.settings.auth_required else None
    click.echo(demo_banner(host, port, token))
    try:
        run_uvicorn(server.asgi, listening_socket(host, port))
    finally:
        server.close()
