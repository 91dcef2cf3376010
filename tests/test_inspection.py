"""The code file set, its tree digest, git state, and the imports found in the code."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reprolock.config import Config
from reprolock.inspection.codeset import CodeSet, collect_code, tree_digest
from reprolock.inspection.imports import ImportReport, scan_imports, unprovided

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No repository above tmp_path, and no user or system git configuration."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    yield


def config(root: Path, **settings: Any) -> Config:
    return Config(root=root.resolve(), source=root.resolve() / "reprolock.toml", data={},
                  base="img:1", **settings)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def collect(root: Path, **settings: Any) -> CodeSet:
    return collect_code(config(root, **settings))


def paths(code: CodeSet) -> list[str]:
    return [f.path for f in code.files]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=t",
                           "-c", "init.defaultBranch=main", "-C", str(root), *args],
                          capture_output=True, text=True, check=True)
    return done.stdout


TREE = {
    "train.py": "import tinyml\nprint('train')\n",
    "pkg/__init__.py": "",
    "pkg/model.py": "X = 1\n",
    "configs/base.yaml": "lr: 0.1\n",
    "README.md": "# project\n",
}


# --- the tree digest -----------------------------------------------------------------


def test_file_list_is_sorted_and_described(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    (root / "run.sh").write_text("#!/bin/sh\n")
    (root / "run.sh").chmod(0o755)
    code = collect(root)
    assert paths(code) == sorted([*TREE, "run.sh"])
    by_path = {f.path: f for f in code.files}
    assert by_path["run.sh"].executable and by_path["run.sh"].mode == "100755"
    assert not by_path["train.py"].executable and by_path["train.py"].mode == "100644"
    assert by_path["train.py"].size == len(TREE["train.py"])
    assert code.total_size == sum(len(t) for t in TREE.values()) + len("#!/bin/sh\n")
    assert code.tree_digest.startswith("sha256:") and len(code.tree_digest) == 71
    assert code.git is None and code.untracked == ()


def test_digest_ignores_mtimes(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root).tree_digest
    for i, path in enumerate(sorted(root.rglob("*"))):
        os.utime(path, (1_000_000 + i, 2_000_000 + 7 * i))
    assert collect(root).tree_digest == before


def test_digest_ignores_creation_order(tmp_path: Path) -> None:
    first = write(tmp_path / "a", TREE)
    second = write(tmp_path / "b", dict(reversed(list(TREE.items()))))
    assert paths(collect(first)) == paths(collect(second))
    assert collect(first).tree_digest == collect(second).tree_digest


def test_digest_ignores_where_the_tree_is(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    moved = tmp_path / "elsewhere" / "deeper" / "copy"
    shutil.copytree(root, moved)
    assert collect(moved).tree_digest == collect(root).tree_digest


def test_digest_ignores_empty_directories(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root).tree_digest
    (root / "outputs" / "empty").mkdir(parents=True)
    assert collect(root).tree_digest == before


def test_digest_follows_content(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root).tree_digest
    (root / "configs/base.yaml").write_text("lr: 0.2\n")
    changed = collect(root).tree_digest
    assert changed != before
    (root / "configs/base.yaml").write_text("lr: 0.1\n")
    assert collect(root).tree_digest == before


def test_digest_follows_the_exec_bit(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root).tree_digest
    (root / "train.py").chmod(0o755)
    assert collect(root).tree_digest != before
    (root / "train.py").chmod(0o644)
    assert collect(root).tree_digest == before


def test_digest_follows_a_rename(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root)
    (root / "pkg/model.py").rename(root / "pkg/models.py")
    after = collect(root)
    assert after.tree_digest != before.tree_digest
    assert sorted(f.sha256 for f in after.files) == sorted(f.sha256 for f in before.files)


def test_digest_follows_an_added_file(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    before = collect(root).tree_digest
    (root / "notes.txt").write_text("")
    assert collect(root).tree_digest != before


def test_tree_digest_does_not_depend_on_the_order_given(tmp_path: Path) -> None:
    files = collect(write(tmp_path / "p", TREE)).files
    assert tree_digest(reversed(files)) == tree_digest(files)


def test_symlinks_are_entries_not_followed(tmp_path: Path) -> None:
    root = write(tmp_path / "p", TREE)
    (root / "latest.yaml").symlink_to("configs/base.yaml")
    (root / "conf").symlink_to("configs", target_is_directory=True)
    code = collect(root)
    by_path = {f.path: f for f in code.files}
    assert by_path["latest.yaml"].link_target == "configs/base.yaml"
    assert by_path["latest.yaml"].mode == "120000"
    assert by_path["conf"].link_target == "configs"
    assert not any(p.startswith("conf/") for p in by_path)  # the link is not followed
    (root / "latest.yaml").unlink()
    (root / "latest.yaml").symlink_to("configs/other.yaml")
    assert collect(root).tree_digest != code.tree_digest


# --- what is left out ----------------------------------------------------------------


def test_default_excludes(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {
        **TREE,
        ".git/junk": "x",  # not a repository: no HEAD
        "pkg/__pycache__/model.cpython-311.pyc": "x",
        "stray.pyc": "x",
        "pkg/deep/old.pyc": "x",
        ".venv/lib/site.py": "x",
        "venv/bin/activate": "x",
        ".mypy_cache/x.json": "x",
        ".pytest_cache/v": "x",
        "proj.egg-info/PKG-INFO": "x",
        ".reprolock/cache": "x",
        ".DS_Store": "x",
        "reprolock.lock.json": "{}",
    })
    assert paths(collect(root)) == sorted(TREE)


def test_custom_lockfile_is_excluded(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**TREE, "locks/train.lock.json": "{}",
                                  "reprolock.lock.json": "{}"})
    assert "locks/train.lock.json" not in paths(collect(root, lockfile="locks/train.lock.json"))
    assert "reprolock.lock.json" in paths(collect(root, lockfile="locks/train.lock.json"))


def test_config_excludes_and_includes(tmp_path: Path) -> None:
    # ("outputs/" is excluded already: it is where 'reprolock run' writes)
    root = write(tmp_path / "p", {**TREE, "results/run1/metrics.json": "{}"})
    assert "results/run1/metrics.json" in paths(collect(root))
    assert "results/run1/metrics.json" not in paths(collect(root, code_exclude=("results/",)))
    included = paths(collect(root, code_include=("*.py",)))
    assert included == ["pkg/__init__.py", "pkg/model.py", "train.py"]
    code = collect_code(config(root), extra_excludes=["*.md"])
    assert "README.md" not in paths(code)


@pytest.mark.parametrize("ignore_file", [".gitignore", ".dockerignore", ".reprolockignore"])
def test_ignore_files_outside_git(tmp_path: Path, ignore_file: str) -> None:
    root = write(tmp_path / "p", {**TREE, "data/train.bin": "x", "ckpt/a.ckpt": "x",
                                  "keep.ckpt": "x", "secret.env": "x",
                                  ignore_file: "data/\n*.ckpt\n!keep.ckpt\nsecret.env\n"})
    chosen = paths(collect(root))
    assert "data/train.bin" not in chosen
    assert "ckpt/a.ckpt" not in chosen
    assert "secret.env" not in chosen
    assert "keep.ckpt" in chosen
    assert ignore_file in chosen  # the ignore file itself is code
    assert set(TREE) <= set(chosen)


def test_ignore_files_add_up(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**TREE, "a.log": "", "b.tmp": "", "c.bak": "",
                                  ".gitignore": "*.log\n", ".dockerignore": "*.tmp\n",
                                  ".reprolockignore": "*.bak\n"})
    chosen = paths(collect(root))
    assert not {"a.log", "b.tmp", "c.bak"} & set(chosen)


# --- in a git work tree --------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write(tmp_path / "repo", {**TREE, ".gitignore": "data/\n*.log\n"})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "first")
    return root


@needs_git
def test_git_only_tracked_files(repo: Path) -> None:
    write(repo, {"scratch.py": "import torch\n", "data/x.bin": "x", "run.log": "x"})
    code = collect(repo)
    assert paths(code) == sorted([*TREE, ".gitignore"])
    assert code.git is not None
    assert code.git.commit == git(repo, "rev-parse", "HEAD").strip()
    assert code.git.dirty is False  # untracked files do not make it dirty


@needs_git
def test_git_tracked_file_is_in_even_when_ignored(repo: Path) -> None:
    write(repo, {"data/labels.csv": "a,b\n"})
    git(repo, "add", "-f", "data/labels.csv")
    git(repo, "commit", "-q", "-m", "labels")
    assert "data/labels.csv" in paths(collect(repo))


@needs_git
def test_git_dirty_state(repo: Path) -> None:
    (repo / "train.py").write_text("changed\n")
    code = collect(repo)
    assert code.git is not None and code.git.dirty is True
    git(repo, "commit", "-q", "-am", "second")
    code = collect(repo)
    assert code.git is not None and code.git.dirty is False
    assert code.git.commit == git(repo, "rev-parse", "HEAD").strip()


@needs_git
def test_git_deleted_tracked_file_is_left_out(repo: Path) -> None:
    (repo / "README.md").unlink()
    code = collect(repo)
    assert "README.md" not in paths(code)
    assert code.git is not None and code.git.dirty is True


@needs_git
def test_git_repository_without_commits(tmp_path: Path) -> None:
    root = write(tmp_path / "new", TREE)
    git(root, "init", "-q")
    git(root, "add", "train.py")
    code = collect(root)
    assert paths(code) == ["train.py"]
    assert code.git is not None and code.git.commit is None
    assert "README.md" in code.untracked


@needs_git
def test_git_and_plain_tree_digest_agree(repo: Path, tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    shutil.copytree(repo, plain, ignore=shutil.ignore_patterns(".git"))
    in_git, outside = collect(repo), collect(plain)
    assert outside.git is None
    assert paths(in_git) == paths(outside)
    assert in_git.tree_digest == outside.tree_digest


@needs_git
def test_git_exec_bit_and_content_change_the_digest(repo: Path) -> None:
    before = collect(repo).tree_digest
    (repo / "train.py").chmod(0o755)
    executable = collect(repo).tree_digest
    assert executable != before
    (repo / "train.py").chmod(0o644)
    (repo / "train.py").write_text("other\n")
    assert collect(repo).tree_digest not in (before, executable)


@needs_git
def test_git_project_in_a_subdirectory(tmp_path: Path) -> None:
    top = write(tmp_path / "mono", {"other/x.py": "", "ml/train.py": "", "ml/lib/a.py": ""})
    git(top, "init", "-q")
    git(top, "add", "-A")
    git(top, "commit", "-q", "-m", "c")
    write(top, {"ml/new.py": "", "other/new.py": ""})
    code = collect(top / "ml")
    assert paths(code) == ["lib/a.py", "train.py"]
    assert code.untracked == ("new.py",)
    assert code.git is not None and code.git.commit is not None


@needs_git
def test_untracked_files(repo: Path) -> None:
    write(repo, {
        "scratch.py": "",
        "pkg/new_layer.py": "",
        "data/x.bin": "",             # ignored by .gitignore
        "run.log": "",                # ignored by .gitignore
        "pkg/__pycache__/a.pyc": "",  # a default exclude
        "outputs/m.json": "",         # a config exclude
        "reprolock.lock.json": "{}",  # the lock file
    })
    code = collect(repo, code_exclude=("outputs/",))
    assert code.untracked == ("pkg/new_layer.py", "scratch.py")
    assert not set(code.untracked) & set(paths(code))
    only_py = collect(repo, code_include=("*.py",), code_exclude=("outputs/",))
    assert only_py.untracked == ("pkg/new_layer.py", "scratch.py")
    only_yaml = collect(repo, code_include=("*.yaml",))
    assert only_yaml.untracked == ()


@needs_git
def test_untracked_is_empty_when_everything_is_committed(repo: Path) -> None:
    assert collect(repo).untracked == ()
    write(repo, {"new.py": ""})
    assert collect(repo).untracked == ("new.py",)
    git(repo, "add", "new.py")
    code = collect(repo)
    assert code.untracked == ()
    assert "new.py" in paths(code)


def test_untracked_is_empty_outside_git(tmp_path: Path) -> None:
    assert collect(write(tmp_path / "p", TREE)).untracked == ()


# --- imports -------------------------------------------------------------------------


def scan(root: Path, files: dict[str, str], **settings: Any) -> ImportReport:
    write(root, files)
    return scan_imports(root.resolve(), collect(root, **settings))


def modules(report: ImportReport) -> set[str]:
    return set(report.third_party())


def test_import_forms(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {"train.py": (
        "import numpy.linalg as la\n"
        "from torch.nn import functional as F\n"
        "import yaml, requests\n"
        "from . import sibling\n"
        "from .models import net\n"
        "from .. import up\n"
        "import os, json, collections.abc\n"
        "from __future__ import annotations\n"
        "import __main__\n"
        "def lazy():\n"
        "    import scipy.stats\n"
    )})
    assert modules(report) == {"numpy", "torch", "yaml", "requests", "scipy"}
    sites = report.third_party()
    assert [(s.path, s.line) for s in sites["numpy"]] == [("train.py", 1)]
    assert [(s.path, s.line) for s in sites["torch"]] == [("train.py", 2)]
    assert sites["scipy"][0].line == 11
    assert all(not s.optional for s in report.sites)


def test_own_modules_are_not_third_party(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {
        "train.py": ("import utils\nimport mypkg.layers\nfrom corelib import thing\n"
                     "import common\nimport tinyml\n"),
        "utils.py": "",
        "mypkg/__init__.py": "",
        "mypkg/layers.py": "",
        "src/corelib/__init__.py": "",
        "scripts/common.py": "",
        "scripts/run.py": "import common\nimport helpers\n",
        "scripts/helpers.py": "",
    })
    assert modules(report) == {"tinyml"}
    assert {"utils", "mypkg", "corelib", "common", "helpers"} <= set(report.own_modules)
    assert list(report.own_modules) == sorted(report.own_modules)


def test_a_module_inside_a_package_does_not_hide_a_distribution(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {
        "train.py": "import datasets\nimport wandb\n",
        "mydata/__init__.py": "",
        "mydata/datasets.py": "import datasets\n",
        "src/mylib/__init__.py": "",
        "src/mylib/wandb.py": "",
    })
    assert modules(report) == {"datasets", "wandb"}
    assert "mydata" in report.own_modules and "mylib" in report.own_modules


def test_a_data_folder_does_not_hide_a_distribution(tmp_path: Path) -> None:
    """``datasets/`` holding only deeper, non-package scripts is no importable module."""
    report = scan(tmp_path / "p", {
        "train.py": "import datasets\n",
        "datasets/raw/prepare.py": "",
    })
    assert modules(report) == {"datasets"}
    assert "datasets" not in report.own_modules and "prepare" in report.own_modules


def test_optional_imports(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {"train.py": (
        "try:\n"
        "    import ujson as json\n"                    # 2: optional
        "except ImportError:\n"
        "    import simplejson as json\n"               # 4: the fallback is required
        "try:\n"
        "    from apex import amp\n"                    # 6: optional
        "except (ModuleNotFoundError, AttributeError):\n"
        "    amp = None\n"
        "try:\n"
        "    import wandb\n"                            # 10: not about imports
        "except ValueError:\n"
        "    pass\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    import pandas\n"                           # 15: only for type checkers
        "import typing\n"
        "if typing.TYPE_CHECKING:\n"
        "    import polars\n"                           # 18
        "else:\n"
        "    import pyarrow\n"                          # 20: at run time
    )})
    optional = {s.module: s.optional for s in report.sites}
    assert optional == {"ujson": True, "simplejson": False, "apex": True, "wandb": False,
                        "pandas": True, "polars": True, "pyarrow": False}


def test_syntax_error_is_reported_and_the_rest_scanned(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {
        "a_broken.py": "import torch\n\ndef f(:\n    pass\n",
        "b_fine.py": "import numpy\n",
        "c_nul.py": "import x\0\n",
        "d_fine.py": "import yaml\n",
    })
    assert modules(report) == {"numpy", "yaml"}
    errors = {path: (line, msg) for path, line, msg in report.syntax_errors}
    assert set(errors) == {"a_broken.py", "c_nul.py"}
    assert errors["a_broken.py"][0] == 3
    assert errors["a_broken.py"][1]


def test_excluded_files_are_not_scanned(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {
        "train.py": "import numpy\n",
        ".venv/lib/site.py": "import leaked\n",
        "notebooks/x.py": "import matplotlib\n",
    }, code_exclude=("notebooks/",))
    assert modules(report) == {"numpy"}


def test_unprovided(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {
        "a.py": "import numpy\nimport torch\n",
        "b.py": ("try:\n    import ujson\nexcept ImportError:\n    ujson = None\n"
                 "try:\n    import yaml\nexcept ImportError:\n    pass\n"),
        "c.py": "def late():\n    import yaml\n\nimport torch.nn\n",
    })
    missing = unprovided(report, {"numpy": "numpy"})
    by_module = {m.module: m.first for m in missing}
    assert set(by_module) == {"torch", "yaml"}  # ujson is only imported optionally
    assert (by_module["torch"].path, by_module["torch"].line) == ("a.py", 2)
    assert (by_module["yaml"].path, by_module["yaml"].line) == ("c.py", 2)
    assert not by_module["yaml"].optional
    assert [m.module for m in missing] == sorted(m.module for m in missing)
    assert unprovided(report, {"numpy": "numpy", "torch": "torch", "yaml": "PyYAML"}) == []


def test_first_site_is_the_earliest_line(tmp_path: Path) -> None:
    report = scan(tmp_path / "p", {"train.py": (
        "def f():\n    import torch\n\n\n\nimport torch\n")})
    assert [s.line for s in report.third_party()["torch"]] == [2, 6]
    assert unprovided(report, {})[0].first.line == 2


def test_symlinked_python_files_are_not_scanned_twice(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"train.py": "import numpy\n"})
    (root / "alias.py").symlink_to("train.py")
    report = scan_imports(root.resolve(), collect(root))
    assert [s.path for s in report.sites] == ["train.py"]


def test_the_audit_indexes_the_same_import_sites(tmp_path: Path) -> None:
    """One scanner (issue 12): the audit's index holds the sites init and lock find."""
    import ast

    from reprolock.audit.pyindex import index_file
    from reprolock.inspection.imports import import_sites

    source = ("import os, torch.nn as nn\ntry:\n    import ujson\nexcept ImportError:\n"
              "    pass\nclass A:\n    def f(self):\n        from numpy import random\n"
              "        from . import sibling\n")
    tree = ast.parse(source)
    sites = import_sites(tree, "t.py")
    assert [(s.module, s.line, s.optional) for s in sites] == [
        ("os", 1, False), ("torch", 1, False), ("ujson", 3, True), ("numpy", 8, False)]
    assert index_file("t.py", tree).imports == sites


# --- the Dockerfile parser (init's base and command, the audit's stages) -------------


def test_dockerfile_instructions_keep_their_lines() -> None:
    from reprolock.inspection.dockerfile import parse_dockerfile

    text = ("# syntax=docker/dockerfile:1\nFROM python:3.11\nRUN pip install \\\n"
            "    # a comment inside the continuation\n\n    numpy\n"
            "RUN <<EOF\necho hi\nEOF\nCMD\t[\"python\"]\n")
    found = [(i.keyword, i.args, i.line) for i in parse_dockerfile("D", text).instructions]
    assert found == [("FROM", "python:3.11", 2), ("RUN", "pip install  numpy", 3),
                     ("RUN", "<<EOF\necho hi", 7), ("CMD", '["python"]', 10)]


@pytest.mark.parametrize(("text", "image"), [
    ("ARG BASE=python:3.10\nFROM ${BASE}\n", "python:3.10"),
    ("ARG BASE=python:3.10\nFROM ${BASE:-other}\n", "python:3.10"),
    ("ARG TAG\nFROM python:${TAG}\n", "python:${TAG}"),  # its value comes at build time
    ("FROM python:3.11\nARG BASE=x\nFROM $BASE\n", "$BASE"),  # only ARGs before FROM
])
def test_dockerfile_arg_defaults_before_the_first_from(text: str, image: str) -> None:
    from reprolock.inspection.dockerfile import parse_dockerfile

    assert parse_dockerfile("D", text).stages()[-1].image == image


def test_dockerfile_stages_and_the_final_command() -> None:
    from reprolock.inspection.dockerfile import base_and_command, parse_dockerfile

    df = parse_dockerfile("D", 'FROM python:3.11 AS base\nENV A=1 B="x y"\nCMD ["a.py"]\n'
                               'FROM base AS run\nENTRYPOINT ["python"]\nCMD ["b.py"]\n')
    first, second = df.stages()
    assert (first.alias, first.parent_stage, first.env) == (
        "base", None, (("A", "1", 2), ("B", "x y", 2)))
    assert (second.image, second.parent_stage, second.line) == ("base", "base", 4)
    assert base_and_command(df) == ("python:3.11", ("python", "b.py"))
    assert df.env_names() == {"A", "B"}


def test_a_src_folder_that_is_a_package_is_an_own_module() -> None:
    """lightning-hydra-template: src/__init__.py, and the code imports 'src.models…'
    (the folder is the package, not a src layout): 'src' is the project's own module."""
    from reprolock.inspection.imports import own_modules

    assert "src" in own_modules(["src/__init__.py", "src/train.py", "src/models/__init__.py",
                                 "src/models/net.py"])
    assert "src" not in own_modules(["src/mypkg/__init__.py", "src/mypkg/core.py"])
