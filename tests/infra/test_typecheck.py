"""The offline type check (typecheck.py) against the table made from Azure's REST specs (typetable/).

It passes on the real infra/; each planted error in mutations.TYPE_ERRORS fails it, naming the file and the line the
error is on, and is caught by the type check alone (with it switched off, the same error passes unnoticed by that
message). The rebuild script is tested on a small spec of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from . import infra_check
from .infra_check import INFRA, Infra, check
from .mutations import TYPE_ERRORS, edit
from .typecheck import TABLE, table
from .typecheck import check as typecheck
from .typetable import build

CASES = [(*error, "")[:5] for error in TYPE_ERRORS]
IDS = [error[3][:60] for error in TYPE_ERRORS]


def test_the_real_infra_passes() -> None:
    problems = typecheck(Infra())
    assert not problems, "\n".join(problems)


def test_the_table_covers_every_type_and_version_infra_uses() -> None:
    types = table()["types"]
    for type_, version in sorted(build.wanted(INFRA)):
        assert version in types[type_.lower()]["versions"], f"{type_}@{version}: rebuild the table with build.py"


def test_the_table_names_its_source_and_holds_the_bodies_it_checks() -> None:
    source = table()["source"]
    assert source["repository"] == "Azure/azure-rest-api-specs"
    read = {path.rsplit("/", 1)[1] for path, commit in source["files"].items() if re.fullmatch(r"[0-9a-f]{40}", commit)}
    assert {
        "storage.json",
        "common.json",
        "blob.json",
        "CommonDefinitions.json",
        "authorization-RoleAssignmentsCalls.json",
        "authorization-RoleDefinitionsCalls.json",
        "EventGrid.json",
        "components_API.json",
        "Workspaces.json",
        "ManagedIdentity.json",
        "secrets.json",
        "durabletask.json",
        "resources.json",
    } <= read, source["files"]
    assert source["note"], "how the spec files were obtained"
    types = table()["types"]
    for checked in (
        "microsoft.storage/storageaccounts",
        "microsoft.storage/storageaccounts/blobservices/containers",
        "microsoft.web/sites",
        "microsoft.web/serverfarms",
        "microsoft.authorization/roleassignments",
        "microsoft.authorization/roledefinitions",
        "microsoft.eventgrid/systemtopics",
        "microsoft.eventgrid/systemtopics/eventsubscriptions",
        "microsoft.insights/components",
        "microsoft.operationalinsights/workspaces",
        "microsoft.managedidentity/userassignedidentities",
        "microsoft.keyvault/vaults/secrets",
        "microsoft.durabletask/schedulers",
        "microsoft.durabletask/schedulers/taskhubs",
        "microsoft.resources/resourcegroups",
    ):
        assert all(slot["body"] for slot in types[checked]["versions"].values()), checked
    subscription = types["microsoft.eventgrid/systemtopics/eventsubscriptions"]["versions"]["2025-02-15"]["body"]
    destination = subscription["object"]["properties"]["object"]["destination"]
    assert destination["discriminator"] == "endpointType" and "AzureFunction" in destination["kinds"]
    assert TABLE.stat().st_size < 200_000


@pytest.mark.parametrize(("file", "old", "new", "expected", "where"), CASES, ids=IDS)
def test_a_planted_type_error_is_named_with_its_line(
    infra: Path, file: str, old: str, new: str, expected: str, where: str
) -> None:
    edit(infra / file, old, new)
    text = (infra / file).read_text(encoding="utf-8")
    if not where:
        where = next(part for part in new.split("\n") if part and part not in old)
    line = text.count("\n", 0, text.index(where)) + 1
    messages = [str(f) for f in check(infra)]
    matching = [m for m in messages if expected in m]
    assert matching, "\n".join(messages)
    assert any(f"infra/{file}:{line}:" in m for m in matching), (line, matching)
    assert all(m.startswith("[bicep types]") for m in matching)


@pytest.mark.parametrize(("file", "old", "new", "expected", "where"), CASES, ids=IDS)
def test_without_the_type_check_a_planted_error_goes_unnamed(
    infra: Path, monkeypatch: pytest.MonkeyPatch, file: str, old: str, new: str, expected: str, where: str
) -> None:
    """The planted error is caught by the type check, not by some other check that happens to notice."""
    monkeypatch.setattr("tests.infra.typecheck.check", lambda infra, types=None: [])
    edit(infra / file, old, new)
    assert not [f for f in infra_check.check(infra) if expected in str(f)]


def test_the_rebuild_script_derives_a_table_from_a_spec(tmp_path: Path) -> None:
    """A two-file spec with $ref across files, allOf, enums, required and read-only properties, a map, an array,
    a fixed-name child (config/appsettings) and a type infra/ does not use (left out)."""
    version = tmp_path / "specification/demo/resource-manager/Microsoft.Demo/stable/2024-01-01"
    version.mkdir(parents=True)
    providers = "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Demo"
    (version / "common.json").write_text(
        json.dumps(
            {
                "definitions": {
                    "Tracked": {
                        "properties": {
                            "id": {"type": "string", "readOnly": True},
                            "location": {"type": "string"},
                            "tags": {"type": "object", "additionalProperties": {"type": "string"}},
                        },
                        "required": ["location"],
                    }
                }
            }
        )
    )
    (version / "demo.json").write_text(
        json.dumps(
            {
                "paths": {
                    f"{providers}/widgets/{{name}}": {"put": {"parameters": [_body("#/definitions/Widget")]}},
                    f"{providers}/widgets/{{name}}/config/web": {"put": {"parameters": [_body("#/definitions/Cfg")]}},
                    f"{providers}/gadgets/{{name}}": {"put": {"parameters": [_body("#/definitions/Cfg")]}},
                },
                "definitions": {
                    "Widget": {
                        "allOf": [{"$ref": "./common.json#/definitions/Tracked"}],
                        "properties": {
                            "properties": {
                                "properties": {
                                    "size": {"type": "integer"},
                                    "colour": {"type": "string", "enum": ["red", "blue"]},
                                    "parts": {"type": "array", "items": {"$ref": "#/definitions/Missing"}},
                                }
                            }
                        },
                    },
                    "Cfg": {
                        "properties": {"properties": {"type": "object", "additionalProperties": {"type": "string"}}}
                    },
                },
            }
        )
    )
    made = build.build(
        tmp_path,
        {("Microsoft.Demo/widgets", "2024-01-01"), ("Microsoft.Demo/widgets/config", "2024-01-01")},
        {"specification/demo/resource-manager/Microsoft.Demo/stable/2024-01-01/demo.json": "a" * 40},
    )
    assert set(made["types"]) == {"microsoft.demo/widgets", "microsoft.demo/widgets/config"}
    widget = made["types"]["microsoft.demo/widgets"]["versions"]["2024-01-01"]["body"]
    assert widget["required"] == ["location"] and widget["readOnly"] == ["id"]
    assert widget["object"]["tags"] == {"object": {}, "map": "string"}
    assert widget["object"]["properties"]["object"] == {
        "colour": {"enum": ["blue", "red"]},
        "parts": {"array": "any"},
        "size": "int",
    }
    config = made["types"]["microsoft.demo/widgets/config"]["versions"]["2024-01-01"]
    assert config["body"] is None and config["named"]["web"]["object"]["properties"]["map"] == "string"
    assert made["source"]["files"]["specification/demo/resource-manager/Microsoft.Demo/stable/2024-01-01/demo.json"]


def test_the_rebuild_script_lists_the_kinds_of_a_polymorphic_definition(tmp_path: Path) -> None:
    """A `discriminator` base with two kinds (one named by x-ms-discriminator-value, one by its definition name),
    a body given by a `$ref` to #/parameters/..., in a folder with a service subfolder under the namespace."""
    version = tmp_path / "specification/demo/resource-manager/Microsoft.Demo/Demo/stable/2024-01-01"
    version.mkdir(parents=True)
    kind = {"type": "string", "enum": ["round", "Square"]}
    (version / "demo.json").write_text(
        json.dumps(
            {
                "paths": {
                    "/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.Demo/widgets/{name}": {
                        "put": {"parameters": [{"$ref": "#/parameters/WidgetBody"}]}
                    }
                },
                "parameters": {"WidgetBody": _body("#/definitions/Widget")},
                "definitions": {
                    "Widget": {"properties": {"shape": {"$ref": "#/definitions/Shape"}}},
                    "Shape": {"properties": {"kind": kind}, "required": ["kind"], "discriminator": "kind"},
                    "Circle": {
                        "allOf": [{"$ref": "#/definitions/Shape"}],
                        "properties": {"radius": {"type": "integer"}},
                        "x-ms-discriminator-value": "round",
                    },
                    "Square": {"allOf": [{"$ref": "#/definitions/Shape"}], "properties": {"side": {"type": "number"}}},
                },
            }
        )
    )
    made = build.build(tmp_path, {("Microsoft.Demo/widgets", "2024-01-01")}, {})
    shape = made["types"]["microsoft.demo/widgets"]["versions"]["2024-01-01"]["body"]["object"]["shape"]
    assert shape["discriminator"] == "kind" and shape["required"] == ["kind"]
    assert shape["kinds"] == {
        "round": {"object": {"kind": {"enum": ["round"]}, "radius": "int"}, "required": ["kind"]},
        "Square": {"object": {"kind": {"enum": ["Square"]}, "side": "int"}, "required": ["kind"]},
    }


def _body(ref: str) -> dict[str, object]:
    return {"name": "body", "in": "body", "schema": {"$ref": ref}}
