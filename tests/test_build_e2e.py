"""The example project end to end on real parts: the Debian base made by debootstrap,
the Docker Engine, Debian's docker-registry, and tools nobody here wrote (skopeo, umoci,
syft) reading what reprolock wrote."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.support.cli import run_cli
from tests.support.services import docker_available, require, require_tool, skopeo_copy
from tests.support.wheels import build_wheel

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
ACCEPT = "application/vnd.oci.image.manifest.v1+json"
BIG = (8 << 20) * 2 + 12345
WEIGHTS = b"".join(hashlib.sha256(b"%d" % i).hexdigest().encode() for i in range(20_000))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, registry: str) -> dict[str, object]:
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    root = tmp_path_factory.mktemp("e2e") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    # more than two compression blocks (8 MiB): the code layer is several gzip members
    (root / "assets").mkdir()
    (root / "assets" / "blob.bin").write_bytes(os.urandom(BIG))
    # a wheel member over 64 KiB: its deflate stream is copied into the gzip layer
    build_wheel(root / "wheels", "bigdata", "1.0", extra_files={"bigdata/weights.bin": WEIGHTS})
    with (root / "requirements.in").open("a") as handle:
        handle.write("bigdata==1.0\n")
    lock = run_cli("lock", "-C", root)
    assert lock.returncode == 0, lock.stderr
    out = root.parent
    proc = run_cli("build", "-C", root, "--json", "-q",
                   "-o", f"oci:{out}/layout:v1", "-o", f"oci-archive:{out}/image.tar",
                   "-o", "docker:reprolock-e2e/example:v1",
                   "-o", f"registry:{registry}/example:v1")
    assert proc.returncode == 0, proc.stderr
    # syft's oci-dir: reads layouts that hold exactly one manifest: one without artifacts
    plain = run_cli("build", "-C", root, "-q", "--no-attach", "-o", f"oci:{out}/plain:v1",
                    "-o", f"oci-archive:{out}/plain.tar")
    assert plain.returncode == 0, plain.stderr
    return {"root": root, "out": out, "result": json.loads(proc.stdout), "registry": registry,
            "lock": json.loads((root / "reprolock.lock.json").read_text())}


def test_image_runs_the_training_in_docker(built: dict) -> None:
    import docker

    client = docker.from_env()
    output = client.containers.run("reprolock-e2e/example:v1", network_mode="none",
                                   remove=True).decode()
    assert output.startswith("accuracy=0.9"), output
    image = client.images.get("reprolock-e2e/example:v1")
    assert image.id == built["result"]["configDigest"]


def test_a_layer_of_several_blocks_reads_back_in_docker(built: dict) -> None:
    import docker

    assert built["lock"]["image"]["compression"]["blockSize"] < BIG
    blob = (built["root"] / "assets" / "blob.bin").read_bytes()
    output = docker.from_env().containers.run(
        "reprolock-e2e/example:v1", entrypoint=["sha256sum", "/app/assets/blob.bin"],
        network_mode="none", remove=True).decode()
    assert output.split()[0] == hashlib.sha256(blob).hexdigest()


def test_a_reused_wheel_member_reads_back_in_docker(built: dict) -> None:
    """The wheel's own deflate stream, copied as a gzip member, is what Docker unpacks."""
    import docker

    assert built["lock"]["image"]["compression"]["wheelDeflate"] is True
    output = docker.from_env().containers.run(
        "reprolock-e2e/example:v1", network_mode="none", remove=True,
        entrypoint=["sha256sum", "/opt/venv/lib/python3.11/site-packages/bigdata/weights.bin"],
        ).decode()
    assert output.split()[0] == hashlib.sha256(WEIGHTS).hexdigest()


def test_one_thread_builds_the_same_image_as_every_core(built: dict, tmp_path: Path) -> None:
    """Built again with an empty cache (no layer reused) on one thread; the first build
    used one per core."""
    assert (os.cpu_count() or 1) > 1
    proc = run_cli("build", "-C", built["root"], "--json", "-q", "--jobs", "1",
                   "-o", f"oci:{built['out']}/one-thread:v1",
                   env={**os.environ, "REPROLOCK_CACHE_DIR": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["manifestDigest"] == built["result"]["manifestDigest"]
    assert result["layers"] == built["result"]["layers"]


def test_archive_loads_with_docker_load(built: dict) -> None:
    require(docker_available(), "no Docker Engine is running")
    docker_cli = require_tool("docker")
    proc = subprocess.run([docker_cli, "load", "-i", str(built["out"] / "image.tar")],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    inspect = subprocess.run([docker_cli, "image", "inspect", "reprolock/image:latest",
                              "--format", "{{.Id}}"], capture_output=True, text=True, check=True)
    assert inspect.stdout.strip() == built["result"]["configDigest"]


def test_registry_has_the_same_digest(built: dict, tmp_path: Path) -> None:
    registry = built["registry"]
    head = requests.head(f"http://{registry}/v2/example/manifests/v1",
                         headers={"Accept": ACCEPT}, timeout=10)
    assert head.status_code == 200
    assert head.headers["Docker-Content-Digest"] == built["result"]["manifestDigest"]
    skopeo_copy(f"docker://{registry}/example:v1", f"oci:{tmp_path}/pulled:v1")
    index = json.loads((tmp_path / "pulled" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == built["result"]["manifestDigest"]


def test_environment_image_in_registry_equals_the_lock(built: dict) -> None:
    registry = built["registry"]
    proc = run_cli("build", "-C", built["root"], "--env-only", "--json", "-q",
                   "-o", f"registry:{registry}/example-env:v1")
    assert proc.returncode == 0, proc.stderr
    head = requests.head(f"http://{registry}/v2/example-env/manifests/v1",
                         headers={"Accept": ACCEPT}, timeout=10)
    assert head.headers["Docker-Content-Digest"] == built["lock"]["image"]["manifestDigest"]


def test_second_push_skips_existing_blobs(built: dict) -> None:
    proc = run_cli("build", "-C", built["root"], "-o",
                   f"registry:{built['registry']}/example:v2")
    assert proc.returncode == 0, proc.stderr
    assert "0 blobs uploaded" in proc.stderr


def test_skopeo_reads_the_layout(built: dict) -> None:
    skopeo = require_tool("skopeo")
    proc = subprocess.run([skopeo, "inspect", f"oci:{built['out']}/layout:v1"],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["Digest"] == built["result"]["manifestDigest"]
    assert info["Labels"]["dev.reprolock.code.tree"] == built["result"]["codeTree"]


def test_umoci_unpacks_the_layout(built: dict, tmp_path: Path) -> None:
    umoci = require_tool("umoci")
    bundle = tmp_path / "bundle"
    proc = subprocess.run([umoci, "unpack", "--rootless", "--image",
                           f"{built['out']}/layout:v1", str(bundle)],
                          capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "app" / "train.py").read_bytes() == (built["root"] / "train.py").read_bytes()
    site = rootfs / "opt/venv/lib/python3.11/site-packages"
    assert (site / "tinyml" / "__init__.py").is_file()
    assert (site / "bigdata" / "weights.bin").read_bytes() == WEIGHTS  # a reused stream
    assert (site / "tinyml-1.0.0.dist-info" / "INSTALLER").read_text() == "reprolock\n"
    assert not (site / "tinyml-1.0.0.dist-info" / "direct_url.json").exists()
    assert not list(site.rglob("*.pyc"))
    assert os.readlink(rootfs / "opt/venv/bin/python") == "/usr/bin/python3.11"


def test_syft_finds_every_locked_package(built: dict) -> None:
    syft = require_tool("syft")
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    proc = subprocess.run([syft, "scan", f"oci-dir:{built['out']}/plain", "-o", "json", "-q"],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    purls = {a.get("purl") for a in json.loads(proc.stdout)["artifacts"]}
    for pkg in built["lock"]["packages"]:
        assert f"pkg:pypi/{pkg['name']}@{pkg['version']}" in purls


def _without_ids(sbom: bytes) -> dict:
    """An SPDX document with syft's element IDs (hashes of what it saw) left out."""
    doc = json.loads(re.sub(rb'(SPDXRef-[A-Za-z0-9.\-]*?)-[0-9a-f]{16}"', rb'\1"', sbom))
    for key in ("packages", "files", "relationships"):
        doc[key] = sorted(json.dumps(x, sort_keys=True) for x in doc.get(key, []))
    return doc


def test_the_sbom_of_the_view_is_the_sbom_of_the_whole_image(built: dict,
                                                             tmp_path: Path) -> None:
    """syft is given the environment image without the files its catalogers never open;
    it writes what it writes of the whole image (element IDs aside), names the image's
    own layers, and the same bytes whether the view was written beside each layer or
    cut from the layers later, or a view blob in the cache was altered."""
    require_tool("syft")
    from reprolock.config import load_config
    from reprolock.imagebuild.builder import Builder, BuildOptions
    from reprolock.lock.io import read_lock
    from reprolock.sbom.syft import READS, READS_REVIEWED_FOR, SyftGenerator
    from reprolock.workflows.build import make_sbom

    assert SyftGenerator().version() == READS_REVIEWED_FOR  # else this proves nothing
    root, cache = built["root"], tmp_path / "cache"
    lock = read_lock(root / "reprolock.lock.json")
    result = Builder(load_config(root), lock, cache_dir=cache,
                     options=BuildOptions(sbom_reads=READS)).build(code=None)
    assert lock.image is not None and result.env.manifest_digest == lock.image.manifest_digest

    def sbom(view: bool, fresh: bool = False) -> bytes:
        made = result if fresh else dataclasses.replace(result, views={})
        return make_sbom(lock, made, fmt="spdx", progress=lambda _m: None,
                         cache_dir=cache if view else None).data

    assert result.views  # written beside the layers as they were built
    teed = sbom(view=True, fresh=True)
    assert sbom(view=True) == teed  # found in the cache, hashed again
    notes = {p: json.loads(p.read_text()) for p in (cache / "sbom-view").rglob("*")
             if p.is_file()}
    assert sum(n["dropped"] for n in notes.values()) >= len(WEIGHTS)
    shutil.rmtree(cache / "sbom-view")
    assert sbom(view=True) == teed  # cut from the layers
    altered = cache / "blobs" / "sha256" / next(
        n["digest"] for n in notes.values() if n["dropped"]).removeprefix("sha256:")
    altered.write_bytes(altered.read_bytes() + bytes(512))
    assert sbom(view=True) == teed
    assert teed == (root / "reprolock.sbom.spdx.json").read_bytes()  # what 'lock' wrote
    assert _without_ids(teed) == _without_ids(sbom(view=False))
    layers = set(re.findall(rb"layerID: sha256:([0-9a-f]{64})", teed))
    assert layers and {b"sha256:" + x for x in layers} <= {
        x["diffId"].encode() for x in built["lock"]["image"]["layers"]}


def test_syft_reads_the_archive(built: dict) -> None:
    syft = require_tool("syft")
    env = {**os.environ, "SYFT_CHECK_FOR_APP_UPDATE": "false"}
    proc = subprocess.run([syft, "scan", f"oci-archive:{built['out']}/plain.tar", "-o", "json",
                           "-q"], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    names = {a["name"] for a in json.loads(proc.stdout)["artifacts"]}
    assert {"tinyml", "tinyconfig"} <= names


def test_a_load_that_outlasts_its_wait_says_so(built: dict) -> None:
    """The true reason, not a version hint: the engine was still working."""
    from reprolock.engine.docker import connect, load_archive
    from reprolock.errors import ToolError

    with pytest.raises(ToolError) as caught:
        load_archive(connect(), built["out"] / "image.tar", timeout=0.001)
    assert "did not finish loading the image" in str(caught.value)
    assert "20.10" not in str(caught.value) + (caught.value.hint or "")


def test_a_load_the_engine_refuses_gives_its_reason(tmp_path: Path) -> None:
    import tarfile

    from reprolock.engine.docker import connect, load_archive
    from reprolock.errors import ToolError

    archive = tmp_path / "not-an-image.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"hi\n"))
    with pytest.raises(ToolError) as caught:
        load_archive(connect(), archive)
    # the engine's own reason, and a hint about the archive
    assert "docker load failed" in str(caught.value)
    assert "no such file or directory" in str(caught.value)
    assert "found no image in the archive" in (caught.value.hint or "")
