"""Faults: a lock killed between the SBOM and the lock, a build killed mid-write, a full
disk under the output; and run records bound to the lock (and code) they are checked
against, read as strictly as every other hostile document."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.buildproject import cli, copy_project
from tests.support.services import docker_available, require, require_tool

PASSWORD = {"REPROLOCK_KEY_PASSWORD": "pw"}
SBOM = "reprolock.sbom.spdx.json"


def killed(root: Path, cache: Path, args: list[str], *, target: str, after: int,
           inside: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``reprolock ARGS`` in a child whose ``target`` (module:function) is wrapped to
    SIGKILL the child once its ``after``-th call (with ``inside`` given: its ``after``-th
    call writing under ``inside``) has returned: a crash at exactly that point."""
    module, function = target.split(":")
    script = textwrap.dedent(f"""
        import os, signal, sys
        import {module} as mod
        real = mod.{function}
        calls = []
        inside = {str(inside) + "/" if inside else ""!r}
        def dying(*args, **kwargs):
            result = real(*args, **kwargs)
            if str(args[0]).startswith(inside):
                calls.append(args[0])
            if len(calls) >= {after}:
                os.kill(os.getpid(), signal.SIGKILL)
            return result
        mod.{function} = dying
        sys.argv = ["reprolock", *{[*args, "-C", str(root)]!r}]
        from reprolock._entry import main
        main()
    """)
    env = {**os.environ, "REPROLOCK_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, check=False)


def sbom_pair_ok(root: Path) -> dict:
    """The lock's SBOM exists with the sha256 the lock records."""
    lock = json.loads((root / "reprolock.lock.json").read_text())
    data = (root / lock["sbom"]["path"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == lock["sbom"]["sha256"], lock["sbom"]
    return lock


def sbom_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("*.spdx.json"))


# -- the SBOM and the lock are one pair ---------------------------------------------------

@pytest.fixture(scope="module")
def lock_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults-lock-cache")


@pytest.mark.parametrize("after", [1, 2, 3, 4])
def test_a_lock_killed_between_its_writes_leaves_a_valid_pair(
        build_project_template: Path, tmp_path: Path, lock_cache: Path, after: int) -> None:
    """Kill 'lock' (SIGKILL) after each of its file writes: 'verify' and 'build' accept
    whatever it left: the old pair or the new one, never a new SBOM beside the old lock."""
    require_tool("syft")
    project = copy_project(build_project_template, tmp_path / "p")
    old = sbom_pair_ok(project)
    # another compressor: another environment manifest, another SBOM; the inputs (and so
    # the freshness of the old lock) stay the same
    proc = killed(project, lock_cache, ["lock", "--compression", "none", "-q"],
                  target="reprolock._internal.files:atomic_write_bytes", after=after,
                  inside=project)
    assert proc.returncode == -9, proc.stderr
    lock = sbom_pair_ok(project)
    verify = cli("verify", "-C", project, "--no-rebuild", cache=lock_cache)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "✓ sbom" in verify.stdout
    if after == 1:
        assert lock == old  # the crash came before the lock changed
    if after == 2:
        assert lock["sbom"]["sha256"] != old["sbom"]["sha256"]  # the new pair
        build = cli("build", "-C", project, "-q", "-o", f"oci:{project}/out", cache=lock_cache)
        assert build.returncode == 0, build.stderr
        # the next lock puts the SBOM back at its usual name and leaves nothing behind
        again = cli("lock", "-C", project, "--compression", "none", "-q", cache=lock_cache)
        assert again.returncode == 0, again.stderr
        assert sbom_pair_ok(project)["sbom"]["path"] == SBOM
        assert sbom_files(project) == [SBOM]


def test_a_finished_lock_names_the_sbom_at_its_usual_path(
        build_project_template: Path, tmp_path: Path, lock_cache: Path) -> None:
    require_tool("syft")
    project = copy_project(build_project_template, tmp_path / "p")
    proc = cli("lock", "-C", project, "--compression", "none", "-q", cache=lock_cache)
    assert proc.returncode == 0, proc.stderr
    lock = sbom_pair_ok(project)
    assert lock["sbom"]["path"] == SBOM
    assert sbom_files(project) == [SBOM]


def test_an_old_lock_naming_its_sbom_elsewhere_still_verifies(
        build_project_template: Path, tmp_path: Path, lock_cache: Path) -> None:
    """Locks record the SBOM's path: one written to another name keeps working."""
    project = copy_project(build_project_template, tmp_path / "p")
    lock = json.loads((project / "reprolock.lock.json").read_text())
    (project / "old-name.spdx.json").write_bytes((project / SBOM).read_bytes())
    (project / SBOM).unlink()
    lock["sbom"]["path"] = "old-name.spdx.json"
    (project / "reprolock.lock.json").write_text(json.dumps(lock, indent=2, sort_keys=True) + "\n")
    verify = cli("verify", "-C", project, "--no-rebuild", cache=lock_cache)
    assert verify.returncode == 0, verify.stdout + verify.stderr


# -- temporary files in the cache and the output ------------------------------------------

def cache_temps(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.name.startswith(".")]


def test_a_killed_build_leaves_no_temporary_file_after_the_next_start(
        build_project_template: Path, tmp_path: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    cache = tmp_path / "cache"
    proc = killed(project, cache, ["build", "-q", "-o", f"oci:{project}/out"],
                  target="reprolock.imagebuild.builder:write_layer", after=1)
    assert proc.returncode == -9, proc.stderr
    assert cache_temps(cache)  # the layer written, not yet renamed: the kill left it
    again = cli("build", "-C", project, "-q", "-o", f"oci:{project}/out", cache=cache)
    assert again.returncode == 0, again.stderr
    assert cache_temps(cache) == []


def test_a_temporary_file_of_a_live_writer_is_left_alone(tmp_path: Path) -> None:
    """The sweep removes only what no running process is writing."""
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from reprolock.imagebuild.store import BlobStore
            tmp = BlobStore(Path({str(tmp_path)!r})).temp_path()
            tmp.write_bytes(b"half a layer")
            print(tmp, flush=True)
            sys.stdin.read()
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        live = Path(holder.stdout.readline().strip())
        from reprolock.imagebuild.store import BlobStore

        store = BlobStore(tmp_path)
        assert live.is_file()  # still being written: kept
        assert not store.valid("sha256:" + hashlib.sha256(b"half a layer").hexdigest())
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    BlobStore(tmp_path)  # its writer is gone now: swept
    assert not live.exists()


def test_full_disk_under_the_output_leaves_nothing_and_names_the_path(
        build_project_template: Path, tmp_path: Path, tiny_disk: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    out = tiny_disk / "image"
    proc = cli("build", "-C", project, "-o", f"oci:{out}", cache=tmp_path / "c")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert str(out) in proc.stderr and "free space" in proc.stderr
    error = proc.stderr[proc.stderr.index("error: "):]
    assert len(error.strip().splitlines()) == 2, error  # one paragraph and its fix
    assert "No space left on device" in error
    assert [p for p in tiny_disk.rglob("*")] == []  # not even the directory it made


def test_full_disk_under_an_existing_layout_keeps_what_was_there(
        build_project_template: Path, tmp_path: Path, tiny_disk: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    out = tiny_disk / "image"
    out.mkdir()
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (out / "index.json").write_text('{"schemaVersion":2,"manifests":[]}\n')
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = cli("build", "-C", project, "-o", f"oci:{out}", cache=tmp_path / "c")
    assert proc.returncode == 2, proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_full_disk_under_the_cache_names_it_and_the_fix(
        build_project_template: Path, tmp_path: Path, tiny_disk: Path) -> None:
    project = copy_project(build_project_template, tmp_path / "p")
    proc = cli("build", "-C", project, "-o", f"oci:{project}/out", cache=tiny_disk)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert str(tiny_disk) in proc.stderr and "REPROLOCK_CACHE_DIR" in proc.stderr
    assert [p for p in tiny_disk.rglob("*") if p.is_file() and p.name.startswith(".")] == []


# -- run records: bound to the lock and code, read strictly --------------------------------

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"


def run_cli(*args: str | Path, env: dict[str, str] | None = None,
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reprolock", *map(str, args)],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          env={**os.environ, **(env or {})}, check=False)


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """The example, locked (signed), built into Docker and run once with a signed record."""
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    work = tmp_path_factory.mktemp("faults-run")
    root = work / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs", "reprolock.lock.json.sig"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    assert run_cli("keygen", "-o", work / "k", env=PASSWORD).returncode == 0
    assert run_cli("lock", "-C", root, "--no-sbom", "--sign-key", work / "k.key",
                   env=PASSWORD).returncode == 0
    name = f"reprolock-test/faults-{uuid.uuid4().hex[:8]}:v1"
    try:
        proc = run_cli("build", "-C", root, "-q", "-o", f"docker:{name}")
        assert proc.returncode == 0, proc.stderr
        record = work / "run.json"
        proc = run_cli("run", "-C", root, "--image", name, "--record", record,
                       "--sign-key", work / "k.key", env=PASSWORD)
        assert proc.returncode == 0, proc.stderr
        yield {"root": root, "record": record, "key": work / "k", "work": work}
    finally:
        from tests.support.services import remove_images

        remove_images(name.split(":")[0])


def other_project(ran: dict, tmp_path: Path) -> Path:
    other = tmp_path / "other"
    shutil.copytree(ran["root"], other, symlinks=True)
    return other


def record_copy(ran: dict, tmp_path: Path) -> tuple[Path, Path]:
    record = tmp_path / "run.json"
    shutil.copy(ran["record"], record)
    envelope = tmp_path / "run.dsse.json"
    shutil.copy(ran["record"].with_name("run.dsse.json"), envelope)
    return record, envelope


def test_the_record_verifies_in_its_own_project(ran: dict) -> None:
    proc = run_cli("verify", "-C", ran["root"], "--run", ran["record"], "--key",
                   ran["key"].with_suffix(".pub"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "✓ run-lock:" in proc.stdout and "✓ run-code:" in proc.stdout


def test_an_unsigned_check_of_a_record_says_it_proves_only_claims(ran: dict) -> None:
    """Without --key a hand-written record passes every check of its content: the report
    must say that nothing proves a run made it (a ✓ alone read as proof)."""
    proc = run_cli("verify", "-C", ran["root"], "--run", ran["record"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "! signature: not checked (no --key)" in proc.stdout
    as_json = run_cli("verify", "-C", ran["root"], "--run", ran["record"], "--json")
    signature = next(c for c in json.loads(as_json.stdout)["checks"]
                     if c["name"] == "signature")
    assert signature["unproven"] is True


def test_a_record_of_another_lock_fails(ran: dict, tmp_path: Path) -> None:
    """A signed record checked in a project whose (signed) lock differs: exit 1, both named."""
    other = other_project(ran, tmp_path)
    (other / "requirements.in").write_text("tinyml>=1.0\ntinyconfig\n")
    assert run_cli("lock", "-C", other, "--no-build", "--no-sbom", "--sign-key",
                   ran["key"].with_suffix(".key"), env=PASSWORD).returncode == 0
    recorded = json.loads(ran["record"].read_text())["lock"]["digest"]
    current = "sha256:" + hashlib.sha256((other / "reprolock.lock.json").read_bytes()).hexdigest()
    assert recorded != current
    proc = run_cli("verify", "-C", other, "--run", ran["record"], "--key",
                   ran["key"].with_suffix(".pub"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert recorded in proc.stdout and current in proc.stdout


def test_a_record_of_other_code_fails(ran: dict, tmp_path: Path) -> None:
    other = other_project(ran, tmp_path)
    with (other / "train.py").open("a") as handle:
        handle.write("# not the code that ran\n")
    proc = run_cli("verify", "-C", other, "--run", ran["record"])
    assert proc.returncode == 1, proc.stdout + proc.stderr
    recorded = json.loads(ran["record"].read_text())["codeTree"]
    assert recorded in proc.stdout and "code" in proc.stdout


def one_paragraph_exit_2(proc: subprocess.CompletedProcess[str], name: str) -> None:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr
    assert name in proc.stderr
    assert proc.stderr.startswith("error: ") and len(proc.stderr.strip().splitlines()) <= 2


@pytest.mark.parametrize("damage", ["duplicate", "deep", "latin1", "list"])
def test_a_malformed_record_is_exit_2(ran: dict, tmp_path: Path, damage: str) -> None:
    record, _ = record_copy(ran, tmp_path)
    text = record.read_text()
    if damage == "duplicate":  # the last exitCode wins in json.loads: a forged success
        data = text.replace('"exitCode": 0', '"exitCode": 3, "exitCode": 0', 1).encode()
    elif damage == "deep":
        data = ("[" * 100_000 + "]" * 100_000).encode()
    elif damage == "latin1":
        data = text.replace('"recordVersion"', '"recordVersion\u00e9"').encode("latin-1")
    else:
        data = b"[]"
    record.write_bytes(data)
    proc = run_cli("verify", "-C", ran["root"], "--run", record)
    one_paragraph_exit_2(proc, "run.json")
    if damage == "duplicate":
        assert "twice" in proc.stderr


@pytest.mark.parametrize("damage", ["list", "duplicate", "deep", "latin1"])
def test_a_malformed_envelope_is_exit_2(ran: dict, tmp_path: Path, damage: str) -> None:
    record, envelope = record_copy(ran, tmp_path)
    text = envelope.read_text()
    if damage == "list":
        data = b"[]"
    elif damage == "duplicate":
        data = text.replace('"payloadType"', '"payloadType": "x", "payloadType"', 1).encode()
    elif damage == "deep":
        data = ("{\"a\":" * 10_000 + "1" + "}" * 10_000).encode()
    else:
        data = text.replace('"payload"', '"payload\u00e9"', 1).encode("latin-1")
    envelope.write_bytes(data)
    proc = run_cli("verify", "-C", ran["root"], "--run", record, "--key",
                   ran["key"].with_suffix(".pub"))
    one_paragraph_exit_2(proc, "run.dsse.json")


def test_a_record_cannot_vouch_for_files_outside_its_outputs(ran: dict, tmp_path: Path) -> None:
    """'../train.py' as an output: the outputs check would hash a file of the code."""
    record, _ = record_copy(ran, tmp_path)
    doc = json.loads(record.read_text())
    train = (ran["root"] / "train.py").read_bytes()
    doc["outputs"]["files"].append({"path": "../train.py", "size": len(train),
                                    "sha256": hashlib.sha256(train).hexdigest()})
    record.write_text(json.dumps(doc))
    proc = run_cli("verify", "-C", ran["root"], "--run", record)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "run.json is not valid" in proc.stderr and "outputs.files[1].path" in proc.stderr
    assert "Traceback" not in proc.stderr
