"""HTTP routes of the emulator: BES, RRS, classic management, ARM web services, Azure AD, admin.

Everything is served by one FastAPI app; `__main__` runs it on a plain-HTTP port (BES, RRS, classic
management, admin) and on a TLS port (the same routes; ARM and Azure AD are advertised there).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from . import ilearner, wire
from .blobs import BlobRef, read_blob
from .config import EmulatorConfig, EndpointConfig, WebServiceConfig
from .errors import ArmError, ServiceError, bad_argument, not_found, unauthorized
from .security import TokenIssuer
from .state import ArmService, AsyncOperation, EmulatorState, FaultRule, JobBehaviour, UpdateBehaviour

logger = logging.getLogger(__name__)

BES_API_VERSION = "2.0"
ARM_API_VERSIONS = ("2016-05-01-preview", "2017-01-01")
ARM_AUDIENCE = "https://management.azure.com"
DATASET_EXTENSIONS = (".csv", ".tsv", ".arff")


class DropConnection(Exception):
    """Raised by a fault rule: the server breaks the connection instead of answering."""


class _DropMiddleware:
    """Turns DropConnection into a response that promises a body and never sends it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except DropConnection:
            # Promise a body, then end the message: h11 refuses, and uvicorn closes the socket.
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_app(config: EmulatorConfig, *, http_base: str = "", https_base: str = "", ca_file: str = "") -> FastAPI:
    state = EmulatorState(config)
    tokens = TokenIssuer(https_base or http_base)
    app = FastAPI(title="Studio (classic) emulator", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(_DropMiddleware)
    app.add_middleware(wire.DrainUnreadBody)
    app.state.emulator = state
    app.state.bases = {"http": http_base, "https": https_base, "ca_file": ca_file}

    # ---- error rendering ------------------------------------------------------------------------

    @app.exception_handler(ServiceError)
    async def _service_error(_: Request, exc: ServiceError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(ArmError)
    async def _arm_error(_: Request, exc: ArmError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        error = bad_argument("RequestBodyInvalid", f"Invalid request: {exc.errors()[:1]}")
        return JSONResponse(error.body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = "NotFound" if exc.status_code == 404 else "BadArgument"
        error = ServiceError(code, "ResourceNotFound" if exc.status_code == 404 else "BadRequest", str(exc.detail), exc.status_code)
        return JSONResponse(error.body(), status_code=exc.status_code)

    @app.exception_handler(Exception)
    async def _crash(_: Request, exc: Exception) -> JSONResponse:
        logger.exception("unhandled emulator error")
        error = ServiceError("InternalError", "InternalError", f"Internal error ({type(exc).__name__}).", 500)
        return JSONResponse(error.body(), status_code=500)

    # ---- helpers --------------------------------------------------------------------------------

    async def read_json(request: Request) -> Any:
        try:
            return await wire.read_json(request, config.max_body_bytes)
        except wire.BodyTooLarge as exc:
            raise ServiceError("MemoryQuotaViolation", "RequestBodyTooLarge", str(exc)) from None
        except wire.BodyNotJson as exc:
            raise bad_argument("RequestBodyInvalid", str(exc)) from None

    async def inject(target: str, op: str) -> None:
        rule = state.take_fault(target, op)
        if rule is None:
            return
        if rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule.drop:
            raise DropConnection()
        if rule.fail:
            raise ServiceError(rule.code, rule.detail_code, rule.message, rule.status)

    bearer = wire.bearer

    def require_api_version(request: Request) -> None:
        version = request.query_params.get("api-version")
        if version != BES_API_VERSION:
            raise bad_argument("BadVersionCall", f"Invalid api-version {version!r}; use api-version=2.0.")

    def resolve_endpoint(scope_kind: str, scope_id: str, service_id: str, request: Request) -> tuple[WebServiceConfig, EndpointConfig]:
        if scope_kind not in ("workspaces", "subscriptions"):
            raise not_found("ResourceNotFound", "Unknown route.")
        if scope_kind == "workspaces" and scope_id != config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {scope_id!r} was not found.")
        found = state.endpoints.get(service_id)
        if found is None:
            raise not_found("WebServiceNotFound", f"Web service {service_id!r} was not found.")
        token = bearer(request)
        if token not in (found[1].primary_key, found[1].secondary_key):
            raise unauthorized()
        return found

    def job_of(endpoint: EndpointConfig, job_id: str) -> Any:
        job = state.jobs.get(job_id)
        if job is None or job.endpoint.service_id != endpoint.service_id:
            raise not_found("JobNotFound", f"Job {job_id!r} was not found.")
        return job

    # ---- BES ------------------------------------------------------------------------------------

    @app.post("/{scope_kind}/{scope_id}/services/{service_id}/jobs")
    async def submit_job(scope_kind: str, scope_id: str, service_id: str, request: Request) -> Response:
        service, endpoint = resolve_endpoint(scope_kind, scope_id, service_id, request)
        require_api_version(request)
        await inject(service_id, "submit")
        body = await read_json(request)
        inputs, outputs, parameters = parse_job_request(body, service)
        job = state.submit(service, endpoint, inputs, outputs, parameters)
        return JSONResponse(job.id)

    @app.post("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}/start")
    async def start_job(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = resolve_endpoint(scope_kind, scope_id, service_id, request)
        require_api_version(request)
        await inject(service_id, "start")
        state.start(job_of(endpoint, job_id))
        return Response(status_code=200)

    @app.get("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}")
    async def job_status(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = resolve_endpoint(scope_kind, scope_id, service_id, request)
        require_api_version(request)
        await inject(service_id, "status")
        job = job_of(endpoint, job_id)
        body = await asyncio.to_thread(state.status_body, job)
        return JSONResponse(body)

    @app.delete("/{scope_kind}/{scope_id}/services/{service_id}/jobs/{job_id}")
    async def delete_job(scope_kind: str, scope_id: str, service_id: str, job_id: str, request: Request) -> Response:
        _, endpoint = resolve_endpoint(scope_kind, scope_id, service_id, request)
        require_api_version(request)
        await inject(service_id, "delete")
        job = job_of(endpoint, job_id)
        if not state.cancel(job):
            with state.lock:
                state.jobs.pop(job.id, None)
        return Response(status_code=200)

    # ---- RRS ------------------------------------------------------------------------------------

    @app.post("/{scope_kind}/{scope_id}/services/{service_id}/execute")
    async def execute(scope_kind: str, scope_id: str, service_id: str, request: Request) -> Response:
        service, endpoint = resolve_endpoint(scope_kind, scope_id, service_id, request)
        require_api_version(request)
        await inject(service_id, "execute")
        if service.kind != "scoring":
            raise bad_argument("InvalidOperation", "Only scoring services answer request-response calls.")
        served = state.models.get(endpoint.service_id)
        if served is None:
            raise not_found("ModelPackageNotFound", "The endpoint has no trained model yet.")
        body = await read_json(request)
        names, values = parse_rrs_request(body, service)
        try:
            dataset = ilearner.table_to_dataset(names, values, "")
            out_names, rows = ilearner.score_table(served.model, dataset)
        except ilearner.DatasetError as exc:
            raise ServiceError("ModuleExecutionError", "ModuleExecutionError", str(exc), 400) from None
        types = ["Numeric"] * (len(out_names) - 2) + ["String", "Numeric"]
        result = {"Results": {"output1": {"type": "table", "value": {"ColumnNames": out_names, "ColumnTypes": types, "Values": rows}}}}
        return JSONResponse(result, headers={"x-ms-emulator-model-version": served.version})

    # ---- classic management -----------------------------------------------------------------------

    def web_service(ws: str, ws_id: str) -> WebServiceConfig:
        if ws != config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {ws!r} was not found.")
        for service in config.web_services:
            if service.id == ws_id:
                return service
        raise not_found("WebServiceNotFound", f"Web service {ws_id!r} was not found.")

    def endpoints_of(service: WebServiceConfig) -> list[EndpointConfig]:
        return [*service.endpoints, *state.extra_endpoints.get(service.id, [])]

    def require_management_key(request: Request, service: WebServiceConfig, endpoint: EndpointConfig | None = None) -> None:
        token = bearer(request)
        allowed: set[str] = set()
        for candidate in ([endpoint] if endpoint else endpoints_of(service)):
            allowed |= {candidate.primary_key, candidate.secondary_key}
        if not token or token not in allowed:
            raise unauthorized()

    def endpoint_body(service: WebServiceConfig, endpoint: EndpointConfig) -> dict[str, Any]:
        served = state.models.get(endpoint.service_id)
        resources = []
        if service.kind == "scoring":
            resources.append({
                "Name": service.resource_name, "Kind": "TrainedModel",
                "Location": state_location(endpoint.service_id),
            })
        return {
            "Name": endpoint.name, "Description": "", "WebServiceId": service.id,
            "WorkspaceId": config.workspace_id,
            "ApiLocation": f"{http_base}/workspaces/{config.workspace_id}/services/{endpoint.service_id}",
            "Version": served.version if served else None,
            "PreventUpdate": endpoint.name == "default", "MaxConcurrentCalls": 4, "ThrottleLevel": "Low",
            "Resources": resources,
        }

    locations: dict[str, dict[str, Any]] = {}

    def state_location(service_id: str) -> dict[str, Any]:
        return locations.get(service_id, {"BaseLocation": None, "RelativeLocation": None, "SasBlobToken": None})

    @app.get("/workspaces/{ws}/webservices")
    async def list_web_services(ws: str, request: Request) -> Response:
        if ws != config.workspace_id:
            raise not_found("WorkspaceNotFound", f"Workspace {ws!r} was not found.")
        visible = []
        for service in config.web_services:
            try:
                require_management_key(request, service)
            except ServiceError:
                continue
            visible.append({"Id": service.id, "Name": service.name, "DefaultEndpointName": "default",
                            "EndpointCount": len(endpoints_of(service))})
        if not visible:
            raise unauthorized()
        return JSONResponse(visible)

    @app.get("/workspaces/{ws}/webservices/{ws_id}/endpoints")
    async def list_endpoints(ws: str, ws_id: str, request: Request) -> Response:
        service = web_service(ws, ws_id)
        require_management_key(request, service)
        return JSONResponse([endpoint_body(service, e) for e in endpoints_of(service)])

    def find_endpoint(service: WebServiceConfig, name: str) -> EndpointConfig:
        for endpoint in endpoints_of(service):
            if endpoint.name == name:
                return endpoint
        raise not_found("EndpointNotFound", f"Endpoint {name!r} was not found.")

    @app.get("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def get_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service)
        await inject(endpoint.service_id, "endpoint_get")
        return JSONResponse(endpoint_body(service, endpoint))

    @app.put("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def create_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = web_service(ws, ws_id)
        require_management_key(request, service)
        body = await read_json(request) or {}
        if not isinstance(body, dict):
            raise bad_argument("RequestBodyInvalid", "The body must be a JSON object.")
        if not name.isidentifier() or len(name) > 24:
            raise bad_argument("InvalidEndpointName", "Endpoint names are 1-24 letters, digits or underscores.")
        if any(e.name == name for e in endpoints_of(service)):
            return JSONResponse(endpoint_body(service, find_endpoint(service, name)))
        endpoint = EndpointConfig(name, uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex)
        state.extra_endpoints.setdefault(service.id, []).append(endpoint)
        state.register_endpoint(service, endpoint)
        default = state.models.get(service.endpoints[0].service_id)
        if default is not None:
            with state.lock:
                state.models[endpoint.service_id] = default
        return JSONResponse(endpoint_body(service, endpoint), status_code=201)

    @app.patch("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def update_resource(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service, endpoint)
        await inject(endpoint.service_id, "endpoint_patch")
        body = await read_json(request)
        if service.kind != "scoring" or not service.resource_name:
            raise bad_argument("NoUpdatableResources", "This Web Service has no updatable resources.")
        if endpoint.name == "default":
            raise ServiceError("InvalidOperation", "DefaultEndpointNotUpdatable",
                               "The default endpoint cannot be updated; create a non-default endpoint.")
        if not isinstance(body, dict) or not isinstance(body.get("Resources"), list) or not body["Resources"]:
            raise bad_argument("RequestBodyInvalid", "Body must be {\"Resources\": [{\"Name\", \"Location\"}]}.")
        resource = body["Resources"][0]
        if not isinstance(resource, dict) or not isinstance(resource.get("Location"), dict):
            raise bad_argument("RequestBodyInvalid", "Resources[0] needs Name and Location.")
        if resource.get("Name") != service.resource_name:
            raise bad_argument("InvalidResourceName",
                               f"Resources[0].Name {resource.get('Name')!r} is not an updatable resource of this endpoint.")
        location = resource["Location"]
        ref = BlobRef.parse(location, "Resources[0].Location")
        if ref.extension != ".ilearner":
            raise bad_argument("InvalidBlobExtension",
                               f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                               "Supported file extensions for this output type are: \".ilearner\".")
        data = await asyncio.to_thread(read_blob, ref, "Resources[0].Location")
        try:
            ilearner.loads(data)
        except ilearner.ModelFormatError as exc:
            raise bad_argument("InvalidModel", f"The URL for the retraining model is invalid: {exc}") from None
        behaviour = state.take_update_behaviour(endpoint.service_id)
        if behaviour and behaviour.fail_message:
            raise ServiceError("InternalError", "UpdateWebServiceResourceFailed", behaviour.fail_message, 500)
        if not (behaviour and behaviour.never_succeed):
            def swap() -> None:
                state.install_model(endpoint.service_id, data)
                locations[endpoint.service_id] = {
                    "BaseLocation": location.get("BaseLocation"), "RelativeLocation": ref.relative_location,
                    "SasBlobToken": None,
                }
            threading.Timer(config.update_delay_seconds, swap).start()
        state.count("classic_updates")
        return Response(status_code=200)

    @app.delete("/workspaces/{ws}/webservices/{ws_id}/endpoints/{name}")
    async def delete_endpoint(ws: str, ws_id: str, name: str, request: Request) -> Response:
        service = web_service(ws, ws_id)
        endpoint = find_endpoint(service, name)
        require_management_key(request, service)
        if endpoint.name == "default":
            raise ServiceError("InvalidOperation", "DefaultEndpointNotDeletable", "The default endpoint cannot be deleted.")
        state.extra_endpoints[service.id] = [e for e in state.extra_endpoints.get(service.id, []) if e.name != name]
        return Response(status_code=200)

    # ---- Azure AD -------------------------------------------------------------------------------

    def tenant_principals(tenant: str) -> list[Any]:
        return [p for p in config.service_principals if p.tenant.lower() == tenant.lower()]

    def aad_error(status: int, error: str, description: str) -> JSONResponse:
        return JSONResponse({"error": error, "error_description": description, "error_codes": [int(description[6:13]) if description.startswith("AADSTS") else 0]}, status_code=status)

    @app.get("/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(tenant: str, request: Request) -> Response:
        if not tenant_principals(tenant):
            return aad_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        base = str(request.base_url).rstrip("/")
        return JSONResponse({
            "issuer": f"{base}/{tenant}/v2.0",
            "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
            "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
            "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
            "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
            "response_types_supported": ["code", "token"],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
        })

    @app.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        await inject("aad", "token")
        raw = await request.body()
        if len(raw) > 64 * 1024:
            return aad_error(400, "invalid_request", "AADSTS90014: The request body is too large.")
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        principals = tenant_principals(tenant)
        if not principals:
            return aad_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", "AADSTS70003: Only client_credentials is supported.")
        principal = next((p for p in principals if p.client_id == form.get("client_id")), None)
        if principal is None:
            return aad_error(400, "unauthorized_client", f"AADSTS700016: Application '{form.get('client_id')}' was not found.")
        if form.get("client_secret") != principal.client_secret:
            return aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return aad_error(400, "invalid_scope", "AADSTS1002012: The scope must end with /.default.")
        audience = scope[: -len("/.default")]
        state.count("tokens_issued")
        return JSONResponse({
            "token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
            "access_token": tokens.issue(tenant, principal.client_id, audience),
        })

    # ---- ARM web services -------------------------------------------------------------------------

    def require_arm(request: Request) -> dict[str, Any]:
        version = request.query_params.get("api-version")
        if version not in ARM_API_VERSIONS:
            raise ArmError(400, "InvalidApiVersionParameter",
                           f"The api-version '{version}' is invalid. Supported: {', '.join(ARM_API_VERSIONS)}.")
        token = bearer(request)
        if not token:
            raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        claims = tokens.verify(token, ARM_AUDIENCE)
        if claims is None:
            raise ArmError(401, "InvalidAuthenticationToken", "The access token is invalid or expired.")
        return claims

    def arm_service(sub: str, rg: str, name: str) -> ArmService:
        found = state.arm.get(name.lower())
        if found is None or found.config.subscription_id != sub or found.config.resource_group.lower() != rg.lower():
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.MachineLearning/webServices/{name}' under resource group '{rg}' was not found.")
        return found

    def arm_body(svc: ArmService, request: Request) -> dict[str, Any]:
        cfg = svc.config
        rid = (f"/subscriptions/{cfg.subscription_id}/resourceGroups/{cfg.resource_group}"
               f"/providers/Microsoft.MachineLearning/webServices/{cfg.name}")
        return {
            "id": rid, "name": cfg.name, "type": "Microsoft.MachineLearning/webServices", "location": svc.location,
            "tags": {},
            "properties": {
                "title": svc.title, "description": svc.description, "createdOn": svc.created_on,
                "modifiedOn": svc.modified_on or svc.created_on, "provisioningState": svc.provisioning_state,
                "readOnly": False, "exposeSampleData": False, "packageType": "Graph",
                "realtimeConfiguration": {"maxConcurrentCalls": 4},
                "diagnostics": {"level": "None"},
                "storageAccount": {"name": "emulatorstorage"},
                "machineLearningWorkspace": {"id": config.workspace_id},
                "assets": {
                    "asset1": {"name": cfg.asset_name, "id": "asset1", "type": "Resource",
                               "locationInfo": {"uri": svc.asset_uri}},
                    "asset2": {"name": "Score Model", "id": "asset2", "type": "Module",
                               "locationInfo": {"uri": "aml://module/score-model"}},
                },
                "package": {"nodes": {"node1": {"assetId": "asset1"}, "node2": {"assetId": "asset2"}},
                            "edges": [{"sourceNodeId": "node1", "sourcePortId": "Results dataset",
                                       "targetNodeId": "node2", "targetPortId": "Trained model"}],
                            "graphParameters": {}},
            },
        }

    def apply_arm_update(svc: ArmService, body: Any, request: Request) -> dict[str, str]:
        if not isinstance(body, dict) or not isinstance(body.get("properties", {}), dict):
            raise ArmError(400, "InvalidRequestContent", "The request content must be a web service object with 'properties'.")
        props = body.get("properties") or {}
        assets = props.get("assets", {})
        if not isinstance(assets, dict):
            raise ArmError(400, "InvalidRequestContent", "properties.assets must be an object.")
        for key in ("title", "description"):
            if key in props and not isinstance(props[key], str):
                raise ArmError(400, "InvalidRequestContent", f"properties.{key} must be a string.")
        new_uri, credentials = None, None
        for asset_id, asset in assets.items():
            if asset_id not in ("asset1", "asset2") or not isinstance(asset, dict):
                raise ArmError(400, "InvalidRequestContent", f"properties.assets.{asset_id} is not an asset of this service.")
            info = asset.get("locationInfo")
            if asset_id == "asset1" and isinstance(info, dict) and info.get("uri") != svc.asset_uri:
                if not isinstance(info.get("uri"), str) or not info["uri"].startswith(("http://", "https://")):
                    raise ArmError(400, "InvalidRequestContent", "properties.assets.asset1.locationInfo.uri must be an http(s) URL.")
                if info.get("credentials") is not None and not isinstance(info["credentials"], str):
                    raise ArmError(400, "InvalidRequestContent", "locationInfo.credentials must be a string.")
                new_uri, credentials = info["uri"], info.get("credentials")
        svc.title = props.get("title", svc.title)
        svc.description = props.get("description", svc.description)
        svc.modified_on = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        op = AsyncOperation(uuid.uuid4().hex)
        state.operations[op.id] = op
        svc.provisioning_state = "Provisioning"
        behaviour = state.take_update_behaviour(svc.config.name)

        def provision() -> None:
            try:
                if behaviour and behaviour.never_succeed:
                    return
                if behaviour and behaviour.fail_message:
                    raise ValueError(behaviour.fail_message)
                if new_uri is not None:
                    data = _download_uri(new_uri, credentials)
                    served = state.install_model(f"arm:{svc.config.name}", data)
                    svc.model, svc.asset_uri, svc.asset_credentials = served, new_uri, credentials
                op.status = svc.provisioning_state = "Succeeded"
            except Exception as exc:
                op.status = svc.provisioning_state = "Failed"
                op.error = {"code": "UpdateWebServiceResourceFailed", "message": str(exc)[:300]}
            op.ended = time.time()
        threading.Timer(config.update_delay_seconds, provision).start()
        state.count("arm_updates")
        base = str(request.base_url).rstrip("/")
        return {"Azure-AsyncOperation": (f"{base}/subscriptions/{svc.config.subscription_id}/providers/"
                                         f"Microsoft.MachineLearning/locations/{svc.location}/operationsStatus/{op.id}"
                                         f"?api-version={request.query_params.get('api-version')}")}

    arm_path = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearning/webServices/{name}"

    @app.get(arm_path)
    async def arm_get(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        await inject(name, "arm_get")
        return JSONResponse(arm_body(arm_service(sub, rg, name), request))

    @app.patch(arm_path)
    async def arm_patch(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        await inject(name, "arm_patch")
        svc = arm_service(sub, rg, name)
        headers = apply_arm_update(svc, await read_json(request), request)
        return JSONResponse(arm_body(svc, request), headers=headers)

    @app.put(arm_path)
    async def arm_put(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        await inject(name, "arm_put")
        svc = arm_service(sub, rg, name)
        headers = apply_arm_update(svc, await read_json(request), request)
        return JSONResponse(arm_body(svc, request), headers=headers)

    @app.get(arm_path + "/listKeys")
    async def arm_list_keys(sub: str, rg: str, name: str, request: Request) -> Response:
        require_arm(request)
        svc = arm_service(sub, rg, name)
        return JSONResponse({"primary": svc.config.primary_key, "secondary": svc.config.secondary_key})

    @app.get("/subscriptions/{sub}/providers/Microsoft.MachineLearning/locations/{loc}/operationsStatus/{op_id}")
    async def arm_operation(sub: str, loc: str, op_id: str, request: Request) -> Response:
        require_arm(request)
        op = state.operations.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
        body: dict[str, Any] = {"id": op.id, "name": op.id, "status": op.status, "provisioningState": op.status,
                                "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(op.started)),
                                "percentComplete": 1.0 if op.ended else 0.5}
        if op.error:
            body["errorInfo"] = op.error
        return JSONResponse(body)

    # ---- admin ----------------------------------------------------------------------------------

    @app.get("/_emulator/services")
    async def list_services() -> Response:
        return JSONResponse(describe_services(config, state, http_base, https_base, ca_file))

    @app.get("/_emulator/state")
    async def inspect() -> Response:
        return JSONResponse(state.snapshot())

    @app.post("/_emulator/faults")
    async def add_fault(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise bad_argument("RequestBodyInvalid", "A fault is a JSON object with 'kind'.")
        kind = body.pop("kind", "call")
        factories: dict[str, Callable[..., Any]] = {"call": FaultRule, "job": JobBehaviour, "update": UpdateBehaviour}
        if kind not in factories:
            raise bad_argument("RequestBodyInvalid", f"Unknown fault kind {kind!r}; use call, job or update.")
        try:
            item = factories[kind](**body)
        except TypeError as exc:
            raise bad_argument("RequestBodyInvalid", f"Bad fault: {exc}") from None
        registries: dict[str, list[Any]] = {"call": state.faults, "job": state.job_behaviours, "update": state.update_behaviours}
        with state.lock:
            registries[kind].append(item)
        return JSONResponse({"added": kind}, status_code=201)

    @app.delete("/_emulator/faults")
    async def clear_faults() -> Response:
        with state.lock:
            state.faults.clear()
            state.job_behaviours.clear()
            state.update_behaviours.clear()
        return Response(status_code=204)

    @app.post("/_emulator/web-services/{ws_id}/seed")
    async def seed_model(ws_id: str, request: Request) -> Response:
        """Publish an initial model to every endpoint of a scoring service (what Studio's UI did)."""
        body = await read_json(request)
        service = next((s for s in config.web_services if s.id == ws_id and s.kind == "scoring"), None)
        if service is None:
            raise not_found("WebServiceNotFound", f"Scoring web service {ws_id!r} was not found.")
        if not isinstance(body, dict) or not isinstance(body.get("ColumnNames"), list) or not isinstance(body.get("Values"), list):
            raise bad_argument("RequestBodyInvalid", "Body must be {\"ColumnNames\": [...], \"Values\": [[...]]}.")
        try:
            dataset = ilearner.table_to_dataset(body["ColumnNames"], body["Values"], body.get("LabelColumn"))
            model, _ = await asyncio.to_thread(ilearner.train, dataset, "seed", {})
        except ilearner.DatasetError as exc:
            raise bad_argument("InvalidDataset", str(exc)) from None
        data = ilearner.dumps(model)
        for endpoint in endpoints_of(service):
            state.install_model(endpoint.service_id, data)
        for arm in state.arm.values():
            arm.model = state.install_model(f"arm:{arm.config.name}", data)
        return JSONResponse({"model_version": ilearner.version_of(data)})

    return app


def _download_uri(uri: str, credentials: str | None) -> bytes:
    """Fetch an ARM asset's model: `uri` plus, for private blobs, a SAS in `credentials`."""
    from azure.storage.blob import BlobClient

    token = (credentials or "").lstrip("?")
    url = f"{uri}?{token}" if token else uri
    data: bytes = BlobClient.from_blob_url(url, retry_total=1).download_blob().readall()
    ilearner.loads(data)
    return data


def parse_job_request(body: Any, service: WebServiceConfig) -> tuple[dict[str, BlobRef], dict[str, BlobRef], dict[str, str]]:
    """Validate a BES submit body against the service's ports, extensions and parameters."""
    if not isinstance(body, dict):
        raise bad_argument("RequestBodyInvalid", "The request body must be a JSON object.")
    allowed = {"Input", "Inputs", "Output", "Outputs", "GlobalParameters", "AzureBatchPoolId"}
    unknown = set(body) - allowed
    if unknown:
        raise bad_argument("RequestBodyInvalid", f"Unknown field(s) in the request body: {sorted(unknown)}.")
    if body.get("Input") is not None and body.get("Inputs") is not None:
        raise bad_argument("DuplicateInputInBatchCall", "Cannot specify both single and multiple input at the same time.")
    raw_inputs = body.get("Inputs")
    if body.get("Input") is not None:
        raw_inputs = {service.input_names[0]: body["Input"]}
    if raw_inputs is None or raw_inputs == {}:
        raise bad_argument("BatchJobInputsNotSpecified", "The following required input(s) were not specified with the request: "
                           + ", ".join(service.input_names))
    if not isinstance(raw_inputs, dict):
        raise bad_argument("RequestBodyInvalid", "Inputs must be an object keyed by input name.")
    unknown_inputs = [n for n in raw_inputs if n not in service.input_names]
    if unknown_inputs:
        raise bad_argument("InvalidInputNames", f"Invalid service input name(s) specified: {', '.join(unknown_inputs)}.")
    if len(raw_inputs) > len(service.input_names):
        raise bad_argument("BatchJobInputsTooManySpecified", "Too many inputs were specified.")
    missing_inputs = [n for n in service.input_names if n not in raw_inputs]
    if missing_inputs:
        raise bad_argument("BatchJobInputsNotSpecified",
                           f"The following required input(s) were not specified with the request: {', '.join(missing_inputs)}")
    inputs = {}
    for name, raw in raw_inputs.items():
        ref = BlobRef.parse(raw, f"Inputs.{name}")
        if ref.extension not in DATASET_EXTENSIONS:
            raise bad_argument("InvalidBlobExtension",
                               f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                               f"Supported file extensions for this output type are: \"{', '.join(DATASET_EXTENSIONS)}\".")
        inputs[name] = ref
    raw_outputs = body.get("Outputs")
    if body.get("Output") is not None:
        raw_outputs = {next(iter(service.outputs)): body["Output"]}
    raw_outputs = raw_outputs or {}
    if not isinstance(raw_outputs, dict):
        raise bad_argument("RequestBodyInvalid", "Outputs must be an object keyed by output name.")
    outputs = {}
    for name, raw in raw_outputs.items():
        if name not in service.outputs:
            raise bad_argument("InvalidOutputOverrideName", f"Invalid output override name specified: {name}.")
        ref = BlobRef.parse(raw, f"Outputs.{name}")
        if ref.extension != service.outputs[name]:
            raise bad_argument("InvalidBlobExtension",
                               f"The blob reference: {ref.relative_location} has an invalid or missing file extension. "
                               f"Supported file extensions for this output type are: \"{service.outputs[name]}\".")
        outputs[name] = ref
    if not outputs:
        # The emulator keeps no storage account of its own for default output locations.
        raise bad_argument("MissingRequiredOutputOverrides", "Output overrides are required by this emulator for every output.")
    parameters = body.get("GlobalParameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in parameters.items()):
        raise bad_argument("RequestBodyInvalid", "GlobalParameters must map names to string values.")
    missing = [p for p in service.required_global_parameters if p not in parameters]
    if missing:
        raise bad_argument("MissingRequiredGlobalParameters", f"Missing required global parameters: {', '.join(missing)}.")
    return inputs, outputs, dict(parameters)


def parse_rrs_request(body: Any, service: WebServiceConfig) -> tuple[list[str], list[list[Any]]]:
    if not isinstance(body, dict) or not isinstance(body.get("Inputs"), dict):
        raise bad_argument("RequestBodyInvalid", "Body must be {\"Inputs\": {\"input1\": {\"ColumnNames\", \"Values\"}}}.")
    inputs = body["Inputs"]
    unknown = [n for n in inputs if n not in service.input_names]
    if unknown:
        raise bad_argument("InvalidInputNames", f"Invalid service input name(s) specified: {', '.join(unknown)}.")
    table = inputs.get(service.input_names[0])
    if not isinstance(table, dict) or not isinstance(table.get("ColumnNames"), list) or not isinstance(table.get("Values"), list):
        raise bad_argument("RequestBodyInvalid", f"Inputs.{service.input_names[0]} needs ColumnNames and Values lists.")
    names = table["ColumnNames"]
    if not all(isinstance(n, str) for n in names) or not all(isinstance(r, list) for r in table["Values"]):
        raise bad_argument("RequestBodyInvalid", "ColumnNames must be strings and Values a list of rows.")
    return names, table["Values"]


def describe_services(config: EmulatorConfig, state: EmulatorState, http_base: str, https_base: str, ca_file: str) -> dict[str, Any]:
    ws = config.workspace_id
    services = []
    for service in config.web_services:
        endpoints = []
        for endpoint in [*service.endpoints, *state.extra_endpoints.get(service.id, [])]:
            api = f"{http_base}/workspaces/{ws}/services/{endpoint.service_id}"
            endpoints.append({
                "name": endpoint.name, "service_id": endpoint.service_id,
                "mlEndpoint": f"{api}/jobs", "rrsEndpoint": f"{api}/execute?api-version=2.0&details=true",
                "apiKey": endpoint.primary_key,
                "updateResourceEndpoint": f"{http_base}/workspaces/{ws}/webservices/{service.id}/endpoints/{endpoint.name}",
                "updatable": service.kind == "scoring" and endpoint.name != "default",
            })
        default = endpoints[0]
        services.append({
            "id": service.id, "name": service.name, "kind": service.kind,
            "mlEndpoint": default["mlEndpoint"], "apiKey": default["apiKey"],
            "inputs": list(service.input_names), "outputs": dict(service.outputs),
            "resourceName": service.resource_name or None, "endpoints": endpoints,
        })
    arm = [{
        "name": a.name,
        "updateResourceEndpoint": (f"{https_base}/subscriptions/{a.subscription_id}/resourceGroups/{a.resource_group}"
                                   f"/providers/Microsoft.MachineLearning/webServices/{a.name}?api-version=2016-05-01-preview"),
        "assetName": a.asset_name,
    } for a in config.arm_web_services]
    principals = [{"tenant": p.tenant, "servicePrincipalId": p.client_id, "servicePrincipalKey": p.client_secret}
                  for p in config.service_principals]
    return {"workspaceId": ws, "httpBase": http_base, "httpsBase": https_base, "authorityHost": https_base,
            "caFile": ca_file, "webServices": services, "armWebServices": arm, "servicePrincipals": principals}

