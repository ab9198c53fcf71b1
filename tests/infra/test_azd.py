"""The azd wiring matches the Bicep: what a user fills in, the post-deploy hook, the deployment, the README."""

from __future__ import annotations

import json
import os
import re

import pytest
import yaml  # type: ignore[import-untyped]

from retraining.settings import APP_ROOT

from .infra_check import INFRA, Infra

README = (APP_ROOT / "README.md").read_text(encoding="utf-8")
DEPLOYING = README[README.index("## Deploying to Azure") : README.index("## Coming from Data Factory")]


@pytest.fixture(scope="module")
def infra() -> Infra:
    return Infra()


def mapped() -> dict[str, str]:
    """main.bicep parameter -> the azd environment variable main.parameters.json gives it."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    found = {}
    for name, entry in parameters.items():
        match = re.fullmatch(r"\$\{([A-Z_][A-Z0-9_]*)(=[^}]*)?\}", str(entry["value"]))
        assert match, f'main.parameters.json {name}: expected "${{ENV_VAR}}" or "${{ENV_VAR=default}}"'
        found[name] = match.group(1)
    return found


def test_parameters_file_maps_what_a_user_fills_in(infra: Infra) -> None:
    main = infra.files["main.bicep"]
    parameters = main.section("parameters")
    variables = mapped()
    assert set(variables) <= set(parameters), (
        f"main.parameters.json maps unknown parameters {set(variables) - set(parameters)}"
    )
    for name, parameter in parameters.items():
        secure = any(d.get("type") == "secure" for d in parameter.get("decorators", []))
        if parameter.get("default") is None or secure:
            assert name in variables, (
                f"main.bicep param {name} (required or a secret) has no entry in infra/main.parameters.json"
            )


def test_pipeline_values_and_secrets_use_their_setting_names_in_azd(infra: Infra) -> None:
    """`azd env set TRAINING_API_KEY ...` sets the app setting TRAINING_API_KEY: one name everywhere."""
    main = infra.files["main.bicep"]
    variables = mapped()
    for group in ("pipelineSettings", "secrets"):
        for setting, parameter in main.section("variables")[group]["value"].items():
            required = main.section("parameters")[parameter].get("default") is None
            if required or group == "secrets":
                assert variables.get(parameter) == setting, f"main.parameters.json {parameter}: use ${{{setting}}}"


def hooks() -> dict[str, dict[str, object]]:
    """azure.yaml's postdeploy hook per platform (windows, posix)."""
    azure_yaml = yaml.safe_load((APP_ROOT / "azure.yaml").read_text(encoding="utf-8"))
    postdeploy = (azure_yaml.get("hooks") or {}).get("postdeploy")
    assert isinstance(postdeploy, dict), "azure.yaml has no postdeploy hook"
    return postdeploy


def test_post_deploy_hook_runs_on_windows_and_posix() -> None:
    """An sh-only hook fails `azd up` on Windows without sh: both platforms are declared."""
    postdeploy = hooks()
    assert set(postdeploy) == {"windows", "posix"}, "declare the hook for windows (pwsh) and posix (sh)"
    assert postdeploy["windows"]["shell"] == "pwsh" and str(postdeploy["windows"]["run"]).endswith(".ps1")
    assert postdeploy["posix"]["shell"] == "sh" and str(postdeploy["posix"]["run"]).endswith(".sh")
    for hook in postdeploy.values():
        assert hook.get("continueOnError") is False and hook.get("interactive") is False


@pytest.mark.parametrize("platform", ["windows", "posix"])
def test_post_deploy_hook_deploys_the_event_subscriptions(infra: Infra, platform: str) -> None:
    script = APP_ROOT / str(hooks()[platform]["run"])
    assert script.exists() and os.access(script, os.X_OK), f"{script} is missing or not executable"
    text = script.read_text(encoding="utf-8")
    assert "--template-file infra/events.bicep" in text
    for parameter in infra.files["events.bicep"].section("parameters"):
        assert f"{parameter}=" in text, f"{script.name} does not pass events.bicep's parameter {parameter}"
    outputs = set(infra.files["main.bicep"].section("outputs"))
    pattern = r"\$env:([A-Z][A-Z0-9_]+)" if platform == "windows" else r"\$\{?([A-Z][A-Z0-9_]+)"
    for variable in set(re.findall(pattern, text)) - {"AZURE_SUBSCRIPTION_ID"}:
        assert variable in outputs, f"{script.name} reads {variable}, which main.bicep does not output"
    names = re.search(r"\^\(([A-Z_|]+)\)=", text)
    assert names, f"{script.name} does not read the values from `azd env get-values`"
    assert set(names.group(1).split("|")) - {"AZURE_SUBSCRIPTION_ID"} <= outputs


def test_azd_deploys_this_app_to_the_function_app(infra: Infra) -> None:
    azure_yaml = (APP_ROOT / "azure.yaml").read_text(encoding="utf-8")
    service = re.search(r"services:\s*\n\s+(\w+):\s*\n((?:\s{4,}.*\n)+)", azure_yaml)
    assert service and "host: function" in service.group(2) and "project: ." in service.group(2)
    app = infra.function_app()
    assert app is not None and f"'azd-service-name': '{service.group(1)}'" in app.file.text
    assert {"infra/", "azure.yaml", ".azure/"} <= set((APP_ROOT / ".funcignore").read_text(encoding="utf-8").split())


def test_readme_deploying_section_matches_the_files() -> None:
    assert "azd up" in DEPLOYING
    for variable in set(mapped().values()) - {"AZURE_ENV_NAME"}:
        assert f"`{variable}`" in DEPLOYING, f"README 'Deploying to Azure' does not mention {variable}"
    for path in sorted(p for p in INFRA.rglob("*") if p.suffix in (".bicep", ".json", ".sh")):
        assert path.relative_to(APP_ROOT).as_posix() in DEPLOYING, (
            f"README 'Deploying to Azure' does not mention {path.name}"
        )
    for mentioned in set(re.findall(r"`(infra/[\w./-]+)`", DEPLOYING)):
        assert (APP_ROOT / mentioned).exists(), f"README mentions {mentioned}, which does not exist"
