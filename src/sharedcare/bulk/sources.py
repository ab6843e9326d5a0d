"""What `sharedcare import` reads: NDJSON files, Bundle files and single-resource JSON files, plain or gzip, found
in the paths given (folders are walked).

Each file is identified by a fingerprint of its content, not its name, so a checkpoint survives a rename and the
same data fed twice under another name is recognised. Files are ordered so that what others may refer to loads
first: NDJSON and single resources, then collections, then batch Bundles (which Synthea's hospital and practitioner
files are, and whose conditional creates the patient transactions' conditional references resolve against), then
transaction Bundles; within a kind, in path order.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import orjson

NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".ndjson.gz", ".jsonl.gz")
JSON_SUFFIXES = (".json", ".json.gz")
KIND_ORDER = {"ndjson": 0, "resource": 1, "collection": 2, "batch": 3, "transaction": 4}
UNPACKED_BUNDLES = ("collection", "searchset")
PROCESSED_BUNDLES = ("batch", "transaction")
HEAD_BYTES = 64 * 1024
_FIRST_KEY = re.compile(rb'^\s*\{\s*"resourceType"\s*:\s*"([A-Za-z]+)"')
_TYPE = re.compile(rb'"type"\s*:\s*"([a-z-]+)"')


@dataclass(frozen=True, slots=True)
class Source:
    """One input file: how to read it (`kind`), its size and its content fingerprint."""

    path: Path
    kind: str  # ndjson | resource | collection | batch | transaction
    size: int
    fingerprint: str

    @property
    def gzipped(self) -> bool:
        return self.path.name.endswith(".gz")


def discover(paths: Iterable[str | Path]) -> tuple[list[Source], list[Path]]:
    """The importable files under `paths` in load order, and the files skipped as not FHIR JSON by name."""
    found: list[Path] = []
    skipped: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"{path} does not exist")
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for p in candidates:
            if p.name.startswith("."):
                continue
            (found if _importable(p) else skipped).append(p)
    sources = []
    for p in dict.fromkeys(found):
        source = classify(p)
        (sources.append(source) if source else skipped.append(p))
    sources.sort(key=lambda s: KIND_ORDER[s.kind])
    return sources, skipped


def _importable(path: Path) -> bool:
    return path.name.endswith(NDJSON_SUFFIXES + JSON_SUFFIXES)


def classify(path: Path) -> Source | None:
    """The file as a source, or None for a JSON file that holds no FHIR resource (a manifest, say)."""
    size = path.stat().st_size
    kind = "ndjson" if path.name.endswith(NDJSON_SUFFIXES) else _json_kind(path)
    return Source(path, kind, size, fingerprint(path)) if kind else None


def fingerprint(path: Path) -> str:
    """A digest of the file's bytes: the identity checkpoints are kept under."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "blake2b").hexdigest()[:40]


def _json_kind(path: Path) -> str | None:
    """Bundle type from the head of the file when it is plain to see there, else from parsing it whole."""
    with open_binary(path) as f:
        head = f.read(HEAD_BYTES)
    match = _FIRST_KEY.match(head)
    if match and match.group(1) != b"Bundle":
        return "resource"
    if match:
        entry_at = head.find(b'"entry"')
        kind = _TYPE.search(head, 0, entry_at if entry_at >= 0 else len(head))
        if kind and (entry_at >= 0 or len(head) < HEAD_BYTES):
            return _bundle_kind(kind.group(1).decode())
    try:
        doc = read_json(path)
    except (orjson.JSONDecodeError, OSError, EOFError):
        return "resource"  # reported as a rejected file when loaded
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        return None
    if doc["resourceType"] == "Bundle":
        return _bundle_kind(str(doc.get("type")))
    return "resource"


def _bundle_kind(bundle_type: str) -> str:
    if bundle_type in PROCESSED_BUNDLES:
        return bundle_type
    return "collection" if bundle_type in UNPACKED_BUNDLES else "resource"


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def read_json(path: Path) -> object:
    with open_binary(path) as f:
        data = f.read()
    return orjson.loads(data)


class LineReader:
    """Non-blank lines of an NDJSON file as (line number, bytes), counting from 1, with the raw bytes read so far
    (compressed bytes for gzip) for progress."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._raw = source.path.open("rb")
        self._text: IO[bytes] = gzip.GzipFile(fileobj=self._raw, mode="rb") if source.gzipped else self._raw

    def position(self) -> int:
        return self._raw.tell()

    def lines(self, after: int = 0) -> Iterator[tuple[int, bytes]]:
        """Lines after line number `after` (the ones a previous run committed are skipped, not parsed)."""
        for n, line in enumerate(self._text, 1):
            if n > after and not line.isspace():
                yield n, line

    def close(self) -> None:
        self._text.close()
        self._raw.close()

    def __enter__(self) -> LineReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
