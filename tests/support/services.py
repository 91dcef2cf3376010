"""Real outside parts for tests: a Docker Engine, an OCI registry, skopeo, syft.

A test that needs one and cannot have it is skipped on a developer's machine but
fails in CI (CI=true), where .ci/run installs and starts every one of them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require(condition: bool, reason: str) -> None:
    """Skip without ``condition`` locally; in CI a missing part fails the run."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI must provide this, but: {reason}")
    pytest.skip(reason)


def find_tool(name: str) -> str | None:
    """Find a tool the way reprolock does: beside the running interpreter (the venv's
    bin, where pip put syft and hadolint), then on PATH. ``shutil.which`` alone missed
    the venv's tools when .ci/test did not put .venv/bin on PATH."""
    from reprolock._internal.proc import find_tool as reprolock_find_tool
    from reprolock.errors import ToolError

    try:
        return reprolock_find_tool(name, hint="")
    except ToolError:
        return None


def require_tool(name: str) -> str:
    path = find_tool(name)
    require(path is not None, f"{name} is not installed")
    assert path is not None
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(workdir: Path) -> Iterator[str]:
    """Run Debian's docker-registry (CNCF distribution) on 127.0.0.1; yield host:port."""
    binary = shutil.which("docker-registry") or (
        "/usr/bin/docker-registry" if Path("/usr/bin/docker-registry").exists() else None)
    require(binary is not None,
            "docker-registry is not installed (apt-get install docker-registry)")
    assert binary is not None
    port = free_port()
    config = workdir / "registry.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    host = f"127.0.0.1:{port}"
    try:
        _wait(f"http://{host}/v2/", proc)
        yield host
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _wait(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"docker-registry exited with {proc.returncode}")
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    pytest.fail(f"docker-registry did not answer at {url}")


def docker_available() -> bool:
    try:
        import docker

        docker.from_env().ping()
        return True
    except Exception:
        return False


def skopeo_copy(src: str, dest: str) -> None:
    skopeo = require_tool("skopeo")
    with tempfile.TemporaryDirectory() as tmp:
        policy = Path(tmp) / "policy.json"
        policy.write_text('{"default":[{"type":"insecureAcceptAnything"}]}')
        subprocess.run([skopeo, "--policy", str(policy), "copy", "--dest-tls-verify=false",
                        "--src-tls-verify=false", src, dest], check=True, capture_output=True)


def remove_images(repository: str) -> None:
    """Remove the test's images by their tags in ``repository``. Not by ID with force:
    the same lock and code build the same image ID in any checkout, so another test run
    on this engine may hold the image, or images made from it, and a forced delete by ID
    fails ("image has dependent child images") or pulls it from under that run. Removing
    a tag deletes the image only when nothing else holds it."""
    import docker

    client = docker.from_env()
    for image in client.images.list(name=repository):
        for tag in image.tags:
            if tag.rpartition(":")[0] == repository:
                with contextlib.suppress(docker.errors.NotFound):
                    client.images.remove(tag)
