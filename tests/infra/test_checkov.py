"""checkov's Azure policies pass on infra/, offline; every exception is skipped in place with its reason.

checkov runs from its own venv (.venv/checkov, made by `make setup`; see infra/requirements-checkov.txt).
"""

from __future__ import annotations

import json
import re
import subprocess
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from retraining.settings import APP_ROOT

from .infra_check import INFRA

CHECKOV_VENV = APP_ROOT / ".venv" / "checkov"
SKIP = re.compile(r"checkov:skip=([A-Z0-9_]+)(?::\s*(.*))?")


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    checkov = CHECKOV_VENV / "bin" / "checkov"
    assert checkov.exists(), f"{checkov} is missing: run `make setup`"
    done = subprocess.run(
        [str(checkov), "--directory", str(INFRA), "--framework", "bicep", "--output", "json", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0 or done.stdout.startswith("{"), done.stderr[-2000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_checkov_parses_every_file(report: dict[str, Any]) -> None:
    assert report["summary"]["parsing_errors"] == 0
    # checkov parses with the pycep-parser in its venv; the infra check with the one in .venv. Same version,
    # same grammar, so a file the infra check reads (tests/infra/test_infra_check.py) is one checkov reads.
    pycep = next(CHECKOV_VENV.glob("lib/python*/site-packages/pycep_parser-*.dist-info"))
    assert pycep.name.removeprefix("pycep_parser-").removesuffix(".dist-info") == version("pycep-parser")


def test_checkov_azure_policies_pass(report: dict[str, Any]) -> None:
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "fix these, or skip one in place with `// checkov:skip=ID: reason`:\n" + "\n".join(failed)
    assert report["summary"]["passed"] >= 25


def test_every_skip_says_why(report: dict[str, Any]) -> None:
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "").lstrip(": ")
        assert len(reason) >= 20, f"{skipped['check_id']} on {skipped['resource']} is skipped without a reason"
    for path in sorted(Path(INFRA).glob("*.bicep")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for check_id, reason in SKIP.findall(line):
                assert len(reason.strip()) >= 20, f"infra/{path.name}:{number}: skip of {check_id} needs its reason"
