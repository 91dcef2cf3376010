"""What goes into the code set by default: never a virtual environment, a cache, a
bytecode file or one of reprolock's own outputs; an explicit include beats an ignore
file; a large code set is named; and the [code] table is not a lock input."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from reprolock.audit.engine import AuditOptions, audit_project
from reprolock.audit.sources import code_paths
from reprolock.config import Config
from reprolock.errors import CodeError
from reprolock.inspection.codeset import CodeSet, collect_code
from tests.support.cli import run_cli
from tests.support.images import make_plain_base

SIGNATURE = b"Signature: 8a477f597d28d172789f06886806bc55"
CODE = {"train.py": "import tinyml\n", "pkg/__init__.py": "", "pkg/model.py": "X = 1\n",
        "requirements.in": "tinyml\n"}
TOML = 'base = "img:1"\n[dependencies]\nrequirements = ["requirements.in"]\n'


@pytest.fixture(autouse=True)
def isolated_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(key, raising=False)
    yield


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def config(root: Path, **settings: Any) -> Config:
    return Config(root=root.resolve(), source=root.resolve() / "reprolock.toml", data={},
                  base="img:1", **settings)


def collect(root: Path, **settings: Any) -> CodeSet:
    return collect_code(config(root, **settings))


def paths(code: CodeSet) -> list[str]:
    return [f.path for f in code.files]


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=t",
                           "-c", "init.defaultBranch=main", "-C", str(root), *args],
                          capture_output=True, text=True, check=True)
    return done.stdout


def commit_all(root: Path) -> Path:
    git(root, "init", "-q")
    git(root, "add", "-A", "-f")
    git(root, "commit", "-q", "-m", "c")
    return root


def venv(root: Path, name: str) -> None:
    """A virtual environment as 'python -m venv' lays it out (the parts that matter)."""
    write(root / name, {
        "pyvenv.cfg": "home = /usr/bin\ninclude-system-site-packages = false\n",
        "lib/python3.11/site-packages/torch/__init__.py": "import os\nos.system('x')\n",
        "lib/python3.11/site-packages/requests/api.py": "TOKEN = 'ghp_" + "a" * 36 + "'\n",
        "bin/activate": "# activate\n",
    })


# --- virtual environments, caches, bytecode, outputs (outside git) ----------------------


def test_a_virtual_environment_of_any_name_is_not_code(tmp_path: Path) -> None:
    root = write(tmp_path / "p", CODE)
    venv(root, "myenv")
    venv(root, "tools/py311")
    assert paths(collect(root)) == sorted(CODE)


def test_a_directory_with_a_cachedir_tag_is_not_code(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**CODE,
                                  ".cache/uv/CACHEDIR.TAG": SIGNATURE + b"\n# uv\n",
                                  ".cache/uv/wheels/a.whl": b"PK\x03\x04",
                                  "mycache/CACHEDIR.TAG": SIGNATURE,
                                  "mycache/x.bin": b"x",
                                  # a wrong signature is no tag: the directory is code
                                  "notes/CACHEDIR.TAG": b"Signature: 0000\n",
                                  "notes/todo.py": "x = 1\n"})
    chosen = paths(collect(root))
    assert not any(p.startswith((".cache/", "mycache/")) for p in chosen)
    assert {"notes/CACHEDIR.TAG", "notes/todo.py"} <= set(chosen)


def test_a_linked_cachedir_tag_does_not_count(tmp_path: Path) -> None:
    """The tag must be a file of the directory: a link to a tag elsewhere hides nothing."""
    outside = write(tmp_path / "elsewhere", {"CACHEDIR.TAG": SIGNATURE})
    root = write(tmp_path / "p", {**CODE, "src/real.py": "x = 1\n"})
    (root / "src" / "CACHEDIR.TAG").symlink_to(outside / "CACHEDIR.TAG")
    with pytest.raises(CodeError, match=r"src/CACHEDIR\.TAG"):
        collect(root)  # the link itself is code, and it leaves the project: refused


def test_bytecode_is_never_code(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**CODE, "pkg/__pycache__/model.cpython-311.pyc": b"\0",
                                  "legacy.pyc": b"\0", "old/mod.pyo": b"\0"})
    assert paths(collect(root)) == sorted(CODE)


def test_reprolock_cache_inside_the_project_is_tagged_and_left_out(tmp_path: Path) -> None:
    """XDG_CACHE_HOME inside the project put 160 MB of cached wheels into the code."""
    root = write(tmp_path / "p", {**CODE, "reprolock.toml": TOML})
    # a cache an older reprolock made: no tag yet
    write(root / ".cache" / "reprolock", {"blobs/sha256/ab": b"wheel bytes"})
    env = {**os.environ, "XDG_CACHE_HOME": str(root / ".cache")}
    env.pop("REPROLOCK_CACHE_DIR", None)
    proc = run_cli("inspect", "--json", "-C", root, env=env)
    assert proc.returncode == 0, proc.stderr
    listed = [f["path"] for f in json.loads(proc.stdout)["code"]["fileList"]]
    assert listed == sorted([*CODE, "reprolock.toml"])
    tag = root / ".cache" / "reprolock" / "CACHEDIR.TAG"
    assert tag.read_bytes().startswith(SIGNATURE)


def test_a_new_cache_root_is_created_with_its_tag(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from reprolock._internal.cache import default_cache_dir

    monkeypatch.setenv("REPROLOCK_CACHE_DIR", str(tmp_path / "c" / "reprolock"))
    cache = default_cache_dir()
    assert cache == tmp_path / "c" / "reprolock"
    tag = cache / "CACHEDIR.TAG"
    assert tag.read_bytes().startswith(SIGNATURE)
    assert sorted(p.name for p in cache.iterdir()) == ["CACHEDIR.TAG"]  # no temporary left
    tag.write_bytes(SIGNATURE + b"\n# kept\n")
    default_cache_dir()
    assert tag.read_bytes() == SIGNATURE + b"\n# kept\n"  # written once, not rewritten


def test_an_oci_output_layout_inside_the_project_is_not_code(tmp_path: Path) -> None:
    """'reprolock build -o oci:out' inside the project: the next build's code held the
    previous image, so no two builds had the same code tree."""
    root = write(tmp_path / "p", CODE)
    before = collect(root).tree_digest
    make_plain_base(root / "out", tmp_path / "rootfs")
    assert (root / "out" / "oci-layout").is_file()
    assert collect(root).tree_digest == before
    assert code_paths(config(root)) == sorted(CODE)


def test_reprolock_state_directory_is_not_code(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**CODE, ".reprolock/runs/1.json": "{}",
                                  "sub/.reprolock/image/index.json": "{}"})
    assert paths(collect(root)) == sorted(CODE)


# --- in a git work tree ------------------------------------------------------------------


def test_git_tracked_bytecode_and_environments_are_left_out_with_a_warning(
        tmp_path: Path) -> None:
    """The runtime check treats any .pyc in the code directory as drift: a committed .pyc
    must not go into the image, and leaving it out is said."""
    root = write(tmp_path / "p", {**CODE, "legacy.pyc": b"\0", "old/mod.pyo": b"\0"})
    venv(root, "env")
    commit_all(root)
    assert "legacy.pyc" in git(root, "ls-files")
    code = collect(root)
    assert paths(code) == sorted(CODE)
    assert len(code.warnings) == 1
    warning = code.warnings[0]
    assert "legacy.pyc" in warning and "env/" in warning
    assert "never code" in warning and "git rm --cached" in warning


def test_git_and_plain_digests_agree_with_an_environment_inside(tmp_path: Path) -> None:
    import shutil

    root = commit_all(write(tmp_path / "repo", CODE))
    venv(root, "myenv")  # made after the commit, not ignored
    plain = tmp_path / "plain"
    shutil.copytree(root, plain, ignore=shutil.ignore_patterns(".git"))
    assert paths(collect(root)) == paths(collect(plain)) == sorted(CODE)
    assert collect(root).tree_digest == collect(plain).tree_digest
    assert collect(root).untracked == ()  # an environment is not an untracked code file


# --- an explicit include wins over the ignore files ---------------------------------------


DATA = {**CODE, "data/train.csv": "a,b\n1,2\n", "data/raw/huge.bin": b"\0" * 10,
        "scratch/tmp.py": "x\n", ".gitignore": "data/\nscratch/\n"}
INCLUDE = ("*.py", "requirements.in", "data/train.csv")


def test_include_adds_an_ignored_file_outside_git(tmp_path: Path) -> None:
    root = write(tmp_path / "p", DATA)
    chosen = paths(collect(root, code_include=INCLUDE))
    assert "data/train.csv" in chosen
    assert "data/raw/huge.bin" not in chosen
    assert "scratch/tmp.py" in chosen  # '*.py' names it: the include decides
    assert paths(collect(root, code_include=INCLUDE)) == code_paths(
        config(root, code_include=INCLUDE))


def test_include_adds_an_ignored_file_in_git(tmp_path: Path) -> None:
    root = commit_all(write(tmp_path / "p", {k: v for k, v in DATA.items()
                                             if not k.startswith(("data/", "scratch/"))}))
    write(root, {k: v for k, v in DATA.items() if k.startswith(("data/", "scratch/"))})
    write(root, {"new.py": "x = 2\n"})  # untracked and not ignored: 'git add' it
    code = collect(root, code_include=INCLUDE)
    assert "data/train.csv" in paths(code)
    assert "data/raw/huge.bin" not in paths(code)
    assert "new.py" not in paths(code) and code.untracked == ("new.py",)
    assert paths(code) == code_paths(config(root, code_include=INCLUDE))
    assert "data/train.csv" not in paths(collect(root))  # without the include: git decides


def test_include_does_not_override_the_safety_rules(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**DATA, ".gitignore": "data/\nmyenv/\n*.pyc\n",
                                  "data/cache.pyc": b"\0"})
    venv(root, "myenv")
    chosen = paths(collect(root, code_include=("**",)))
    assert not any(p.startswith("myenv/") for p in chosen)
    assert "data/cache.pyc" not in chosen
    assert "data/train.csv" in chosen
    (root / "data" / "leak").symlink_to("/etc/passwd")
    with pytest.raises(CodeError, match="data/leak"):
        collect(root, code_include=("data/leak",))


def test_config_exclude_still_wins_over_include(tmp_path: Path) -> None:
    root = write(tmp_path / "p", DATA)
    chosen = paths(collect(root, code_include=INCLUDE, code_exclude=("data/",)))
    assert "data/train.csv" not in chosen


# --- a large code set is named ----------------------------------------------------------


def test_a_large_code_set_names_its_largest_directories(tmp_path: Path) -> None:
    root = write(tmp_path / "p", CODE)
    write(root, {"data/raw/a.bin": b"\1" * 40_000_000, "data/raw/b.bin": b"\2" * 8_000_000,
                 "models/m.pt": b"\3" * 5_000_000, "docs/x.md": "x\n"})
    code = collect(root)
    assert code.total_size > 50_000_000
    assert len(code.warnings) == 1
    warning = code.warnings[0]
    assert "53 MB" in warning
    assert "data/raw/ 48 MB" in warning  # the deepest directory that holds the size
    assert "models/ 5 MB" in warning
    assert warning.index("data/raw/") < warning.index("models/")
    assert "[code] exclude" in warning and ".reprolockignore" in warning
    (root / "data" / "raw" / "a.bin").unlink()
    assert collect(root).warnings == ()


# --- the audit reads the same selection ----------------------------------------------------


def test_the_audit_skips_what_the_build_skips(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {**CODE, "reprolock.toml": TOML,
                                  "mycache/CACHEDIR.TAG": SIGNATURE,
                                  "mycache/leak.py": "TOKEN = 'ghp_" + "b" * 36 + "'\n"})
    venv(root, "myenv")
    make_plain_base(root / "out", tmp_path / "rootfs")
    report = audit_project(root, AuditOptions(hadolint=False))
    flagged = {f.path for f in report.findings}
    assert not any(p.startswith(("myenv/", "mycache/", "out/")) for p in flagged), flagged
    assert report.files_audited == len(CODE) + 1


# --- [code] is not a lock input ----------------------------------------------------------


def test_editing_code_settings_keeps_the_lock_fresh(
        make_project: Callable[..., Path]) -> None:
    root = make_project()
    proc = run_cli("lock", "--no-sbom", "-C", root)
    assert proc.returncode == 0, proc.stderr
    toml = root / "reprolock.toml"
    toml.write_text(toml.read_text() + '[code]\nexclude = ["data/"]\ninclude = ["*.py"]\n'
                    '[run]\noutputs = "results"\n[audit]\nignore = ["RL101"]\n')
    fresh = run_cli("lock", "--check", "-C", root)
    assert fresh.returncode == 0, fresh.stderr
    toml.write_text(toml.read_text().replace('requirements = ["requirements.in"]',
                                             'requirements = ["requirements.in", "more.in"]'))
    (root / "more.in").write_text("toolz-lite\n")
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "more.in is new" in stale.stderr


def test_a_lock_that_counted_code_settings_says_why_it_is_stale(
        make_project: Callable[..., Path]) -> None:
    """A lock written while [code] was an input is stale once, and the check says why."""
    from reprolock.config import load_config
    from reprolock.lock.inputs import collect_inputs, config_hash, inputs_digest
    from reprolock.lock.model import InputFile

    root = make_project(extra='[code]\nexclude = ["data/"]\n')
    assert run_cli("lock", "--no-sbom", "-C", root).returncode == 0
    inputs = collect_inputs(load_config(root))
    old = config_hash(load_config(root), legacy=True)
    assert old != inputs.config.sha256
    lock_path = root / "reprolock.lock.json"
    data = json.loads(lock_path.read_text())
    legacy = type(inputs)(InputFile(inputs.config.path, old), inputs.files, inputs.base,
                          inputs.platform, inputs.resolver)
    data["inputs"] = legacy.to_json()
    data["inputsDigest"] = inputs_digest(legacy)
    lock_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    stale = run_cli("lock", "--check", "-C", root)
    assert stale.returncode == 1, stale.stdout + stale.stderr
    assert "counted the [code] table as a lock input" in stale.stderr
    assert "config reprolock.toml changed" not in stale.stderr
