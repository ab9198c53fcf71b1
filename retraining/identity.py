"""Azure AD credentials, made once per process and reused, so tokens come from azure-identity's cache.

A service principal's secret is read from its app setting when the credential is first needed;
a changed secret (a Key Vault rotation) gives a new credential. On Azure without a secret, the
app's managed identity is used.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # azure-core is imported with the credential that needs it: keeps cold start light
    from azure.core.credentials import TokenCredential

_LOCK = threading.Lock()
_CREDENTIALS: dict[tuple[str, ...], TokenCredential] = {}


def service_principal(
    tenant: str, client_id: str, secret: str, *, authority: str | None, ca_bundle: str | None
) -> TokenCredential:
    """A cached `ClientSecretCredential`; the cache key holds a hash of the secret, never the secret."""
    fingerprint = hashlib.sha256(secret.encode()).hexdigest()
    key = ("sp", tenant, client_id, fingerprint, authority or "", ca_bundle or "")
    with _LOCK:
        found = _CREDENTIALS.get(key)
        if found is None:
            from azure.identity import ClientSecretCredential  # imported when first needed: keeps cold start light

            options: dict[str, Any] = {}
            if authority:
                options.update(authority=authority, disable_instance_discovery=True)
            if ca_bundle:
                options["connection_verify"] = ca_bundle
            found = _CREDENTIALS[key] = ClientSecretCredential(tenant, client_id, secret, **options)
        return found


@functools.cache
def managed_identity(client_id: str | None = None) -> TokenCredential:
    """The app's managed identity (user-assigned when `client_id` is given), or the developer's login locally."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=client_id)
