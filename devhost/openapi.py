"""An OpenAPI description of the app's HTTP routes, served by devhost at `/openapi.json`.

Paths, methods and security come from the app's own bindings (so a new route is described the
moment it exists); request bodies come from `BODIES`, keyed by function name, and a test checks
that every HTTP function has one. Fuzzers (schemathesis, in `make reliability`) read it.
"""

from __future__ import annotations

import re
from typing import Any

from .discovery import FunctionApp

RUN_ID = {"type": "string", "pattern": "^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"}
PROMOTE = {
    "type": "object",
    "additionalProperties": False,
    "required": ["runId"],
    "properties": {"runId": RUN_ID, "force": {"type": "boolean"}},
}
DECISION = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"comment": {"type": "string", "maxLength": 500}},
}
BODIES: dict[str, dict[str, Any] | None] = {
    "start_pipeline_run": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"trainingBlob": {"type": "string", "maxLength": 1100}, "dryRun": {"type": "boolean"}},
    },
    "promote_to_target": PROMOTE,
    "roll_back_pipeline": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"runId": RUN_ID, "force": {"type": "boolean"}},
    },
    "request_status": None,
    "run_record": None,
    "approve_run": DECISION,
    "reject_run": DECISION,
    "cancel_run": DECISION,
    "cancel_request": DECISION,
    "list_pipelines": None,
    "list_runs": None,
    "list_models": None,
    "status_page": None,
    "pipeline_page": None,
}
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": "string"},
                "id": {"type": "string"},
            },
        }
    },
}


def describe_routes(app: FunctionApp, host_config: dict[str, Any]) -> dict[str, Any]:
    prefix = host_config.get("extensions", {}).get("http", {}).get("routePrefix", "api")
    paths: dict[str, dict[str, Any]] = {}
    for function in app.http:
        route = "/" + "/".join(s for s in (prefix, str(function.trigger.get("route") or function.name)) if s)
        template = re.sub(r"\{(\w+)(?::[^}?]+)?\??\}", r"{\1}", route)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
            for name in re.findall(r"\{(\w+)\}", template)
        ]
        for method in function.trigger.get("methods") or ["GET", "POST"]:
            operation: dict[str, Any] = {
                "operationId": f"{function.name}_{method.lower()}",
                "parameters": parameters,
                "responses": {
                    "200": {"description": "done"},
                    "202": {"description": "accepted; see Location"},
                    "400": {"description": "the caller's mistake", "content": {"application/json": {"schema": ERROR}}},
                    "401": {"description": "no or wrong key"},
                    "404": {"description": "not found", "content": {"application/json": {"schema": ERROR}}},
                    "409": {"description": "conflict", "content": {"application/json": {"schema": ERROR}}},
                },
            }
            if str(function.trigger.get("authLevel", "function")).lower() != "anonymous":
                operation["security"] = [{"functionKey": []}]
            body = BODIES.get(function.name)
            if body is not None and method.upper() in ("POST", "PUT", "PATCH"):
                operation["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
            paths.setdefault(template, {})[method.lower()] = operation
    return {
        "openapi": "3.0.3",
        "info": {"title": "Retraining app HTTP routes", "version": "1"},
        "paths": paths,
        "components": {
            "securitySchemes": {"functionKey": {"type": "apiKey", "in": "header", "name": "x-functions-key"}}
        },
    }
