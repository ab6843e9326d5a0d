"""`sharedcare mpi relink` and `sharedcare mpi status`: the master patient index from the command line."""

from __future__ import annotations

import click

from sharedcare.settings import Settings


@click.group()
def mpi() -> None:
    """The master patient index: Persons linking each organisation's Patient records."""


def _matcher(db: str | None):  # type: ignore[no-untyped-def]
    from sharedcare.app import build
    from sharedcare.matching.service import MatchHook

    server = build(Settings.from_env(db=db))
    hook = next(h for h in server.repo.write_hooks if isinstance(h, MatchHook))
    return server, hook.service


@mpi.command()
@click.option("--db", default=None, help="Database URL, as for serve.")
def relink(db: str | None) -> None:
    """Match every source Patient in the store again (after a bulk load or new weights) and write the changes."""
    from sharedcare.matching.relink import relink as run

    server, matcher = _matcher(db)
    try:
        report = run(matcher)
    finally:
        server.close()
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in report.timings.items())
    click.echo(
        f"sharedcare mpi relink: {report.records:,} records, {report.pairs_compared:,} pairs compared, "
        f"{report.persons:,} persons ({report.persons_written:,} Person resources written), "
        f"{report.reviews_opened:,} reviews opened, {report.reviews_cancelled:,} cancelled; {timings}"
    )


@mpi.command()
@click.option("--db", default=None, help="Database URL, as for serve.")
def status(db: str | None) -> None:
    """How many records, persons and open review items the index holds, and the thresholds in force."""
    server, matcher = _matcher(db)
    try:
        with matcher.mpi.reading() as sql:
            rows = sql.all_records()
            queue = sql.count_open_reviews()
    finally:
        server.close()
    w = matcher.weights
    click.echo(
        f"{len(rows):,} source Patients, {len({r[1] for r in rows}):,} persons, {queue:,} open review items; "
        f"link at >= {w.upper} bits, review from {w.lower} bits ({w.source})"
    )
