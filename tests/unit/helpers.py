"""Shared by the unit tests: the repository root, the settings the shipped definitions need, and a way to break one field."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {
    "TRAINING_ML_ENDPOINT": "https://ussouthcentral.services.azureml.net/workspaces/ws/services/svc/jobs",
    "SCORING_UPDATE_RESOURCE_ENDPOINT": "https://management.azureml.net/workspaces/ws/webservices/id/endpoints/endpoint2",
    "ARM_WEB_SERVICE_URL": "https://management.azure.com/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearning/webServices/w?api-version=2016-05-01-preview",
    "ARM_TENANT": "mycompany.com",
    "ARM_SERVICE_PRINCIPAL_ID": "fe200044",
    "AZURE_AUTHORITY_HOST": "https://login.microsoftonline.com",
}


def broken(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    copied = copy.deepcopy(raw)
    node = copied
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[int(key)] if key.isdigit() else node[key]
    last = keys[-1]
    if value is KeyError:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return copied
