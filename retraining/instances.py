"""Every Durable instance id the app makes, in one place: starters, orchestrators and event routes all use these.

    retrain-{pipeline}                      the pipeline's run queue (long-lived, continues as new)
    retrain-{pipeline}:{run_id}             one run (retrain_pipeline or promote_model)
    retrain-{pipeline}:{run_id}:monitor     the run's training-job monitor
    retrain-{pipeline}:{run_id}:rollout:{target}   the run's rollout to one target

Changing a spelling here changes it everywhere, so an event is never routed to a name nobody uses.
"""

from __future__ import annotations

PREFIX = "retrain-"


def queue_instance_id(pipeline: str) -> str:
    return f"{PREFIX}{pipeline}"


def pipeline_of(queue_instance: str) -> str:
    """The pipeline whose queue this is (from the instance id, which no caller's input can change)."""
    return queue_instance.removeprefix(PREFIX)


def run_instance_id(pipeline: str, run_id: str) -> str:
    return f"{queue_instance_id(pipeline)}:{run_id}"


def monitor_instance_id(run_instance: str) -> str:
    return f"{run_instance}:monitor"


def rollout_instance_id(run_instance: str, target: str, attempt: str = "") -> str:
    """The rollout of one target in a run; a second rollout of it in the same run (`restore`) has its own."""
    return f"{run_instance}:rollout:{target}" + (f":{attempt}" if attempt else "")


def notify_instance_id(pipeline: str, run_id: str, event: str) -> str:
    """The delivery of one run's notification of `event` (at most one per run and event, whoever asks twice)."""
    return f"notify-{pipeline}:{run_id}:{event}"
