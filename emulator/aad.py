"""Azure AD (Entra ID) client-credentials token endpoint and OpenID configuration, for every service.

`azure.identity.ClientSecretCredential(tenant, client_id, secret, authority=<emulator TLS base>)`
works unchanged: it reads `/{tenant}/v2.0/.well-known/openid-configuration`, then POSTs the form to
`/{tenant}/oauth2/v2.0/token`. The token's audience is the scope without `/.default`, its `tid` the
tenant as the client spelled it, its `appid` the client id. Errors carry AADSTS codes.

Fault kind `token` (`{"kind": "token", "lifetime_s": 1}`) makes the next token(s) short-lived, so
clients can meet an expired token without waiting an hour.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from . import wire
from .config import ServicePrincipalConfig
from .faults import FaultRegistry, matches
from .security import TokenIssuer

TOKEN_LIFETIME_S = 3599
MAX_FORM_BYTES = 64 * 1024


@dataclass
class TokenFault:
    """The next `remaining` tokens issued to `client_id` (a glob) live `lifetime_s` seconds."""

    lifetime_s: int = 1
    client_id: str = "*"
    remaining: int | None = 1


def aad_error(status: int, error: str, description: str) -> JSONResponse:
    code = int(description[6:13]) if description.startswith("AADSTS") else 0
    return JSONResponse({"error": error, "error_description": description, "error_codes": [code]}, status_code=status)


def build_router(
    principals: Sequence[ServicePrincipalConfig],
    tokens: TokenIssuer,
    faults: FaultRegistry,
    count: Callable[[str], None],
) -> APIRouter:
    router = APIRouter()
    token_faults: list[TokenFault] = []
    faults.register("token", TokenFault, token_faults)

    def tenant_principals(tenant: str) -> list[ServicePrincipalConfig]:
        return [p for p in principals if p.tenant.lower() == tenant.lower()]

    def lifetime_for(client_id: str) -> int:
        fault = faults.take_from(token_faults, lambda f: matches(f.client_id, client_id))
        return fault.lifetime_s if fault else TOKEN_LIFETIME_S

    @router.get("/{tenant}/v2.0/.well-known/openid-configuration")
    async def openid_configuration(tenant: str, request: Request) -> Response:
        if not tenant_principals(tenant):
            return aad_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        base = str(request.base_url).rstrip("/")
        return JSONResponse(
            {
                "issuer": f"{base}/{tenant}/v2.0",
                "authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{base}/{tenant}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{base}/{tenant}/oauth2/v2.0/devicecode",
                "jwks_uri": f"{base}/{tenant}/discovery/v2.0/keys",
                "response_types_supported": ["code", "token"],
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post"],
            }
        )

    @router.post("/{tenant}/oauth2/v2.0/token")
    async def token(tenant: str, request: Request) -> Response:
        await faults.inject("aad", "token")
        try:
            raw = await wire.read_body(request, MAX_FORM_BYTES)
        except wire.BodyTooLarge:
            return aad_error(400, "invalid_request", "AADSTS90014: The request body is too large.")
        form = {k: v[0] for k, v in parse_qs(raw.decode(errors="replace")).items()}
        candidates = tenant_principals(tenant)
        if not candidates:
            return aad_error(400, "invalid_tenant", f"AADSTS90002: Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return aad_error(400, "unsupported_grant_type", "AADSTS70003: Only client_credentials is supported.")
        principal = next((p for p in candidates if p.client_id == form.get("client_id")), None)
        if principal is None:
            return aad_error(
                400, "unauthorized_client", f"AADSTS700016: Application '{form.get('client_id')}' was not found."
            )
        if form.get("client_secret") != principal.client_secret:
            return aad_error(401, "invalid_client", "AADSTS7000215: Invalid client secret provided.")
        scope = form.get("scope", "")
        if not scope.endswith("/.default"):
            return aad_error(400, "invalid_scope", "AADSTS1002012: The scope must end with /.default.")
        audience = scope[: -len("/.default")]
        lifetime = lifetime_for(principal.client_id)
        count("tokens_issued")
        return JSONResponse(
            {
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": tokens.issue(tenant, principal.client_id, audience, lifetime_s=lifetime),
            }
        )

    return router
