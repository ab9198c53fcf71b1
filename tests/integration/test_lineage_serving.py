"""What serves where, in Blob storage (Azurite): a target a run left unsettled stays so until a run confirms a model."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from azure.storage.blob import BlobServiceClient

from devhost.services import Azurite
from retraining.lineage import Lineage
from retraining.models import ModelArtifact
from retraining.settings import Settings
from retraining.storage import TrainingStorage

RUN_A, RUN_B, RUN_C = "20261121T030000Z-0000000a", "20261122T030000Z-0000000b", "20261123T030000Z-0000000c"


def model(run_id: str) -> ModelArtifact:
    return ModelArtifact(f"trainingoutput/p/{run_id}/model.ilearner", 10, run_id[-1] * 64)


def test_an_unsettled_target_is_marked_until_a_run_confirms_a_model_on_it(
    blob_service: BlobServiceClient, container: str, azurite: Azurite
) -> None:
    storage = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))
    lineage = Lineage(storage, container)
    now = datetime(2026, 11, 21, 4, tzinfo=UTC)
    lineage.record_serving("p", RUN_A, model(RUN_A), ["online", "batch"], champion=True, now=now)
    after_b = lineage.record_serving(
        "p", RUN_B, model(RUN_B), ["batch"], champion=False, now=now,
        unsettled={"online": ("rollback_failed", "the rollback did not finish: 503")},
    )  # fmt: skip
    assert after_b.unsettled["online"].run_id == RUN_B and after_b.unsettled["online"].state == "rollback_failed"
    assert after_b.targets["online"].run_id == RUN_A  # the last model confirmed on it, kept for the record
    read = lineage.serving("p")
    assert read.unsettled == after_b.unsettled and read.targets["batch"].run_id == RUN_B
    after_c = lineage.record_serving("p", RUN_C, model(RUN_C), ["online"], champion=False, now=now)
    assert after_c.unsettled == {} and after_c.targets["online"].run_id == RUN_C


def test_a_serving_record_written_before_unsettled_existed_still_reads(
    blob_service: BlobServiceClient, container: str, azurite: Azurite
) -> None:
    storage = TrainingStorage.from_settings(Settings.from_env({"TrainingStorage": azurite.connection_string}))
    old = {"champion": None, "targets": {}, "previous": []}
    blob_service.get_blob_client(container, "p/serving.json").upload_blob(json.dumps(old))
    assert Lineage(storage, container).serving("p").unsettled == {}
