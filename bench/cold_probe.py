"""Run inside the clean virtualenv: time a Functions app's cold start the way the Python worker starts it.

`python -I cold_probe.py APP_ROOT ACTIVITY PAYLOAD_JSON` imports `function_app` from APP_ROOT (as the
worker does, with the app root on sys.path), indexes its functions (`app.get_functions()`, the
worker's indexing), then calls the named activity once. Prints the three durations as JSON. Only
the standard library and the app's own requirements are imported here.
"""

import json
import os
import sys
import time

began = time.perf_counter()
root, activity, payload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, root)
os.chdir(root)

import function_app  # noqa: E402

imported = time.perf_counter()
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
            "index_s": indexed - imported,
            "first_activity_s": called - indexed,
            "result": repr(result)[:80],
            "modules": len(sys.modules),
        }
    )
)
