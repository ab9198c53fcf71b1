// The app's identity on the Azure ML workspace its Azure ML pipelines use (main.bicep amlWorkspaceId),
// deployed in the workspace's resource group.
targetScope = 'resourceGroup'

param workspaceName string
@description('Principal id of the app\'s user-assigned identity.')
param principalId string

var azureMLDataScientist = 'f6c7c914-8db3-469d-8ca1-694a8f32e121'

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

// AzureML Data Scientist: every action inside the workspace except creating or deleting compute and
// changing the workspace itself. That covers what an Azure ML pipeline does: submit command jobs and
// read their status (jobs/*), register models (models/versions/write), create and update online and
// batch endpoints and their deployments, and shift traffic. It is the least-privileged built-in role
// that does; AzureML Compute Operator manages compute only, and Contributor could also delete the
// workspace and grant nothing more the app needs.
resource workspaceDataScientist 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, azureMLDataScientist)
  scope: workspace
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', azureMLDataScientist)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

// The workspace's own storage account (its default datastore, workspaceblobstore), where Azure ML jobs
// write the model folder and metrics.json. Its id is known only once the workspace is read, and a role
// assignment's scope must be known when the deployment starts, so a module takes it as a parameter.
// Azure ML creates that account in the workspace's resource group, where this module is deployed.
module workspaceStorageAccess 'aml-storage-access.bicep' = {
  name: 'retrain-aml-storage-access'
  params: {
    storageAccountId: workspace.properties.storageAccount
    principalId: principalId
  }
}
