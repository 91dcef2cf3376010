"""reprolock audit as a user runs it: formats, SARIF against the official schema,
suppressions, exit codes, --explain, bad input, the example project, the pre-commit hook."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from reprolock.audit import sources
from reprolock.audit.catalog import RULES, render_markdown
from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.pyindex import index_file
from reprolock.config import Config
from reprolock.errors import ToolError
from reprolock.inspection.codeset import collect_code
from tests.support.cli import run_cli
from tests.support.projects import write_project
from tests.support.services import require_tool

REPO = Path(__file__).resolve().parent.parent
ASSETS = Path(__file__).resolve().parent / "audit"
SARIF_SCHEMA = json.loads((ASSETS / "sarif-schema-2.1.0.json").read_text())
REPORT_SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())
HAZARDS = "import numpy as np\n\nx = np.random.rand(3)  # reprolock: ignore[RL101]\n"


def _mixed(tmp_path: Path) -> Path:
    return write_project(tmp_path, {
        "train.py": HAZARDS,
        "requirements.txt": "numpy==1.26.4\n",  # RL102: a warning
        "notes/data loader.py": "import random\nrandom.shuffle([1])  "
                                "# reprolock: ignore[RL401, RL999]\n",
    })


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    data: dict[str, object] = json.loads(proc.stdout)
    return data


# --- formats ------------------------------------------------------------------------
def test_text_groups_by_file_and_counts_suppressed(tmp_path: Path) -> None:
    proc = run_cli("audit", _mixed(tmp_path))
    assert proc.returncode == 1, proc.stderr
    out = proc.stdout
    assert out.index("requirements.txt\n") < out.index("train.py\n")
    assert "  3:5      error   RL402" in out
    assert "\033[" not in out  # not a terminal: no colour
    assert out.rstrip().endswith("files audited")
    assert "1 suppressed (RL401 ×1)" in out


def test_color_only_when_asked_or_on_a_terminal(tmp_path: Path) -> None:
    root = _mixed(tmp_path)
    assert "\033[31m" in run_cli("audit", root, "--color", "always").stdout
    env = {**os.environ, "NO_COLOR": "1"}
    assert "\033[" not in run_cli("audit", root, env=env).stdout


def test_json_matches_its_schema(tmp_path: Path) -> None:
    proc = run_cli("audit", _mixed(tmp_path), "--format", "json")
    data = _json(proc)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["exitCode"] == proc.returncode == 1
    summary = data["summary"]
    assert isinstance(summary, dict)
    assert summary["suppressed"] == 1 and summary["error"] == 1 and summary["warning"] == 1
    findings = data["findings"]
    assert isinstance(findings, list)
    suppressed = [f for f in findings if f["suppressed"]]
    assert suppressed[0]["suppressed"]["kind"] == "inline"


def test_sarif_is_valid_sarif_2_1_0(tmp_path: Path) -> None:
    proc = run_cli("audit", _mixed(tmp_path), "--format", "sarif", "--ignore", "RL102")
    log = _json(proc)
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(log)
    assert log["version"] == "2.1.0"
    run = log["runs"][0]  # type: ignore[index]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    assert all(r["helpUri"].startswith("https://") and r["fullDescription"]["text"]
               for r in rules)
    by_rule = {r["ruleId"]: r for r in run["results"]}
    region = by_rule["RL402"]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 3
    assert rules[by_rule["RL402"]["ruleIndex"]]["id"] == "RL402"
    assert by_rule["RL401"]["suppressions"][0]["kind"] == "inSource"
    assert by_rule["RL102"]["suppressions"][0]["kind"] == "external"
    uri = by_rule["RL401"]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
    assert uri == "notes/data%20loader.py"


def test_sarif_of_hadolint_and_whole_file_findings_validates(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": "FROM python:latest\nRUN pip install x\n",
                               "big.py": "x = 1\n" * 10})
    (root / "bin.py").write_bytes(b"\0\1\2")
    log = _json(run_cli("audit", root, "--format", "sarif"))
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(log)
    results = log["runs"][0]["results"]  # type: ignore[index]
    assert any(r["properties"]["toolCode"] == "DL3007" for r in results if "properties" in r)
    whole = next(r for r in results if r["ruleId"] == "RL003")
    assert "region" not in whole["locations"][0]["physicalLocation"]


def test_output_file_is_written_and_stdout_stays_empty(tmp_path: Path) -> None:
    out = tmp_path / "reports" / "audit.sarif"
    proc = run_cli("audit", _mixed(tmp_path), "--format", "sarif", "--output", out)
    assert proc.returncode == 1 and proc.stdout == ""
    assert f"wrote {out}" in proc.stderr
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(json.loads(out.read_text()))


# --- exit codes and suppression --------------------------------------------------------
@pytest.mark.parametrize(("fail_on", "code"), [("error", 1), ("warning", 1), ("info", 1)])
def test_fail_on(tmp_path: Path, fail_on: str, code: int) -> None:
    root = write_project(tmp_path, {"requirements.txt": "numpy==1.26.4\n"})  # one warning
    expected = 0 if fail_on == "error" else code
    assert run_cli("audit", root, "--fail-on", fail_on).returncode == expected


def test_clean_project_exits_0(tmp_path: Path) -> None:
    proc = run_cli("audit", write_project(tmp_path, {"train.py": "print('hi')\n"}))
    assert proc.returncode == 0 and "0 findings" in proc.stdout


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run_cli("audit", tmp_path, "--format", "xml").returncode == 2
    assert run_cli("audit", tmp_path, "--fail-on", "fatal").returncode == 2
    assert run_cli("audit", tmp_path / "missing").returncode == 2
    proc = run_cli("audit", tmp_path, "--ignore", "RL999")
    assert proc.returncode == 2 and "unknown audit rule" in proc.stderr


def test_config_ignores_and_fail_on(tmp_path: Path) -> None:
    root = write_project(tmp_path, {
        "requirements.in": "numpy\n",
        "train.py": "import random\nrandom.shuffle([1])\n",
        # a test is not an entry point (issue 14): only a per-call finding is left there
        "tests/test_x.py": "import numpy as np\nrng = np.random.default_rng()\n",
        "reprolock.toml": 'base = "oci-layout:base:tiny"\n'
                          '[dependencies]\nrequirements = ["requirements.in"]\n'
                          '[audit]\nignore = ["RL107"]\nfail-on = "info"\n'
                          '[audit.per-path-ignores]\n"tests/**" = ["RL402"]\n'})
    data = _json(run_cli("audit", root, "--format", "json"))
    kinds = {f["rule"]: f["suppressed"] for f in data["findings"]}  # type: ignore[attr-defined]
    assert kinds["RL107"] == {"kind": "config", "detail": "[audit] ignore"}
    assert kinds["RL402"]["detail"] == "[audit.per-path-ignores] 'tests/**'"
    assert kinds["RL401"] is None
    assert data["failOn"] == "info"


def test_dockerfile_suppression_on_the_line_before(tmp_path: Path) -> None:
    """A Dockerfile comment must start a line: as with '# hadolint ignore=', the comment
    may stand on the comment lines right above the instruction."""
    base = "FROM python:3.11@sha256:" + "0" * 64 + "\nENV PYTHONHASHSEED=0\n"
    root = write_project(tmp_path, {"Dockerfile": base + (
        "# reprolock: ignore[RL305]\n"
        "# the wheels are checked by the lock's build\n"
        "RUN pip install --no-deps -r requirements.txt\n"
        "\n"
        "# reprolock: ignore[RL305]\n"
        "\n"
        "RUN pip install --no-deps other\n")})
    report = audit_project(root, AuditOptions(hadolint=False))
    found = {f.line: f for f in report.findings if f.rule == "RL305"}
    assert found[5].suppression is not None and found[5].suppression.kind == "inline"
    assert "line before" in found[5].suppression.detail
    assert found[9].suppression is None  # a blank line ends the comment block
    (root / "train.py").write_text("# reprolock: ignore[RL401]\nimport random\n"
                                   "random.random()\n")
    report = audit_project(root, AuditOptions(hadolint=False))
    assert "RL401" in {f.rule for f in report.active}  # Python: on the line itself only


def test_audit_table_does_not_stale_the_lock(tmp_path: Path) -> None:
    from reprolock.config import load_config

    config = 'base = "x:1"\n[dependencies]\nrequirements = ["requirements.in"]\n'
    root = write_project(tmp_path, {"requirements.in": "numpy\n", "reprolock.toml": config})
    before = load_config(root).data
    with (root / "reprolock.toml").open("a") as handle:
        handle.write('[audit]\nignore = ["RL104"]\n')
    config = load_config(root)
    assert config.data == before and config.audit.ignore == ("RL104",)


# --- explain and the rule docs ---------------------------------------------------------
def test_explain_prints_the_entry() -> None:
    proc = run_cli("audit", "--explain", "rl403")
    assert proc.returncode == 0
    assert proc.stdout.startswith("RL403 torch-not-seeded (error)")
    assert "pytorch.org/docs/stable/notes/randomness" in proc.stdout
    assert run_cli("audit", "--explain", "RL999").returncode == 2


def test_list_rules_lists_every_rule() -> None:
    out = run_cli("audit", "--list-rules").stdout
    assert [line.split()[0] for line in out.splitlines()] == list(RULES)


def test_docs_rules_md_is_generated_from_the_catalog() -> None:
    """Regenerate with: python -m reprolock.audit.catalog > docs/rules.md"""
    assert (REPO / "docs" / "rules.md").read_text() == render_markdown()


def test_every_rule_is_documented() -> None:
    for rule in RULES.values():
        assert rule.why and rule.fix and rule.source and rule.summary
        assert len(rule.id) == 5 and rule.id[:2] == "RL" and rule.id[2] in "0123456"


# --- the index: aliases, nested imports ------------------------------------------------
@pytest.mark.parametrize("source", [
    "import torch as T\nT.manual_seed(0)\n",
    "from torch import manual_seed as seed\nseed(0)\n",
    "def main():\n    import torch\n    torch.manual_seed(0)\n",
    "import torch\nclass C:\n    def f(self):\n        t = torch\n        t.manual_seed(0)\n",
])
def test_aliases_and_nested_imports_resolve(source: str) -> None:
    facts = index_file("t.py", ast.parse(source))
    assert "torch.manual_seed" in [c.name for c in facts.calls]


def test_attribute_aliases_resolve() -> None:
    facts = index_file("t.py", ast.parse(
        "import torch\nfrom numpy import random as npr\ncudnn = torch.backends.cudnn\n"
        "cudnn.benchmark = True\nnpr.shuffle([1])\n"))
    assert [s.name for s in facts.attribute_sets] == ["torch.backends.cudnn.benchmark"]
    assert "numpy.random.shuffle" in [c.name for c in facts.calls]


def test_a_name_not_imported_does_not_resolve() -> None:
    facts = index_file("t.py", ast.parse("torch.manual_seed(0)\n"))
    assert [c.name for c in facts.calls] == ["?.manual_seed"]  # a method on an unknown value


def test_nested_import_in_one_function_does_not_leak() -> None:
    facts = index_file("t.py", ast.parse(
        "def a():\n    import numpy as np\n\ndef b():\n    np.random.rand(1)\n"))
    assert "numpy.random.rand" not in [c.name for c in facts.calls]


# --- bad input: never crash, never hide a file -----------------------------------------
def test_syntax_error_is_a_finding_and_the_rest_is_audited(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"broken.py": "x = 1\ndef f(:\n",
                               "train.py": "import random\nrandom.random()\n"})
    report = audit_project(root, AuditOptions())
    rules = {(f.rule, f.path, f.line) for f in report.active}
    assert ("RL001", "broken.py", 2) in rules and ("RL401", "train.py", 2) in rules


def test_binary_huge_and_symlink_loops(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"train.py": "print(1)\n", "Dockerfile": "FROM x@sha256:"
                               + "0" * 64 + "\nENV PYTHONHASHSEED=0\n"})
    (root / "model.py").write_bytes(b"\x00\x01binary")
    (root / "requirements.txt").write_bytes(b"\xff\xfe\x00n")
    (root / "data.csv").write_bytes(b"a" * (sources.MAX_BYTES + 1))
    (root / "loop_a").symlink_to("loop_b")
    (root / "loop_b").symlink_to("loop_a")
    (root / "loopdir").symlink_to(".")
    (root / "weights.bin").write_bytes(bytes(range(256)) * 10)
    proc = run_cli("audit", root, "--format", "json")
    assert proc.returncode in (0, 1), proc.stderr
    skipped = {f["path"]: f["message"] for f in _json(proc)["findings"]  # type: ignore[attr-defined]
               if f["rule"] == "RL003"}
    assert set(skipped) == {"model.py", "requirements.txt", "data.csv"}
    assert "binary" in skipped["model.py"] and "limit" in skipped["data.csv"]


def test_a_dockerfile_hadolint_rejects_is_a_finding(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"Dockerfile": "FROM python:3.11@sha256:" + "0" * 64
                               + "\nRUN [ \"unterminated\nFRUM x\n"})
    (root / "Other.dockerfile").write_bytes(b"\x00\xff binary")
    report = audit_project(root, AuditOptions())
    assert {"RL301", "RL003"} <= {f.rule for f in report.active}


def test_unreadable_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_project(tmp_path, {"train.py": "print(1)\n", "secret.txt": "x\n"})
    real = sources._read

    def deny(path: Path) -> bytes:
        if path.name == "secret.txt":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(sources, "_read", deny)
    finding = next(f for f in audit_project(root, AuditOptions()).active if f.rule == "RL002")
    assert finding.path == "secret.txt" and "Permission denied" in finding.message


def test_missing_requirement_include_is_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"requirements.txt": "numpy==1.26.4 --hash=sha256:" + "0" * 64
                               + "\n-r requirements/extra.txt\n-c constraints.txt\n",
                               "constraints.txt": "numpy==1.26.4\n"})
    found = [f for f in audit_project(root, AuditOptions()).active if f.rule == "RL002"]
    assert [(f.path, f.line) for f in found] == [("requirements.txt", 2)]
    assert "requirements/extra.txt" in found[0].message


def test_missing_lock_input_is_reported(tmp_path: Path) -> None:
    """A lock input that does not exist makes the config invalid (exit 2, named); one
    that a lock input includes is RL002 on the -r line (the lock input is kept out of
    the image here, so it is read only as a lock input)."""
    config = 'base = "oci-layout:base:tiny"\n[dependencies]\nrequirements = ["{}"]\n'
    root = write_project(tmp_path, {"reprolock.toml": config.format("deps/extra.in")})
    proc = run_cli("audit", root)
    assert proc.returncode == 2 and "deps/extra.in" in proc.stderr
    (root / "reprolock.toml").write_text(config.format("deps/main.in")
                                         + '[code]\nexclude = ["deps/"]\n')
    (root / "deps").mkdir()
    (root / "deps" / "main.in").write_text("numpy\n-r ../shared.in\n")
    found = [f for f in audit_project(root, AuditOptions()).active if f.rule == "RL002"]
    assert [(f.path, f.line) for f in found] == [("deps/main.in", 2)]
    assert "-r shared.in" in found[0].message


def test_linked_python_files_are_not_hidden(tmp_path: Path) -> None:
    outside = tmp_path / "shared.py"
    outside.write_text("import random\nrandom.random()\n")
    root = write_project(tmp_path, {"src/train.py": "print(1)\n"})
    (root / "train.py").symlink_to("src/train.py")  # audited at its target: no finding
    (root / "shared.py").symlink_to(outside)
    (root / "loop.py").symlink_to("loop.py")
    (root / "data").symlink_to(tmp_path)  # not a source file: a link like any other
    found = {f.path: f.message for f in audit_project(root, AuditOptions()).active
             if f.rule == "RL002"}
    assert set(found) == {"shared.py", "loop.py"}
    assert str(outside) in found["shared.py"] and "does not resolve" in found["loop.py"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads mode-000 files")
def test_mode_000_file_is_reported(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"locked.py": "x = 1\n"})
    (root / "locked.py").chmod(0)
    assert "RL002" in {f.rule for f in audit_project(root, AuditOptions()).active}


def test_missing_hadolint_is_a_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reprolock._internal import proc

    def missing(name: str, *, hint: str) -> str:
        raise ToolError(f"{name} was not found on PATH", hint=hint)

    monkeypatch.setattr(proc, "find_tool", missing)
    root = write_project(tmp_path, {"Dockerfile": "FROM python:latest\nENV PYTHONHASHSEED=0\n"})
    report = audit_project(root, AuditOptions())
    rules = {f.rule for f in report.active}
    assert "RL004" in rules and "RL202" in rules  # the own fallback replaces DL3007


def test_symlinked_project_loop_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    proc = run_cli("audit", tmp_path / "a")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


# --- the file set, the example, the hook -----------------------------------------------
def test_audit_reads_the_same_file_set_as_collect_code(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"train.py": "x\n", "data/a.csv": "1\n", "out/x.txt": "y\n",
                               ".gitignore": "out/\n", "reprolock.lock.json": "{}\n"})
    config = Config(root=root, source=root / "reprolock.toml", data={}, base="x",
                    code_exclude=("data/",))
    assert sources.code_paths(config) == [f.path for f in collect_code(config).files]


def test_examplewrite_project(tmp_path: Path) -> None:
    """fixtures/example audits clean except for its lock, which a fresh clone does not
    have (it is made by 'reprolock lock'; docs/audit.md)."""
    root = tmp_path / "example"
    shutil.copytree(REPO / "fixtures" / "example", root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json*", "reprolock.sbom.*", "outputs"))
    report = audit_project(root, AuditOptions())
    assert [f.rule for f in report.active] == ["RL107"]
    assert report.files_audited >= 5


def test_pre_commit_hook_runs_the_audit(tmp_path: Path) -> None:
    """The hook definition of .pre-commit-hooks.yaml, run by pre-commit offline.

    pre-commit would build a venv from PyPI for 'language: python' with 'repo: <path>',
    so the same entry runs as a 'repo: local' system hook here."""
    pre_commit = require_tool("pre-commit")
    import yaml  # pre-commit depends on PyYAML

    hooks = {h["id"]: h for h in yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text())}
    hook = hooks["reprolock-audit"]
    assert hooks["reprolock-check"]["entry"] == "reprolock lock --check"
    local = {k: v for k, v in hook.items() if k not in ("language", "description")}
    local["language"] = "system"
    root = write_project(tmp_path, {"train.py": "import random\nrandom.random()\n"})
    (root / ".pre-commit-config.yaml").write_text(yaml.safe_dump(
        {"repos": [{"repo": "local", "hooks": [local]}]}))
    # a 'system' hook runs 'reprolock' from PATH, as a user's activated venv provides it
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    for args in (["init", "-q"], ["add", "."]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)
    failing = subprocess.run([pre_commit, "run", "--all-files"], cwd=root, env=env,
                             capture_output=True, text=True, check=False)
    assert failing.returncode == 1 and "RL401" in failing.stdout, failing.stdout
    (root / "train.py").write_text("import random\nrandom.seed(0)\nrandom.random()\n")
    subprocess.run(["git", "add", "."], cwd=root, check=True, capture_output=True)
    passing = subprocess.run([pre_commit, "run", "--all-files"], cwd=root, env=env,
                             capture_output=True, text=True, check=False)
    assert passing.returncode == 0, passing.stdout
