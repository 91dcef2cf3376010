"""``reprolock init``: what it detects in a project and the reprolock.toml it writes."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from reprolock.config import load_config
from reprolock.errors import EXIT_ERROR
from reprolock.inspection.project import guess_project, render_config

DIGEST = "sha256:" + "ab" * 32


def reprolock(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reprolock", *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)


def init_ok(*args: str | Path) -> subprocess.CompletedProcess[str]:
    done = reprolock("init", *args)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def written(root: Path) -> dict[str, object]:
    return tomllib.loads((root / "reprolock.toml").read_text(encoding="utf-8"))


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    return root


# --- the written file ----------------------------------------------------------------


def test_init_writes_a_config_that_loads(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    base = f"python:3.11-slim@{DIGEST}"
    done = init_ok(proj, "--base", base, "--entrypoint", "python train.py",
                   "--resolver", "pip-tools")
    assert str(proj / "reprolock.toml") in done.stdout
    config = load_config(proj)
    assert config.base == base
    assert config.resolver == "pip-tools"
    assert config.image.entrypoint == ("python", "train.py")
    assert config.requirements == ("requirements.in",)
    assert config.platform == "linux/amd64"
    assert dict(config.image.env) == {"PYTHONHASHSEED": "0"}
    assert "names no digest" not in (proj / "reprolock.toml").read_text()


def test_base_without_digest_gets_a_note(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    init_ok(proj, "--base", "python:3.11-slim")
    text = (proj / "reprolock.toml").read_text()
    assert "names no digest" in text
    assert load_config(proj).base == "python:3.11-slim"


def test_odd_characters_survive_the_round_trip(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    init_ok(proj, "--base", 'img:"quoted"\\tag', "--entrypoint",
            """python -c 'print("hi\\\\there")'""")
    config = load_config(proj)
    assert config.base == 'img:"quoted"\\tag'
    assert config.image.entrypoint == ("python", "-c", 'print("hi\\\\there")')


def test_json_output(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    done = init_ok(proj, "--base", "img:1", "--entrypoint", "python run.py --fast", "--json")
    data = json.loads(done.stdout)
    assert data == {"path": str(proj / "reprolock.toml"), "base": "img:1", "resolver": "uv",
                    "requirements": ["requirements.in"],
                    "entrypoint": ["python", "run.py", "--fast"], "proposed": None,
                    "gitignore": True, "notes": []}


def test_default_directory_is_the_current_one(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    done = subprocess.run([sys.executable, "-m", "reprolock", "init", "--base", "img:1"],
                          cwd=proj, capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert load_config(proj).base == "img:1"


# --- overwriting ---------------------------------------------------------------------


def test_refuses_to_overwrite_without_force(proj: Path) -> None:
    original = b"# mine, hand-written\r\nbase = 'keep'\n\x00odd bytes"
    (proj / "reprolock.toml").write_bytes(original)
    done = reprolock("init", proj, "--base", "img:1")
    assert done.returncode == EXIT_ERROR
    assert "Traceback" not in done.stderr
    assert "exists" in done.stderr and "--force" in done.stderr
    assert (proj / "reprolock.toml").read_bytes() == original


def test_force_overwrites(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    (proj / "reprolock.toml").write_text('base = "old"\n')
    init_ok(proj, "--base", "img:new", "--force")
    assert load_config(proj).base == "img:new"


# --- refusals ------------------------------------------------------------------------


def test_no_base_and_no_dockerfile_is_an_error_with_a_hint(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    done = reprolock("init", proj)
    assert done.returncode == EXIT_ERROR
    assert "Traceback" not in done.stderr
    assert "no base image" in done.stderr
    assert "fix:" in done.stderr and "--base" in done.stderr
    assert not (proj / "reprolock.toml").exists()


def test_dockerfile_without_a_usable_from_is_no_base(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    (proj / "Dockerfile").write_text("ARG BASE\nFROM ${BASE}\nCMD python train.py\n")
    done = reprolock("init", proj)
    assert done.returncode == EXIT_ERROR
    assert "--base" in done.stderr
    assert not (proj / "reprolock.toml").exists()


def test_unknown_resolver_is_refused(proj: Path) -> None:
    done = reprolock("init", proj, "--base", "img:1", "--resolver", "poetry")
    assert done.returncode == EXIT_ERROR
    assert "poetry" in done.stderr and "Traceback" not in done.stderr
    assert not (proj / "reprolock.toml").exists()


def test_missing_directory_is_refused(tmp_path: Path) -> None:
    done = reprolock("init", tmp_path / "nowhere", "--base", "img:1")
    assert done.returncode == EXIT_ERROR
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "nowhere").exists()


# --- detection -----------------------------------------------------------------------


@pytest.mark.parametrize(("files", "expected"), [
    (["requirements.in"], ("requirements.in",)),
    (["requirements.txt"], ("requirements.txt",)),
    (["requirements.txt", "requirements.in"], ("requirements.in",)),
    (["requirements/base.in"], ("requirements/base.in",)),
    ([], ()),
])
def test_detects_requirement_files(proj: Path, files: list[str],
                                   expected: tuple[str, ...]) -> None:
    for name in files:
        (proj / name).parent.mkdir(parents=True, exist_ok=True)
        (proj / name).write_text("tinyml\n")
    assert guess_project(proj).requirements == expected


def test_detects_pyproject_dependencies(proj: Path) -> None:
    (proj / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["tinyml"]\n')
    init_ok(proj, "--base", "img:1")
    deps = written(proj)["dependencies"]
    assert deps == {"requirements": [], "pyproject": True}
    assert load_config(proj).pyproject_dependencies is True


def test_offers_the_pyproject_extras_in_a_comment(proj: Path) -> None:
    """litgpt keeps most of what its scripts import in an extra: init names the extras,
    and the line it writes works once uncommented."""
    (proj / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["tinyml"]\n'
        '[project.optional-dependencies]\ntrain = ["tinyml"]\ndev = []\n"bad name!" = []\n')
    init_ok(proj, "--base", "img:1")
    text = (proj / "reprolock.toml").read_text()
    assert "# Extras of [project.optional-dependencies] to lock too: dev, train\n" in text
    (proj / "reprolock.toml").write_text(text.replace('# extras = ["dev"]', 'extras = ["dev"]'))
    assert load_config(proj).pyproject_extras == ("dev",)


@pytest.mark.parametrize("pyproject", [
    '[project]\nname = "x"\ndependencies = []\n',
    '[project]\nname = "x"\n',
    'project = "not a table"\n',
    "[project\nbroken",
])
def test_pyproject_without_dependencies(proj: Path, pyproject: str) -> None:
    (proj / "pyproject.toml").write_text(pyproject)
    assert guess_project(proj).pyproject_dependencies is False


@pytest.mark.parametrize(("script", "expected"), [
    ("train.py", ("python", "train.py")),
    ("main.py", ("python", "main.py")),
    ("src/train.py", ("python", "src/train.py")),
])
def test_detects_the_training_script(proj: Path, script: str,
                                     expected: tuple[str, ...]) -> None:
    (proj / script).parent.mkdir(parents=True, exist_ok=True)
    (proj / script).write_text("print('x')\n")
    (proj / "requirements.in").write_text("tinyml\n")
    init_ok(proj, "--base", "img:1")
    assert load_config(proj).image.entrypoint == expected


def test_no_script_leaves_the_entrypoint_commented(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    init_ok(proj, "--base", "img:1")
    assert "# entrypoint = " in (proj / "reprolock.toml").read_text()
    assert load_config(proj).image.entrypoint == ()


def test_base_and_command_from_the_dockerfile(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    (proj / "train.py").write_text("print('x')\n")
    (proj / "Dockerfile").write_text(
        f"FROM pytorch/pytorch:2.1@{DIGEST}\nWORKDIR /app\nCOPY . .\n"
        'CMD ["python", "-u", "train.py"]\n')
    done = init_ok(proj, "--json")
    assert json.loads(done.stdout)["base"] == f"pytorch/pytorch:2.1@{DIGEST}"
    config = load_config(proj)
    assert config.base == f"pytorch/pytorch:2.1@{DIGEST}"
    assert config.image.entrypoint == ("python", "-u", "train.py")  # not the bare train.py


def test_options_win_over_the_dockerfile(proj: Path) -> None:
    (proj / "requirements.in").write_text("tinyml\n")
    (proj / "Dockerfile").write_text('FROM python:3.11\nCMD ["python", "a.py"]\n')
    init_ok(proj, "--base", "img:mine", "--entrypoint", "python b.py")
    config = load_config(proj)
    assert config.base == "img:mine"
    assert config.image.entrypoint == ("python", "b.py")


def test_dockerfile_in_docker_folder(proj: Path) -> None:
    (proj / "docker").mkdir()
    (proj / "docker/Dockerfile").write_text("FROM python:3.12-slim\n")
    guess = guess_project(proj)
    assert guess.dockerfile == "docker/Dockerfile"
    assert guess.dockerfile_base == "python:3.12-slim"


def dockerfile_guess(proj: Path, text: str) -> tuple[str | None, tuple[str, ...]]:
    (proj / "Dockerfile").write_text(text)
    guess = guess_project(proj)
    return guess.dockerfile_base, guess.entrypoint


@pytest.mark.parametrize(("text", "base", "entry"), [
    pytest.param('FROM python:3.11\nENTRYPOINT ["python", "train.py"]\n',
                 "python:3.11", ("python", "train.py"), id="entrypoint-exec"),
    pytest.param("FROM python:3.11\nCMD python train.py --epochs 3\n",
                 "python:3.11", ("python", "train.py", "--epochs", "3"), id="cmd-shell"),
    pytest.param('FROM python:3.11\nENTRYPOINT ["python"]\nCMD ["train.py", "--lr", "0.1"]\n',
                 "python:3.11", ("python", "train.py", "--lr", "0.1"),
                 id="entrypoint-plus-cmd"),
    pytest.param('FROM python:3.11\nCMD ["--lr", "0.1"]\nENTRYPOINT ["python", "t.py"]\n',
                 "python:3.11", ("python", "t.py", "--lr", "0.1"), id="order-does-not-matter"),
    pytest.param('FROM python:3.11\nENTRYPOINT python t.py\nCMD ["--ignored"]\n',
                 "python:3.11", ("python", "t.py"), id="shell-entrypoint-ignores-cmd"),
    pytest.param("from --platform=$BUILDPLATFORM python:3.11 as build\n"
                 "FROM gcr.io/distroless/python3\nCMD [\"t.py\"]\n",
                 "gcr.io/distroless/python3", ("t.py",), id="lowercase-and-platform"),
    pytest.param("FROM python:3.11-slim AS base\nRUN pip install x\n"
                 'FROM base AS runtime\nCMD ["python", "train.py"]\n',
                 "python:3.11-slim", ("python", "train.py"), id="stage-alias"),
    pytest.param('FROM python:3.11 AS base\nCMD ["python", "a.py"]\nFROM base\n',
                 "python:3.11", ("python", "a.py"), id="inherits-cmd"),
    pytest.param('FROM python:3.11 AS base\nCMD ["a.py"]\nFROM base\nENTRYPOINT ["python"]\n',
                 "python:3.11", ("python",), id="entrypoint-resets-inherited-cmd"),
    pytest.param('FROM python:3.11 AS build\nCMD ["python", "build.py"]\nFROM python:3.12\n',
                 "python:3.12", (), id="earlier-stage-cmd-not-final"),
    pytest.param('FROM python:3.11\nCMD ["python", \\\n    # a comment\n    "train.py"]\n',
                 "python:3.11", ("python", "train.py"), id="continuation"),
    pytest.param("ARG BASE=python:3.10-slim\nFROM ${BASE}\n",
                 "python:3.10-slim", (), id="arg-default"),
    pytest.param("FROM\tpython:3.11\n", "python:3.11", (), id="tab"),
    pytest.param("FROM python:3.11 AS b\nFROM scratch\nCOPY --from=b / /\n",
                 "python:3.11", (), id="scratch-final"),
    pytest.param("# syntax=docker/dockerfile:1\nRUN echo\n", None, (), id="no-from"),
])
def test_dockerfile_forms(proj: Path, text: str, base: str | None,
                          entry: tuple[str, ...]) -> None:
    assert dockerfile_guess(proj, text) == (base, entry)


def test_script_is_the_fallback_when_the_dockerfile_has_no_command(proj: Path) -> None:
    (proj / "train.py").write_text("print('x')\n")
    assert dockerfile_guess(proj, "FROM python:3.11\n") == ("python:3.11", ("python", "train.py"))


def test_render_config_is_valid_toml_for_every_guess(proj: Path) -> None:
    guess = guess_project(proj)
    text = render_config(base="img:1", resolver="uv", guess=guess, entrypoint=())
    doc = tomllib.loads(text)
    assert doc["base"] == "img:1" and doc["resolver"] == "uv"
    assert doc["dependencies"] == {"requirements": [], "pyproject": False}


def test_no_requirement_inputs_is_an_error_not_a_broken_config(proj: Path) -> None:
    done = reprolock("init", proj, "--base", "img:1")
    assert done.returncode == EXIT_ERROR
    assert "no requirement inputs" in done.stderr and "--requirements" in done.stderr
    assert not (proj / "reprolock.toml").exists()


def test_requirements_option_names_the_inputs(proj: Path) -> None:
    (proj / "deps").mkdir()
    (proj / "deps" / "train.in").write_text("tinyml\n")
    done = reprolock("init", proj, "--base", "img:1", "--requirements", "deps/train.in")
    assert done.returncode == 0, done.stderr
    assert load_config(proj).requirements == ("deps/train.in",)
    missing = reprolock("init", proj, "--force", "--base", "img:1", "-r", "nope.in")
    assert missing.returncode == EXIT_ERROR and "nope.in" in missing.stderr
