"""The error report of an import: one JSON line per rejected line or Bundle, with the OperationOutcome that says why.

    {"file": "data/Patient.ndjson", "line": 17, "outcome": {"resourceType": "OperationOutcome", ...}}

NDJSON lines are numbered from 1 as an editor shows them; Bundle entries carry `"entry"` (from 0, as in
`Bundle.entry[n]`); an error about a whole Bundle file carries neither. The report is rebuilt from the store, so
a resumed import reports the rejections of every run over the same files exactly once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import orjson

from sharedcare.bulk.bundle_units import WHOLE_FILE
from sharedcare.bulk.sources import Source
from sharedcare.store import bulk_sql
from sharedcare.store.sqlstore import SqlStore


def report_lines(store: SqlStore, sources: Iterable[Source]) -> Iterator[bytes]:
    for source in sources:
        head = {"file": str(source.path)}
        for line, outcome in bulk_sql.read_errors(store, source.fingerprint):
            where = dict(head)
            if line != WHOLE_FILE and source.kind == "ndjson":
                where["line"] = line
            elif line != WHOLE_FILE and source.kind != "resource":
                where["entry"] = line
            yield orjson.dumps(where)[:-1] + b',"outcome":' + outcome.encode() + b"}\n"


def write_report(store: SqlStore, sources: Iterable[Source], path: Path) -> int:
    """Write the report; returns how many entries it holds (no file is left behind when there are none)."""
    count = 0
    with path.open("wb") as out:
        for line in report_lines(store, sources):
            out.write(line)
            count += 1
    if count == 0:
        path.unlink()
    return count
