"""Issue 13, bases that real teams use: a base whose own site-packages already holds a
package the lock also pins (an older tinyml, in Debian's dist-packages, as `apt install
python3-…` or a pip-installed base leaves one). The lock still pins and installs its own;
the image's venv does not see the base's; the runtime check is not fooled by it.

The base is the example's Debian base with one more layer, built here; real containers."""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from reprolock.oci.model import LayerBlob
from tests.support.cli import run_cli
from tests.support.oci_writer import add_layer_from_dir, write_image

pytestmark = [pytest.mark.docker, pytest.mark.debootstrap]
EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
SHADOW = "/usr/lib/python3/dist-packages"
PROBE = ("import json, tinyml; print(json.dumps({'version': tinyml.__version__, "
         "'file': tinyml.__file__}))")


def _blob(layout: Path, digest: str) -> dict:
    return json.loads((layout / "blobs" / "sha256" / digest.split(":")[1]).read_text())


def _copy_base(layout: Path) -> tuple[dict, dict, list[LayerBlob]]:
    """The Debian base copied to ``layout``: its manifest, config and layers."""
    shutil.copytree(BASE, layout)
    index = json.loads((layout / "index.json").read_text())
    manifest = _blob(layout, index["manifests"][0]["digest"])
    config = _blob(layout, manifest["config"]["digest"])
    layers = [LayerBlob(d["digest"], diff_id, d["size"], d["mediaType"])
              for d, diff_id in zip(manifest["layers"], config["rootfs"]["diff_ids"],
                                    strict=True)]
    return manifest, config, layers


def shadowing_base(layout: Path, work: Path) -> None:
    """The Debian base plus a layer with tinyml 0.0.1 in the system site-packages."""
    _manifest, config, layers = _copy_base(layout)
    site = work / SHADOW.lstrip("/")
    (site / "tinyml").mkdir(parents=True)
    (site / "tinyml" / "__init__.py").write_text("__version__ = '0.0.1-from-the-base'\n")
    (site / "tinyml-0.0.1.dist-info").mkdir()
    (site / "tinyml-0.0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tinyml\nVersion: 0.0.1\n")
    layers.append(add_layer_from_dir(layout, work))
    write_image(layout, config={k: v for k, v in config.items() if k != "rootfs"},
                layers=layers, tag="shadow")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from tests.support.services import docker_available, remove_images, require

    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    work = tmp_path_factory.mktemp("shadow")
    root = work / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json*", "reprolock.sbom*", "outputs"))
    shadowing_base(root / ".reprolock" / "base", work / "layer")
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace('base = "oci-layout:.reprolock/base:bookworm"',
                                                 'base = "oci-layout:.reprolock/base:shadow"'))
    proc = run_cli("lock", "-C", root, "--no-sbom")
    assert proc.returncode == 0, proc.stderr
    name = f"reprolock-test/shadow-{uuid.uuid4().hex[:8]}"
    proc = run_cli("build", "-C", root, "-q", "-o", f"docker:{name}:v1")
    assert proc.returncode == 0, proc.stderr
    yield {"root": root, "name": f"{name}:v1", "work": work}
    remove_images(name)


def test_the_lock_pins_its_own_version_over_the_bases(project: dict) -> None:
    lock = json.loads((project["root"] / "reprolock.lock.json").read_text())
    [tinyml] = [p for p in lock["packages"] if p["name"] == "tinyml"]
    assert tinyml["version"] == "1.0.0"


def test_the_venv_does_not_see_the_bases_copy_and_the_check_passes(project: dict) -> None:
    record = project["work"] / "r.json"
    proc = run_cli("run", "-C", project["root"], "--record", record, "--",
                   "python", "-c", PROBE)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["version"] == "1.0.0"
    assert seen["file"].startswith("/opt/venv/")
    written = json.loads(record.read_text())
    assert written["check"]["ok"]
    assert written["determinism"] == {"PYTHONHASHSEED": "0"}  # what the image sets


def test_the_check_is_not_fooled_when_the_venvs_copy_is_removed(project: dict) -> None:
    """Without the venv's tinyml, `import tinyml` fails (the venv is isolated; it never
    falls back to the base's copy), and the runtime check names what is missing."""
    import docker

    client = docker.from_env()
    container = client.containers.run(
        project["name"], ["sh", "-c", "rm -rf /opt/venv/lib/python3.11/site-packages/tinyml"],
        entrypoint=[], network_mode="none", detach=True)
    try:
        assert container.wait()["StatusCode"] == 0
        repository = project["name"].split(":")[0]
        container.commit(repository=repository, tag="gutted")
    finally:
        container.remove(force=True)
    proc = run_cli("run", "-C", project["root"], "--image", f"{repository}:gutted",
                   "--record", project["work"] / "g.json", "--", "python", "-c", PROBE)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "tinyml" in proc.stderr and "the run was refused" in proc.stderr
    assert not (project["work"] / "g.json").exists()


# -- Python under another prefix ----------------------------------------------------------

def moved_python_base(layout: Path, work: Path, prefix: str) -> None:
    """The Debian base with its interpreter moved to ``prefix`` (as python:*-slim keeps
    it in /usr/local/bin, pytorch/pytorch in /opt/conda/bin): the old one whited out."""
    manifest, config, layers = _copy_base(layout)
    python = _interpreter_of(layout, manifest)
    bin_dir = work / prefix.lstrip("/")
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.11").write_bytes(python)
    (bin_dir / "python3.11").chmod(0o755)
    (bin_dir / "python3").symlink_to("python3.11")
    (work / "usr/bin").mkdir(parents=True, exist_ok=True)
    for name in ("python3.11", "python3"):
        (work / "usr/bin" / f".wh.{name}").write_bytes(b"")
    layers.append(add_layer_from_dir(layout, work))
    image = {k: v for k, v in config.items() if k != "rootfs"}
    env = [e for e in image.get("config", {}).get("Env", []) if not e.startswith("PATH=")]
    image["config"] = {**image.get("config", {}),
                       "Env": [f"PATH={prefix}:/usr/local/sbin:/usr/local/bin:/usr/sbin:"
                               "/usr/bin:/sbin:/bin", *env]}
    write_image(layout, config=image, layers=layers, tag="moved")


def _interpreter_of(layout: Path, manifest: dict) -> bytes:
    """The base's /usr/bin/python3.11, read from its layers (the last one that has it)."""
    import tarfile

    found = b""
    for layer in manifest["layers"]:
        with tarfile.open(layout / "blobs" / "sha256" / layer["digest"].split(":")[1]) as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if member.name.lstrip("./") == "usr/bin/python3.11" and handle is not None:
                    found = handle.read()
    assert found, "the base has no /usr/bin/python3.11"
    return found


@pytest.mark.parametrize("prefix", ["/usr/local/bin", "/opt/conda/bin"])
def test_a_base_with_python_under_another_prefix(tmp_path: Path, prefix: str) -> None:
    """Probed, locked, built and run: the lock names the interpreter where it is, the
    venv links to it, and the runtime check passes in the container."""
    from tests.support.services import docker_available, remove_images, require

    require((BASE / "index.json").is_file(), "the Debian base is missing")
    require(docker_available(), "no Docker Engine is running")
    root = tmp_path / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json*", "reprolock.sbom*", "outputs"))
    moved_python_base(root / ".reprolock" / "base", tmp_path / "layer", prefix)
    config = root / "reprolock.toml"
    config.write_text(config.read_text().replace('base = "oci-layout:.reprolock/base:bookworm"',
                                                 'base = "oci-layout:.reprolock/base:moved"'))
    proc = run_cli("lock", "-C", root, "--no-sbom")
    assert proc.returncode == 0, proc.stderr
    lock = json.loads((root / "reprolock.lock.json").read_text())
    assert lock["base"]["python"]["path"] == f"{prefix}/python3.11"
    name = f"reprolock-test/moved-{uuid.uuid4().hex[:8]}"
    try:
        proc = run_cli("build", "-C", root, "-q", "-o", f"docker:{name}:v1")
        assert proc.returncode == 0, proc.stderr
        proc = run_cli("run", "-C", root, "--record", tmp_path / "r.json", "--", "python",
                       "-c", "import sys, tinyml; print(sys._base_executable, tinyml.__file__)")
        assert proc.returncode == 0, proc.stderr
        base_python, module = proc.stdout.strip().splitlines()[-1].split()
        assert base_python.startswith(prefix) and module.startswith("/opt/venv/")
    finally:
        remove_images(name)


# -- run reads the image configuration without exporting the image ------------------------

def test_run_after_build_reads_the_config_without_an_export(
        project: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """'build --output docker' keeps the config's exact bytes by the image ID: 'run' needs
    no 'docker save' of the whole image (57 s for a 5.7 GB image before)."""
    import io

    import reprolock.engine.docker as engine
    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.workflows.run import RunOptions, run

    def no_export(image: object) -> object:
        raise AssertionError("the whole image was exported to read its config")

    monkeypatch.setattr(engine, "save_stream", no_export)
    outcome = run(load_config(project["root"]),
                  RunOptions(record=project["work"] / "fast.json", image=project["name"],
                             command=("python", "-c", "print(42)")),
                  cache_dir=default_cache_dir(), progress=lambda _m: None,
                  stream=io.BytesIO())
    assert outcome.exit_code == 0 and outcome.check["ok"]


def test_a_remembered_config_is_used_only_if_its_bytes_are_the_id(tmp_path: Path) -> None:
    from reprolock.engine.docker import _remembered, remember_config

    data = b'{"config": {"Env": ["A=1"]}}'
    remember_config(tmp_path, data)
    good = "sha256:" + __import__("hashlib").sha256(data).hexdigest()
    assert _remembered(tmp_path, good) == {"config": {"Env": ["A=1"]}}
    forged = tmp_path / "engine-configs" / f"{'a' * 64}.json"
    forged.write_bytes(data)  # another image's ID, these bytes: not its config
    assert _remembered(tmp_path, f"sha256:{'a' * 64}") is None
    assert _remembered(tmp_path, "sha256:../../etc/passwd") is None
