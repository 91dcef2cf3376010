"""[project.optional-dependencies] locked as pip install '.[EXTRA]' would install them
(litgpt's pyproject keeps most of what its scripts import in extras)."""

from __future__ import annotations

from pathlib import Path

import pytest

from reprolock.errors import ConfigError
from reprolock.lock.inputs import pyproject_dependencies

PYPROJECT = '''
[project]
name = "Train_Kit"
version = "1"
dependencies = ["torch>=2.7", "tqdm"]

[project.optional-dependencies]
data = ["datasets<4", "tqdm"]
Eval = ["lm-eval; sys_platform == 'linux'"]
all = ["train-kit[data,eval]", "train_kit[data]; python_version >= '3.12'", "rich"]
loop-a = ["train-kit[loop-b]", "a"]
loop-b = ["train-kit[loop-a]", "b"]
'''


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    return tmp_path


def test_no_extras_is_project_dependencies_alone(root: Path) -> None:
    assert pyproject_dependencies(root) == ["torch>=2.7", "tqdm"]


def test_an_extra_adds_its_requirements_once(root: Path) -> None:
    assert pyproject_dependencies(root, ("data",)) == ["torch>=2.7", "tqdm", "datasets<4"]


def test_an_extra_naming_the_project_brings_those_extras_under_its_marker(root: Path) -> None:
    assert pyproject_dependencies(root, ("all",)) == [
        "torch>=2.7", "tqdm", "datasets<4", "lm-eval; sys_platform == 'linux'",
        'datasets<4; python_version >= "3.12"', 'tqdm; python_version >= "3.12"', "rich"]


def test_extras_that_name_each_other_end(root: Path) -> None:
    assert pyproject_dependencies(root, ("loop-a",)) == ["torch>=2.7", "tqdm", "b", "a"]


def test_an_unknown_extra_names_the_ones_there_are(root: Path) -> None:
    with pytest.raises(ConfigError, match=r"no extra 'train'.*all, data, eval, loop-a, loop-b"):
        pyproject_dependencies(root, ("train",))


@pytest.mark.parametrize(("table", "why"), [
    ('[project.optional-dependencies]\nx = "torch"\n', "must be a list of strings"),
    ('[project]\noptional-dependencies = 3\n', "must be a table"),
    ('[project.optional-dependencies]\nx = ["torch >=> 1"]\n', "is not a requirement"),
    ('[project]\nname = "p"\n[project.optional-dependencies]\nx = ["p[nope]"]\n',
     "extra 'nope' does not exist"),
])
def test_a_malformed_extra_is_a_config_error(tmp_path: Path, table: str, why: str) -> None:
    (tmp_path / "pyproject.toml").write_text(table)
    with pytest.raises(ConfigError, match=why):
        pyproject_dependencies(tmp_path, ("x",))


def test_extras_that_multiply_are_bounded(tmp_path: Path) -> None:
    """Twenty extras that each name all the others, under markers that differ at every
    step: the paths through them are too many to walk."""
    names = [f"e{i}" for i in range(20)]
    refs = ", ".join(repr(f"p[{m}]; python_version > {str(i)!r}")
                     for i, m in enumerate(names))
    lines = [f'{n} = [{refs}, "x"]' for n in names]
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "p"\n[project.optional-dependencies]\n' + "\n".join(lines) + "\n")
    with pytest.raises(ConfigError, match="more than 10000 requirements"):
        pyproject_dependencies(tmp_path, ("e0",))
