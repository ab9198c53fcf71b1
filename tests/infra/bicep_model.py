"""The Bicep files of infra/ as the infra check sees them: each parsed with pycep (the parser checkov uses) into a
BicepFile, and Infra, which lists their resources (nested ones included) and follows a value through variables,
module parameters and outputs to its source or its literal value before deployment, down to the Function App's
settings (siteConfig.appSettings and a config/appsettings child: name/value arrays, concat, conditionals,
for-expressions over objects), each a Setting with the file and variable it comes from.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .rules import FUNCTION_APP_TYPE, INFRA, PROVISIONED, Finding

# ---- The Bicep, parsed ----------------------------------------------------------------------------------


@functools.cache
def _parser() -> Any:
    from pycep import BicepParser

    return BicepParser()


@functools.lru_cache(maxsize=64)
def _parse(text: str) -> dict[str, Any]:
    tree: dict[str, Any] = _parser().parse(text=text)
    return tree


@dataclass(repr=False)
class BicepFile:
    path: Path
    text: str
    tree: dict[str, Any]

    def __repr__(self) -> str:
        return f"BicepFile({self.path.name})"

    @property
    def name(self) -> str:
        return self.path.name

    def section(self, kind: str) -> dict[str, Any]:
        return self.tree.get(kind) or {}

    def symbols(self) -> set[str]:
        return {
            *self.section("parameters"),
            *self.section("variables"),
            *self.section("resources"),
            *self.section("modules"),
        }


def unwrap(config: Any) -> tuple[Any, dict[str, Any] | None, dict[str, Any]]:
    """A resource's or module's (condition, loop, body), whatever pycep wrapped around the body."""
    condition, loop = None, None
    while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
        condition = config.get("condition") or condition
        loop = config.get("loop_type") or loop
        config = config["config"]
    return condition, loop, config if isinstance(config, dict) else {}


def dotted(node: Any) -> str | None:
    """`a.b.c` for a chain of property accessors (`a::b` becomes `a__b`, as pycep names child resources)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "operator" in node:
        operator = node["operator"]
        if operator.get("type") in ("property_accessor", "nested_resource_accessor"):
            left, right = dotted(operator["operands"]["operand_1"]), dotted(operator["operands"]["operand_2"])
            if left is None or right is None:
                return None
            joiner = "__" if operator["type"] == "nested_resource_accessor" else "."
            return f"{left}{joiner}{right}"
    return None


@dataclass(frozen=True)
class Resource:
    file: BicepFile
    symbol: str  # `name`, or `parent__child` for a nested resource (pycep's naming)
    type: str
    condition: Any
    loop: dict[str, Any] | None
    body: dict[str, Any]
    existing: bool


@dataclass(frozen=True)
class Setting:
    name: str
    value: Any
    file: BicepFile
    origin: str  # the variable (or parameter) it comes from
    conditional: bool
    item: str | None = None  # the for-expression's item name, when the value is a template over it
    home: str = ""  # where a line for it is written: `var X in infra/F`

    def __post_init__(self) -> None:
        if not self.home:
            object.__setattr__(self, "home", f"var {self.origin} in infra/{self.file.name}")


class Infra:
    """The Bicep files of infra/, parsed, with the lookups the checks need."""

    def __init__(self, root: Path = INFRA) -> None:
        self.root = root
        self.files: dict[str, BicepFile] = {}
        self.errors: list[Finding] = []
        for path in sorted(root.glob("*.bicep")):
            text = path.read_text(encoding="utf-8")
            try:
                tree = _parse(text)
            except Exception as exc:  # lark raises many error types; each is a file we cannot check
                self.errors.append(
                    Finding("parse", f"infra/{path.name} does not parse with pycep: {str(exc).splitlines()[0]}")
                )
                continue
            self.files[path.name] = BicepFile(path, text, tree)

    # -- resources -----------------------------------------------------------------------------------

    def resources(self) -> Iterator[Resource]:
        """Every resource; pycep lists most nested ones at the top as `parent__child`, with their full type."""
        for file in self.files.values():
            for symbol, resource in file.section("resources").items():
                yield from self._resource(file, symbol, resource["type"], resource)

    def _resource(self, file: BicepFile, symbol: str, type_: str, resource: dict[str, Any]) -> Iterator[Resource]:
        condition, loop, body = unwrap(resource.get("config"))
        yield Resource(file, symbol, type_, condition, loop, body, bool(resource.get("existing")))
        # pycep leaves the child of a conditional resource nested, under __child_resource__.
        child = body.get("__child_resource__")
        if isinstance(child, dict) and "__attrs__" in child:
            attrs = child["__attrs__"]
            yield from self._resource(file, f"{symbol}__{child['__name__']}", f"{type_}/{attrs['type']}", attrs)

    def of_type(self, type_: str) -> list[Resource]:
        return [r for r in self.resources() if r.type.lower() == type_.lower()]

    def roots(self, file: BicepFile) -> set[str]:
        """The templates (files no module deploys) that deploy `file`, itself if it is one."""
        seen: set[str] = set()
        todo, found = [file], set()
        while todo:
            current = todo.pop()
            if current.name in seen:
                continue
            seen.add(current.name)
            callers = [caller for caller, _ in self.callers(current)]
            if not callers:
                found.add(current.name)
            todo.extend(callers)
        return found

    def provisioned(self, file: BicepFile) -> bool:
        return PROVISIONED in self.roots(file)

    # -- following values ----------------------------------------------------------------------------

    def callers(self, file: BicepFile) -> Iterator[tuple[BicepFile, dict[str, Any]]]:
        """(calling file, module params) for each `module` that deploys `file`."""
        for caller in self.files.values():
            for module in caller.section("modules").values():
                path = (module.get("detail") or {}).get("path", "")
                if (caller.path.parent / path).resolve() == file.path.resolve():
                    _, _, body = unwrap(module.get("config"))
                    yield caller, body.get("params") or {}

    def origin(self, file: BicepFile, node: Any) -> tuple[BicepFile, Any]:
        """Follow an identifier through variables and up through module parameters to its source."""
        for _ in range(20):
            node = dotted(node) or node
            if not isinstance(node, str):
                return file, node
            if node in file.section("variables"):
                node = file.section("variables")[node]["value"]
                continue
            if node in file.section("parameters"):
                passed = [(caller, params[node]) for caller, params in self.callers(file) if node in params]
                if len(passed) == 1:
                    file, node = passed[0]
                    continue
            if "." in node and node.split(".")[0] in file.section("modules") and ".outputs." in node:
                module_name, _, output = node.partition(".outputs.")
                module = file.section("modules")[module_name]
                target = self.files.get(Path(module["detail"]["path"]).name)
                if target and output in target.section("outputs"):
                    file, node = target, target.section("outputs")[output]["value"]
                    continue
            return file, node
        return file, node

    def literal(self, file: BicepFile, node: Any) -> str | None:
        """The literal string a value has before deployment, or None (a runtime value, or a required param)."""
        if isinstance(node, dict) and "function" in node and node["function"].get("type") == "string":
            return self.literal(file, node["function"]["parameters"]["value_to_convert"])
        if isinstance(node, bool):
            return str(node).lower()
        if isinstance(node, int):
            return str(node)
        if not isinstance(node, str):
            return None
        if node in file.section("parameters"):
            source_file, source = self.origin(file, node)
            if isinstance(source, str) and source in source_file.section("parameters"):
                return self.literal(source_file, source_file.section("parameters")[source].get("default"))
            if source_file is not file or source != node:
                return self.literal(source_file, source)
            return None
        if node in file.section("variables"):
            return self.literal(file, file.section("variables")[node]["value"])
        if node in file.symbols() or "${" in node:
            return None
        return node

    def objects(self, file: BicepFile, node: Any) -> tuple[BicepFile, str, dict[str, Any]] | None:
        """(file, variable name, object literal) an identifier stands for, or None."""
        name = node if isinstance(node, str) else "?"
        source_file, source = self.origin(file, node)
        if isinstance(source, dict) and not ({"function", "operator", "loop_type"} & set(source)):
            origin_name = next((v for v, d in source_file.section("variables").items() if d["value"] is source), name)
            return source_file, origin_name, source
        return None

    def arrays(self, file: BicepFile, node: Any) -> tuple[BicepFile, str, list[Any]] | None:
        source_file, source = self.origin(file, node)
        if isinstance(source, list):
            origin_name = next(
                (v for v, d in source_file.section("variables").items() if d["value"] is source), str(node)
            )
            return source_file, origin_name, source
        return None

    # -- the Function App ----------------------------------------------------------------------------

    def function_app(self) -> Resource | None:
        apps = [
            r
            for r in self.of_type(FUNCTION_APP_TYPE)
            if not r.existing and "functionapp" in str(r.body.get("kind", ""))
        ]
        return apps[0] if len(apps) == 1 else None

    def settings(self) -> tuple[list[Setting], list[Finding]]:
        app = self.function_app()
        if app is None:
            return [], [
                Finding(
                    "settings",
                    "no single Flex Consumption Function App (Microsoft.Web/sites, kind functionapp) found in infra/",
                )
            ]
        node = ((app.body.get("properties") or {}).get("siteConfig") or {}).get("appSettings")
        if node is None:
            return [], [
                Finding("settings", f"infra/{app.file.name} {app.symbol}: properties.siteConfig.appSettings is not set")
            ]
        found: list[Setting] = []
        problems: list[Finding] = []
        self._settings(app.file, node, False, "appSettings", found, problems)
        for config in self.of_type("Microsoft.Web/sites/config"):
            if config.file is not app.file or config.body.get("parent") != app.symbol:
                continue
            if config.body.get("name") != "appsettings":
                continue
            self._config_settings(app, config, found, problems)
        return found, problems

    def _config_settings(self, app: Resource, config: Resource, out: list[Setting], problems: list[Finding]) -> None:
        """A config/appsettings child of the app: a PUT replaces every setting, so it must merge the ones
        siteConfig.appSettings set (`union(list('${app.id}/config/appsettings', ...).properties, {...})`)."""
        where = f"infra/{config.file.name} {config.symbol}"
        node = config.body.get("properties")
        function = node.get("function", {}) if isinstance(node, dict) else {}
        arguments = list(function.get("parameters", {}).values()) if function.get("type") == "union" else [node]
        merged = any(
            "list_func" in json.dumps(argument) and f"${{{app.symbol}.id}}/config/appsettings" in json.dumps(argument)
            for argument in arguments
        )
        if not merged:
            problems.append(
                Finding(
                    "settings",
                    f"{where}: a config/appsettings PUT replaces every app setting; merge the site's own with "
                    f"union(list('${{{app.symbol}.id}}/config/appsettings', '<api-version>').properties, {{...}})",
                )
            )
        for argument in arguments:
            if isinstance(argument, dict) and not ({"function", "operator", "loop_type"} & set(argument)):
                for key, value in argument.items():
                    out.append(
                        Setting(
                            key.strip("'"),
                            value,
                            config.file,
                            config.symbol,
                            False,
                            home=f"resource {config.symbol} in infra/{config.file.name}",
                        )
                    )

    def _settings(
        self, file: BicepFile, node: Any, conditional: bool, origin: str, out: list[Setting], problems: list[Finding]
    ) -> None:
        if isinstance(node, list):
            for item in node:
                name = item.get("name") if isinstance(item, dict) else None
                if not isinstance(name, str) or name in file.symbols():
                    problems.append(
                        Finding(
                            "settings",
                            f"infra/{file.name} {origin}: an app setting whose name is not a literal: {item!r:.120}",
                        )
                    )
                    continue
                out.append(Setting(name, item.get("value"), file, origin, conditional))
            return
        if isinstance(node, str) and node in file.section("variables"):
            value = file.section("variables")[node]["value"]
            if isinstance(value, dict) and "loop_type" in value:
                self._loop_settings(file, node, value, conditional, out, problems)
            else:
                self._settings(file, value, conditional, node, out, problems)
            return
        if isinstance(node, dict) and node.get("function", {}).get("type") == "concat":
            for argument in node["function"]["parameters"].values():
                self._settings(file, argument, conditional, origin, out, problems)
            return
        if isinstance(node, dict) and node.get("operator", {}).get("type") == "conditional":
            operands = node["operator"]["operands"]
            self._settings(file, operands["true_value"], True, origin, out, problems)
            self._settings(file, operands["false_value"], True, origin, out, problems)
            return
        problems.append(
            Finding(
                "settings",
                f"infra/{file.name} {origin}: cannot follow this app settings expression: {json.dumps(node)[:160]}",
            )
        )

    def _loop_settings(
        self,
        file: BicepFile,
        var: str,
        loop: dict[str, Any],
        conditional: bool,
        out: list[Setting],
        problems: list[Finding],
    ) -> None:
        detail, body = loop["loop_type"]["detail"], loop.get("config") or {}
        item = detail.get("item_name")
        if loop["loop_type"].get("type") != "object" or dotted(body.get("name")) != f"{item}.key":
            problems.append(
                Finding(
                    "settings",
                    f"infra/{file.name} var {var}: expected [for {item} in items(OBJECT): {{ name: {item}.key, value: ... }}]",
                )
            )
            return
        source = self.objects(file, detail["object_name"])
        if source is None:
            problems.append(
                Finding(
                    "settings",
                    f"infra/{file.name} var {var}: cannot find the object {detail['object_name']} it loops over",
                )
            )
            return
        source_file, source_var, entries = source
        for key, value in entries.items():
            if dotted(body.get("value")) == f"{item}.value":
                out.append(Setting(key.strip("'"), value, source_file, source_var, conditional))
            else:
                out.append(
                    Setting(
                        key.strip("'"),
                        body.get("value"),
                        file,
                        var,
                        conditional,
                        item=item,
                        home=f"var {source_var} in infra/{source_file.name}",
                    )
                )
