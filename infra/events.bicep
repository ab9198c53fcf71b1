// Event Grid subscriptions to the app's Event Grid functions: new training data to training_data_arrived,
// and, with an Azure ML workspace, the end of its jobs to aml_job_event (aml-events.bicep).
//
// Deployed by infra/hooks/postdeploy after `azd deploy`: Event Grid checks that the function exists
// when the subscription is created, and the function exists only once the code is deployed.
// One subscription per pipeline, filtered as its data.container and data.watch glob need
// (tests/infra derives the filters from pipelines.json and compares).
targetScope = 'resourceGroup'

@description('The Function App (AZURE_FUNCTION_APP_NAME).')
param functionAppName string

@description('The Event Grid system topic of the training storage account (EVENT_GRID_SYSTEM_TOPIC).')
param systemTopicName string

@description('The training storage account (TRAINING_STORAGE_ACCOUNT), where undeliverable events are dead-lettered.')
param trainingStorageAccountName string

@description('Its container for dead-lettered events (EVENT_GRID_DEAD_LETTER_CONTAINER), created by resources.bicep.')
param deadLetterContainerName string

@description('Resource id of the Azure ML workspace of the Azure ML pipelines (AML_WORKSPACE_ID). Empty: no Azure ML job events.')
param amlWorkspaceId string = ''

// One line per pipeline: its data.container, and the literal start and end of its data.watch glob
// (blob names relative to the container; the function still matches the whole glob).
var watches = [
  { pipeline: 'weekly-retrain', container: 'labeledexamples', blobPrefix: '', blobSuffix: '.arff' } // watch '*.arff'
  { pipeline: 'aml-retrain', container: 'mldata', blobPrefix: 'incoming/', blobSuffix: '.csv' } // watch 'incoming/*.csv'
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource trainingEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

resource trainingStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: trainingStorageAccountName
}

resource trainingDataArrived 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = [for watch in watches: {
  parent: trainingEvents
  name: 'training-data-${watch.pipeline}'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionApp.id}/functions/training_data_arrived'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${watch.container}/blobs/${watch.blobPrefix}'
      subjectEndsWith: watch.blobSuffix
      isSubjectCaseSensitive: true
      advancedFilters: [
        // An ADLS Gen2 CreateFile raises BlobCreated for an empty file; its data arrives with a later flush.
        { operatorType: 'NumberGreaterThan', key: 'data.contentLength', value: 0 }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    // After 24 h of failed delivery the event is written to the training account rather than dropped; the
    // system topic's own identity writes it (shared keys are off), with the role resources.bicep gives it.
    // Re-run a dead-lettered blob by uploading it again, or start the pipeline over HTTP.
    deadLetterWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: trainingStorage.id
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}]

// The subscriptions this deployment declares: infra/hooks/postdeploy deletes any other training-data-* one
// (a pipeline removed from `watches`), which an incremental deployment would leave behind.
output trainingDataSubscriptions array = [for watch in watches: 'training-data-${watch.pipeline}']

// ---- Azure ML job events: the workspace's own system topic, in its subscription and resource group.

// The workspace's subscription, resource group and name. ARM resolves a module's scope even when its
// condition is false, so without a workspace they name this resource group instead.
var amlWorkspace = split(empty(amlWorkspaceId) ? '/subscriptions/${subscription().subscriptionId}/resourceGroups/${resourceGroup().name}/providers/Microsoft.MachineLearningServices/workspaces/none' : amlWorkspaceId, '/')

// Read for its region only: a system topic lives in its source's region. ARM evaluates a reference in a
// resource whose condition is false too, so the module's parameter reads it only with a workspace.
resource amlWorkspaceResource 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: amlWorkspace[8]
  scope: resourceGroup(amlWorkspace[2], amlWorkspace[4])
}

module amlJobEvents 'aml-events.bicep' = if (!empty(amlWorkspaceId)) {
  name: 'retrain-aml-job-events'
  scope: resourceGroup(amlWorkspace[2], amlWorkspace[4])
  params: {
    workspaceName: amlWorkspace[8]
    location: empty(amlWorkspaceId) ? '' : amlWorkspaceResource.location
    functionAppId: functionApp.id
  }
}
