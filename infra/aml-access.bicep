// The app's identity on the Azure ML workspace its Azure ML pipelines use (main.bicep amlWorkspaceId),
// deployed in the workspace's resource group.
targetScope = 'resourceGroup'

param workspaceName string
@description('Principal id of the app\'s user-assigned identity.')
param principalId string
@description('Assign the built-in AzureML Data Scientist role instead of the least-privilege custom role below (main.bicep amlUseBuiltInRole).')
param useBuiltInRole bool = false

// AzureML Data Scientist: broader than the app needs. It includes datastores/listsecrets/action, which
// would let the app's identity read the workspace storage's account key.
var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

// The least-privilege role: only the calls retraining/services/azure_ml/*.py makes, each named. Nothing
// reads a secret of the workspace (no datastores/listsecrets, no listKeys of the workspace or its computes),
// nothing creates or deletes compute, and nothing changes the workspace. One definition per workspace,
// shared by every environment that uses it (its name and content derive from the workspace only).
resource amlAppRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (!useBuiltInRole) {
  name: guid(workspace.id, 'retrain-functions-azure-ml')
  properties: {
    roleName: 'Retrain Functions Azure ML (${uniqueString(workspace.id)})'
    description: 'What the retrain Function App calls on Azure ML workspace ${workspaceName}: jobs, models, online and batch endpoints and deployments, reads of datastores, environments and computes.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // workspace.py WorkspaceClient.tracking_host: GET the workspace (its mlFlowTrackingUri)
          'Microsoft.MachineLearningServices/workspaces/read'
          // training.py submit: PUT jobs/{name}; status and collect: GET jobs/{name}
          'Microsoft.MachineLearningServices/workspaces/jobs/read'
          'Microsoft.MachineLearningServices/workspaces/jobs/write'
          // training.py cancel: POST jobs/{name}/cancel
          'Microsoft.MachineLearningServices/workspaces/jobs/cancel/action'
          // training.py submit: a command job is a run of an experiment, submitted on the app's behalf
          'Microsoft.MachineLearningServices/workspaces/experiments/runs/submit/action'
          // workspace.py run_metrics (MLflow runs/get) and run_error (run history runs/{id}/details)
          'Microsoft.MachineLearningServices/workspaces/experiments/runs/read'
          // training.py submit: the job names its environmentId and computeId, which Azure ML resolves as the caller
          'Microsoft.MachineLearningServices/workspaces/environments/read'
          'Microsoft.MachineLearningServices/workspaces/environments/versions/read'
          'Microsoft.MachineLearningServices/workspaces/computes/read'
          // workspace.py datastore: GET datastores/{name} (account and container only; never listsecrets)
          'Microsoft.MachineLearningServices/workspaces/datastores/read'
          // registry.py register and versions: GET models/{name}, GET and PUT models/{name}/versions/{version}
          'Microsoft.MachineLearningServices/workspaces/models/read'
          'Microsoft.MachineLearningServices/workspaces/models/write'
          'Microsoft.MachineLearningServices/workspaces/models/versions/read'
          'Microsoft.MachineLearningServices/workspaces/models/versions/write'
          // endpoints.py endpoint and online.py _put: GET and PUT onlineEndpoints/{name} (traffic and mirror)
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/read'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/write'
          // endpoints.py deploy, deployments, cleanup, remove_new: GET, PUT, DELETE onlineEndpoints/{name}/deployments
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/read'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/write'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/delete'
          // online.py logs: POST onlineEndpoints/{name}/deployments/{name}/getLogs
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments/getLogs/action'
          // probe.py _credential: POST onlineEndpoints/{name}/listKeys (authMode key) or /token (authMode AMLToken),
          // the scoring credential of the endpoint the app rolls out to (not a workspace or storage secret)
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/listKeys/action'
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/token/action'
          // endpoints.py endpoint and batch.py _switch: GET and PUT batchEndpoints/{name} (defaults.deploymentName)
          'Microsoft.MachineLearningServices/workspaces/batchEndpoints/read'
          'Microsoft.MachineLearningServices/workspaces/batchEndpoints/write'
          // endpoints.py deploy, deployments, cleanup, remove_new: GET, PUT, DELETE batchEndpoints/{name}/deployments
          'Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments/read'
          'Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments/write'
          'Microsoft.MachineLearningServices/workspaces/batchEndpoints/deployments/delete'
        ]
        notActions: []
        dataActions: [
          // probe.py _credential with authMode AADToken: score the online endpoint with the app's Entra token
          'Microsoft.MachineLearningServices/workspaces/onlineEndpoints/score/action'
        ]
        notDataActions: []
      }
    ]
    // A custom role is assignable at a resource group (not a single resource); it is assigned on the workspace only.
    assignableScopes: [resourceGroup().id]
  }
}

// The app's identity on the workspace: the custom role above, or AzureML Data Scientist when
// useBuiltInRole is on (it grants more, datastore secrets included).
resource workspaceAppRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, useBuiltInRole ? azureMLDataScientist : 'retrain-functions-azure-ml')
  scope: workspace
  properties: {
    roleDefinitionId: useBuiltInRole ? subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist) : amlAppRole.id
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The workspace's own storage account (its default datastore, workspaceblobstore), where Azure ML jobs
// write the model folder and metrics.json. Its id comes from the workspace's properties: hub-based and
// bring-your-own-storage workspaces keep it in another resource group, or another subscription. That id
// is known only once the workspace is read, and a role assignment's scope must be known when its
// deployment starts, so aml-storage-access.bicep takes it as a parameter and deploys the assignment
// (aml-storage-role.bicep) in the account's own resource group.
module workspaceStorageAccess 'aml-storage-access.bicep' = {
  name: 'retrain-aml-storage-access'
  params: {
    storageAccountId: workspace.properties.storageAccount
    principalId: principalId
  }
}
