"""`with_fresh_secrets`: every key and client secret of the emulator's config is replaced, nothing else changes."""

from __future__ import annotations

from typing import Any

from emulator.config import default_config, with_fresh_secrets

SECRET_FIELDS = {"primary_key", "secondary_key", "client_secret"}


def split(value: Any, path: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """(secret fields, other leaves) of a config's to_dict(), by path."""
    secret: dict[str, Any] = {}
    other: dict[str, Any] = {}
    if isinstance(value, dict):
        for key, item in value.items():
            if key in SECRET_FIELDS:
                secret[f"{path}.{key}"] = item
            else:
                more_secret, more_other = split(item, f"{path}.{key}")
                secret |= more_secret
                other |= more_other
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            more_secret, more_other = split(item, f"{path}[{index}]")
            secret |= more_secret
            other |= more_other
    else:
        other[path] = value
    return secret, other


def test_every_secret_is_replaced_by_a_distinct_random_one_and_nothing_else_changes() -> None:
    seed_secrets, seed_other = split(default_config().to_dict())
    first_secrets, first_other = split(with_fresh_secrets(default_config()).to_dict())
    second_secrets, _ = split(with_fresh_secrets(default_config()).to_dict())
    assert len(seed_secrets) >= 10  # Studio endpoint keys, ARM keys, both service principals' secrets
    assert first_secrets.keys() == seed_secrets.keys() and first_other == seed_other
    assert all(first_secrets[path] != seed_secrets[path] for path in seed_secrets)
    assert len(set(first_secrets.values()) | set(second_secrets.values())) == 2 * len(seed_secrets)  # none repeats
    assert all(len(value) >= 32 for value in first_secrets.values())
