"""The cold-start baseline: the smallest v2-model Durable Functions app (one HTTP starter, one orchestrator, one activity).

Its activity does what the retraining app's first activity does at its core, one read from Blob
storage, importing the storage SDK when first called as the retraining app does.
"""

import os

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="start")
@app.durable_client_input(client_name="client")
async def start(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    instance_id = await client.start_new("hello_orchestrator")
    return client.create_check_status_response(req, instance_id)


@app.orchestration_trigger(context_name="context")
def hello_orchestrator(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    result = yield context.call_activity("read_blob", "labeledexamples/base.csv")
    return result


@app.activity_trigger(input_name="path")
def read_blob(path: str) -> int:
    from azure.storage.blob import BlobServiceClient

    container, name = path.split("/", 1)
    service = BlobServiceClient.from_connection_string(os.environ["TrainingStorage"])  # noqa: SIM112 - the app setting's name
    return int(service.get_blob_client(container, name).get_blob_properties().size)
