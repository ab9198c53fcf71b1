"""The app's own activity code for target updates, without any host: CPU per update.

`python bench/activity_cpu.py SPEC.json [--profile N]`, run with the app settings in its environment
as devhost (and the Functions host) has them. SPEC is {"pipeline", "targets": [...], "model": {...}}.
Imports `function_app`, calls the rollout activities the way `roll_out_target` does (plan, then each
step until done, sleeping out its waits) for every target in parallel, and sums each thread's CPU,
waits excluded. The definitions are loaded once before timing, as a warm worker has them.
Prints {"cpu_s", "updates"}; with --profile, also the N functions that used the most CPU (stderr).
"""

from __future__ import annotations

import cProfile
import json
import pstats
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv: list[str]) -> int:
    import function_app
    from retraining import operations
    from retraining.settings import Settings

    spec = json.loads(Path(argv[0]).read_text())
    profile = int(argv[2]) if len(argv) > 2 and argv[1] == "--profile" else 0
    activities = {f.get_function_name(): f.get_user_function() for f in function_app.app.get_functions()}
    plan, step = activities["plan_rollout"], activities["run_rollout_step"]
    operations.definitions(Settings.from_env())  # a warm worker has them loaded
    deadline = (datetime.now(UTC) + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spent: list[float] = []
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def update(target: str) -> None:
        profiler = cProfile.Profile() if profile else None
        cpu = time.thread_time()
        if profiler:
            profiler.enable()
        steps = plan(payload={"pipeline": spec["pipeline"], "target": target, "model": spec["model"]})
        for raw in steps:
            state: dict[str, Any] = {}
            while True:
                result = step(
                    payload={
                        "pipeline": spec["pipeline"],
                        "target": target,
                        "step": raw,
                        "model": spec["model"],
                        "state": state,
                        "deadline": deadline,
                    }
                )
                assert result["status"] != "failed", result
                state = result["state"]
                if not result["wait_s"]:
                    break
                cpu -= time.thread_time()  # the durable wait is not the activity's
                time.sleep(result["wait_s"])
                cpu += time.thread_time()
        if profiler:
            profiler.disable()
        with lock:
            spent.append(time.thread_time() - cpu)
            if profiler:
                profiles.append(profiler)

    with ThreadPoolExecutor(max_workers=len(spec["targets"])) as pool:
        list(pool.map(update, spec["targets"]))
    if profiles:
        stats = pstats.Stats(profiles[0], stream=sys.stderr)
        for more in profiles[1:]:
            stats.add(more)
        stats.sort_stats("tottime").print_stats(profile)
    print(json.dumps({"cpu_s": sum(spent), "updates": len(spent)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
