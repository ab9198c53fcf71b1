#!/bin/sh
# azd postdeploy hook: subscribe training_data_arrived to new training data and, with an Azure ML
# workspace, aml_job_event to its jobs' ends (infra/events.bicep), then name any Key Vault secret the
# app's settings refer to that is not in the vault yet.
#
# Event Grid checks that the function exists when a subscription is created, so this runs after the
# code is deployed. It needs the Azure CLI, signed in to the same tenant (az login). Run it again on
# its own with: azd hooks run postdeploy
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is needed to create the Event Grid subscriptions: install it, az login, then: azd hooks run postdeploy" >&2
  exit 1
fi

# azd passes its environment's values to hooks; read them from azd as well, for older azd versions.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | grep -E '^(AZURE_SUBSCRIPTION_ID|AZURE_RESOURCE_GROUP|AZURE_FUNCTION_APP_NAME|EVENT_GRID_SYSTEM_TOPIC|KEY_VAULT_NAME|AML_WORKSPACE_ID)=' | sed 's/^/export /')"
fi

az deployment group create \
  --subscription "$AZURE_SUBSCRIPTION_ID" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name retrain-events \
  --template-file infra/events.bicep \
  --parameters functionAppName="$AZURE_FUNCTION_APP_NAME" systemTopicName="$EVENT_GRID_SYSTEM_TOPIC" \
    amlWorkspaceId="${AML_WORKSPACE_ID:-}" \
  --output none
echo "postdeploy: Event Grid delivers BlobCreated events to training_data_arrived (infra/events.bicep)"
if [ -n "${AML_WORKSPACE_ID:-}" ]; then
  echo "postdeploy: Event Grid delivers the Azure ML workspace's job events to aml_job_event (infra/aml-events.bicep)"
fi

# A secret left empty at provisioning is not written; its setting still refers to it. Say which, except
# the optional ones: without AML_CLIENT_SECRET the app signs in to Azure ML with its own identity.
optional=" aml-client-secret "
missing=""
for name in $(az functionapp config appsettings list --subscription "$AZURE_SUBSCRIPTION_ID" \
    --resource-group "$AZURE_RESOURCE_GROUP" --name "$AZURE_FUNCTION_APP_NAME" \
    --query "[?starts_with(value, '@Microsoft.KeyVault(')].value" --output tsv | sed -n 's/.*SecretName=\([A-Za-z0-9-]*\).*/\1/p'); do
  case "$optional" in *" $name "*) continue ;; esac
  if ! az keyvault secret show --vault-name "$KEY_VAULT_NAME" --name "$name" --query id --output none >/dev/null 2>&1; then
    missing="$missing $name"
  fi
done
if [ -n "$missing" ]; then
  echo "postdeploy: not in Key Vault $KEY_VAULT_NAME yet (runs that need them fail until set):$missing" >&2
  echo "postdeploy: set each with: az keyvault secret set --vault-name $KEY_VAULT_NAME --name <name> --value <secret>" >&2
fi
