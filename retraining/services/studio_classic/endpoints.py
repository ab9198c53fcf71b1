"""Clients that replace a Studio (classic) scoring web service's trained model ("Update Resource").

- Classic endpoints: PATCH `.../webservices/{id}/endpoints/{name}` with the endpoint's API key.
- ARM web services: GET the definition, point the "[trained model]" asset at the new blob, PATCH,
  then follow `provisioningState` to Succeeded, with an Azure AD token from a service principal.

Each method is one request (plus the client's retries); waiting between looks is the caller's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential

from ...errors import ResponseFormatError, ServiceError
from ...http import ServiceClient, json_body

ARM_SCOPE = "https://management.azure.com/.default"


class ClassicEndpointClient:
    def __init__(self, update_url: str, api_key: str, http: ServiceClient) -> None:
        self._url = update_url
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._http = http

    def update_resource(
        self, resource_name: str, *, base_location: str, relative_location: str, sas_token: str
    ) -> None:
        body = {
            "Resources": [
                {
                    "Name": resource_name,
                    "Location": {
                        "BaseLocation": base_location,
                        "RelativeLocation": relative_location,
                        "SasBlobToken": sas_token,
                    },
                }
            ]
        }
        self._http.request("PATCH", self._url, headers=self._headers, json=body, ok=(200, 202, 204))

    def resource_location(self, resource_name: str) -> str | None:
        """The RelativeLocation the endpoint currently shows for a resource (None if it shows none)."""
        found = self.resource(resource_name)
        return found[1] if found else None

    def resource(self, resource_name: str) -> tuple[str, str] | None:
        """(BaseLocation, RelativeLocation) the endpoint currently shows for a resource (None if it shows none)."""
        body = json_body(self._http.request("GET", self._url, headers=self._headers, ok=(200,)), "endpoint GET")
        resources = body.get("Resources") if isinstance(body, dict) else None
        if not isinstance(resources, list):
            return None
        for resource in resources:
            if isinstance(resource, dict) and resource.get("Name") == resource_name:
                location = resource.get("Location")
                location = location if isinstance(location, dict) else {}
                base, relative = location.get("BaseLocation"), location.get("RelativeLocation")
                if not isinstance(relative, str):
                    return None
                return (base if isinstance(base, str) else "", relative.lstrip("/"))
        return None


class ArmWebServiceClient:
    def __init__(self, resource_url: str, credential: TokenCredential, http: ServiceClient) -> None:
        self._url = resource_url
        self._credential = credential
        self._http = http

    def _headers(self) -> dict[str, str]:
        token = self._credential.get_token(ARM_SCOPE).token
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def get(self) -> dict[str, Any]:
        body = json_body(self._http.request("GET", self._url, headers=self._headers(), ok=(200,)), "web service GET")
        if not isinstance(body, dict) or not isinstance(body.get("properties"), dict):
            raise ResponseFormatError("web service definition has no properties")
        return body

    def update_trained_model(self, asset_name: str, *, uri: str, credentials: str) -> str | None:
        """Point the named asset at `uri`; return the Azure-AsyncOperation URL, if any."""
        definition = self.get()
        assets = definition["properties"].get("assets")
        if not isinstance(assets, dict):
            raise ResponseFormatError("web service definition has no assets")
        matches = [key for key, asset in assets.items() if isinstance(asset, dict) and asset.get("name") == asset_name]
        if not matches:
            raise ServiceError(
                f"the web service has no asset named {asset_name!r}", status=404, code="AssetNotFound", service="arm"
            )
        asset = dict(assets[matches[0]])
        asset["locationInfo"] = {"uri": uri, "credentials": credentials}
        body = {
            "location": definition.get("location"),
            "properties": {
                "packageType": definition["properties"].get("packageType", "Graph"),
                "assets": {matches[0]: asset},
            },
        }
        response = self._http.request("PATCH", self._url, headers=self._headers(), json=body, ok=(200, 201, 202))
        operation = response.headers.get("Azure-AsyncOperation")
        return operation if operation and urlsplit(operation).netloc == urlsplit(self._url).netloc else None

    def asset_uri(self, asset_name: str) -> str | None:
        """The URI the named asset currently points at (None if the definition shows none)."""
        assets = self.get()["properties"].get("assets")
        for asset in (assets or {}).values() if isinstance(assets, dict) else ():
            if isinstance(asset, dict) and asset.get("name") == asset_name:
                uri = (asset.get("locationInfo") or {}).get("uri")
                return uri if isinstance(uri, str) else None
        return None

    def provisioning(self, expected_uri: str) -> str:
        """One look at the definition: Succeeded (with the asset at `expected_uri`), Failed, or the state in between."""
        properties = self.get()["properties"]
        state = properties.get("provisioningState")
        uris = [
            a.get("locationInfo", {}).get("uri")
            for a in (properties.get("assets") or {}).values()
            if isinstance(a, dict)
        ]
        if state == "Succeeded" and expected_uri not in uris:
            return "Updating"  # an earlier update finished; ours has not shown yet
        return str(state) if isinstance(state, str) else "Unknown"
