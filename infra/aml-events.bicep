// Azure ML job events to the function aml_job_event: the workspace's Event Grid system topic and one
// subscription on it, deployed by events.bicep in the workspace's resource group.
//
// aml_job_event (triggers/aml_events.py) only wakes the run's monitor, which reads the job's status
// itself: a lost event costs time (polling still ends the run), a late one nothing.
targetScope = 'resourceGroup'

@description('The Azure ML workspace, in this resource group.')
param workspaceName string

@description('The workspace\'s region: a system topic lives in its source\'s region.')
param location string

@description('Resource id of the Function App.')
param functionAppId string

resource workspace 'Microsoft.MachineLearningServices/workspaces@2024-04-01' existing = {
  name: workspaceName
}

// A resource has at most one system topic: if the workspace has one under another name already (made
// in the portal, say), this fails; delete that one, or give this one its name.
resource amlEvents 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-aml-${replace(workspaceName, '_', '-')}' // topic names take letters, digits and dashes
  location: location
  properties: {
    source: workspace.id
    topicType: 'Microsoft.MachineLearningServices.Workspaces'
  }
}

// One subscription per Function App, so environments sharing the workspace keep their own.
resource amlJobEvent 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: amlEvents
  name: 'aml-job-event-${last(split(functionAppId, '/'))}'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/aml_job_event'
        maxEventsPerBatch: 1
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [
        'Microsoft.MachineLearningServices.RunStatusChanged'
        'Microsoft.MachineLearningServices.RunCompleted'
      ]
      advancedFilters: [
        // Drops RunStatusChanged to a status that is not an end (compared without case). StringNotIn, not
        // StringIn on the end states: RunCompleted has no runStatus, and a missing key fails StringIn
        // but passes StringNotIn. A status Azure ML adds later still comes through; the function ignores it.
        {
          operatorType: 'StringNotIn'
          key: 'data.runStatus'
          values: ['NotStarted', 'Queued', 'Preparing', 'Provisioning', 'Starting', 'Running', 'Finalizing', 'CancelRequested', 'NotResponding', 'Paused']
        }
      ]
    }
    // The monitor polls at most maxInterval apart (pipelines.json polling): an event older than an hour
    // wakes nothing the polls have not already seen.
    retryPolicy: {
      maxDeliveryAttempts: 10
      eventTimeToLiveInMinutes: 60
    }
  }
}
