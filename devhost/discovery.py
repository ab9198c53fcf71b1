"""Find every function of a Functions app from its bindings: the only registration list is the app's.

`load_app("function_app")` imports the module, takes its `app` (a `func.FunctionApp` / `df.DFApp`),
and sorts each function by its trigger binding, the way the Functions host indexes a v2 app.
"""

from __future__ import annotations

import functools
import importlib
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class DiscoveryError(RuntimeError):
    """The app has a function devhost cannot host; the message names it."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    trigger: dict[str, Any]
    bindings: tuple[dict[str, Any], ...]
    user_function: Callable[..., Any]

    @property
    def client_binding(self) -> dict[str, Any] | None:
        return next((b for b in self.bindings if b["type"] == "durableClient"), None)

    @property
    def input_name(self) -> str:
        return str(self.trigger["name"])

    @property
    def orchestrator_function(self) -> Callable[..., Any]:
        inner = getattr(self.user_function, "orchestrator_function", None)
        if inner is None:
            raise DiscoveryError(f"{self.name}: orchestration trigger without an orchestrator function")
        return inner


@dataclass
class FunctionApp:
    orchestrators: list[FunctionSpec] = field(default_factory=list)
    activities: list[FunctionSpec] = field(default_factory=list)
    http: list[FunctionSpec] = field(default_factory=list)
    timers: list[FunctionSpec] = field(default_factory=list)
    event_grid: list[FunctionSpec] = field(default_factory=list)
    blob: list[FunctionSpec] = field(default_factory=list)

    @property
    def all(self) -> list[FunctionSpec]:
        return [*self.orchestrators, *self.activities, *self.http, *self.timers, *self.event_grid, *self.blob]


_TRIGGERS = {
    "orchestrationTrigger": "orchestrators",
    "activityTrigger": "activities",
    "httpTrigger": "http",
    "timerTrigger": "timers",
    "eventGridTrigger": "event_grid",
    "blobTrigger": "blob",
}


def _plain(value: Any) -> Any:
    """Binding values as JSON-like data (enums to their values)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return getattr(value, "value", value)


APP_ROOT = Path(__file__).resolve().parent.parent


def load_app(module_name: str = "function_app", app_root: Path = APP_ROOT) -> FunctionApp:
    """Index the app once per process, as the host does (`get_functions` may not be called twice)."""
    return _load_app(module_name, app_root)


@functools.cache
def _load_app(module_name: str, app_root: Path) -> FunctionApp:
    if str(app_root) not in sys.path:
        sys.path.insert(0, str(app_root))  # the Functions host runs with the app root on sys.path
    module = importlib.import_module(module_name)
    app = getattr(module, "app", None)
    if app is None or not hasattr(app, "get_functions"):
        raise DiscoveryError(f"{module_name} has no Functions app object named 'app'")
    found = FunctionApp()
    for function in app.get_functions():
        bindings = tuple({k: _plain(v) for k, v in b.get_dict_repr().items()} for b in function.get_bindings())
        trigger = next((b for b in bindings if b["type"].endswith("Trigger")), None)
        if trigger is None or trigger["type"] not in _TRIGGERS:
            raise DiscoveryError(f"{function.get_function_name()}: unsupported trigger {trigger and trigger['type']}")
        spec = FunctionSpec(function.get_function_name(), trigger, bindings, function.get_user_function())
        getattr(found, _TRIGGERS[trigger["type"]]).append(spec)
    return found


_SETTING = re.compile(r"%([A-Za-z_][A-Za-z0-9_.:]*)%")


def resolve_setting_expression(value: str, settings: Mapping[str, str]) -> str:
    """Resolve `%NAME%` binding expressions the way the host does; unknown names are an error."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise DiscoveryError(f"binding expression %{name}% refers to an app setting that is not set")
        return settings[name]

    return _SETTING.sub(replace, value)
