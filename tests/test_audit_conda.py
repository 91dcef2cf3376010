"""Conda environment files (environment.yml, conda.yaml): read with a YAML parser, each
conda dependency judged by RL309 and each entry of the ``pip:`` list judged as the same
line of a requirement file is (RL101, RL102, RL105, RL106, RL310), at its own line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.model import AuditReport
from reprolock.audit.rules import conda
from reprolock.audit.shell import conda_pinned
from tests.support.projects import write_project

COMMIT = "0123456789abcdef0123456789abcdef01234567"
ENVIRONMENT = """\
name: ldm
channels:
  - pytorch
  - defaults
dependencies:
  - python=3.8.5
  - pytorch=2.*
  - numpy
  - scipy>=1.8
  - conda-forge::pillow=10.2.0
  - cudatoolkit 11.3.*
  - pip:
    - diffusers
    - einops==0.3.0
    - -e git+https://github.com/CompVis/taming-transformers.git@master#egg=taming
    - -e .
    - --extra-index-url https://download.pytorch.org/whl/nightly/cu121
"""


def audit(root: Path) -> AuditReport:
    return audit_project(root, AuditOptions(hadolint=False))


def placed(report: AuditReport) -> list[tuple[str, str, int]]:
    return sorted((f.rule, f.path, f.line) for f in report.active
                  if f.rule.startswith(("RL1", "RL3")))


def test_every_hazard_of_an_environment_file_is_at_its_line(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"environment.yaml": ENVIRONMENT})
    path = "environment.yaml"
    assert placed(audit(root)) == [
        ("RL101", path, 13), ("RL102", path, 14), ("RL105", path, 15), ("RL106", path, 16),
        ("RL309", path, 7), ("RL309", path, 8), ("RL309", path, 9), ("RL309", path, 11),
        ("RL310", path, 17)]


def test_an_environment_file_is_read_not_named_as_unread(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"environment.yml": ENVIRONMENT, "b/conda.yaml": ENVIRONMENT})
    report = audit(root)
    assert not [f for f in report.active if f.rule == "RL005"], report.active
    assert {f.path for f in report.active if f.rule == "RL309"} == {"environment.yml",
                                                                     "b/conda.yaml"}


def test_a_pinned_environment_file_is_clean(tmp_path: Path) -> None:
    text = ("channels: [conda-forge, pytorch-nightly]\ndependencies:\n  - python=3.11\n"
            "  - pytorch==2.1.0\n  - numpy=1.26.4=py311h_0\n  - cuda 12.1.0\n  - pip:\n"
            f"    - einops==0.7.0 --hash=sha256:{'0' * 64}\n"
            f"    - clip @ git+https://github.com/openai/CLIP.git@{COMMIT}\n")
    root = write_project(tmp_path, {"environment.yml": text})
    assert placed(audit(root)) == []


@pytest.mark.parametrize("text", [
    "dependencies:\n  - numpy\n   - bad: [\n",  # a YAML syntax error
    "dependencies: " + "[" * 2000 + "]" * 2000 + "\n",  # nested past any sane depth
    "\tdependencies:\n - x\n",
])
def test_a_malformed_environment_file_is_rl003_not_a_crash(tmp_path: Path, text: str) -> None:
    root = write_project(tmp_path, {"environment.yml": text})
    report = audit(root)
    (finding,) = [f for f in report.active if f.rule == "RL003"]
    assert finding.path == "environment.yml" and finding.severity.value == "info"
    assert "YAML" in finding.message


def test_a_large_environment_file_is_not_parsed(tmp_path: Path) -> None:
    text = "dependencies:\n" + "  - numpy\n" * 40_000  # 440 kB, over the YAML limit
    root = write_project(tmp_path, {"environment.yml": text})
    report = audit(root)
    assert "RL309" not in {f.rule for f in report.active}
    (finding,) = [f for f in report.active if f.rule == "RL003"]
    assert "limit" in finding.message


@pytest.mark.parametrize("text", ["", "name: x\n", "- a\n- b\n", "dependencies: numpy\n",
                                  "dependencies:\n  - 3\n  - {pip: numpy}\n  - [x]\n"])
def test_an_environment_file_without_a_dependency_list(tmp_path: Path, text: str) -> None:
    root = write_project(tmp_path, {"environment.yml": text})
    report = audit(root)
    assert not [f for f in report.active if f.rule in ("RL003", "RL309", "RL101")], \
        report.active


@pytest.mark.parametrize(("spec", "pinned"), [
    ("numpy", False), ("pytorch=2.*", False), ("python>=3.8", False), ("numpy=1.*", False),
    ("numpy 1.2.*", False), ("numpy >=1.2,<2", False), ("numpy=1.2|1.3", False),
    ("numpy~=1.2", False), ("numpy!=1.2", False), ("numpy[version='>=1.2']", False),
    ("python=3.10", True), ("numpy==1.26.4", True), ("numpy=1.26.4=py311_0", True),
    ("conda-forge::numpy=1.26.4", True), ("numpy 1.26.4", True),
    ("numpy 1.26.4 py311_0", True), ("numpy[version='1.26.4']", True),
])
def test_what_a_conda_spec_pins(spec: str, pinned: bool) -> None:
    assert conda_pinned(spec) is pinned


def test_a_wildcard_in_a_conda_install_is_not_a_pin(tmp_path: Path) -> None:
    """``conda install pytorch=2.*`` installs any 2.x: the same hazard as in a file."""
    root = write_project(tmp_path, {"setup.sh": "conda install -y pytorch=2.* numpy=1.26\n"})
    hits = [f for f in audit(root).active if f.rule == "RL309"]
    assert [f.line for f in hits] == [1] and "pytorch=2.*" in hits[0].message
    assert "numpy" not in hits[0].message


def test_a_pip_range_is_rl101_at_its_line(tmp_path: Path) -> None:
    root = write_project(tmp_path, {"environment.yml": "dependencies:\n  - pip:\n"
                                                       "    - torch>=2\n"})
    (finding,) = [f for f in audit(root).active if f.rule == "RL101"]
    assert finding.line == 3 and "torch" in finding.message


def test_without_pyyaml_the_file_is_named_as_not_read(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML is not a dependency of reprolock yet: the file is never skipped silently."""
    monkeypatch.setattr(conda, "_yaml", lambda: None)
    root = write_project(tmp_path, {"environment.yml": ENVIRONMENT})
    report = audit(root)
    assert [f.path for f in report.active if f.rule == "RL005"] == ["environment.yml"]
    assert "RL309" not in {f.rule for f in report.active}
