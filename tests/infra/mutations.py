"""Ways the infrastructure tests break a copy of infra/ (the `infra` fixture, in conftest.py), and read the findings."""

from __future__ import annotations

import re
from pathlib import Path

from .infra_check import check


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{path.name} no longer contains {old!r}: update this test"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def remove_resource(path: Path, symbol: str, kind: str = "resource") -> None:
    text = path.read_text(encoding="utf-8")
    match = re.search(rf"^{kind} {symbol} .*?^\}}\]?\n", text, flags=re.MULTILINE | re.DOTALL)
    assert match, f"{path.name} has no {kind} {symbol}: update this test"
    path.write_text(text[: match.start()] + text[match.end() :], encoding="utf-8")


def failures(root: Path, **derive: object) -> str:
    findings = check(root, **derive)
    assert findings, "the check passed on broken infrastructure"
    return "\n".join(map(str, findings))
