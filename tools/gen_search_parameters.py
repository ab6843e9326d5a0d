"""Generate sharedcare's compact search tables from the official FHIR R4 core package.

Run from the repository root (needs the reference data beside the project):

    .venv/bin/python tools/gen_search_parameters.py [--package ../shared/fhir/hl7.fhir.r4.core-4.0.1.tgz]

Writes three deterministic JSON files under src/sharedcare/fhir/definitions/ that the product reads at run time
(it never reads the package itself):

- search_parameters.json: every R4 SearchParameter (code, type, base, expression, target, components, ...), plus the
  resource types and whether each is a DomainResource.
- compartments.json: compartment type -> resource type -> the search parameter codes that place a resource in it.
- element_types.json: element name -> FHIR type for every resource, backbone element and data type, so the
  compiled FHIRPath extractors know what each value is (a Coding, an Identifier, a choice `value[x]`...).
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
OUT_DIR = ROOT / "src" / "sharedcare" / "fhir" / "definitions"

# Example SearchParameters shipped in the package that are not part of the specification's search surface.
SKIP_IDS = {"example", "example-reference", "example-extension"}

# Known R4 errata, fixed here so the tables say what the specification means.
# DocumentReference `relationship`: the component definitions are swapped relative to their expressions
# (`code` is the relation code, a token; `target` the related document, a reference).
COMPONENT_DEFINITION_FIXES = {
    ("http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "code"): (
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relation"
    ),
    ("http://hl7.org/fhir/SearchParameter/DocumentReference-relationship", "target"): (
        "http://hl7.org/fhir/SearchParameter/DocumentReference-relatesto"
    ),
}

SYSTEM_TYPES = {
    "http://hl7.org/fhirpath/System.String": "string",
    "http://hl7.org/fhirpath/System.Boolean": "boolean",
    "http://hl7.org/fhirpath/System.Integer": "integer",
    "http://hl7.org/fhirpath/System.Decimal": "decimal",
    "http://hl7.org/fhirpath/System.Date": "date",
    "http://hl7.org/fhirpath/System.DateTime": "dateTime",
    "http://hl7.org/fhirpath/System.Time": "time",
}
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def read_package(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Load the JSON resources we need from the package, grouped by resource type."""
    wanted = ("SearchParameter", "CompartmentDefinition", "StructureDefinition")
    out: dict[str, list[dict[str, Any]]] = {k: [] for k in wanted}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if not name.startswith("package/") or "/" in name[len("package/") :] or not name.endswith(".json"):
                continue
            if not any(name.startswith(f"package/{k}-") for k in wanted):
                continue
            f = tar.extractfile(member)
            assert f is not None
            res = json.load(f)
            if res.get("resourceType") in out:
                out[res["resourceType"]].append(res)
    for items in out.values():
        items.sort(key=lambda r: r.get("url", r.get("id", "")))
    return out


def _tail(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def _derive_from_xpath(sp: dict[str, Any]) -> tuple[list[str], str] | None:
    """Some extension SearchParameters in the package lack base and expression; rebuild them from the xpath."""
    xpath = sp.get("xpath", "")
    head = xpath.split(" | ")[0]
    if not head.startswith("f:") or "/f:extension[@url='" not in head:
        return None
    base = head[2:].split("/", 1)[0]
    url = head.split("[@url='", 1)[1].split("'", 1)[0]
    return [base], f"{base}.extension('{url}').value"


def convert_search_parameters(sps: list[dict[str, Any]], all_types: set[str]) -> tuple[list[dict[str, Any]], list[str]]:
    """Turn SearchParameter resources into compact table rows (sorted, deterministic).

    A target list naming every resource type that can be referenced (all but Parameters) is written as "*".
    """
    any_target = all_types - {"Parameters"}
    by_url = {sp["url"]: sp for sp in sps}
    rows: list[dict[str, Any]] = []
    notes: list[str] = []
    for sp in sps:
        if sp["id"] in SKIP_IDS:
            notes.append(f"skipped example SearchParameter {sp['id']}")
            continue
        base, expression = sp.get("base"), sp.get("expression")
        if not base:
            derived = _derive_from_xpath(sp)
            if derived is None:
                notes.append(f"skipped {sp['id']}: no base and no usable xpath")
                continue
            base, expression = derived
            notes.append(f"derived base/expression of {sp['id']} from its xpath: {expression}")
        if not expression and sp["type"] not in ("special", "string") and not sp["code"].startswith("_"):
            notes.append(f"skipped {sp['id']}: no expression")
            continue
        row: dict[str, Any] = {
            "url": sp["url"],
            "code": sp["code"],
            "type": sp["type"],
            "base": sorted(base),
        }
        if expression:
            row["expression"] = expression
        if sp.get("target"):
            row["target"] = "*" if set(sp["target"]) == any_target else sorted(sp["target"])
        if sp.get("component"):
            row["component"] = [_component(sp, c, by_url) for c in sp["component"]]
        for key in ("multipleOr", "multipleAnd"):
            if key in sp:
                row[key] = sp[key]
        if sp.get("modifier"):
            row["modifier"] = list(sp["modifier"])
        if sp.get("comparator"):
            row["comparator"] = list(sp["comparator"])
        if sp.get("chain"):
            row["chain"] = list(sp["chain"])
        if sp.get("experimental"):
            row["experimental"] = True
        rows.append(row)
    rows.sort(key=lambda r: (r["base"][0], r["code"], r["url"]))
    return rows, notes


def _component(sp: dict[str, Any], comp: dict[str, Any], by_url: dict[str, dict[str, Any]]) -> dict[str, str]:
    definition = COMPONENT_DEFINITION_FIXES.get((sp["url"], comp["expression"]), comp["definition"])
    target = by_url.get(definition)
    if target is None:
        raise SystemExit(f"{sp['url']}: unknown component definition {definition}")
    return {
        "definition": definition,
        "code": target["code"],
        "type": target["type"],
        "expression": comp["expression"],
    }


def convert_compartments(cds: list[dict[str, Any]], known: set[tuple[str, str]]) -> tuple[dict, list[str]]:
    """compartment type -> resource type -> param codes; `{def}` (the compartment's own type) is implicit."""
    out: dict[str, dict[str, list[str]]] = {}
    notes: list[str] = []
    for cd in cds:
        if cd["id"] == "example":
            continue
        comp: dict[str, list[str]] = {}
        for res in cd.get("resource", []):
            params = [p for p in res.get("param", []) if p != "{def}"]
            for p in params:
                if (res["code"], p) not in known:
                    notes.append(f"compartment {cd['code']}: {res['code']}.{p} is not a known search parameter")
            if params:
                comp[res["code"]] = sorted(params)
        out[cd["code"]] = dict(sorted(comp.items()))
    return dict(sorted(out.items())), notes


def _type_code(t: dict[str, Any]) -> str:
    code = t["code"]
    if code in SYSTEM_TYPES:
        for ext in t.get("extension", []):
            if ext.get("url") == FHIR_TYPE_EXT:
                return ext.get("valueUrl") or ext.get("valueUri") or SYSTEM_TYPES[code]
        return SYSTEM_TYPES[code]
    return code


def convert_structures(sds: list[dict[str, Any]]) -> dict[str, Any]:
    """Element types of every resource, data type and backbone element: {type: [base type, {name: type}]}.

    Only an element's own children are listed; inherited ones are found through the base type. A choice element
    `value[x]` is listed as `value` with a list of types; a backbone element's type is its path
    (`Observation.component`); a contentReference points at the referenced path (`Questionnaire.item`).
    """
    types: dict[str, Any] = {}
    for sd in sds:
        if sd.get("derivation") == "constraint" or sd["kind"] == "logical":
            continue
        name = sd["type"]
        base = _tail(sd["baseDefinition"]) if sd.get("baseDefinition") else None
        elements = sd["snapshot"]["element"]
        paths = {e["path"] for e in elements}
        own: dict[str, dict[str, Any]] = {name: {}}
        bases: dict[str, str | None] = {name: base}
        for e in elements:
            path = e["path"]
            if "." not in path:
                continue
            if sd["kind"] == "primitive-type":
                continue  # a primitive's `value` is the JSON value itself
            parent, child = path.rsplit(".", 1)
            if e.get("base", {}).get("path", path) != path and parent == name:
                continue  # inherited from the base type
            if parent != name and child in ("id", "extension", "modifierExtension"):
                continue  # inherited by every backbone element from BackboneElement/Element
            if "contentReference" in e:
                typ: Any = e["contentReference"].lstrip("#").split("#")[-1]
            elif child.endswith("[x]"):
                child = child[:-3]
                typ = [_type_code(t) for t in e["type"]]
            else:
                codes = [_type_code(t) for t in e.get("type", [])]
                if len(codes) != 1:
                    raise SystemExit(f"{path}: unexpected types {codes}")
                typ = codes[0]
                if typ in ("BackboneElement", "Element") and any(p.startswith(path + ".") for p in paths):
                    bases[path] = typ
                    own.setdefault(path, {})
                    typ = path
            own.setdefault(parent, {})[child] = typ
        for tname, elems in own.items():
            types[tname] = [bases.get(tname), dict(sorted(elems.items()))]
    return dict(sorted(types.items()))


def resource_types(sds: list[dict[str, Any]]) -> dict[str, str]:
    """Concrete resource type -> its base (DomainResource or Resource)."""
    out = {}
    for sd in sds:
        if sd["kind"] == "resource" and sd.get("derivation") == "specialization" and not sd.get("abstract"):
            out[sd["type"]] = _tail(sd["baseDefinition"])
    return dict(sorted(out.items()))


def render(data: Any) -> str:
    """Compact, deterministic JSON (key order is fixed by construction)."""
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"


def build(package: Path) -> tuple[dict[str, str], list[str]]:
    """File name -> rendered content, plus notes on what was skipped or repaired."""
    pkg = read_package(package)
    rtypes = resource_types(pkg["StructureDefinition"])
    params, notes = convert_search_parameters(pkg["SearchParameter"], set(rtypes))
    known = {(b, p["code"]) for p in params for b in p["base"]}
    comps, comp_notes = convert_compartments(pkg["CompartmentDefinition"], known)
    source = f"{package.name} (FHIR R4 4.0.1, CC0-1.0), generated by tools/gen_search_parameters.py"
    files = {
        "search_parameters.json": render({"source": source, "resourceTypes": rtypes, "params": params}),
        "compartments.json": render({"source": source, "compartments": comps}),
        "element_types.json": render({"source": source, "types": convert_structures(pkg["StructureDefinition"])}),
    }
    summary = f"{len(params)} search parameters, {len(comps)} compartments"
    return files, [*notes, *comp_notes, summary]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--package", type=Path, default=DEFAULT_PACKAGE)
    ap.add_argument("--out", type=Path, default=OUT_DIR)
    ap.add_argument("--check", action="store_true", help="fail if the committed output is out of date")
    ap.add_argument("--verbose", action="store_true", help="list the parameters skipped or repaired")
    args = ap.parse_args(argv)
    files, notes = build(args.package)
    if args.check:
        stale = [n for n, text in files.items() if _read(args.out / n) != text]
        if stale:
            print(f"out of date: {', '.join(stale)}; run tools/gen_search_parameters.py", file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    for note in notes if args.verbose else notes[-1:]:
        print(note, file=sys.stderr)
    return 0


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


if __name__ == "__main__":
    raise SystemExit(main())
