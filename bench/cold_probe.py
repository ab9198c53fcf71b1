"""Run inside the clean virtualenv: time a Functions app's cold start the way the Python worker starts it.

`python -I cold_probe.py APP_ROOT ACTIVITY PAYLOAD_JSON` imports `function_app` from APP_ROOT (as the
worker does, with the app root on sys.path), indexes its functions (`app.get_functions()`, the
worker's indexing), then calls the named activity once. Prints the three durations (and the
import's CPU time) as JSON. Only
the standard library and the app's own requirements are imported here.

`python -I -X importtime cold_probe.py APP_ROOT --analyse` imports `function_app` only, counting the
dataclasses and enums made while it imports and the time their creation takes (what the app's own
modules spend most of their import time on); the import tree is on stderr (`-X importtime`).
"""

import json
import os
import sys
import time

began, began_cpu = time.perf_counter(), time.process_time()
root = sys.argv[1]
sys.path.insert(0, root)
os.chdir(root)

if sys.argv[2] == "--analyse":
    import dataclasses
    import enum

    made = {"dataclasses": 0, "dataclass_s": 0.0, "enums": 0, "enum_s": 0.0}
    process_class = dataclasses._process_class  # type: ignore[attr-defined]

    def timed_process_class(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return process_class(*args, **kwargs)
        finally:
            made["dataclasses"] += 1
            made["dataclass_s"] += time.perf_counter() - start

    dataclasses._process_class = timed_process_class  # type: ignore[attr-defined]
    enum_new = enum.EnumType.__new__

    def timed_enum_new(*args, **kwargs):  # type: ignore[no-untyped-def]
        start = time.perf_counter()
        try:
            return enum_new(*args, **kwargs)
        finally:
            made["enums"] += 1
            made["enum_s"] += time.perf_counter() - start

    enum.EnumType.__new__ = timed_enum_new  # type: ignore[method-assign]
    import function_app

    print(json.dumps(made | {"import_s": time.perf_counter() - began, "modules": len(sys.modules)}))
    raise SystemExit(0)

activity, payload = sys.argv[2], json.loads(sys.argv[3])

import function_app  # noqa: E402

imported, imported_cpu = time.perf_counter(), time.process_time()
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
indexed = time.perf_counter()
function = functions[activity]
trigger = next(b for b in function.get_bindings() if b.get_dict_repr()["type"] == "activityTrigger")
result = function.get_user_function()(**{trigger.get_dict_repr()["name"]: payload})
called = time.perf_counter()
print(
    json.dumps(
        {
            "import_s": imported - began,
            "import_cpu_s": imported_cpu - began_cpu,
            "index_s": indexed - imported,
            "first_activity_s": called - indexed,
            "result": repr(result)[:80],
            "modules": len(sys.modules),
        }
    )
)
