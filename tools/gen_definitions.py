"""Generate sharedcare's compact FHIR R4 structure tables from the official core package.

The product must never read the raw package at run time, so this script distils what the validator needs
(element maps per type, primitive regexes, expandable required-binding value sets) into one JSON file.
Output is deterministic (sorted keys, no timestamps) so CI can regenerate and diff it.

Usage: python tools/gen_definitions.py [--package PATH] [--out PATH] [--check]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACKAGE = (
    Path(os.environ.get("SHAREDCARE_SHARED") or ROOT.parent / "shared") / "fhir" / "hl7.fhir.r4.core-4.0.1.tgz"
)
DEFAULT_OUT = ROOT / "src" / "sharedcare" / "fhir" / "definitions" / "structures.json"

FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
REGEX_EXT = "http://hl7.org/fhir/StructureDefinition/regex"
SYSTEM_TYPE_PREFIX = "http://hl7.org/fhirpath/System."
# JSON representation of each primitive type (http://hl7.org/fhir/R4/json.html#primitive).
PRIMITIVE_JSON = {"boolean": "boolean", "integer": "number", "positiveInt": "number", "unsignedInt": "number"}
PRIMITIVE_JSON_DECIMAL = "decimal"

Json = dict[str, Any]


def read_package(path: Path) -> dict[str, list[Json]]:
    """Load the StructureDefinitions, ValueSets and CodeSystems from the package tarball, by resourceType."""
    wanted = ("StructureDefinition-", "ValueSet-", "CodeSystem-")
    out: dict[str, list[Json]] = {"StructureDefinition": [], "ValueSet": [], "CodeSystem": []}
    with tarfile.open(path, "r:gz") as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            name = member.name.removeprefix("package/")
            if "/" in name or not name.endswith(".json") or not name.startswith(wanted):
                continue
            fh = tar.extractfile(member)
            if fh is None:
                continue
            res = json.load(fh)
            if res.get("resourceType") in out:
                out[res["resourceType"]].append(res)
    return out


def is_base_definition(sd: Json) -> bool:
    """True for the base (non-profile, non-logical, non-abstract) resource and data type definitions."""
    return (
        sd.get("derivation") == "specialization"
        and sd.get("kind") in ("resource", "complex-type")
        and not sd.get("abstract", False)
    )


def element_type_codes(sd: Json, el: Json, with_children: set[str]) -> list[str]:
    """The type codes the validator dispatches on; backbone elements are typed by their own path."""
    path = el["path"]
    if "contentReference" in el:
        return [el["contentReference"].lstrip("#")]
    if path in with_children:
        return [path]
    if sd["kind"] == "resource" and el.get("base", {}).get("path") == "Resource.id":
        return ["id"]  # the snapshot says System.String, but a resource id is an `id` (datatypes.html#id)
    codes = []
    for t in el.get("type", []):
        code = t["code"]
        if code.startswith(SYSTEM_TYPE_PREFIX):
            fhir_type = next((x["valueUrl"] for x in t.get("extension", []) if x["url"] == FHIR_TYPE_EXT), None)
            code = fhir_type or "string"
        codes.append(code)
    return codes


def structure_tables(sds: list[Json], expandable: dict[str, Json]) -> tuple[dict[str, Json], list[str]]:
    """Per type/backbone path: {element name: [min, max, [types], required binding url or None]}."""
    types: dict[str, Json] = {}
    resources: list[str] = []
    for sd in sds:
        if not is_base_definition(sd):
            continue
        if sd["kind"] == "resource":
            resources.append(sd["type"])
        elements = sd["snapshot"]["element"]
        with_children = {el["path"].rsplit(".", 1)[0] for el in elements if "." in el["path"]}
        for el in elements[1:]:
            parent, name = el["path"].rsplit(".", 1)
            binding = el.get("binding", {})
            vs = binding.get("valueSet", "").split("|")[0] if binding.get("strength") == "required" else ""
            entry = [
                el["min"],
                el["max"],
                element_type_codes(sd, el, with_children),
                vs if vs in expandable else None,
            ]
            types.setdefault(parent, {})[name] = entry
    return types, sorted(resources)


def summary_tables(sds: list[Json]) -> dict[str, list[str]]:
    """Per resource type: its top-level elements marked isSummary (for `_summary=true`)."""
    out: dict[str, list[str]] = {}
    for sd in sds:
        if is_base_definition(sd) and sd["kind"] == "resource" and not sd.get("abstract"):
            names = [
                el["path"].split(".", 1)[1].removesuffix("[x]")
                for el in sd["snapshot"]["element"]
                if el["path"].count(".") == 1 and el.get("isSummary")
            ]
            out[sd["type"]] = sorted(names)
    return out


def primitive_tables(sds: list[Json]) -> dict[str, Json]:
    """Per primitive type: its JSON representation and the regex from its `value` element."""
    out: dict[str, Json] = {}
    for sd in sds:
        if sd.get("kind") != "primitive-type" or sd.get("derivation") != "specialization":
            continue
        regex = None
        for el in sd["snapshot"]["element"]:
            if el["path"] == f"{sd['type']}.value":
                for t in el.get("type", []):
                    for x in t.get("extension", []):
                        if x["url"] == REGEX_EXT:
                            regex = x["valueString"]
        name = sd["type"]
        json_kind = PRIMITIVE_JSON.get(name, PRIMITIVE_JSON_DECIMAL if name == "decimal" else "string")
        out[name] = {"json": json_kind, "regex": regex}
    return out


def code_system_codes(cs: Json) -> list[str]:
    """Every code in a CodeSystem, walking nested (hierarchical) concepts."""
    codes: list[str] = []
    stack = list(cs.get("concept", []))
    while stack:
        c = stack.pop()
        codes.append(c["code"])
        stack.extend(c.get("concept", []))
    return codes


class Expander:
    """Expands ValueSets needing no terminology server: whole complete CodeSystems, explicit concept lists."""

    def __init__(self, value_sets: list[Json], code_systems: list[Json]) -> None:
        self.value_sets = {vs["url"]: vs for vs in value_sets}
        self.code_systems = {cs["url"]: cs for cs in code_systems if cs.get("content") == "complete"}
        self.cache: dict[str, dict[str, set[str]] | None] = {}

    def expand(self, url: str) -> dict[str, set[str]] | None:
        """{system: codes}, or None when the value set can't be expanded from the package alone."""
        url = url.split("|")[0]
        if url not in self.cache:
            self.cache[url] = None  # guards against include cycles
            self.cache[url] = self._expand(url)
        return self.cache[url]

    def _expand(self, url: str) -> dict[str, set[str]] | None:
        vs = self.value_sets.get(url)
        if vs is None or "compose" not in vs:
            return None
        result: dict[str, set[str]] = {}
        for inc in vs["compose"].get("include", []):
            part = self._include(inc)
            if part is None:
                return None
            for system, codes in part.items():
                result.setdefault(system, set()).update(codes)
        for exc in vs["compose"].get("exclude", []):
            part = self._include(exc)
            if part is None:
                return None
            for system, codes in part.items():
                result.get(system, set()).difference_update(codes)
        return result if any(result.values()) else None

    def _include(self, inc: Json) -> dict[str, set[str]] | None:
        if "filter" in inc:
            return None
        if "valueSet" in inc:
            if "system" in inc:
                return None
            merged: dict[str, set[str]] = {}
            for ref in inc["valueSet"]:
                part = self.expand(ref)
                if part is None:
                    return None
                for system, codes in part.items():
                    merged.setdefault(system, set()).update(codes)
            return merged
        system = inc.get("system")
        if not system:
            return None
        if "concept" in inc:
            return {system: {c["code"] for c in inc["concept"]}}
        cs = self.code_systems.get(system)
        if cs is None:
            return None
        return {system: set(code_system_codes(cs))}


def required_value_sets(sds: list[Json]) -> list[str]:
    """The value sets bound with strength `required` anywhere in the base definitions."""
    urls = set()
    for sd in sds:
        if not is_base_definition(sd):
            continue
        for el in sd["snapshot"]["element"]:
            binding = el.get("binding", {})
            if binding.get("strength") == "required" and binding.get("valueSet"):
                urls.add(binding["valueSet"].split("|")[0])
    return sorted(urls)


def build(package: Path) -> tuple[Json, list[str]]:
    """Build the tables; also return the required value sets that were skipped (for the log)."""
    pkg = read_package(package)
    sds = sorted(pkg["StructureDefinition"], key=lambda sd: sd["url"])
    expander = Expander(pkg["ValueSet"], pkg["CodeSystem"])
    expandable: dict[str, Json] = {}
    skipped: list[str] = []
    for url in required_value_sets(sds):
        exp = expander.expand(url)
        if exp is None:
            skipped.append(url)
        else:
            expandable[url] = {system: sorted(codes) for system, codes in exp.items() if codes}
    types, resources = structure_tables(sds, expandable)
    tables = {
        "fhirVersion": "4.0.1",
        "generator": "tools/gen_definitions.py",
        "primitives": primitive_tables(sds),
        "resources": resources,
        "summary": summary_tables(sds),
        "types": types,
        "valueSets": expandable,
    }
    return tables, skipped


def render(tables: Json) -> str:
    """Deterministic text: sorted keys, one type per line so diffs stay readable."""
    lines = ["{"]
    items = sorted(tables.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if isinstance(value, dict) and key in ("types", "valueSets", "primitives"):
            lines.append(f"{json.dumps(key)}: {{")
            sub = sorted(value.items())
            for j, (k, v) in enumerate(sub):
                sub_comma = "," if j < len(sub) - 1 else ""
                body = json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
                lines.append(f"{json.dumps(k)}:{body}{sub_comma}")
            lines.append(f"}}{comma}")
        else:
            lines.append(f"{json.dumps(key)}: {json.dumps(value, sort_keys=True, separators=(',', ':'))}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if the committed output is out of date")
    parser.add_argument("--verbose", action="store_true", help="list the required value sets left unchecked")
    args = parser.parse_args(argv)
    tables, skipped = build(args.package)
    text = render(tables)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is out of date; run tools/gen_definitions.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(
        f"wrote {args.out} ({len(text) // 1024} KiB): {len(tables['resources'])} resources, "
        f"{len(tables['types'])} element maps, {len(tables['valueSets'])} required value sets "
        f"({len(skipped)} not expandable, left unchecked)"
    )
    if args.verbose:
        for url in skipped:
            print(f"  unchecked: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
