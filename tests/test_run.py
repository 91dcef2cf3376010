"""``reprolock run``, ``verify --runtime`` and ``verify --run`` on the real Docker Engine,
with the example project on its debootstrap-made Debian base. One image per module; each
planted drift runs in a container of its own."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

import pytest

from tests.support.cli import run_cli
from tests.support.services import docker_available, require

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
SITE = "/opt/venv/lib/python3.11/site-packages"
PASSWORD = {"REPROLOCK_KEY_PASSWORD": "pw"}
CHECK = "python /.reprolock/check.py --json"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    root = tmp_path_factory.mktemp("run") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs", "reprolock.lock.json.sig"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    assert run_cli("lock", "-C", root, "--no-sbom").returncode == 0
    name = f"reprolock-test/run-{uuid.uuid4().hex[:8]}:v1"
    proc = run_cli("build", "-C", root, "--json", "-q", "-o", f"docker:{name}")
    assert proc.returncode == 0, proc.stderr
    yield {"root": root, "name": name, "result": json.loads(proc.stdout)}
    from tests.support.services import remove_images

    remove_images(name.split(":")[0])


def in_container(built: dict, script: str, **kwargs: object) -> tuple[int, dict]:
    """Plant a drift with ``script``, then run the image's own checker."""
    import docker

    client = docker.from_env()
    container = client.containers.run(built["name"], ["sh", "-c", f"{script}\n{CHECK}"],
                                      entrypoint=[], network_mode="none", detach=True,
                                      **kwargs)
    try:
        code = container.wait()["StatusCode"]
        out = container.logs(stdout=True, stderr=False).decode()
    finally:
        container.remove(force=True)
    return code, json.loads(out)


def problems(report: dict) -> list[str]:
    return [p for c in report["checks"] for p in c["problems"]]


def test_clean_run_passes_and_its_record_verifies(built: dict, tmp_path: Path) -> None:
    root = built["root"]
    assert run_cli("keygen", "-o", tmp_path / "k", env=_env()).returncode == 0
    record = tmp_path / "run.json"
    proc = run_cli("run", "-C", root, "--record", record, "--sign-key", tmp_path / "k.key",
                   env=_env())
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("accuracy=0.9")
    doc = json.loads(record.read_text())
    assert doc["image"]["id"] == built["result"]["configDigest"]
    assert doc["codeTree"] == built["result"]["codeTree"]
    assert doc["check"]["ok"] and doc["exitCode"] == 0 and doc["network"] == "none"
    assert [f["path"] for f in doc["outputs"]["files"]] == ["model.json"]
    unsigned = run_cli("verify", "-C", root, "--run", record, "--key", tmp_path / "k.pub")
    assert unsigned.returncode == 1 and "✗ lock-signature" in unsigned.stdout  # --key: the lock too
    assert run_cli("sign", tmp_path / "k.key", "-C", root, env=_env()).returncode == 0
    ok = run_cli("verify", "-C", root, "--run", record, "--key", tmp_path / "k.pub")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (root / "outputs" / "model.json").write_text("{}\n")
    bad = run_cli("verify", "-C", root, "--run", record, "--key", tmp_path / "k.pub")
    assert bad.returncode == 1 and "outputs/model.json changed since the run" in bad.stdout
    doc["exitCode"] = 0
    doc["command"] = ["python3", "other.py"]
    record.write_text(json.dumps(doc))
    forged = run_cli("verify", "-C", root, "--run", record, "--key", tmp_path / "k.pub")
    assert forged.returncode == 1 and "differs from the record signed" in forged.stdout
    record.write_text("{not json")
    corrupt = run_cli("verify", "-C", root, "--run", record)
    assert corrupt.returncode == 2 and "run.json is not valid JSON" in corrupt.stderr


def test_run_picks_the_image_of_this_lock_among_same_labelled_ones(built: dict) -> None:
    """Another SOURCE_DATE_EPOCH gives an image with the same lock and code labels but
    another environment image: 'run' takes the one the lock records."""
    import os

    import docker

    root = built["root"]
    lock = json.loads((root / "reprolock.lock.json").read_text())
    other = f"{built['name'].split(':')[0]}:other-epoch"
    proc = run_cli("build", "-C", root, "--json", "-q", "-o", f"docker:{other}",
                   env={**os.environ, "SOURCE_DATE_EPOCH": "1234567890"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["configDigest"] != built["result"]["configDigest"]
    client = docker.from_env()
    labels = client.images.get(other).labels
    assert labels["dev.reprolock.environment.config"] != lock["image"]["configDigest"]
    assert client.images.get(built["name"]).labels["dev.reprolock.environment.config"] == \
        lock["image"]["configDigest"]
    try:
        ran = run_cli("run", "-C", root, "--json", "-q", "--record",
                      root / ".reprolock" / "pick.json")
        assert ran.returncode == 0, ran.stderr
        record = json.loads((root / ".reprolock" / "pick.json").read_text())
        assert record["image"]["id"] == built["result"]["configDigest"]
    finally:
        client.images.remove(other, force=True)


def test_run_prefers_the_image_of_this_commit(built: dict, tmp_path: Path) -> None:
    """The same lock and code built outside git (the fixture's image, no revision label)
    and from a commit: in the git checkout, 'run' takes the image of that commit."""
    import subprocess

    import docker

    repo = tmp_path / "repo"
    shutil.copytree(built["root"], repo, symlinks=True)
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "example"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True,
                            text=True).stdout.strip()
    name = f"{built['name'].split(':')[0]}:commit"
    proc = run_cli("build", "-C", repo, "--json", "-q", "-o", f"docker:{name}")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["codeTree"] == built["result"]["codeTree"]  # same code, other config
    assert result["configDigest"] != built["result"]["configDigest"]
    client = docker.from_env()
    try:
        assert client.images.get(name).labels["org.opencontainers.image.revision"] == commit
        ran = run_cli("run", "-C", repo, "-q", "--record", tmp_path / "r.json")
        assert ran.returncode == 0, ran.stderr
        record = json.loads((tmp_path / "r.json").read_text())
        assert record["image"]["id"] == result["configDigest"]
    finally:
        client.images.remove(name, force=True)


def _env() -> dict[str, str]:
    import os

    return {**os.environ, **PASSWORD}


def test_clean_container_passes_the_runtime_check(built: dict) -> None:
    code, report = in_container(built, "true")
    assert code == 0, problems(report)
    assert report["python"]["version"] == "3.11.2"


def test_changed_package_file_is_named(built: dict) -> None:
    code, report = in_container(built, f"echo 'x = 1' >> {SITE}/tinyml/__init__.py")
    assert code == 1
    assert any(p.startswith(f"{SITE}/tinyml/__init__.py (tinyml) changed")
               for p in problems(report)), problems(report)


def test_package_added_like_pip_is_named(built: dict) -> None:
    """The base has no pip: write what 'pip install' leaves, a module and a dist-info."""
    script = (f"mkdir -p {SITE}/evil {SITE}/evil-1.0.dist-info && "
              f"echo 'import os' > {SITE}/evil/__init__.py && "
              f"printf 'Metadata-Version: 2.1\\nName: evil\\nVersion: 1.0\\n\\n' > "
              f"{SITE}/evil-1.0.dist-info/METADATA && "
              f"printf 'evil/__init__.py,,\\n' > {SITE}/evil-1.0.dist-info/RECORD")
    code, report = in_container(built, script)
    assert code == 1
    assert "extra: evil 1.0 is installed but not locked" in problems(report)


def test_other_version_is_named(built: dict) -> None:
    dist = f"{SITE}/tinyconfig-1.0.0.dist-info"
    script = (f"sed -i 's/^Version: 1.0.0/Version: 1.2.0/' {dist}/METADATA && "
              f"mv {dist} {SITE}/tinyconfig-1.2.0.dist-info")
    code, report = in_container(built, script)
    assert code == 1
    assert "other version: tinyconfig 1.2.0 is installed, the lock has 1.0.0" in problems(report)


def test_edited_code_is_named(built: dict) -> None:
    code, report = in_container(built, "echo '# edited' >> /app/train.py")
    assert code == 1
    assert any(p.startswith("train.py was edited") for p in problems(report))


def test_overridden_env_is_named(built: dict) -> None:
    code, report = in_container(built, "true", environment={"PYTHONDONTWRITEBYTECODE": ""})
    assert code == 1
    assert any(p.startswith("PYTHONDONTWRITEBYTECODE is ''") for p in problems(report))


def test_fast_check_passes_in_a_clean_container(built: dict) -> None:
    code, report = in_container(built, "python /.reprolock/check.py --fast >/dev/null || exit 7")
    assert code == 0 and report["mode"] == "full"  # the fast one passed, then the full one


def test_run_refuses_a_tampered_image(built: dict, tmp_path: Path) -> None:
    import docker

    client = docker.from_env()
    container = client.containers.run(
        built["name"], ["sh", "-c", f"echo 'x = 2' >> {SITE}/tinyml/__init__.py"],
        entrypoint=[], network_mode="none", detach=True)
    container.wait()
    tampered = f"{built['name'].split(':')[0]}:tampered"
    container.commit(repository=tampered.split(":")[0], tag="tampered")
    container.remove(force=True)
    proc = run_cli("run", "-C", built["root"], "--image", tampered,
                   "--record", tmp_path / "r.json")
    assert proc.returncode == 1, proc.stderr
    assert "tinyml/__init__.py (tinyml) changed" in proc.stderr
    assert "the run was refused" in proc.stderr and not (tmp_path / "r.json").exists()
    warned = run_cli("run", "-C", built["root"], "--image", tampered, "--warn-only",
                     "--record", tmp_path / "r.json", "--", "python3", "-c", "print(42)")
    assert warned.returncode == 0 and warned.stdout.strip() == "42"
    record = json.loads((tmp_path / "r.json").read_text())
    # a committed container is another image: its configuration (a new layer) differs too
    assert record["check"]["failed"] == ["files", "config"] and record["check"]["warnOnly"]
    verified = run_cli("verify", "-C", built["root"], "--run", tmp_path / "r.json")
    assert verified.returncode == 1 and "files differed" in verified.stdout


def test_verify_image_in_the_engine(built: dict) -> None:
    proc = run_cli("verify", "-C", built["root"], "--image", f"docker-daemon:{built['name']}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    missing = run_cli("verify", "-C", built["root"], "--image", "docker-daemon:nope/none:v0")
    assert missing.returncode == 2 and "has no image" in missing.stderr


def test_without_an_image_or_an_engine(built: dict, tmp_path: Path) -> None:
    import os

    (built["root"] / "extra.py").write_text("x = 1\n")  # another code tree: no image for it
    try:
        proc = run_cli("run", "-C", built["root"])
        assert proc.returncode == 2
        assert "holds no image built from this lock and code tree" in proc.stderr
        assert "reprolock build --output docker" in proc.stderr
    finally:
        (built["root"] / "extra.py").unlink()
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    down = run_cli("run", "-C", built["root"], env=env)
    assert down.returncode == 2 and "cannot reach the Docker Engine" in down.stderr
    assert "oci:" in down.stderr


def _run_in_process(built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    **options: object) -> tuple[object, bytes]:
    """reprolock.workflows.run.run, in this process (so that it can be patched)."""
    import io

    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.workflows.run import RunOptions, run

    monkeypatch.chdir(tmp_path)
    stream = io.BytesIO()
    outcome = run(load_config(built["root"]), RunOptions(record=tmp_path / "r.json",
                                                         image=built["name"],
                                                         **options),  # type: ignore[arg-type]
                  cache_dir=default_cache_dir(), progress=lambda _m: None, stream=stream)
    return outcome, stream.getvalue()


def test_outputs_are_not_code_outside_git(tmp_path: Path) -> None:
    """Without git, a run's outputs changed the code tree: the next run found no image."""
    from reprolock.audit.sources import code_paths
    from reprolock.config import load_config
    from reprolock.inspection.codeset import collect_code

    root = tmp_path / "p"
    root.mkdir()
    (root / "requirements.in").write_text("tinyml\n")
    (root / "train.py").write_text("print(1)\n")
    (root / "reprolock.toml").write_text(_TOML + '[run]\noutputs = "./results/run1/"\n')
    config = load_config(root)
    before = collect_code(config)
    assert before.git is None  # not a work tree
    (root / "results" / "run1").mkdir(parents=True)
    (root / "results" / "run1" / "model.json").write_text("{}\n")
    (root / "results" / "notes.py").write_text("x = 1\n")  # beside the outputs: code
    after = collect_code(config)
    assert [f.path for f in after.files] == ["reprolock.toml", "requirements.in",
                                             "results/notes.py", "train.py"]
    assert code_paths(config) == [f.path for f in after.files]
    default = load_config(_write(tmp_path / "q", _TOML))
    tree = collect_code(default).tree_digest
    (default.root / "outputs").mkdir()
    (default.root / "outputs" / "model.json").write_text("{}\n")
    assert collect_code(default).tree_digest == tree


_TOML = 'base = "oci-layout:base:tiny"\n[dependencies]\nrequirements = ["requirements.in"]\n'


def _write(root: Path, config: str) -> Path:
    root.mkdir()
    (root / "reprolock.toml").write_text(config)
    (root / "requirements.in").write_text("tinyml\n")
    return root


def test_check_output_on_stderr_does_not_break_the_run(
        built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check's stdout is its JSON: what the interpreter writes to stderr (here every
    import, PYTHONVERBOSE) must not be mixed into it."""
    outcome, out = _run_in_process(built, tmp_path, monkeypatch,
                                   env={"PYTHONVERBOSE": "1"},
                                   command=("python3", "-c", "print(42)"))
    assert outcome.exit_code == 0 and b"42" in out  # type: ignore[attr-defined]
    assert outcome.check["ok"]  # type: ignore[attr-defined]
    assert "config" in {c["name"] for c in outcome.check["checks"]}  # type: ignore[attr-defined]


def test_run_refuses_an_image_whose_env_was_changed(built: dict, tmp_path: Path) -> None:
    """The expected variables came from the image being checked: a changed ENV passed."""
    import docker

    client = docker.from_env()
    image = client.images.get(built["name"])
    env = [e for e in image.attrs["Config"]["Env"] if not e.startswith("PYTHONHASHSEED=")]
    container = client.containers.create(built["name"], ["true"], entrypoint=[])
    repo = built["name"].split(":")[0]
    try:
        container.commit(repository=repo, tag="env",
                         conf={**image.attrs["Config"], "Env": [*env, "PYTHONHASHSEED=random"]})
    finally:
        container.remove(force=True)
    proc = run_cli("run", "-C", built["root"], "--image", f"{repo}:env",
                   "--record", tmp_path / "r.json")
    assert proc.returncode == 1, proc.stderr
    assert "✗ runtime config: the image configuration" in proc.stderr
    assert "PYTHONHASHSEED is 'random', the image declares '0'" in proc.stderr
    assert "the run was refused" in proc.stderr and not (tmp_path / "r.json").exists()


def test_run_usage_and_engine_errors_exit_2(built: dict, tmp_path: Path) -> None:
    root = built["root"]
    typo = run_cli("run", "-C", root, "--gpu", "all")
    assert typo.returncode == 2 and "no such option: --gpu" in typo.stderr
    assert "after '--'" in typo.stderr
    gpus = run_cli("run", "-C", root, "--gpus", "two")
    assert gpus.returncode == 2 and "--gpus 'two' is not a GPU request" in gpus.stderr
    bad = run_cli("run", "-C", root, "--image", "Not A/Reference:x")
    assert bad.returncode == 2, bad.stderr
    assert "could not look up the image" in bad.stderr and "this is a bug" not in bad.stderr
    assert "--image NAME:TAG" in bad.stderr
    proc = run_cli("run", "-C", root, "--image", built["name"], "--record", tmp_path / "r.json",
                   "--", "python3", "-c",
                   "import sys; print(sys.argv[1:])", "--flag", "-x")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "['--flag', '-x']"


def test_a_lock_made_without_an_image_says_to_lock_again(built: dict, tmp_path: Path) -> None:
    """Found by the S2 benchmark: the hint said to rebuild, which cannot help."""
    root = tmp_path / "nobuild"
    shutil.copytree(built["root"], root, symlinks=True)
    assert run_cli("lock", "-C", root, "--no-build").returncode == 0
    proc = run_cli("run", "-C", root, "--image", built["name"], "--", "true")
    assert proc.returncode == 2, proc.stderr
    assert "records no environment image (it was made with --no-build)" in proc.stderr
    assert "run 'reprolock lock' (without --no-build)" in proc.stderr


def test_run_without_an_nvidia_runtime_is_a_tool_error(built: dict, tmp_path: Path) -> None:
    import docker

    if "nvidia" in (docker.from_env().info().get("Runtimes") or {}):
        pytest.skip("this engine has the NVIDIA runtime")
    proc = run_cli("run", "-C", built["root"], "--image", built["name"], "--gpus", "1",
                   "--record", tmp_path / "r.json")
    assert proc.returncode == 2, proc.stderr
    assert "this is a bug" not in proc.stderr and "NVIDIA Container Toolkit" in proc.stderr


def test_unreadable_output_is_recorded_and_fails_the_run(
        built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An output that cannot be read lost the whole record after a (long) run."""
    import reprolock.workflows.run as run_module

    real = run_module.sha256_file

    def sha256_file(path: Path) -> str:
        if path.name == "bad.bin":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(run_module, "sha256_file", sha256_file)
    outputs = tmp_path / "out"
    outcome, _ = _run_in_process(
        built, tmp_path, monkeypatch, outputs=outputs, command=(
            "sh", "-c", "echo a > /outputs/good.txt && echo b > /outputs/bad.bin"))
    assert outcome.exit_code == 2  # type: ignore[attr-defined]
    record = json.loads((tmp_path / "r.json").read_text())
    assert record["exitCode"] == 0
    files = {f["path"]: f for f in record["outputs"]["files"]}
    assert files["bad.bin"] == {"path": "bad.bin", "size": 2, "unreadable": "Permission denied"}
    assert "sha256" in files["good.txt"]
    from reprolock.verify.record import read_record

    assert read_record(tmp_path / "r.json")["outputs"]["files"]  # valid against the schema
