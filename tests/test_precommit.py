"""The pre-commit hook from a .pre-commit-config.yaml in a scratch repository, offline:
passes on a fresh lock, fails on a stale one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.buildproject import copy_project
from tests.support.services import find_tool, require_tool

REPO = Path(__file__).resolve().parent.parent
LOCAL_HOOK = """repos:
  - repo: local
    hooks:
      - id: reprolock-check
        name: reprolock lock is fresh
        entry: {python} -m reprolock lock --check
        language: system
        pass_filenames: false
        always_run: true
"""


def git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True,
                   env={**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"})


@pytest.fixture
def scratch(build_project_template: Path, tmp_path: Path) -> Path:
    require_tool("git")
    root = copy_project(build_project_template, tmp_path / "repo")
    (root / ".pre-commit-config.yaml").write_text(LOCAL_HOOK.format(python=sys.executable))
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "scratch")
    return root


def pre_commit(root: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    binary = find_tool("pre-commit")
    argv = [binary] if binary else [sys.executable, "-m", "pre_commit"]
    env = {**os.environ, "PRE_COMMIT_HOME": str(tmp_path / "pc-home"),
           "REPROLOCK_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": str(REPO)}
    return subprocess.run([*argv, "run", "--all-files"], cwd=root, capture_output=True,
                          text=True, env=env, check=False)


def test_hook_passes_on_a_fresh_lock_and_fails_on_a_stale_one(scratch: Path,
                                                              tmp_path: Path) -> None:
    ok = pre_commit(scratch, tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "reprolock lock is fresh" in ok.stdout and "Passed" in ok.stdout
    (scratch / "requirements.in").write_text("tinyml\n")
    stale = pre_commit(scratch, tmp_path)
    assert stale.returncode == 1
    assert "Failed" in stale.stdout and "requirements.in" in stale.stdout


def test_hook_definition_runs_lock_check() -> None:
    """What .pre-commit-hooks.yaml offers is the command the local hook above runs."""
    text = (REPO / ".pre-commit-hooks.yaml").read_text()
    assert "id: reprolock-check" in text and "entry: reprolock lock --check" in text
