"""The runtime checker (reprolock/runtime/check.py) on a real virtual environment laid
out like an image, run by that environment's own interpreter, as in a container."""

from __future__ import annotations

import ast
import json
import re
import shutil
from pathlib import Path

import pytest

from reprolock.runtime.embed import checker_source, image_files
from tests.support.runtime_root import (
    BASE_PYTHON,
    FakeImage,
    code_set,
    copy_image_root,
    make_image_root,
)
from tests.support.wheels import build_wheel, record_hash

LOCKED = [("tinyml", "1.0.0"), ("tinyconfig", "1.0.0")]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> FakeImage:
    wheels = tmp_path_factory.mktemp("wheels")
    built = [build_wheel(wheels, "tinyml", "1.0.0",
                         modules={"tinyml/__init__.py": "__version__ = '1.0.0'\n",
                                  "tinyml/core.py": "def train():\n    return 1\n"}),
             build_wheel(wheels, "tinyconfig", "1.0.0")]
    return make_image_root(tmp_path_factory.mktemp("image") / "root", built, LOCKED)


@pytest.fixture
def image(pristine: FakeImage, tmp_path: Path) -> FakeImage:
    return copy_image_root(pristine, tmp_path / "root")


def problems(report: dict, name: str) -> list[str]:
    check = next(c for c in report["checks"] if c["name"] == name)
    assert not check["ok"], check
    return list(check["problems"])


def failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["ok"]}


def test_clean_environment_passes(image: FakeImage) -> None:
    done = image.check()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ files: " in done.stdout and "as locked" in done.stdout
    code, report = image.report("--fast")
    assert code == 0 and report["mode"] == "fast"


def test_changed_package_file_is_named(image: FakeImage) -> None:
    target = image.site / "tinyml" / "core.py"
    target.write_text(target.read_text().replace("return 1", "return 2"))  # same size
    code, report = image.report()
    assert code == 1
    assert failed(report) == {"files"}
    assert any("tinyml/core.py (tinyml) changed" in p for p in problems(report, "files"))
    # the edit kept the size: metadata alone cannot see it, which --fast says it is
    assert image.report("--fast")[0] == 0


def test_appended_package_file_is_caught_by_fast(image: FakeImage) -> None:
    with open(image.site / "tinyml" / "core.py", "a") as handle:
        handle.write("import os\n")
    code, report = image.report("--fast")
    assert code == 1 and "tinyml/core.py (tinyml) changed" in problems(report, "files")[0]


def test_patched_record_is_caught(image: FakeImage) -> None:
    """An attacker who edits a file and fixes its RECORD line is caught by the digest of
    RECORD the build kept."""
    target = image.site / "tinyml" / "core.py"
    old = target.read_bytes()
    new = old.replace(b"return 1", b"return 3")
    target.write_bytes(new)
    record = image.site / "tinyml-1.0.0.dist-info" / "RECORD"
    record.write_text(record.read_text().replace(record_hash(old), record_hash(new)))
    code, report = image.report()
    assert code == 1 and failed(report) == {"records"}
    assert "tinyml: RECORD was changed after the build" in problems(report, "records")[0]


def test_extra_distribution_is_named(image: FakeImage, tmp_path: Path) -> None:
    """What 'pip install evil' leaves: a package and its dist-info."""
    from tests.support.runtime_root import install

    install(build_wheel(tmp_path / "w", "evil", "6.6.6"), image.root)
    code, report = image.report("--fast")
    assert code == 1
    assert problems(report, "distributions") == [
        "extra: evil 6.6.6 is installed but not locked"]


def test_other_version_is_named(image: FakeImage, tmp_path: Path) -> None:
    from tests.support.runtime_root import install

    shutil.rmtree(image.site / "tinyconfig-1.0.0.dist-info")
    shutil.rmtree(image.site / "tinyconfig")
    install(build_wheel(tmp_path / "w", "tinyconfig", "1.2.0"), image.root)
    code, report = image.report()
    assert code == 1
    assert problems(report, "distributions") == [
        "other version: tinyconfig 1.2.0 is installed, the lock has 1.0.0"]
    assert any("tinyconfig: RECORD was changed" in p for p in problems(report, "records"))


def test_missing_distribution_is_named(image: FakeImage) -> None:
    shutil.rmtree(image.site / "tinyconfig-1.0.0.dist-info")
    code, report = image.report("--fast")
    assert code == 1
    assert "missing: tinyconfig 1.0.0 is locked but not installed" in problems(
        report, "distributions")


def test_dropped_pth_file_is_unowned(image: FakeImage) -> None:
    (image.site / "zzz.pth").write_text("import os\n")
    code, report = image.report("--fast")
    assert code == 1
    assert problems(report, "unowned") == [
        "/opt/venv/lib/python3.11/site-packages/zzz.pth belongs to no installed distribution"]


def test_edited_and_added_code_is_named(image: FakeImage) -> None:
    (image.root / "app" / "train.py").write_text("print('patched')\n")
    (image.root / "app" / "extra.py").write_text("x = 1\n")
    code, report = image.report()
    assert code == 1 and failed(report) == {"code"}
    found = problems(report, "code")
    assert any(p.startswith("train.py was edited") for p in found)
    assert "extra.py was added (not in the built code)" in found


def test_code_exec_bit_and_deletion(image: FakeImage) -> None:
    (image.root / "app" / "run.sh").chmod(0o644)
    (image.root / "app" / "train.py").unlink()
    code, report = image.report("--fast")
    assert code == 1
    assert set(problems(report, "code")) == {"run.sh changed its executable bit",
                                             "train.py is missing"}


def test_declared_env_vars(image: FakeImage) -> None:
    code, report = image.report(env=image.env(PYTHONHASHSEED="random"))
    assert code == 1
    assert problems(report, "env") == [
        "PYTHONHASHSEED is 'random', the image declares '0'"]
    env = image.env()
    env["PATH"] = "/usr/bin:/opt/venv/bin"
    assert "PATH starts with '/usr/bin'" in problems(image.report(env=env)[1], "env")[0]


def test_other_interpreter_is_refused(image: FakeImage) -> None:
    lock = image.root / ".reprolock" / "lock.json"
    doc = json.loads(lock.read_text())
    doc["target"]["python"]["version"] = "3.11.0"
    lock.write_text(json.dumps(doc))
    code, report = image.report("--fast")
    assert code == 1 and failed(report) == {"python"}
    assert "the lock targets 3.11.0" in problems(report, "python")[0]


def test_accelerators_are_recorded_not_enforced(image: FakeImage) -> None:
    torch = image.site / "torch"
    torch.mkdir()
    (torch / "version.py").write_text("__version__ = '2.3.0+cu121'\ncuda: Optional[str] = "
                                      "'12.1'\nhip: Optional[str] = None\n")
    _, report = image.report("--fast")
    assert report["accelerators"] == {"torch.version": "2.3.0+cu121", "torch.cuda": "12.1"}
    assert failed(report) == {"unowned"}  # torch/ without a dist-info is still drift


@pytest.mark.parametrize("name", ["lock.json", "code.json"])
def test_missing_expectations_exit_2(image: FakeImage, name: str) -> None:
    (image.root / ".reprolock" / name).unlink()
    done = image.check()
    assert done.returncode == 2
    assert "is missing: this image was not built by 'reprolock build'" in done.stderr


def test_newer_lock_version_exit_2(image: FakeImage) -> None:
    lock = image.root / ".reprolock" / "lock.json"
    lock.write_text(json.dumps({**json.loads(lock.read_text()), "lockVersion": 2}))
    code, report = image.report()
    assert code == 2 and "lockVersion 2" in report["error"]


def test_checker_is_python38_by_construction() -> None:
    """The image's interpreter may be older than reprolock's: 3.8 syntax and APIs only."""
    source = checker_source().decode()
    ast.parse(source, feature_version=(3, 8))
    forbidden = [r"\.removeprefix\(", r"\.removesuffix\(", r"file_digest", r"functools\.cache\b",
                 r"zip\([^)]*strict=", r"^\s*match\s", r"\bdict\[[^]]*\]\(", r"tomllib",
                 r"TypeAlias", r"ParamSpec"]
    body = source[source.index("from __future__"):]  # past the docstring that names them
    code_lines = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
    for pattern in forbidden:
        hits = [line for line in code_lines if re.search(pattern, line)]
        assert not hits, (pattern, hits)
    imported = {n.names[0].name.split(".")[0] for n in ast.walk(ast.parse(source))
                if isinstance(n, ast.Import)}
    imported |= {n.module.split(".")[0] for n in ast.walk(ast.parse(source))
                 if isinstance(n, ast.ImportFrom) and n.module}
    import sys

    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_embedded_files_are_deterministic(tmp_path: Path) -> None:
    code = code_set(tmp_path)
    args = {"lock_bytes": b"{}\n", "code": code, "workdir": "/app", "prefix": "/opt/venv",
            "records": {"b": "sha256:2", "a": "sha256:1"}}
    first = image_files(**args)  # type: ignore[arg-type]
    second = image_files(**{**args, "records": {"a": "sha256:1", "b": "sha256:2"}})  # type: ignore[arg-type]
    assert first == second
    assert [f.path for f in first] == [".reprolock/check.py", ".reprolock/code.json",
                                       ".reprolock/lock.json", ".reprolock/runtime.json"]
    listing = json.loads(first[1].data)
    assert listing["treeDigest"] == code.tree_digest and listing["workdir"] == "/app"
    assert {f["path"]: f["executable"] for f in listing["files"]} == {"run.sh": True,
                                                                        "train.py": False}


def _host_paths(image: FakeImage) -> dict[str, str]:
    """Point the embedded expectations at the fake root's real paths, so the checker can
    run with root "/" the way 'reprolock verify --runtime' runs it in a container."""
    runtime = image.root / ".reprolock" / "runtime.json"
    doc = json.loads(runtime.read_text())
    prefix = str(image.root / "opt" / "venv")
    runtime.write_text(json.dumps({**doc, "prefix": prefix}))
    code = image.root / ".reprolock" / "code.json"
    code.write_text(json.dumps({**json.loads(code.read_text()),
                                "workdir": str(image.root / "app")}))
    return {**image.env(), "PATH": f"{prefix}/bin:/usr/bin:/bin", "VIRTUAL_ENV": prefix}


def test_verify_runtime_runs_the_images_interpreter(image: FakeImage) -> None:
    """'reprolock verify --runtime' must check the image's environment, not reprolock's:
    it runs the image's base interpreter (what PREFIX/bin/python links to) isolated,
    ``BASE -I -S DIR/check.py``, and passes its output and exit code through."""
    from tests.support.cli import run_cli

    env = _host_paths(image)
    done = run_cli("verify", "--runtime", "--dir", image.root / ".reprolock", "--json",
                   env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["python"]["executable"] == BASE_PYTHON
    assert report["isolated"]
    (image.site / "zzz.pth").write_text("import os\n")
    drift = run_cli("verify", "--runtime", "--fast", "--dir", image.root / ".reprolock",
                    env=env)
    assert drift.returncode == 1 and "zzz.pth belongs to no installed distribution" in \
        drift.stdout


def test_verify_runtime_without_the_locked_interpreter_exits_2(image: FakeImage) -> None:
    from tests.support.cli import run_cli

    env = _host_paths(image)
    lock = image.root / ".reprolock" / "lock.json"
    doc = json.loads(lock.read_text())
    doc["base"]["python"]["path"] = str(image.root / "no" / "python3.11")
    lock.write_text(json.dumps(doc))
    done = run_cli("verify", "--runtime", "--dir", image.root / ".reprolock", env=env)
    assert done.returncode == 2
    assert "interpreter" in done.stderr and "is missing" in done.stderr
    assert "python /.reprolock/check.py" in done.stderr or "check.py" in done.stderr


def test_a_crash_exits_2_not_drift(image: FakeImage) -> None:
    """Malformed expectations (a code entry without its path) crashed the checker with a
    traceback and exit 1, which reads as drift."""
    code = image.root / ".reprolock" / "code.json"
    doc = json.loads(code.read_text())
    del doc["files"][0]["path"]
    code.write_text(json.dumps(doc))
    rc, report = image.report()
    assert rc == 2 and "the check crashed: KeyError" in report["error"]
    done = image.check()
    assert done.returncode == 2 and "error: the check crashed" in done.stderr
    assert "Traceback" not in done.stderr


def test_large_code_files_are_hashed_in_chunks(image: FakeImage,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import importlib.util

    spec = importlib.util.spec_from_file_location("embedded_check", image.checker)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    big = image.root / "big.bin"
    big.write_bytes(b"x" * (3 * module._BIG + 5))
    reads: list[int] = []
    real_open = open

    class Spy:
        def __init__(self, handle: object) -> None:
            self.handle = handle

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.handle.close()  # type: ignore[attr-defined]

        def read(self, size: int = -1) -> bytes:
            reads.append(size)
            return self.handle.read(size)  # type: ignore[attr-defined, no-any-return]

    monkeypatch.setattr(module, "open", lambda p, m="r": Spy(real_open(p, m)), raising=False)
    assert module._sha256(str(big)) == hashlib.sha256(big.read_bytes()).hexdigest()
    assert reads and all(0 < size <= module._BIG for size in reads)
