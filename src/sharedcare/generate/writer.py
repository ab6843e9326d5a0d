"""Streaming output: NDJSON per organisation and resource type, a transaction Bundle per record, ground truth.

Layout under the output directory:
  ndjson/<ODS>/<ResourceType>.ndjson   one resource per line, as that organisation publishes it
  bundles/<ODS>.ndjson                 one transaction Bundle per line (PUT with the source's ids), loadable as is
  ground_truth.csv                     organisation_ods,patient_id,person_key (same key = same identity; the
                                       key P0000123-2 is P0000123's new identity, never to be linked to it)
  manifest.json                        seed, size, reference date, organisations, counts

Lines are buffered per file up to a fixed total and then appended, so memory stays flat however many people are
generated, and at most a few hundred files are opened per flush even in a full-size region.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

import orjson

from sharedcare.generate.feeds import OrgRecord
from sharedcare.types import JSON

MANIFEST = "manifest.json"
_NAMESPACE = uuid.UUID("1f0c6a53-6f1e-4c55-9a0e-5a6e0c1d2b3a")


def prepare_output(out: Path) -> None:
    """Make `out` ready: create it, or clear a previous generation; refuse to touch anything else."""
    if out.exists() and any(out.iterdir()):
        if not (out / MANIFEST).exists():
            raise FileExistsError(f"{out} is not empty and holds no {MANIFEST}: choose an empty or new directory")
        for name in ("ndjson", "bundles"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("ground_truth.csv", MANIFEST):
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def full_url(rtype: str, rid: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NAMESPACE, f'{rtype}/{rid}')}"


def bundle_line(resources: list[bytes], keys: list[tuple[str, str]]) -> bytes:
    """A transaction Bundle assembled from already-serialised resources (no re-serialisation)."""
    parts = [
        b'{"fullUrl":"'
        + full_url(t, i).encode()
        + b'","resource":'
        + body
        + b',"request":{"method":"PUT","url":"'
        + f"{t}/{i}".encode()
        + b'"}}'
        for body, (t, i) in zip(resources, keys, strict=True)
    ]
    return b'{"resourceType":"Bundle","type":"transaction","entry":[' + b",".join(parts) + b"]}\n"


def transaction_bundle(resources: list[JSON]) -> JSON:
    """The same Bundle as a parsed value, for loading in process."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": full_url(r["resourceType"], r["id"]),
                "resource": r,
                "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"},
            }
            for r in resources
        ],
    }


class BufferedFiles:
    """Append-only files with one shared, bounded buffer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.buffers: dict[Path, list[bytes]] = {}
        self.made: set[Path] = set()

    def append(self, path: Path, data: bytes) -> None:
        chunks = self.buffers.get(path)
        if chunks is None:
            chunks = self.buffers[path] = []
        chunks.append(data)
        self.size += len(data)
        if self.size >= self.limit:
            self.flush()

    def flush(self) -> None:
        for path, chunks in self.buffers.items():
            if path.parent not in self.made:
                path.parent.mkdir(parents=True, exist_ok=True)
                self.made.add(path.parent)
            with path.open("ab") as fh:
                fh.write(b"".join(chunks))
        self.buffers.clear()
        self.size = 0


class RegionWriter:
    def __init__(self, out: Path, *, ndjson: bool = True, bundles: bool = True, buffer_bytes: int = 8 << 20) -> None:
        self.out, self.ndjson, self.bundles = out, ndjson, bundles
        self.files = BufferedFiles(buffer_bytes)
        self.counts: dict[str, dict[str, int]] = {}
        self.patients = 0
        self.resources = 0
        self.files.append(out / "ground_truth.csv", b"organisation_ods,patient_id,person_key\n")

    def write(self, record: OrgRecord) -> None:
        bodies = [orjson.dumps(r) for r in record.resources]
        keys = [(r["resourceType"], r["id"]) for r in record.resources]
        counts = self.counts.setdefault(record.ods, {})
        for body, (rtype, _) in zip(bodies, keys, strict=True):
            counts[rtype] = counts.get(rtype, 0) + 1
            if self.ndjson:
                self.files.append(self.out / "ndjson" / record.ods / f"{rtype}.ndjson", body + b"\n")
        if self.bundles:
            self.files.append(self.out / "bundles" / f"{record.ods}.ndjson", bundle_line(bodies, keys))
        if record.patient_id is not None:
            self.patients += 1
            line = f"{record.ods},{record.patient_id},{record.person_key}\n".encode()
            self.files.append(self.out / "ground_truth.csv", line)
        self.resources += len(bodies)

    def close(self, manifest: dict[str, Any]) -> None:
        self.files.flush()
        manifest = {**manifest, "patient_records": self.patients, "resources": self.resources, "counts": self.counts}
        (self.out / MANIFEST).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS))
