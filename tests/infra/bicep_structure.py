"""Structural checks of the Bicep that need no resource-type table: every name a file uses is declared, every
module is given exactly the parameters its file declares (a literal of the declared type), every module output
read exists, parameter defaults have their declared type, and a file that creates resource groups targets the
subscription. Findings name the file and line.

It reads the parse tree pycep gives (bicep_model.Infra) and, for names, the text itself: pycep writes a string
literal and an identifier alike, so a small lexer tells them apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

KEYWORDS = frozenset(
    {
        "param", "var", "resource", "module", "output", "targetScope", "existing", "if", "for", "in", "true", "false",
        "null", "import", "type", "metadata", "func", "using", "with", "as",
    }
)  # fmt: skip
TYPES = frozenset({"string", "int", "bool", "object", "array", "any"})
NAMESPACES = frozenset({"az", "sys"})
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Token:
    kind: str  # name | punct | string
    text: str
    line: int


def tokens(text: str) -> Iterator[Token]:
    """Names and punctuation outside strings and comments; the expressions of ${...} inside strings included."""
    i, line, depth = 0, 1, [0]  # depth: braces open in each ${...} nesting (0 = top level)
    in_string: list[bool] = [False]
    while i < len(text):
        char = text[i]
        if char == "\n":
            line += 1
            i += 1
            continue
        if in_string[-1]:
            if char == "\\":
                i += 2
            elif char == "'":
                in_string.pop()
                yield Token("string", "'", line)
                i += 1
            elif text.startswith("${", i):
                in_string.append(False)
                depth.append(0)
                i += 2
            else:
                i += 1
            continue
        if text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i)
            line += text[i : end if end >= 0 else len(text)].count("\n")
            i = len(text) if end < 0 else end + 2
        elif text.startswith("'''", i):
            end = text.find("'''", i + 3)
            line += text[i : end if end >= 0 else len(text)].count("\n")
            i = len(text) if end < 0 else end + 3
            yield Token("string", "'''", line)
        elif char == "'":
            in_string.append(True)
            i += 1
        elif char == "}" and len(depth) > 1 and depth[-1] == 0:
            depth.pop()
            in_string.pop()
            i += 1
        elif match := IDENTIFIER.match(text, i):
            yield Token("name", match.group(), line)
            i = match.end()
        elif char.isspace() or char.isdigit():
            i += 1
        else:
            if char == "{":
                depth[-1] += 1
            elif char == "}":
                depth[-1] -= 1
            width = 2 if text[i : i + 2] in ("::", "?.", "??", "==", "!=", "<=", ">=", "&&", "||", "=~", "!~") else 1
            yield Token("punct", text[i : i + width], line)
            i += width


def undefined_names(text: str) -> list[tuple[int, str]]:
    """(line, name) of each name used but declared nowhere in the file."""
    found = list(tokens(text))
    declared: set[str] = set()
    for index, token in enumerate(found):
        if token.kind != "name":
            continue
        before = found[index - 1] if index else None
        if before and before.kind == "name" and before.text in ("param", "var", "resource", "module", "output", "type"):
            declared.add(token.text)
        following = found[index + 1].text if index + 1 < len(found) else ""
        if before and before.text in ("for", "(") and (following == "in" or (following == "," and before.text == "(")):
            declared.add(token.text)
        closes = index + 2 < len(found) and found[index + 1].text == ")" and found[index + 2].text == "in"
        if before and before.text == "," and closes:
            declared.add(token.text)  # for (item, index) in
    problems = []
    for index, token in enumerate(found):
        if token.kind != "name" or token.text in declared or token.text in KEYWORDS | TYPES | NAMESPACES:
            continue
        before = found[index - 1] if index else None
        after = found[index + 1] if index + 1 < len(found) else None
        if before and before.text in (".", "::", "?.", "@"):
            continue  # a property, a child resource, a decorator
        if after and after.text == "(":
            continue  # a function
        if after and after.text == ":" and (before is None or before.text in ("{", ",") or before.line < token.line):
            continue  # an object key
        if before and before.kind == "name" and before.text in {"param", "output"} | TYPES:
            continue
        problems.append((token.line, token.text))
    return problems


def _line(text: str, pattern: str) -> int:
    match = re.search(pattern, text, flags=re.MULTILINE)
    return text.count("\n", 0, match.start()) + 1 if match else 0


def _literal_type(value: Any, symbols: set[str]) -> str | None:
    """The type of a literal argument, or None for an expression."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str) and value not in symbols and "${" not in value and not IDENTIFIER.fullmatch(value):
        return "string"
    if isinstance(value, str) and value not in symbols and IDENTIFIER.fullmatch(value):
        return "string?"  # an identifier-like literal, or an undeclared name (undefined_names reports those)
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict) and not ({"function", "operator", "loop_type"} & set(value)):
        return "object"
    return None


def check(infra: Any) -> list[str]:
    """Problems in infra (a bicep_model.Infra), each naming infra/<file>:<line>."""
    problems: list[str] = []
    for file in infra.files.values():
        text = file.text
        where = f"infra/{file.name}"
        for line, name in undefined_names(text):
            problems.append(f"{where}:{line}: {name} is not declared (no param, var, resource, module or loop item)")
        scope = ((file.tree.get("globals") or {}).get("scope") or {}).get("value", "resourceGroup")
        groups = any(r.get("type") == "Microsoft.Resources/resourceGroups" for r in file.section("resources").values())
        if groups and scope != "subscription":
            problems.append(
                f"{where}:1: creates resource groups, so it needs targetScope = 'subscription' (it is {scope!r})"
            )
        for name, parameter in file.section("parameters").items():
            declared, default = parameter.get("type"), parameter.get("default")
            kind = _literal_type(default, file.symbols()) if default is not None else None
            if kind and declared in TYPES - {"any"} and kind.rstrip("?") != declared:
                line = _line(text, rf"^param {name}\b")
                problems.append(f"{where}:{line}: param {name} is {declared} but its default is a {kind.rstrip('?')}")
        for name, module in file.section("modules").items():
            target = infra.files.get(module["detail"]["path"])
            line = _line(text, rf"^module {name}\b")
            if target is None:
                problems.append(f"{where}:{line}: module {name} deploys {module['detail']['path']}, not in infra/")
                continue
            config = module.get("config") or {}
            while isinstance(config, dict) and "config" in config and ("condition" in config or "loop_type" in config):
                config = config["config"]
            passed = (config.get("params") or {}) if isinstance(config, dict) else {}
            declared_params = target.section("parameters")
            for missing in sorted(
                p for p, d in declared_params.items() if d.get("default") is None and p not in passed
            ):
                problems.append(f"{where}:{line}: module {name} does not pass {target.name}'s required param {missing}")
            for extra in sorted(set(passed) - set(declared_params)):
                problems.append(f"{where}:{line}: module {name} passes {extra}, which {target.name} does not declare")
            for param, value in passed.items():
                expected = (declared_params.get(param) or {}).get("type")
                kind = _literal_type(value, file.symbols())
                if kind and kind != "string?" and expected in TYPES - {"any"} and kind != expected:
                    problems.append(
                        f"{where}:{line}: module {name} passes a {kind} to {target.name}'s {expected} param {param}"
                    )
            for match in re.finditer(rf"\b{name}\.outputs\.(\w+)", text):
                if match.group(1) not in target.section("outputs"):
                    number = text.count("\n", 0, match.start()) + 1
                    problems.append(f"{where}:{number}: {target.name} has no output {match.group(1)}")
    return problems
