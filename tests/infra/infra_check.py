"""The offline check that infra/ (Bicep for `azd up`) provides what the code reads.

What the code reads is derived when the check runs, from the code itself, never from a list kept here:

- app settings: `retraining.settings.APP_SETTINGS` (local_only ones must *not* be set in Azure), the
  `%NAME%` binding expressions in host.json and in the functions' bindings (`function_app.app`), and,
  in the pipeline definitions file the deployed app will read (RETRAIN_PIPELINES_FILE as the Bicep sets
  it), every `%NAME%` string and every secret named by a `...Setting` field;
- containers: each pipeline's `data.container` and `output.container`, and every `..._container` field
  of `Settings` (run records today), with the values the Bicep gives their settings;
- Event Grid: the functions with an `eventGridTrigger` binding, and each pipeline's `data.watch` glob;
- Azure ML: the pipelines whose `training.kind` is Azure ML's command job, the job events
  `retraining.services.azure_ml.events` acts on, and the setting each pipeline's credential takes its
  client id from.

Beyond what the code reads, it requires what the Functions host needs for what the Bicep turns on (identity-based
AzureWebJobsStorage__*, keyVaultReferenceIdentity, App Insights Entra auth, the deployment storage's authentication,
the scheduler's connection and ipAllowlist, a Flex Consumption plan and Python runtime), a dead-letter destination
per blob subscription, a recoverable Key Vault, the least-privilege Azure ML role (AML_ACTIONS), and the Bicep's own
consistency (tests/infra/bicep_structure.py: names, module parameters and outputs, parameter types, targetScope),
and checks resource types, API versions, property names, value types and enum values against a table made from
Azure's REST specs (tests/infra/typecheck.py, tests/infra/typetable/).

The Bicep is parsed with pycep (the parser checkov uses), and the check follows what feeds the Function
App's `siteConfig.appSettings`: name/value arrays, `concat`, conditionals, for-expressions over objects,
variables, and parameters back through the `module` that passes them. Every finding says what is
missing or extra and where to change it. Run it alone with `python -m tests.infra.infra_check`.

The check is split by concern: rules.py holds what infra/ is held to beyond the code (HOST_SETTINGS, ROLES,
AML_ACTIONS, ...) and Finding; code_reads.py derives what the code reads; bicep_model.py parses the Bicep (Infra);
checks_base.py holds what the checks share; checks_settings.py, checks_identity.py, checks_event_grid.py and
checks_host.py hold the checks. This module combines them into Check, runs them, and re-exports the names the
tests import from it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .bicep_model import Infra
from .checks_event_grid import EventGridChecks
from .checks_host import HostChecks
from .checks_identity import IdentityChecks
from .checks_settings import SettingsChecks
from .code_reads import Watch
from .rules import AML_ACTIONS, INFRA, TASK_HUB_NAME, Finding

__all__ = ["AML_ACTIONS", "INFRA", "TASK_HUB_NAME", "Check", "Finding", "Infra", "Watch", "check", "main"]


class Check(SettingsChecks, IdentityChecks, EventGridChecks, HostChecks):
    """Runs every check on one infra/ directory against what the code reads."""

    def run(self) -> list[Finding]:
        findings = [*self.infra.errors]
        for check in (
            self.check_settings,
            self.check_secrets,
            self.check_containers,
            self.check_roles,
            self.check_event_grid,
            self.check_azure_ml,
            self.check_no_keys,
            self.check_durable_task_scheduler,
            self.check_host,
            self.check_key_vault,
            self.check_aml_role,
            self.check_bicep,
        ):
            findings.extend(check())
        return findings


def check(root: Path = INFRA, **derive: Any) -> list[Finding]:
    return Check(root, **derive).run()


def main(argv: Sequence[str] = sys.argv[1:]) -> int:
    findings = check(Path(argv[0]) if argv else INFRA)
    for finding in findings:
        print(finding)
    print(f"infra check: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    raise SystemExit(main())
