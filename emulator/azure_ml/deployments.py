"""Online and batch deployments: PUT/GET/DELETE/PATCH, list, getLogs.

A deployment names its model by the ARM id of a model version in the same workspace (online:
`properties.model`; batch: `properties.model {"referenceType": "Id", "assetId"}`), or by
`azureml:{name}:{version}`; an unknown version is 400. Provisioning (Creating/Updating ->
Succeeded/Failed, `lro_s`) loads the model's files from storage: missing or corrupt files make it
Failed (the StorageInitializer log says why), as does an `aml_deployment` fault with
`fail_message`. A deployment that succeeds serves the model version it loaded; it emits
ModelDeployed. Create-only fields (`endpointComputeType`, `instanceType`, `codeConfiguration`)
cannot change on update (400, InnerError Immutable). Mutations are 409 while the endpoint or the
deployment is not in a terminal state. DELETE of a deployment that still has live or mirrored
traffic, or is a batch endpoint's default, is 400. PATCH takes `tags` and `sku` (a capacity
change scales: 202 + Location, provisioningState Scaling).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from . import trainer
from .arm import answer, arm_call, page, read_object, resource_id
from .endpoints import find_endpoint, is_batch, on_both, require_idle, segment, tracked_patch, tracked_put
from .errors import conflict, not_found, user_error
from .jobs import check_asset_id
from .lro import delete_later, provision
from .models import find_version
from .resources import TERMINAL_PROVISIONING, Audit, Deployment, Endpoint, ModelVersion, ServedModel, Workspace
from .state import AzureMlState
from .storage import parse_uri
from .validation import choice, duration, flag, integer, obj, opt_obj, required_text, str_map, text

MODEL_ID = re.compile(
    r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.MachineLearningServices/"
    r"workspaces/([^/]+)/models/([^/]+)/versions/([^/]+)$",
    re.IGNORECASE,
)
CREATE_ONLY = ("endpointComputeType", "instanceType", "codeConfiguration")
PROBE_DEFAULTS = {"initialDelay": "PT10S", "period": "PT10S", "timeout": "PT2S"}


def resolve_model(ws: Workspace, ref: str, where: str) -> ModelVersion:
    if m := MODEL_ID.match(ref):
        sub, rg, ws_name, name, version = m.groups()
        if (sub.lower(), rg.lower(), ws_name.lower()) != (
            ws.cfg.subscription_id.lower(),
            ws.cfg.resource_group.lower(),
            ws.cfg.name.lower(),
        ):
            raise user_error(
                f"{where}: {ref!r} is in another workspace; registries and other workspaces are not supported here.",
                "NotSupported",
            )
    elif ref.startswith("azureml:") and not ref.startswith("azureml://") and ref.count(":") == 2:
        _, name, version = ref.split(":")
    else:
        raise user_error(
            f"{where} must be a model version's ARM id or azureml:<name>:<version>; got {ref!r}.", "InvalidReference"
        )
    found = find_version(ws, name, version)
    if found is None:
        raise user_error(
            f"{where}: model {name} version {version} was not found in workspace {ws.cfg.name}.", "NotFound"
        )
    return found


def _probe(raw: dict[str, Any] | None, where: str) -> dict[str, Any]:
    probe = raw or {}
    out: dict[str, Any] = {key: duration(probe, key, where, default) for key, default in PROBE_DEFAULTS.items()}
    out["failureThreshold"] = integer(probe, "failureThreshold", where, minimum=1, default=30)
    out["successThreshold"] = integer(probe, "successThreshold", where, minimum=1, default=1)
    return out


def parse_online(ws: Workspace, props: dict[str, Any]) -> tuple[dict[str, Any], ModelVersion]:
    compute_type = choice(props, "endpointComputeType", "properties", ("Managed", "Kubernetes", "AzureMLCompute"))
    if compute_type is None:
        raise user_error("properties.endpointComputeType is required.", "MissingRequiredField")
    if compute_type != "Managed":
        raise user_error(
            f"endpointComputeType {compute_type} is not supported by this emulator; use Managed.", "NotSupported"
        )
    model = resolve_model(ws, required_text(props, "model", "properties"), "properties.model")
    code = opt_obj(props, "codeConfiguration", "properties")
    if code is not None:
        code = {
            "codeId": text(code, "codeId", "properties.codeConfiguration"),
            "scoringScript": required_text(code, "scoringScript", "properties.codeConfiguration"),
        }
    environment = text(props, "environmentId", "properties")
    if environment is not None:
        check_asset_id(ws, environment, "properties.environmentId", "environments")
    requests_in = opt_obj(props, "requestSettings", "properties") or {}
    scale = opt_obj(props, "scaleSettings", "properties") or {}
    return {
        "endpointComputeType": "Managed",
        "model": _model_id(ws, model),
        "codeConfiguration": code,
        "environmentId": environment,
        "instanceType": text(props, "instanceType", "properties", default="Standard_DS3_v2"),
        "description": text(props, "description", "properties"),
        "properties": str_map(props, "properties", "properties"),
        "environmentVariables": str_map(props, "environmentVariables", "properties"),
        "appInsightsEnabled": flag(props, "appInsightsEnabled", "properties"),
        "egressPublicNetworkAccess": choice(
            props, "egressPublicNetworkAccess", "properties", ("Enabled", "Disabled"), default="Enabled"
        ),
        "scaleSettings": scale
        | {
            "scaleType": choice(
                scale, "scaleType", "properties.scaleSettings", ("Default", "TargetUtilization"), default="Default"
            )
        },
        "requestSettings": {
            "requestTimeout": duration(requests_in, "requestTimeout", "properties.requestSettings", "PT5S"),
            "maxConcurrentRequestsPerInstance": integer(
                requests_in, "maxConcurrentRequestsPerInstance", "properties.requestSettings", minimum=1, default=1
            ),
            "maxQueueWait": duration(requests_in, "maxQueueWait", "properties.requestSettings", "PT0.5S"),
        },
        "livenessProbe": _probe(opt_obj(props, "livenessProbe", "properties"), "properties.livenessProbe"),
        "readinessProbe": _probe(opt_obj(props, "readinessProbe", "properties"), "properties.readinessProbe"),
    }, model


def parse_batch(ws: Workspace, props: dict[str, Any]) -> tuple[dict[str, Any], ModelVersion]:
    ref = obj(props.get("model"), "properties.model")
    if choice(ref, "referenceType", "properties.model", ("Id", "DataPath", "OutputPath")) != "Id":
        raise user_error(
            "properties.model.referenceType must be Id (DataPath and OutputPath are not supported here).",
            "NotSupported",
        )
    model = resolve_model(ws, required_text(ref, "assetId", "properties.model"), "properties.model.assetId")
    compute = text(props, "compute", "properties")
    if compute is not None:
        check_asset_id(ws, compute, "properties.compute", "computes")
    retry = opt_obj(props, "retrySettings", "properties") or {}
    resources = opt_obj(props, "resources", "properties") or {}
    code = opt_obj(props, "codeConfiguration", "properties")
    return {
        "model": {"referenceType": "Id", "assetId": _model_id(ws, model)},
        "compute": compute,
        "codeConfiguration": code,
        "environmentId": text(props, "environmentId", "properties"),
        "description": text(props, "description", "properties"),
        "properties": str_map(props, "properties", "properties"),
        "environmentVariables": str_map(props, "environmentVariables", "properties"),
        "resources": resources
        | {
            "instanceCount": integer(
                resources, "instanceCount", "properties.resources", minimum=1, default=1, coerce=True
            )
        },
        "miniBatchSize": integer(props, "miniBatchSize", "properties", minimum=1, default=10, coerce=True),
        "maxConcurrencyPerInstance": integer(
            props, "maxConcurrencyPerInstance", "properties", minimum=1, default=1, coerce=True
        ),
        "retrySettings": {
            "maxRetries": integer(retry, "maxRetries", "properties.retrySettings", minimum=0, default=3, coerce=True),
            "timeout": duration(retry, "timeout", "properties.retrySettings", "PT30S"),
        },
        "errorThreshold": integer(props, "errorThreshold", "properties", minimum=-1, default=-1, coerce=True),
        "loggingLevel": choice(props, "loggingLevel", "properties", ("Info", "Warning", "Debug"), default="Info"),
        "outputAction": choice(props, "outputAction", "properties", ("AppendRow", "SummaryOnly"), default="AppendRow"),
        "outputFileName": text(props, "outputFileName", "properties", default="predictions.csv"),
    }, model


def _model_id(ws: Workspace, mv: ModelVersion) -> str:
    return resource_id(ws, "models", mv.name, "versions", mv.version)


def require_deployment_idle(d: Deployment) -> None:
    if d.state not in TERMINAL_PROVISIONING:
        raise conflict("Conflict of operation, another operation on same entity is already running.")


def deployment_body(ws: Workspace, endpoint: Endpoint, d: Deployment) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": resource_id(ws, segment(endpoint.batch), endpoint.name, "deployments", d.name),
        "name": d.name,
        "type": f"Microsoft.MachineLearningServices/workspaces/{segment(endpoint.batch)}/deployments",
        "location": d.location,
        "tags": d.tags,
        "kind": "Managed",
        "systemData": d.audit.body(),
        "properties": d.props | {"provisioningState": d.state},
    }
    if d.sku is not None:
        body["sku"] = d.sku
    return body


def load_served(state: AzureMlState, ws: Workspace, mv: ModelVersion) -> ServedModel:
    """The model version's files, loaded as the deployment's StorageInitializer would; StorageError if unusable."""
    location = state.storage.locate(ws.cfg, parse_uri(mv.props["modelUri"]), state.job_output_uri(ws))
    if not location.path.endswith(".ilearner"):
        location = location.child("")
    content_id, model = trainer.load_model(state.storage, location, f"model {mv.name}:{mv.version}")
    return ServedModel(_model_id(ws, mv), content_id, model)


def start_provisioning(
    state: AzureMlState, ws: Workspace, endpoint: Endpoint, d: Deployment, mv: ModelVersion, status: str
) -> Any:
    """Provision `d` with model version `mv`; on success it serves that model and ModelDeployed is emitted."""
    loaded: list[ServedModel] = []
    fault = d.fault

    def work() -> dict[str, str] | None:
        d.logs.append(f"StorageInitializer: downloading model {mv.name}:{mv.version} from {mv.props['modelUri']}")
        if fault is not None and fault.fail_message:
            d.logs.append(f"InferenceServer: {fault.fail_message}")
            return {"code": "DeploymentFailed", "message": fault.fail_message}
        try:
            loaded.append(load_served(state, ws, mv))
        except Exception as exc:
            d.logs.append(f"StorageInitializer: failed: {getattr(exc, 'message', exc)}")
            raise
        d.logs.append(f"InferenceServer: model {loaded[0].content_id} loaded; scoring on /score")
        return None

    def serve() -> None:
        with state.lock:
            d.served = loaded[0]
        state.count("deployments_succeeded")
        state.publish(
            ws,
            "ModelDeployed",
            f"endpoints/{endpoint.name}",
            {
                "ServiceName": endpoint.name,
                "ServiceComputeType": "Managed",
                "ModelIds": f"{mv.name}:{mv.version}",
                "ServiceTags": dict(endpoint.tags),
                "ServiceProperties": {"deployment": d.name},
            },
        )

    return provision(state, ws, d, "bd" if endpoint.batch else "odidp", status, work=work, on_success=serve)


def build_router(state: AzureMlState) -> APIRouter:
    router = APIRouter()
    sub_path = "/{endpoint}/deployments"

    def find(ws: Workspace, endpoint: Endpoint, name: str) -> Deployment:
        d = endpoint.deployment(name)
        if d is None:
            raise not_found(f"Deployment {name} not found in endpoint {endpoint.name}, workspace {ws.cfg.name}.")
        return d

    @on_both(router, "PUT", sub_path + "/{name}")
    async def put_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call, body = await tracked_put(
            state, request, sub, rg, ws, f"{segment(batch)}.deployments.write", "Deployment", name
        )
        props, mv = (parse_batch if batch else parse_online)(call.ws, obj(body.get("properties"), "properties"))
        tags = str_map(body, "tags", "")
        sku = None
        if not batch:
            raw_sku = opt_obj(body, "sku", "") or {}
            sku = raw_sku | {
                "name": text(raw_sku, "name", "sku", default="Default"),
                "capacity": integer(raw_sku, "capacity", "sku", minimum=1, default=1),
            }
        with state.lock:
            target = find_endpoint(call.ws, endpoint, batch)
            if target.state not in TERMINAL_PROVISIONING:
                raise conflict(
                    f"Cannot create a deployment in endpoint {target.name} because it is in {target.state} provisioning state."
                )
            d = target.deployment(name)
            created = d is None
            if d is None:
                d = Deployment(
                    name=name,
                    endpoint=target.name,
                    batch=batch,
                    location=call.ws.cfg.location,
                    tags=tags,
                    sku=sku,
                    props=props,
                    audit=Audit(call.principal),
                    model_id=_model_id(call.ws, mv),
                )
                d.fault = state.take_deployment_fault(call.ws, target.name, name)
                target.deployments[name.lower()] = d
            else:
                require_deployment_idle(d)
                changed = next((k for k in CREATE_ONLY if k in props and props[k] != d.props.get(k)), None)
                if changed is not None:
                    raise user_error(
                        f"properties.{changed} cannot be changed after the deployment is created.",
                        "Immutable",
                        parameters={"property": changed},
                    )
                d.tags, d.sku, d.props, d.model_id = tags, sku, props, _model_id(call.ws, mv)
                d.audit.touch(call.principal)
                fault = state.take_deployment_fault(call.ws, target.name, name)
                d.fault = fault or d.fault
            op = start_provisioning(state, call.ws, target, d, mv, "Creating" if created else "Updating")
            headers = state.async_headers(op)
            d.props = d.props | {
                "properties": d.props["properties"] | {"AzureAsyncOperationUri": headers["Azure-AsyncOperation"]}
            }
        return answer(deployment_body(call.ws, target, d), 201 if created else 200, headers, write=True)

    @on_both(router, "GET", sub_path + "/{name}")
    async def get_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.deployments.read")
        target = find_endpoint(call.ws, endpoint, batch)
        return answer(deployment_body(call.ws, target, find(call.ws, target, name)))

    @on_both(router, "GET", sub_path)
    async def list_deployments(sub: str, rg: str, ws: str, endpoint: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.deployments.read")
        target = find_endpoint(call.ws, endpoint, batch)
        items = sorted(target.deployments.values(), key=lambda d: d.name.lower())
        return answer(page(state, request, [deployment_body(call.ws, target, d) for d in items]))

    @on_both(router, "DELETE", sub_path + "/{name}")
    async def delete_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call = await arm_call(state, request, sub, rg, ws, f"{segment(batch)}.deployments.delete")
        with state.lock:
            target = find_endpoint(call.ws, endpoint, batch)
            d = target.deployment(name)
            if d is None:
                return answer(None, 204, write=True)
            require_idle(target, f"delete deployment {d.name}")
            require_deployment_idle(d)
            if any(
                w.get(d.name, 0) > 0 for w in (target.traffic, target.mirror, target.live_traffic, target.live_mirror)
            ):
                raise user_error(
                    f"Deployment {d.name} still gets traffic; set its traffic and mirror traffic to 0 first.",
                    "DeploymentHasTraffic",
                )
            if target.default_deployment and target.default_deployment.lower() == d.name.lower():
                raise user_error(
                    f"Deployment {d.name} is the endpoint's default deployment; choose another default first.",
                    "DeploymentIsDefault",
                )

            def remove() -> None:
                target.deployments.pop(d.name.lower(), None)
                for weights in (target.traffic, target.mirror, target.live_traffic, target.live_mirror):
                    weights.pop(d.name, None)

            op = delete_later(state, call.ws, d, "bd" if batch else "od", remove)
        return answer(None, 202, state.location_headers(op), write=True)

    @on_both(router, "PATCH", sub_path + "/{name}")
    async def patch_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
        batch = is_batch(request)
        call, body = await tracked_patch(
            state, request, sub, rg, ws, f"{segment(batch)}.deployments.write", ("tags", "sku"), "deployment"
        )
        raw_sku = opt_obj(body, "sku", "sku")
        capacity = integer(raw_sku, "capacity", "sku", minimum=1) if raw_sku else None
        with state.lock:
            target = find_endpoint(call.ws, endpoint, batch)
            d = find(call.ws, target, name)
            require_deployment_idle(d)
            if "tags" in body:
                d.tags = str_map(body, "tags", "")
            d.audit.touch(call.principal)
            if capacity is None or d.sku is None or capacity == d.sku.get("capacity"):
                return answer(deployment_body(call.ws, target, d), write=True)
            sku = d.sku | {"capacity": capacity}
            op = provision(state, call.ws, d, "ods", "Scaling", on_success=lambda: setattr(d, "sku", sku))
        return answer(None, 202, state.location_headers(op), write=True)

    @router.post(
        "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
        "/onlineEndpoints/{endpoint}/deployments/{name}/getLogs"
    )
    async def get_logs(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
        call = await arm_call(state, request, sub, rg, ws, "onlineEndpoints.deployments.getLogs")
        body = await read_object(state, request) if request.headers.get("content-length", "0") != "0" else {}
        container = choice(
            body, "containerType", "", ("InferenceServer", "StorageInitializer"), default="InferenceServer"
        )
        tail = integer(body, "tail", "", minimum=1, default=100)
        d = find(call.ws, find_endpoint(call.ws, endpoint, False), name)
        lines = [line.split(": ", 1)[1] for line in d.logs if line.startswith(f"{container}: ")]
        return answer({"content": "\n".join(lines[-(tail or 100) :])})

    return router
