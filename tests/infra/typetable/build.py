"""Rebuild types.json, the table of Azure resource types the offline type check (tests/infra/typecheck.py) reads.

For every resource type and API version that infra/*.bicep declares, the table holds what the REST specs
(Azure/azure-rest-api-specs, `specification/*/resource-manager/<Namespace>/{stable,preview}/<version>/*.json`)
say a PUT body of that type may contain: property names, their types, enums, which are required and which are
read-only. It follows `$ref` (across files), `allOf`, `additionalProperties` and `items` to MAX_DEPTH levels below
the body; deeper, or a `$ref` that does not resolve in the given files, becomes "any" (not checked). A polymorphic
definition (`discriminator`) also lists its kinds: the definitions of its file that extend it (allOf), by their
`x-ms-discriminator-value`. A type whose body does not resolve at all is recorded with body null: its type and
version are known, its body is not checked.

Usage:

    python tests/infra/typetable/build.py SPECS [--commits COMMITS.json] [-o tests/infra/typetable/types.json]

SPECS is a directory laid out as the spec repository (it holds `specification/...`). The smallest way to get one
is a sparse checkout of just the folders of the namespaces and versions infra/ uses, and common-types:

    git clone --filter=blob:none --no-checkout https://github.com/Azure/azure-rest-api-specs specs
    cd specs
    git sparse-checkout set --no-cone \
        'specification/common-types/resource-management/' \
        'specification/storage/resource-manager/Microsoft.Storage/stable/2023-05-01/*.json' \
        'specification/web/resource-manager/Microsoft.Web/stable/2024-04-01/*.json' \
        ...one line per <service>/resource-manager/<Namespace>/stable/<version> that `--list` prints
    git checkout main

`--list` prints the (type, version) pairs infra/ declares, to know which folders to check out. The commit of
the specs goes into the table: `git -C SPECS rev-parse HEAD` when SPECS is a git checkout, or, per file, from
COMMITS.json ({"specification/...json": "<commit, or a note>"}) when the files came from elsewhere; --note says
how (types.json "source" tells how the committed table was made).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
MAX_DEPTH = 7  # body -> properties -> functionAppConfig -> deployment -> storage -> authentication -> type
SPEC_FILE = re.compile(
    r"specification/.+?/resource-manager/(?:.+/)?(Microsoft\.\w+)/(?:[^/]+/)?(stable|preview)/([^/]+)/[^/]+\.json$"
)


def wanted(root: Path = ROOT / "infra") -> set[tuple[str, str]]:
    """(type, API version) of every resource infra/*.bicep declares; a nested resource takes its parent's version."""
    sys.path.insert(0, str(ROOT))
    from tests.infra.infra_check import Infra

    infra = Infra(root)
    found: set[tuple[str, str]] = set()
    for resource in infra.resources():
        top = resource.file.section("resources").get(resource.symbol.split("__")[0], {})
        version = str(top.get("api_version") or "")
        if version:
            found.add((resource.type, version))
    return found


class Specs:
    """The spec JSON files under a directory, read once, with $ref resolution across them."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.files: dict[Path, Any] = {}

    def load(self, path: Path) -> Any:
        path = path.resolve()
        if path not in self.files:
            try:
                self.files[path] = json.loads(path.read_text(encoding="utf-8-sig"))
            except (OSError, ValueError):
                self.files[path] = None
        return self.files[path]

    def resolve(self, where: Path, ref: str) -> tuple[Path, Any] | None:
        file_part, _, pointer = ref.partition("#")
        target = (where.parent / file_part).resolve() if file_part else where.resolve()
        node = self.load(target)
        for part in [p for p in pointer.split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return (target, node) if node is not None else None


def _merge(
    specs: Specs, where: Path, schema: dict[str, Any], seen: frozenset[str]
) -> tuple[dict[str, Any], list[str], set[str], Any]:
    """Properties (name -> (file, schema)), required and read-only names, additionalProperties, with allOf merged."""
    properties: dict[str, tuple[Path, Any]] = {}
    required: list[str] = []
    read_only: set[str] = set()
    additional: Any = None
    for base in schema.get("allOf") or []:
        if isinstance(base, dict) and "$ref" in base and base["$ref"] not in seen:
            resolved = specs.resolve(where, base["$ref"])
            if resolved:
                p, r, ro, a = _merge(specs, resolved[0], resolved[1], seen | {base["$ref"]})
                properties.update(p)
                required.extend(r)
                read_only |= ro
                additional = a if a is not None else additional
        elif isinstance(base, dict):
            p, r, ro, a = _merge(specs, where, base, seen)
            properties.update(p)
            required.extend(r)
            read_only |= ro
    for name, prop in (schema.get("properties") or {}).items():
        properties[name] = (where, prop)
        if isinstance(prop, dict) and prop.get("readOnly"):
            read_only.add(name)
    required.extend(schema.get("required") or [])
    if "additionalProperties" in schema:
        additional = (where, schema["additionalProperties"])
    return properties, required, read_only, additional


def compact(specs: Specs, where: Path, schema: Any, depth: int = 0, seen: frozenset[str] = frozenset()) -> Any:
    """The table's form of a schema: "string" | "int" | "bool" | "any" | {"enum": [...]} |
    {"array": item} | {"object": {name: node}, "required": [...], "readOnly": [...], "map": node,
    "discriminator": property, "kinds": {value: node}}."""
    if not isinstance(schema, dict):
        return "any"
    if "$ref" in schema:
        ref = schema["$ref"]
        resolved = specs.resolve(where, ref) if ref not in seen else None
        if resolved is None:
            return "any"
        merged = {**resolved[1], **{k: v for k, v in schema.items() if k not in ("$ref", "description")}}
        node = compact(specs, resolved[0], merged, depth, seen | {ref})
        kinds = _kinds(specs, resolved[0], ref, resolved[1], depth, seen)
        if kinds and isinstance(node, dict) and "object" in node:
            node = {**node, "discriminator": resolved[1]["discriminator"], "kinds": kinds}
        return node
    kind = schema.get("type")
    if "enum" in schema and kind in (None, "string"):
        return {"enum": sorted({str(v) for v in schema["enum"]})}
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "int"
    if kind == "boolean":
        return "bool"
    if kind == "array":
        return {"array": compact(specs, where, schema.get("items"), depth + 1, seen) if depth < MAX_DEPTH else "any"}
    if kind in (None, "object") and ("properties" in schema or "allOf" in schema or "additionalProperties" in schema):
        if depth >= MAX_DEPTH:
            return "any"
        properties, required, read_only, additional = _merge(specs, where, schema, seen)
        node: dict[str, Any] = {
            "object": {n: compact(specs, f, s, depth + 1, seen) for n, (f, s) in sorted(properties.items())}
        }
        if required:
            node["required"] = sorted(set(required))
        if read_only:
            node["readOnly"] = sorted(read_only)
        if additional is not None:
            a_where, a_schema = additional
            node["map"] = "any" if a_schema is True else compact(specs, a_where, a_schema, depth + 1, seen)
        return node
    return "any"


def _kinds(specs: Specs, where: Path, ref: str, base: Any, depth: int, seen: frozenset[str]) -> dict[str, Any]:
    """A polymorphic definition's kinds: {discriminator value: table node} of the definitions in its file that
    extend it (allOf it), each named by its x-ms-discriminator-value or else its definition name."""
    if not isinstance(base, dict) or not isinstance(base.get("discriminator"), str) or depth >= MAX_DEPTH:
        return {}
    name = ref.partition("#")[2]
    definitions = (specs.load(where) or {}).get("definitions") or {}
    kinds: dict[str, Any] = {}
    for definition, schema in definitions.items():
        parents = [p.get("$ref", "") for p in (schema or {}).get("allOf") or [] if isinstance(p, dict)]
        for parent in parents:
            resolved = specs.resolve(where, parent) if parent else None
            if resolved and resolved[0] == where.resolve() and parent.partition("#")[2] == name:
                value = str(schema.get("x-ms-discriminator-value") or definition)
                kind = compact(specs, where, schema, depth, seen)
                if isinstance(kind, dict) and base["discriminator"] in kind.get("object", {}):
                    kind["object"][base["discriminator"]] = {"enum": [value]}  # this kind's own value only
                kinds[value] = kind
    return dict(sorted(kinds.items()))


def resource_type(path: str) -> tuple[str, str | None] | None:
    """(type, fixed name or None) of a PUT path: .../providers/Microsoft.X/a/{n}/b/default -> (Microsoft.X/a/b, 'default')."""
    if "/providers/" not in path:
        if re.fullmatch(r"/subscriptions/\{[^}]+\}/resourcegroups/\{[^}]+\}", path, flags=re.IGNORECASE):
            return "Microsoft.Resources/resourceGroups", None
        return None
    tail = path.rsplit("/providers/", 1)[1].strip("/").split("/")
    namespace, rest = tail[0], tail[1:]
    if len(rest) < 2 or len(rest) % 2:
        return None
    types, names = rest[0::2], rest[1::2]
    if any(t.startswith("{") for t in types):
        return None
    last = names[-1]
    return f"{namespace}/{'/'.join(types)}", None if last.startswith("{") else last


def build(base: Path, pairs: set[tuple[str, str]], commits: dict[str, str]) -> dict[str, Any]:
    specs = Specs(base)
    want = {(t.lower(), v) for t, v in pairs}
    types: dict[str, Any] = {}
    used: set[str] = set()
    for path in sorted(base.rglob("*.json")):
        relative = path.relative_to(base).as_posix()
        match = SPEC_FILE.search(relative)
        if not match or "/examples/" in relative:
            continue
        version = match.group(3)
        document = specs.load(path)
        if not isinstance(document, dict):
            continue
        for api_path, operations in (document.get("paths") or {}).items():
            put = (operations or {}).get("put") if isinstance(operations, dict) else None
            found = resource_type(api_path)
            if not put or not found:
                continue
            type_, fixed = found
            if (type_.lower(), version) not in want:
                continue
            bodies = [(f, p) for f, p in _parameters(specs, path, put) if p.get("in") == "body"]
            body = compact(specs, bodies[0][0], bodies[0][1].get("schema")) if bodies else None
            body = None if body == "any" else body
            entry = types.setdefault(type_.lower(), {"type": type_, "versions": {}})
            slot = entry["versions"].setdefault(version, {"body": None})
            if fixed is None:
                slot["body"] = body if body is not None else slot["body"]
            else:
                slot.setdefault("named", {})[fixed] = body
            used.add(relative)
    for path in list(specs.files):
        if path.is_relative_to(base.resolve()):
            used.add(path.relative_to(base.resolve()).as_posix())
    used = {u for u in used if specs.files.get((base / u).resolve()) is not None}
    head = _git_head(base)
    return {
        "source": {
            "repository": "Azure/azure-rest-api-specs",
            "commit": head,
            "files": {f: commits.get(f, head or "unknown") for f in sorted(used)},
            "maxDepth": MAX_DEPTH,
        },
        "types": dict(sorted(types.items())),
    }


def _parameters(specs: Specs, path: Path, operation: dict[str, Any]) -> list[tuple[Path, dict[str, Any]]]:
    """An operation's parameters, each with the file it is defined in (a `$ref` to #/parameters/... followed)."""
    found: list[tuple[Path, dict[str, Any]]] = []
    for parameter in operation.get("parameters") or []:
        where = path
        if isinstance(parameter, dict) and "$ref" in parameter:
            resolved = specs.resolve(path, parameter["$ref"])
            where, parameter = resolved if resolved else (path, None)
        if isinstance(parameter, dict):
            found.append((where, parameter))
    return found


def _git_head(base: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(base), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("specs", type=Path, nargs="?")
    parser.add_argument("--commits", type=Path, help="JSON: spec file path -> commit it was read at")
    parser.add_argument("-o", "--output", type=Path, default=HERE / "types.json")
    parser.add_argument("--list", action="store_true", help="print the (type, version) pairs infra/ declares")
    parser.add_argument("--note", default="", help="how the spec files were obtained, kept in the table")
    args = parser.parse_args(argv)
    pairs = wanted()
    if args.list or args.specs is None:
        for type_, version in sorted(pairs):
            print(f"{type_}@{version}")
        return 0
    commits = json.loads(args.commits.read_text(encoding="utf-8")) if args.commits else {}
    table = build(args.specs, pairs, commits)
    missing = sorted(f"{t}@{v}" for t, v in pairs if v not in table["types"].get(t.lower(), {}).get("versions", {}))
    table["source"]["notFound"] = missing
    if args.note:
        table["source"]["note"] = args.note
    args.output.write_text(
        json.dumps(table, indent=None, separators=(",", ":"), sort_keys=True) + "\n", encoding="utf-8"
    )
    print(f"{args.output}: {len(table['types'])} types; not in the specs given: {', '.join(missing) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
