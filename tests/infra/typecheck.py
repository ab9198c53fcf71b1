"""The offline type check of infra/*.bicep against a table of Azure's resource types (typetable/types.json, made
from the REST specs by typetable/build.py).

On pycep's parse tree (bicep_model.Infra), for every resource: its type must be in the table, and its API version
one the table has for that type. For a resource the template creates (not `existing`) whose body the table holds:
every property must be one the spec defines at that place (or, at the top, one Bicep itself takes: name, parent,
scope, dependsOn), none read-only, the required ones present, and every value whose type is known before
deployment (a literal, a variable, a ternary's branches, a parameter's declared type and @allowed values) of the
property's type and, for an enum, one of its values. Module parameters passed a parameter of the calling file must
agree in declared type. Findings name infra/<file>:<line>.

A polymorphic object (the spec's `discriminator`, e.g. an Event Grid destination's endpointType) is checked against
the kind its discriminator names; a kind the spec does not define is an error.

Not checked: bodies the table records as null (their spec was not extracted), anything deeper than the table's
depth or behind a `$ref` it could not resolve ("any"), values computed by functions or operators other than the
ternary, and rules the specs do not state (which SKU allows which property, cross-property constraints).
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from pathlib import Path
from typing import Any

TABLE = Path(__file__).resolve().parent / "typetable" / "types.json"
BICEP_KEYS = frozenset({"name", "parent", "scope", "dependsOn", "depends_on", "__child_resource__"})
PARAM_TYPES = {"string": "string", "int": "int", "bool": "bool", "object": "object", "array": "array"}


@functools.cache
def table(path: Path = TABLE) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def _kind(node: Any) -> str:
    """The Bicep type a table node stands for: string, int, bool, object, array or any."""
    if isinstance(node, str):
        return node
    if "enum" in node:
        return "string"
    if "array" in node:
        return "array"
    if "object" in node:
        return "object"
    return "any"


class Lines:
    """Finds the line of a resource's declaration, and of a key (or value) inside it."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def resource(self, symbol: str) -> int:
        start = 0
        for part in symbol.split("__"):
            start = self.find(rf"^\s*resource\s+{re.escape(part)}\s", start) or start
        return start

    def find(self, pattern: str, after: int = 0) -> int:
        for number in range(max(after, 1), len(self.lines) + 1):
            if re.search(pattern, self.lines[number - 1]):
                return number
        return 0

    def key(self, path: list[str], after: int) -> int:
        line = after
        for key in path:
            if key.startswith("["):
                continue
            found = self.find(rf"(^|[{{,\s]){re.escape(key)}\s*:", line)
            if not found:
                found = self.find(rf"'{re.escape(key)}'\s*:", line)
            line = found or line
        return line


class TypeCheck:
    def __init__(self, infra: Any, types: dict[str, Any] | None = None) -> None:
        self.infra = infra
        self.types = (types or table())["types"]
        self.problems: list[str] = []

    def run(self) -> list[str]:
        for resource in self.infra.resources():
            self.resource(resource)
        for file in self.infra.files.values():
            self.module_params(file)
        return self.problems

    # -- resources --------------------------------------------------------------------------------------

    def resource(self, resource: Any) -> None:
        file = resource.file
        lines = Lines(file.text)
        line = lines.resource(resource.symbol)
        where = f"infra/{file.name}:{line}"
        top = file.section("resources").get(resource.symbol.split("__")[0], {})
        version = str(top.get("api_version") or "")
        entry = self.types.get(resource.type.lower())
        if entry is None:
            close = difflib.get_close_matches(resource.type.lower(), list(self.types), n=1, cutoff=0.8)
            hint = f" (did you mean {self.types[close[0]]['type']}?)" if close else ""
            self.problems.append(
                f"{where}: resource {resource.symbol} has type {resource.type}, which is not a resource type in "
                f"tests/infra/typetable/types.json{hint}; a real type needs its spec added there with build.py"
            )
            return
        versions = entry["versions"]
        if version not in versions:
            self.problems.append(
                f"{where}: resource {resource.symbol} has API version {version!r} of {entry['type']}, which the "
                f"table does not have (it has {', '.join(sorted(versions))}); a published version needs its spec "
                "added with tests/infra/typetable/build.py"
            )
            return
        if resource.existing:
            return
        slot = versions[version]
        name = self.infra.literal(file, resource.body.get("name"))
        body = (slot.get("named") or {}).get(name) if name else None
        body = body or slot.get("body")
        if body is None:
            if slot.get("named") and name is not None and name not in slot["named"]:
                at = lines.key(["name"], line)
                self.problems.append(
                    f"infra/{file.name}:{at}: resource {resource.symbol} is a {entry['type']} named {name!r}; the "
                    f"table knows only {', '.join(sorted(slot['named']))}"
                )
            return
        self.value(file, lines, line, f"resource {resource.symbol}", [], body, resource.body, top_level=True)

    def value(
        self,
        file: Any,
        lines: Lines,
        start: int,
        what: str,
        path: list[str],
        node: Any,
        value: Any,
        top_level: bool = False,
        depth: int = 0,
    ) -> None:
        if node == "any" or depth > 12:
            return
        dotted = ".".join(path) or "body"
        value, via = self._follow(file, value)
        if value is None:
            return
        if isinstance(value, dict) and "operator" in value:
            operator = value["operator"]
            operands = operator.get("operands") or {}
            for branch in ("true_value", "false_value"):
                if operator.get("type") == "conditional" and branch in operands:
                    self.value(file, lines, start, what, path, node, operands[branch], depth=depth + 1)
            if operator.get("type") == "equals":  # pycep parses `a == b ? x : y` as `a == (b ? x : y)`
                inner = (operands.get("operand_2") or {}) if isinstance(operands.get("operand_2"), dict) else {}
                if (inner.get("operator") or {}).get("type") == "conditional":
                    inner_operands = inner["operator"]["operands"]
                    for branch in ("true_value", "false_value"):
                        self.value(file, lines, start, what, path, node, inner_operands[branch], depth=depth + 1)
            return
        if isinstance(value, dict) and ({"function", "loop_type"} & set(value)):
            return
        expected = _kind(node)
        line = lines.key(path, start)
        here = f"infra/{file.name}:{line}: {what} {dotted}"
        if isinstance(value, str) and value in file.section("parameters"):
            self._parameter(file, lines, here, node, value)
            return
        actual = _literal_kind(value, file)
        if actual is None:
            return
        if expected != actual and not (expected == "string" and actual == "interpolation"):
            self.problems.append(f"{here} is {_a(expected)} in the spec, but {via}{_a(actual)} is given")
            return
        if isinstance(node, dict) and "enum" in node and isinstance(value, str) and actual == "string":
            if value not in node["enum"]:
                close = difflib.get_close_matches(value, node["enum"], n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.problems.append(f"{here} is {value!r}, not one of {', '.join(map(repr, node['enum']))}{hint}")
            return
        if isinstance(node, dict) and "array" in node and isinstance(value, list):
            for index, item in enumerate(value):
                self.value(file, lines, start, what, [*path, f"[{index}]"], node["array"], item, depth=depth + 1)
            return
        if isinstance(node, dict) and "object" in node and isinstance(value, dict):
            node = self._kind(file, lines, start, what, path, node, value)
            if node is not None:
                self._object(file, lines, start, what, path, node, value, top_level, depth)

    def _kind(
        self,
        file: Any,
        lines: Lines,
        start: int,
        what: str,
        path: list[str],
        node: dict[str, Any],
        value: dict[str, Any],
    ) -> dict[str, Any] | None:
        """For a polymorphic object (the table's "kinds"), the node of the kind its discriminator names; None when
        that kind is unknown (reported) or known only at deployment (not checked). Without the discriminator, the
        base node, which requires it if the spec does."""
        if "kinds" not in node or node.get("discriminator") not in value:
            return node
        key = node["discriminator"]
        chosen, via = self._follow(file, value[key])
        if not (isinstance(chosen, str) and _literal_kind(chosen, file) == "string"):
            return None
        if chosen in node["kinds"]:
            kind: dict[str, Any] = node["kinds"][chosen]
            return kind
        kinds = sorted(node["kinds"])
        close = difflib.get_close_matches(chosen, kinds, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        line = lines.key([*path, key], start)
        self.problems.append(
            f"infra/{file.name}:{line}: {what} {'.'.join([*path, key])} is {via}{chosen!r}, not one of the kinds the "
            f"spec defines: {', '.join(map(repr, kinds))}{hint}"
        )
        return None

    def _object(
        self,
        file: Any,
        lines: Lines,
        start: int,
        what: str,
        path: list[str],
        node: dict[str, Any],
        value: dict[str, Any],
        top_level: bool,
        depth: int,
    ) -> None:
        properties: dict[str, Any] = node["object"]
        read_only = set(node.get("readOnly") or ())
        for key, item in value.items():
            if top_level and key in BICEP_KEYS:
                continue
            if key in properties:
                if key in read_only:
                    line = lines.key([*path, key], start)
                    self.problems.append(
                        f"infra/{file.name}:{line}: {what} sets {'.'.join([*path, key])}, which is read-only"
                    )
                    continue
                self.value(file, lines, start, what, [*path, key], properties[key], item, depth=depth + 1)
            elif "map" in node:
                self.value(file, lines, start, what, [*path, key], node["map"], item, depth=depth + 1)
            else:
                line = lines.key([*path, key], start)
                close = difflib.get_close_matches(key, list(properties), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                known = ", ".join(sorted(p for p in properties if p not in read_only)) or "none"
                self.problems.append(
                    f"infra/{file.name}:{line}: {what} has property {'.'.join([*path, key])}, which the spec does "
                    f"not define{hint}; it takes: {known}"
                )
        for required in node.get("required") or ():
            if required not in value and required not in read_only:
                line = lines.key(path, start)
                self.problems.append(
                    f"infra/{file.name}:{line}: {what} lacks {'.'.join([*path, required])}, which the spec requires"
                )

    def _follow(self, file: Any, value: Any) -> tuple[Any, str]:
        """A variable's value (within the file), with words saying where it came from."""
        via = ""
        for _ in range(10):
            if isinstance(value, str) and value in file.section("variables"):
                via = f"var {value} = "
                value = file.section("variables")[value]["value"]
                continue
            break
        return value, via

    def _parameter(self, file: Any, lines: Lines, here: str, node: Any, name: str) -> None:
        parameter = file.section("parameters")[name]
        declared = PARAM_TYPES.get(str(parameter.get("type")))
        expected = _kind(node)
        if declared and expected != "any" and declared != expected:
            self.problems.append(f"{here} is {_a(expected)} in the spec, but param {name} is declared {declared}")
            return
        if isinstance(node, dict) and "enum" in node:
            for decorator in parameter.get("decorators") or []:
                if decorator.get("type") == "allowed":
                    for allowed in decorator.get("argument") or []:
                        if isinstance(allowed, str) and allowed not in node["enum"]:
                            self.problems.append(
                                f"{here} takes param {name}, whose @allowed value {allowed!r} is not one of "
                                f"{', '.join(map(repr, node['enum']))}"
                            )
            default = parameter.get("default")
            if isinstance(default, str) and _literal_kind(default, file) == "string" and default not in node["enum"]:
                self.problems.append(
                    f"{here} takes param {name}, whose default {default!r} is not one of "
                    f"{', '.join(map(repr, node['enum']))}"
                )

    # -- modules ----------------------------------------------------------------------------------------

    def module_params(self, file: Any) -> None:
        """A module parameter given a parameter of the calling file: the two declared types agree."""
        for name, module in file.section("modules").items():
            target = self.infra.files.get(Path((module.get("detail") or {}).get("path", "")).name)
            if target is None:
                continue
            config = module.get("config") or {}
            while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
                config = config["config"]
            passed = (config.get("params") or {}) if isinstance(config, dict) else {}
            for param, value in passed.items():
                if not (isinstance(value, str) and value in file.section("parameters")):
                    continue
                given = PARAM_TYPES.get(str(file.section("parameters")[value].get("type")))
                wanted = PARAM_TYPES.get(str((target.section("parameters").get(param) or {}).get("type")))
                if given and wanted and given != wanted:
                    line = Lines(file.text).find(
                        rf"^\s*{re.escape(param)}\s*:", Lines(file.text).find(rf"^module {name}\b")
                    )
                    self.problems.append(
                        f"infra/{file.name}:{line}: module {name} passes param {value} ({given}) to "
                        f"{target.name}'s {wanted} param {param}"
                    )


def _a(kind: str) -> str:
    return {"int": "an int", "array": "an array", "object": "an object", "interpolation": "a string"}.get(
        kind, f"a {kind}"
    )


def _literal_kind(value: Any, file: Any) -> str | None:
    """The Bicep type of a value known before deployment, or None (an expression, a resource or module reference)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "int"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return None if {"function", "operator", "loop_type"} & set(value) else "object"
    if isinstance(value, str):
        if "${" in value:
            return "interpolation"
        head = re.split(r"[.\[:?]", value, maxsplit=1)[0]
        if head in file.symbols() or head in ("az", "sys"):
            return None
        return "string"
    return None


def check(infra: Any, types: dict[str, Any] | None = None) -> list[str]:
    return TypeCheck(infra, types).run()
