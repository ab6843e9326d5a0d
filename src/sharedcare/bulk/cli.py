"""`sharedcare import` and `sharedcare export`: bulk load files into the store, or write it out as NDJSON.

Exit status of `import`: 0 when every line loaded (or had loaded before), 2 when some lines were rejected (see the
error report), 1 when the import stopped (rerun the same command to resume where it stopped), 130 on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from sharedcare.bulk.loader import ImportOptions, ImportStats
from sharedcare.bulk.sources import Source
from sharedcare.settings import Settings


class RateColumn(ProgressColumn):
    """Resources written per second, averaged over the run so far."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        written = int(task.fields.get("written", 0))
        rate = written / elapsed if elapsed > 0 else 0.0
        return Text(f"{written:,} resources  {rate:,.0f}/s", style="progress.data.speed")


class RichImportProgress:
    """A progress bar over the bytes of all input files, with resources written, their rate and an ETA."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.fields[file]}", justify="left"),
            BarColumn(bar_width=24),
            TaskProgressColumn(),
            RateColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self.task = self.bar.add_task("import", total=None, file="", written=0)
        self.written = 0

    def begin(self, total_bytes: int, files: int) -> None:
        self.bar.update(self.task, total=max(total_bytes, 1))

    def file(self, source: Source) -> None:
        name = source.path.name
        self.bar.update(self.task, file=name if len(name) <= 24 else "…" + name[-23:])

    def advance(self, nbytes: int, resources: int) -> None:
        self.written += resources
        self.bar.update(self.task, advance=nbytes, written=self.written)

    def phase(self, text: str) -> None:
        self.bar.update(self.task, file=text)

    def __enter__(self) -> RichImportProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--db", default=None, help="Database URL, as for serve.")
@click.option(
    "--workers",
    type=int,
    default=None,
    help="Processes that parse, validate and index while the writer commits (default: one per CPU; 0: none).",
)
@click.option("--batch-size", type=int, default=1000, show_default=True, help="Resources per store transaction.")
@click.option(
    "--errors",
    "errors_path",
    type=click.Path(path_type=Path),
    default=Path("import-errors.ndjson"),
    show_default=True,
    help="Where rejected lines are reported (file, line, OperationOutcome); not written when there are none.",
)
@click.option("--progress/--no-progress", "show_progress", default=None, help="Progress bar (default: on a terminal).")
@click.option(
    "--defer-indexes/--keep-indexes",
    "defer_indexes",
    default=None,
    help="SQLite, NDJSON: build the search indexes after the load rather than during it (faster; searches scan "
    "meanwhile). Default: defer when the load is at least as large as the store.",
)
def import_command(
    paths: tuple[Path, ...],
    db: str | None,
    workers: int | None,
    batch_size: int,
    errors_path: Path,
    show_progress: bool | None,
    defer_indexes: bool | None,
) -> None:
    """Load NDJSON files, Bundle files and folders of them (gzip too) into the store.

    Every resource is validated and indexed as the API does. NDJSON resources keep their ids, and an identical
    resource is not stored again; transaction and batch Bundles keep their semantics. Invalid lines go to the
    error report while the rest loads. Rerunning the command after an interruption resumes it; rerunning it after
    it finished loads nothing twice.
    """
    from sharedcare.app import build
    from sharedcare.bulk.report import write_report
    from sharedcare.bulk.service import loader_for
    from sharedcare.bulk.sources import discover

    console = Console(stderr=True)
    sources, skipped = discover(paths)
    for path in skipped:
        console.print(f"[yellow]skipped[/] {path} (not FHIR NDJSON or JSON; .ndjson, .jsonl, .json, optionally .gz)")
    options = ImportOptions(
        batch_size=batch_size,
        workers=(os.cpu_count() or 1) if workers is None else workers,
        defer_indexes=defer_indexes,
    )
    show = sys.stderr.isatty() if show_progress is None else show_progress
    server = build(Settings.from_env(db=db))
    status = 0
    try:
        progress = RichImportProgress(console) if show else None
        loader = loader_for(server, options, progress)
        started = time.perf_counter()
        try:
            if progress is not None:
                with progress:
                    stats = loader.run(sources)
            else:
                stats = loader.run(sources)
        except KeyboardInterrupt:
            console.print("[red]Interrupted.[/] Committed work is kept: rerun the same command to resume.")
            sys.exit(130)
        rejected = write_report(server.store, sources, errors_path)
        print_summary(console, stats, time.perf_counter() - started, rejected, errors_path)
        status = 2 if rejected else 0
    finally:
        server.close()
    sys.exit(status)


def print_summary(console: Console, stats: ImportStats, seconds: float, rejected: int, errors_path: Path) -> None:
    table = Table(title="sharedcare import", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    resumed = f" ({stats.files_resumed} resumed)" if stats.files_resumed else ""
    table.add_row("files loaded", f"{stats.files:,}{resumed}")
    table.add_row("files already loaded (skipped)", f"{stats.files_already_loaded:,}")
    table.add_row("resources created", f"{stats.created:,}")
    table.add_row("resources updated", f"{stats.updated:,}")
    table.add_row("resources unchanged", f"{stats.unchanged:,}")
    table.add_row("rejected (this run)", f"{stats.errors:,}")
    table.add_row("elapsed", f"{seconds:,.1f} s")
    rate = stats.written / seconds if seconds > 0 else 0.0
    table.add_row("rate", f"{rate:,.0f} resources/s")
    console.print(table)
    if rejected:
        console.print(f"[yellow]{rejected:,} rejected line(s) or Bundle(s)[/] reported in {errors_path}")


@click.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--db", default=None, help="Database URL, as for serve.")
@click.option("--type", "types", default="", help="Comma-separated resource types (default: all).")
@click.option("--since", default=None, help="Only resources changed at or after this instant.")
@click.option("--type-filter", "type_filters", multiple=True, help="Type?search (repeatable), as _typeFilter.")
@click.option("--patient", "patient_level", is_flag=True, help="Patient-level: only Patient compartments.")
@click.option("--group", default=None, help="Group-level: only the compartments of this Group's members.")
def export_command(
    folder: Path,
    db: str | None,
    types: str,
    since: str | None,
    type_filters: tuple[str, ...],
    patient_level: bool,
    group: str | None,
) -> None:
    """Write the store (or part of it) as NDJSON files, one or more per type, plus manifest.json: what $export
    writes, without a server. Reads one consistent snapshot, with bounded memory."""
    import threading

    import orjson

    from sharedcare.app import build
    from sharedcare.errors import FhirError
    from sharedcare.operations.bulk_data import export_spec

    path = ["Group", group, "$export"] if group else (["Patient", "$export"] if patient_level else ["$export"])
    params = [("_type", types)] if types else []
    params += [("_since", since)] if since else []
    params += [("_typeFilter", f) for f in type_filters]
    console = Console(stderr=True)
    server = build(Settings.from_env(db=db))
    try:
        assert server.bulk is not None
        writer = server.bulk.jobs.writer
        try:
            spec = export_spec(path, params)
            writer.check(spec)
        except FhirError as err:
            raise click.UsageError(err.message) from None
        started = time.perf_counter()
        result = writer.run(spec, folder, threading.Event())
        seconds = time.perf_counter() - started
        output = [{"type": f.type, "url": f.name, "count": f.count} for f in result.files]
        manifest = {"transactionTime": result.transaction_time, "output": output, "error": []}
        (folder / "manifest.json").write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        rate = result.total / seconds if seconds > 0 else 0.0
        console.print(f"{result.total:,} resources in {len(result.files)} file(s) under {folder} ({rate:,.0f}/s)")
    finally:
        server.close()
