"""A copy of infra/ for each test that breaks something in it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .infra_check import INFRA


@pytest.fixture
def infra(tmp_path: Path) -> Path:
    copy = tmp_path / "infra"
    shutil.copytree(INFRA, copy)
    return copy
