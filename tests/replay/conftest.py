"""The app whose orchestrators the replay tests drive, found from `function_app.app` as the host finds it."""

from __future__ import annotations

import pytest

from devhost.discovery import FunctionApp, load_app


@pytest.fixture(scope="module")
def app() -> FunctionApp:
    return load_app()
