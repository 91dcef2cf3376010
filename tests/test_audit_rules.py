"""Every audit rule fires on its planted hazard and stays silent on the clean twin.

The plain-code rules use tests/audit/cases/RLxxx/{bad,good}, plus variants named
bad-*/good-* (a false negative or a false positive found in review); rules that need a lock, a
config, git or secrets build their projects here (no token-shaped string is committed).
hadolint runs for real.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reprolock.audit.catalog import RULES
from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.model import AuditReport
from tests.support.cli import run_cli

CASES = Path(__file__).resolve().parent / "audit" / "cases"
CASE_RULES = sorted(p.name for p in CASES.glob("RL[0-9][0-9][0-9]") if p.is_dir())
BAD_CASES = sorted(f"{p.parent.name}/{p.name}" for p in CASES.glob("RL*/bad*") if p.is_dir())
GOOD_CASES = sorted(f"{p.parent.name}/{p.name}" for p in CASES.glob("RL*/good*")
                    if p.is_dir())
DIGEST = "0123456789abcdef" * 4
# rules tested by their own functions below (they need more than a folder of files)
BUILT_HERE = {"RL002", "RL003", "RL004", "RL103", "RL104", "RL107", "RL108", "RL203",
              "RL501", "RL502", "RL503", "RL504", "RL601",
              # issue 14's rules: their projects are written by tests/test_audit_v2.py
              "RL005", "RL204", "RL306", "RL307", "RL308", "RL309", "RL310", "RL416",
              "RL417"}


def audit(root: Path, **options: object) -> AuditReport:
    return audit_project(root, AuditOptions(**options))  # type: ignore[arg-type]


def rules_of(report: AuditReport) -> set[str]:
    return {f.rule for f in report.active}


def copy_case(rule: str, kind: str, tmp_path: Path) -> Path:
    root = tmp_path / f"{rule}-{kind}"
    shutil.copytree(CASES / rule / kind, root)  # out of the repository's git work tree
    return root


def test_every_rule_has_a_planted_fixture() -> None:
    assert set(CASE_RULES) | BUILT_HERE == set(RULES)
    assert {c.split("/")[0] for c in BAD_CASES} == {c.split("/")[0] for c in GOOD_CASES} \
        == set(CASE_RULES)


@pytest.mark.parametrize("case", BAD_CASES)
def test_rule_fires_on_its_planted_fixture(case: str, tmp_path: Path) -> None:
    rule, kind = case.split("/")
    report = audit(copy_case(rule, kind, tmp_path))
    fired = [f for f in report.active if f.rule == rule]
    assert fired, f"{rule} did not fire; got {sorted(rules_of(report))}"
    assert all(f.line > 0 for f in fired), "a planted hazard has a line"
    assert all(f.severity == RULES[rule].severity or rule == "RL300" for f in fired)


@pytest.mark.parametrize("case", GOOD_CASES)
def test_rule_is_silent_on_the_clean_twin(case: str, tmp_path: Path) -> None:
    rule, kind = case.split("/")
    report = audit(copy_case(rule, kind, tmp_path))
    assert rule not in rules_of(report), [f for f in report.active if f.rule == rule]


def test_hadolint_findings_keep_hadolints_code(tmp_path: Path) -> None:
    report = audit(copy_case("RL302", "bad", tmp_path))
    (finding,) = [f for f in report.active if f.rule == "RL302"]
    assert finding.tool_code == "DL3008" and "hadolint: DL3008" in finding.message
    assert report.tools["hadolint"].startswith("2.")


# --- projects with a config and a lock -------------------------------------------------
@pytest.fixture
def locked(make_project: Callable[..., Path]) -> Path:
    root = make_project()
    proc = run_cli("lock", "--no-build", "-C", root)
    assert proc.returncode == 0, proc.stderr
    return root


def test_locked_project_is_clean_for_the_lock_rules(locked: Path) -> None:
    assert not rules_of(audit(locked)) & {"RL103", "RL104", "RL107", "RL108"}


def test_import_that_no_locked_distribution_provides(locked: Path) -> None:
    (locked / "train.py").write_text("import tinyml\nimport tinyconfig\n\n\ndef f():\n"
                                     "    import yaml as y\n    return y\n")
    finding = next(f for f in audit(locked).active if f.rule == "RL103")
    assert (finding.path, finding.line) == ("train.py", 6) and "'yaml'" in finding.message


def test_optional_and_own_imports_are_not_unlocked(locked: Path) -> None:
    (locked / "helpers.py").write_text("X = 1\n")
    (locked / "train.py").write_text(
        "import tinyml\nimport tinyconfig\nimport helpers\nimport json\n"
        "try:\n    import yaml\nexcept ImportError:\n    yaml = None\n")
    assert "RL103" not in rules_of(audit(locked))


def test_direct_dependency_never_imported(locked: Path) -> None:
    (locked / "train.py").write_text("import tinyconfig\n")
    finding = next(f for f in audit(locked).active if f.rule == "RL104")
    assert finding.severity.value == "info"
    assert (finding.path, finding.line) == ("requirements.in", 1)
    assert "tinyml" in finding.message


def test_lock_missing(make_project: Callable[..., Path]) -> None:
    finding = next(f for f in audit(make_project()).active if f.rule == "RL107")
    assert finding.path == "reprolock.toml"


def test_lock_stale(locked: Path) -> None:
    (locked / "requirements.in").write_text("tinyml\ntinyconfig\n")
    finding = next(f for f in audit(locked).active if f.rule == "RL108")
    assert finding.path == "reprolock.lock.json" and "requirements.in" in finding.message


def test_lock_stale_says_what_lock_check_says(locked: Path) -> None:
    """RL108 is the lock's own freshness check, not a second computation of it."""
    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.lock.check import check_lock

    (locked / "requirements.in").write_text("tinyml\ntinyconfig\n")
    outcome = check_lock(load_config(locked), cache_dir=default_cache_dir())
    (finding,) = [f for f in audit(locked).active if f.rule == "RL108"]
    assert not outcome.fresh
    assert finding.message == f"the lock is stale ({'; '.join(outcome.changes)}): " \
        "run 'reprolock lock'"


@pytest.mark.parametrize(("text", "absent"), [
    # an ARG without a default is a build-time value, not an empty image name or tag
    ("ARG BASE\nFROM ${BASE}\nENV PYTHONHASHSEED=0\n", "RL202"),
    ("ARG TAG\nFROM python:${TAG}\nENV PYTHONHASHSEED=0\n", "RL201"),
    # a comment or an empty line inside a continuation does not end the instruction
    ("FROM python:3.11@sha256:" + DIGEST + "\nENV PYTHONHASHSEED=0\n"
     "RUN pip install \\\n    # pinned by hash\n\n    --require-hashes -r r.txt\n", "RL305"),
])
def test_dockerfile_forms_the_build_reads_alike(tmp_path: Path, text: str,
                                                absent: str) -> None:
    (tmp_path / "Dockerfile").write_text(text)
    assert absent not in rules_of(audit(tmp_path, hadolint=False))


def test_lock_inputs_may_hold_ranges(locked: Path) -> None:
    """requirements.in feeds the lock: RL101/RL102 do not apply to it."""
    assert not rules_of(audit(locked)) & {"RL101", "RL102"}


@pytest.mark.parametrize(("base", "rule"), [
    ("python:3.11-slim", "RL203"),
    ("python:latest", "RL202"),
    ("python", "RL202"),
])
def test_config_base_by_tag(make_project: Callable[..., Path], base: str, rule: str) -> None:
    root = make_project()
    config = root / "reprolock.toml"
    text = config.read_text()
    config.write_text(f'base = "{base}"\n' + text.split("\n", 1)[1])
    finding = next(f for f in audit(root).active if f.rule == rule)
    assert (finding.path, finding.line) == ("reprolock.toml", 1)
    pinned = f'base = "{base.split(":")[0]}:3.11@sha256:{DIGEST}"\n' + text.split("\n", 1)[1]
    config.write_text(pinned)
    assert not rules_of(audit(root)) & {"RL202", "RL203"}


def test_config_pythonhashseed(make_project: Callable[..., Path]) -> None:
    root = make_project(extra='[image]\nenv = { PYTHONHASHSEED = "random" }')
    assert "RL602" in rules_of(audit(root))
    root2 = make_project(extra='[image]\nenv = { PYTHONHASHSEED = "0" }', name="fixed")
    assert "RL602" not in rules_of(audit(root2))


def test_cublas_set_in_image_env_counts(make_project: Callable[..., Path]) -> None:
    root = make_project(extra='[image]\nenv = { CUBLAS_WORKSPACE_CONFIG = ":4096:8" }')
    shutil.copy(CASES / "RL410" / "bad" / "train.py", root / "train.py")
    assert "RL410" not in rules_of(audit(root))
    (root / "reprolock.toml").write_text((root / "reprolock.toml").read_text().replace(
        "CUBLAS_WORKSPACE_CONFIG", "OTHER"))
    assert "RL410" in rules_of(audit(root))


# --- secrets: made here, never committed ----------------------------------------------
def _secret_token() -> str:
    return "ghp_" + "R3pr0L0ck" * 4  # the GitHub token shape, 36 characters after ghp_


SECRETS = {
    "RL501": (".env", "API_KEY=s3cr3t\n", ".env.example"),
    "RL502": ("deploy/key.pem", "-----BEGIN " + "OPENSSH PRIVATE KEY-----\nAAAA\n"
              "-----END OPENSSH PRIVATE KEY-----\n", "deploy/key.pub"),
    "RL503": (".aws/credentials", "[default]\naws_access_key_id = x\n"
              "aws_secret_access_key = y\n", ".aws/config.example"),
    "RL504": ("settings.py", f'TOKEN = "{_secret_token()}"\n', "settings_example.py"),
}


@pytest.mark.parametrize("rule", sorted(SECRETS))
def test_secret_in_the_code_set(rule: str, tmp_path: Path) -> None:
    path, text, harmless = SECRETS[rule]
    bad = tmp_path / "bad"
    (bad / path).parent.mkdir(parents=True)
    (bad / path).write_text(text)
    report = audit(bad)
    findings = [f for f in report.active if f.rule == rule]
    assert findings and findings[0].path == path
    assert all("s3cr3t" not in f.message and _secret_token() not in f.message
               for f in report.findings), "a secret value was printed"
    good = tmp_path / "good"
    (good / harmless).parent.mkdir(parents=True)
    (good / harmless).write_text("API_KEY=\nTOKEN = os.environ['TOKEN']\n")
    assert rule not in rules_of(audit(good))


def test_secret_outside_the_code_set_is_not_reported(tmp_path: Path) -> None:
    (tmp_path / ".dockerignore").write_text(".env\n")
    (tmp_path / ".env").write_text("API_KEY=s3cr3t\n")
    assert "RL501" not in rules_of(audit(tmp_path))


def test_secret_value_never_reaches_any_output(tmp_path: Path) -> None:
    (tmp_path / "settings.py").write_text(f'TOKEN = "{_secret_token()}"\n')
    for fmt in ("text", "json", "sarif"):
        proc = run_cli("audit", tmp_path, "--format", fmt)
        assert proc.returncode == 1
        assert _secret_token() not in proc.stdout + proc.stderr
        assert "RL504" in proc.stdout


# --- git --------------------------------------------------------------------------------
def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), "-c", "user.email=t@t", "-c", "user.name=t",
                    *args], check=True, capture_output=True)


def test_git_dirty_tree(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text("print('hi')\n")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "init")
    assert "RL601" not in rules_of(audit(tmp_path))
    (tmp_path / "train.py").write_text("print('changed')\n")
    finding = next(f for f in audit(tmp_path).active if f.rule == "RL601")
    assert finding.severity.value == "info" and finding.path == "train.py"


# --- findings from review: messages, counts and severities ------------------------------
def test_first_use_counts_the_files_of_the_other_uses(tmp_path: Path) -> None:
    # modules without an entry point are judged together (scripts each on their own)
    (tmp_path / "a.py").write_text("import random\n\ndef f():\n    random.random()\n")
    (tmp_path / "b.py").write_text("import random\n\ndef g():\n    random.random()\n"
                                   "    random.shuffle([])\n")
    (finding,) = [f for f in audit(tmp_path).active if f.rule == "RL401"]
    assert finding.path == "a.py" and finding.message.endswith("(2 more uses in 1 file)")


def test_cudnn_deterministic_alone_has_its_own_message(tmp_path: Path) -> None:
    (finding,) = [f for f in audit(copy_case("RL408", "bad-cudnn-only", tmp_path)).active
                  if f.rule == "RL408"]
    assert finding.line == 6 and "only cuDNN's convolutions" in finding.message


def test_downloads_whose_bytes_are_saved_are_each_reported(tmp_path: Path) -> None:
    report = audit(copy_case("RL413", "bad-verify-by-name", tmp_path))
    assert sorted(f.line for f in report.active if f.rule == "RL413") == [11, 19, 27]


@pytest.mark.parametrize("name", ["args.model_name_or_path", "MODELS[size]",
                                  'f"{org}/{name}"'])
def test_a_model_name_from_a_variable_is_a_warning(tmp_path: Path, name: str) -> None:
    (tmp_path / "model.py").write_text(
        f"from transformers import AutoModel\n\nmodel = AutoModel.from_pretrained({name})\n")
    (finding,) = [f for f in audit(tmp_path).active if f.rule == "RL415"]
    assert finding.severity.value == "warning" and "cannot tell" in finding.message
    (tmp_path / "model.py").write_text(
        "from transformers import AutoModel\n\n"
        f"model = AutoModel.from_pretrained({name}, revision=args.revision)\n")
    assert "RL415" not in rules_of(audit(tmp_path))


def test_a_data_folder_does_not_hide_the_datasets_distribution(locked: Path) -> None:
    """datasets/ holds data and a script in a sub-folder: it is not an importable
    module, so 'import datasets' is Hugging Face's, which the lock does not provide."""
    (locked / "datasets" / "raw").mkdir(parents=True)
    (locked / "datasets" / "raw" / "prepare.py").write_text("print('split')\n")
    (locked / "datasets" / "train.csv").write_text("a,b\n")
    (locked / "train.py").write_text("import tinyml\nimport tinyconfig\nimport datasets\n")
    finding = next(f for f in audit(locked).active if f.rule == "RL103")
    assert (finding.path, finding.line) == ("train.py", 3) and "'datasets'" in finding.message
    (locked / "datasets" / "__init__.py").write_text("")  # now it is the project's own
    assert "RL103" not in rules_of(audit(locked))
