// Event Grid subscriptions that deliver new training data to the function training_data_arrived.
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

// One line per pipeline: its data.container, and the literal start and end of its data.watch glob
// (blob names relative to the container; the function still matches the whole glob).
var watches = [
  { pipeline: 'weekly-retrain', container: 'labeledexamples', blobPrefix: '', blobSuffix: '.arff' } // watch '*.arff'
]

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource trainingEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
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
  }
}]
