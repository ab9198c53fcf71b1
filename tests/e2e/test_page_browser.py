"""The status page in a real headless Chromium (Debian's package; nothing downloaded): read it, approve by clicking.

Screenshots go to `.devhost/screenshots/` (overview, the pipeline waiting for approval, after approval).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devhost.stack import LocalStack

from .browser import Browser
from .helpers import api, awaiting, record_of, run_to_end, served_versions, wait_for_request

pytestmark = pytest.mark.e2e
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".devhost" / "screenshots"


def approved_run(stack: LocalStack) -> dict[str, object]:
    uri, view = awaiting(stack)
    assert api(stack, f"pipelines/approval/runs/{view['run_id']}/approve", "POST").status_code == 202
    return record_of(stack, wait_for_request(stack, uri))


def test_the_page_in_a_browser_shows_runs_plots_and_models_and_approves_by_click(
    stack: LocalStack, seeded: str, emulator_url: str
) -> None:
    assert stack.host is not None
    # Demo-like history on the approval pipeline: an approved run (the champion) and a dry run.
    second = approved_run(stack)
    assert second["status"] == "Succeeded"
    assert run_to_end(stack, "approval", {"dryRun": True})["status"] == "DryRun"
    uri, waiting = awaiting(stack)

    with Browser() as browser:
        browser.open(f"{stack.host.base_url}/api/status?code={stack.host.function_key}")
        browser.wait_for("document.getElementById('live-stamp').textContent.startsWith('live')")
        assert browser.evaluate("document.querySelectorAll('[data-card]').length") >= 4
        browser.screenshot(SCREENSHOTS / "overview.png")

        browser.click('a[href^="/api/status/approval?"]')
        browser.wait_for("location.pathname === '/api/status/approval' && document.readyState === 'complete'")
        assert browser.evaluate("document.querySelectorAll('tr[data-run]').length") >= 2
        assert browser.evaluate("document.querySelectorAll('svg.plot circle.point').length") >= 2
        assert browser.evaluate("document.querySelectorAll('svg.plot line.minimum').length") >= 1
        served = browser.evaluate("document.querySelector('tr[data-target=endpoint2] td[data-served]').dataset.served")
        assert served == str(second["model"]["sha256"])[:12]  # type: ignore[index]
        button = f'[data-request] button[data-action="approve"][data-url$="/runs/{waiting["run_id"]}/approve"]'
        browser.wait_for(f"!!document.querySelector({json.dumps(button)})")
        browser.evaluate("document.getElementById('comment').value = 'approved in the browser'")
        browser.screenshot(SCREENSHOTS / "awaiting-approval.png")

        browser.click(button)
        newest = f'tr[data-run="{waiting["run_id"]}"][data-status="Succeeded"]'
        browser.wait_for(
            f"!!document.querySelector({json.dumps(newest)})", timeout_s=60
        )  # the page reloaded with the outcome
        browser.screenshot(SCREENSHOTS / "approved.png")
        assert browser.errors == [], browser.errors

    record = record_of(stack, wait_for_request(stack, uri))
    assert record["status"] == "Succeeded" and record["approval"]["decision"]["comment"] == "approved in the browser"
    assert served_versions(emulator_url)["endpoint2"] == record["model"]["sha256"][:12]
