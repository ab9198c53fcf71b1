"""What `azd deploy` packages: what .funcignore leaves of the repository and of the junk a checkout gathers.

azd uses .funcignore instead of its default exclusions, so a missing line ships caches, fuzzing corpora and
build metadata. The packaged list is checked against an allow-list of the app's own files, and the files the
Functions host cannot start without are checked to be in it.
"""

from __future__ import annotations

import subprocess
from pathlib import PurePosixPath

import pathspec
import pytest

from retraining.settings import APP_ROOT

FUNCIGNORE = APP_ROOT / ".funcignore"

# The app's own files: what the Functions host and the code read at runtime.
APP_FILES = ("function_app.py", "host.json", "requirements.txt", "pipelines.json")
APP_PACKAGES = ("activities/", "orchestrators/", "triggers/", "retraining/")
REQUIRED = (
    "function_app.py",
    "host.json",
    "requirements.txt",
    "pipelines.json",
    "retraining/settings.py",
    "retraining/page/templates/page.html",
)
APP_DATA = ("retraining/page/templates/",)  # read at run time, so shipped

# What a working checkout gathers besides git's files: tool caches, build metadata, local state, secrets.
JUNK = (
    ".hypothesis/examples/0a1b/2c3d",
    ".pytest_cache/v/cache/lastfailed",
    ".mypy_cache/3.11/retraining/settings.data.json",
    ".ruff_cache/0.6.0/123456",
    ".reliability/runs/2026-01-01.json",
    "retrain_functions.egg-info/PKG-INFO",
    "retraining/__pycache__/settings.cpython-311.pyc",
    "activities/__pycache__/training.cpython-311.pyc",
    "retraining/settings.pyc",
    ".venv/lib/python3.11/site-packages/azure/functions/__init__.py",
    ".python_packages/lib/site-packages/requests/__init__.py",
    "node_modules/azurite/package.json",
    "local.settings.json",
    ".azure/dev/.env",
    ".azure/config.json",
    ".vscode/settings.json",
    ".coverage",
    "htmlcov/index.html",
    "build/lib/function_app.py",
    "dist/retrain_functions-0.1.0.tar.gz",
    "__azurite_db_blob__.json",
    "__blobstorage__/0/1",
    ".emulator/ca.pem",
    ".devhost/state.json",
)


def packaged(paths: list[str]) -> list[str]:
    spec = pathspec.PathSpec.from_lines("gitwildmatch", FUNCIGNORE.read_text(encoding="utf-8").splitlines())
    return sorted(p for p in paths if not spec.match_file(p))


def repository_files() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=APP_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return done.stdout.split()


def allowed(path: str) -> bool:
    suffix = PurePosixPath(path).suffix
    return (
        path in APP_FILES
        or (path.startswith(APP_PACKAGES) and suffix == ".py")
        or (path.startswith(APP_DATA) and suffix == ".html")
    )


def test_only_the_apps_own_files_are_packaged() -> None:
    shipped = packaged([*repository_files(), *JUNK])
    extra = [p for p in shipped if not allowed(p)]
    assert not extra, f"azd would package these (add a line for each to .funcignore): {extra}"


def test_junk_is_never_packaged() -> None:
    assert packaged(list(JUNK)) == []


def test_the_app_itself_is_packaged() -> None:
    shipped = set(packaged([*repository_files(), *REQUIRED]))
    assert set(REQUIRED) <= shipped, f".funcignore leaves out {set(REQUIRED) - shipped}"
    assert any(p.startswith(package) for package in APP_PACKAGES for p in shipped)


@pytest.mark.parametrize("line", ["*.egg-info/", ".hypothesis/", ".reliability/", ".mypy_cache/"])
def test_a_missing_exclusion_is_caught(line: str) -> None:
    """A .funcignore without azd's defaults shipped caches and fuzzing corpora."""
    text = FUNCIGNORE.read_text(encoding="utf-8")
    assert line in text.splitlines()
    spec = pathspec.PathSpec.from_lines("gitwildmatch", [x for x in text.splitlines() if x != line])
    leaked = [p for p in JUNK if not spec.match_file(p)]
    assert leaked and not all(allowed(p) for p in leaked)
