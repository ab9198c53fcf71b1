#!/bin/sh
# azd postdeploy hook (posix; infra/hooks/postdeploy.ps1 is the same for Windows): subscribe
# training_data_arrived to new training data and, with an Azure ML workspace, aml_job_event to its jobs'
# ends (infra/events.bicep); remove the subscriptions of pipelines no longer in events.bicep; then name any
# Key Vault secret the app's settings refer to that is not in the vault yet.
#
# Event Grid checks that the function exists when a subscription is created (Azure/bicep#11656), so this
# runs after the code is deployed, waits until the functions are listed, and retries the deployment. It
# needs the Azure CLI, signed in to the same tenant (az login). Run it again on its own with:
# azd hooks run postdeploy
set -eu

if ! command -v az >/dev/null 2>&1; then
  echo "postdeploy: the Azure CLI (az) is needed to create the Event Grid subscriptions: install it, az login, then: azd hooks run postdeploy" >&2
  exit 1
fi

# azd passes its environment's values to hooks; read them from azd as well, for older azd versions.
if [ -z "${AZURE_FUNCTION_APP_NAME:-}" ] && command -v azd >/dev/null 2>&1; then
  eval "$(azd env get-values | grep -E '^(AZURE_SUBSCRIPTION_ID|AZURE_RESOURCE_GROUP|AZURE_FUNCTION_APP_NAME|EVENT_GRID_SYSTEM_TOPIC|EVENT_GRID_DEAD_LETTER_CONTAINER|TRAINING_STORAGE_ACCOUNT|KEY_VAULT_NAME|AML_WORKSPACE_ID)=' | sed 's/^/export /')"
fi

# The functions the subscriptions deliver to: listed once the host has synced its triggers after deploy.
functions="training_data_arrived"
if [ -n "${AML_WORKSPACE_ID:-}" ]; then
  functions="$functions aml_job_event"
fi
for function in $functions; do
  tries=0
  until az functionapp function show --subscription "$AZURE_SUBSCRIPTION_ID" --resource-group "$AZURE_RESOURCE_GROUP" \
      --name "$AZURE_FUNCTION_APP_NAME" --function-name "$function" --query name --output none >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 20 ]; then
      echo "postdeploy: function $function is not listed on $AZURE_FUNCTION_APP_NAME after 10 minutes: check the deployment, then: azd hooks run postdeploy" >&2
      exit 1
    fi
    echo "postdeploy: waiting for function $function to be listed ($tries/20)"
    sleep 30
  done
done

# Event Grid validates the function endpoint when it creates the subscription; a just-synced app can still
# refuse it, so the deployment is retried (it is idempotent).
attempt=1
until az deployment group create \
  --subscription "$AZURE_SUBSCRIPTION_ID" \
  --resource-group "$AZURE_RESOURCE_GROUP" \
  --name retrain-events \
  --template-file infra/events.bicep \
  --parameters functionAppName="$AZURE_FUNCTION_APP_NAME" systemTopicName="$EVENT_GRID_SYSTEM_TOPIC" \
    trainingStorageAccountName="$TRAINING_STORAGE_ACCOUNT" deadLetterContainerName="$EVENT_GRID_DEAD_LETTER_CONTAINER" \
    amlWorkspaceId="${AML_WORKSPACE_ID:-}" \
  --output none; do
  if [ "$attempt" -ge 5 ]; then
    echo "postdeploy: the Event Grid subscriptions failed 5 times: see the error above, then: azd hooks run postdeploy" >&2
    exit 1
  fi
  echo "postdeploy: Event Grid refused the subscriptions (attempt $attempt/5); retrying in $((attempt * 30)) s" >&2
  sleep $((attempt * 30))
  attempt=$((attempt + 1))
done
echo "postdeploy: Event Grid delivers BlobCreated events to training_data_arrived (infra/events.bicep)"
if [ -n "${AML_WORKSPACE_ID:-}" ]; then
  echo "postdeploy: Event Grid delivers the Azure ML workspace's job events to aml_job_event (infra/aml-events.bicep)"
fi

# A pipeline removed from events.bicep leaves its subscription behind (an incremental deployment removes
# nothing): delete each training-data-* subscription the deployment no longer declares.
keep=" $(az deployment group show --subscription "$AZURE_SUBSCRIPTION_ID" --resource-group "$AZURE_RESOURCE_GROUP" \
  --name retrain-events --query "properties.outputs.trainingDataSubscriptions.value" --output tsv | tr '\n' ' ') "
for name in $(az eventgrid system-topic event-subscription list --subscription "$AZURE_SUBSCRIPTION_ID" \
    --resource-group "$AZURE_RESOURCE_GROUP" --system-topic-name "$EVENT_GRID_SYSTEM_TOPIC" \
    --query "[?starts_with(name, 'training-data-')].name" --output tsv); do
  case "$keep" in *" $name "*) continue ;; esac
  az eventgrid system-topic event-subscription delete --subscription "$AZURE_SUBSCRIPTION_ID" \
    --resource-group "$AZURE_RESOURCE_GROUP" --system-topic-name "$EVENT_GRID_SYSTEM_TOPIC" --name "$name" --yes --output none
  echo "postdeploy: removed Event Grid subscription $name (its pipeline is no longer in infra/events.bicep)"
done

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
