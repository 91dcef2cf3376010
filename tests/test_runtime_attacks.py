"""Code that Python runs before the training, which the runtime check must see (issue 10):
startup hooks and .pth files on any directory of sys.path, bytecode the image does not
have, a venv whose pyvenv.cfg or bin/python was changed, variables that make Python or the
loader run other code, and a checker that the image's own hooks could patch.

First on a fake image root (tests/support/runtime_root.py: a real venv, the host
interpreter as its base), then in real containers of the example image, through what
'reprolock run' mounts and runs.
"""

from __future__ import annotations

import io
import json
import os
import site
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path

import pytest

from reprolock.runtime.basefiles import scan_layers
from tests.support.runtime_root import (
    BASE_PYTHON,
    MINOR,
    FakeImage,
    copy_image_root,
    make_image_root,
)
from tests.support.wheels import build_wheel

LOCKED = [("tinyml", "1.0.0"), ("tinyconfig", "1.0.0")]
STDLIB = sysconfig.get_paths()["stdlib"]  # the fake image's base: the host interpreter's
BASE_SITE = site.getsitepackages([sys.base_prefix])[0]
EVIL = "import builtins\nbuiltins.all = lambda _items: True  # every check 'passes'\n"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> FakeImage:
    wheels = tmp_path_factory.mktemp("wheels")
    built = [build_wheel(wheels, "tinyml", "1.0.0",
                         modules={"tinyml/__init__.py": "__version__ = '1.0.0'\n"}),
             build_wheel(wheels, "tinyconfig", "1.0.0")]
    return make_image_root(tmp_path_factory.mktemp("image") / "root", built, LOCKED)


@pytest.fixture
def image(pristine: FakeImage, tmp_path: Path) -> FakeImage:
    return copy_image_root(pristine, tmp_path / "root")


def problems(report: dict, name: str) -> list[str]:
    check = next((c for c in report["checks"] if c["name"] == name), None)
    assert check is not None, f"no {name} check in {[c['name'] for c in report['checks']]}"
    assert not check["ok"], check
    return list(check["problems"])


def failed(report: dict) -> set[str]:
    return {c["name"] for c in report["checks"] if not c["ok"]}


def plant(image: FakeImage, path: str, text: str = EVIL) -> str:
    """Write ``text`` at image path ``path`` inside the fake root; return the path."""
    target = image.root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return path


# -- startup hooks on every directory of sys.path ----------------------------------------

def test_clean_fake_image_passes_isolated(image: FakeImage) -> None:
    code, report = image.report()
    assert code == 0, [c for c in report["checks"] if not c["ok"]]
    assert report["isolated"]  # started plain, the checker started itself with -I -S
    assert {"venv", "startup"} <= {c["name"] for c in report["checks"]}


@pytest.mark.parametrize("name", ["sitecustomize.py", "usercustomize.py",
                                  f"__pycache__/sitecustomize.cpython-{MINOR.replace('.', '')}"
                                  ".pyc", "sitecustomize/__init__.py",
                                  "sitecustomize.cpython-311-x86_64-linux-gnu.so"])
def test_startup_hook_in_the_stdlib_is_named(image: FakeImage, name: str) -> None:
    path = plant(image, f"{STDLIB}/{name}")
    code, report = image.report("--fast")
    assert code == 1
    assert any(p.startswith(path) for p in problems(report, "startup")), report


@pytest.mark.parametrize("name", ["zzz.pth", "usercustomize.py", "sitecustomize.py"])
def test_hook_in_the_base_site_directory_is_named(image: FakeImage, name: str) -> None:
    """dist-packages of the base: on sys.path once pyvenv.cfg includes it, and for the
    base interpreter always."""
    path = plant(image, f"{BASE_SITE}/{name}", "import os\n")
    code, report = image.report("--fast")
    assert code == 1
    assert f"{path} is {'a .pth file' if name.endswith('.pth') else 'a startup hook'}" in \
        " ".join(problems(report, "startup"))


def test_user_site_hook_is_named(image: FakeImage) -> None:
    user = site.getusersitepackages()
    path = plant(image, f"{user}/usercustomize.py")
    pth = plant(image, f"{user}/evil.pth", "import os\n")
    code, report = image.report("--fast")
    assert code == 1
    found = " ".join(problems(report, "startup"))
    assert path in found and pth in found


def test_hook_on_pythonpath_is_named(image: FakeImage) -> None:
    path = plant(image, "/srv/hooks/sitecustomize.py")
    code, report = image.report("--fast", env=image.env(PYTHONPATH="/srv/hooks"))
    assert code == 1
    assert any(p.startswith(path) for p in problems(report, "startup"))
    assert "PYTHONPATH is set, but the image does not declare it" in problems(report, "env")[0]


def test_changed_base_bytecode_and_new_bytecode_are_named(image: FakeImage) -> None:
    """A .pyc of the base with the source's mtime and size in its header runs instead of
    the source: one changed, one where the base has none."""
    runtime = image.root / ".reprolock" / "runtime.json"
    doc = json.loads(runtime.read_text())
    recorded = next(p for p in doc["base"]["files"] if p.startswith(STDLIB)
                    and p.endswith(".pyc") and "sha256" in doc["base"]["files"][p])
    size = doc["base"]["files"][recorded]["size"]
    plant(image, recorded, "x" * size)  # same size: only the hash tells
    new = plant(image, f"{STDLIB}/json/__pycache__/evil.cpython-311.pyc", "x")
    code, report = image.report("--fast")
    assert code == 1 and problems(report, "startup") == [
        f"{new} is bytecode that the base image does not have"]
    code, report = image.report()
    assert code == 1 and sorted(problems(report, "startup")) == sorted([
        f"{new} is bytecode that the base image does not have",
        f"{recorded} (bytecode) changed: its sha256 is not the base image's"])


def test_replaced_base_hook_behind_a_link(image: FakeImage) -> None:
    """Debian's /usr/lib/python3.11/sitecustomize.py links to /etc: the target counts."""
    runtime = image.root / ".reprolock" / "runtime.json"
    doc = json.loads(runtime.read_text())
    hook = f"{STDLIB}/sitecustomize.py"
    doc["base"]["files"][hook] = {"link": "/etc/pyhooks/sitecustomize.py"}
    doc["base"]["files"]["/etc/pyhooks/sitecustomize.py"] = {
        "sha256": "0" * 64, "size": len("pass\n")}
    runtime.write_text(json.dumps(doc))
    plant(image, "/etc/pyhooks/sitecustomize.py", "pass\n")
    (image.root / hook.lstrip("/")).parent.mkdir(parents=True)
    (image.root / hook.lstrip("/")).symlink_to("/etc/pyhooks/sitecustomize.py")
    assert image.report("--fast")[0] == 0  # the base's link, the base's size
    code, report = image.report()
    assert code == 1 and problems(report, "startup") == [
        "/etc/pyhooks/sitecustomize.py (a startup hook) changed: its sha256 is not the "
        "base image's"]
    (image.root / hook.lstrip("/")).unlink()
    (image.root / hook.lstrip("/")).symlink_to("/tmp/other.py")
    assert problems(image.report("--fast")[1], "startup") == [
        f"{hook} is no longer the base's link to /etc/pyhooks/sitecustomize.py"]


def test_without_a_base_record_nothing_is_vouched_for(image: FakeImage) -> None:
    runtime = image.root / ".reprolock" / "runtime.json"
    doc = json.loads(runtime.read_text())
    del doc["base"]
    runtime.write_text(json.dumps(doc))
    plant(image, f"{STDLIB}/sitecustomize.py")
    code, report = image.report("--fast")
    assert code == 1
    (only,) = problems(report, "startup")
    assert "runtime.json has no 'base'" in only and f"{STDLIB}/sitecustomize.py" in only


def test_stdlib_zip_on_sys_path_is_named(image: FakeImage) -> None:
    """python3XY.zip comes before the stdlib on sys.path: a module in it shadows the
    stdlib's, encodings included, before site.py runs."""
    zipped = next(p for p in sys.path if p.endswith(".zip"))
    plant(image, zipped, "PK")
    code, report = image.report("--fast")
    assert code == 1 and problems(report, "startup") == [
        f"{zipped} is an archive on sys.path that the base image does not have"]


def test_malformed_base_record_exits_2(image: FakeImage) -> None:
    runtime = image.root / ".reprolock" / "runtime.json"
    runtime.write_text(json.dumps({**json.loads(runtime.read_text()), "base": {"files": []}}))
    code, report = image.report("--fast")
    assert code == 2 and "'base' has no 'files' object" in report["error"]


def test_path_added_by_a_locked_pth_is_scanned(image: FakeImage, tmp_path: Path) -> None:
    """A locked wheel's .pth that adds a directory: a hook planted there runs too."""
    from tests.support.runtime_root import install

    wheel = build_wheel(tmp_path / "w", "addpath", "1.0.0",
                        modules={"addpath.pth": "/srv/extra\n"})
    install(wheel, image.root)
    lock = image.root / ".reprolock" / "lock.json"
    doc = json.loads(lock.read_text())
    doc["packages"].append({"name": "addpath", "version": "1.0.0"})
    lock.write_text(json.dumps(doc))
    assert image.report("--fast")[0] == 0, image.report("--fast")[1]
    path = plant(image, "/srv/extra/sitecustomize.py")
    code, report = image.report("--fast")
    assert code == 1 and any(p.startswith(path) for p in problems(report, "startup"))


# -- bytecode in the code and the venv ----------------------------------------------------

def test_bytecode_in_the_code_pycache_is_named(image: FakeImage) -> None:
    """The build writes no .pyc: app/__pycache__/x.cpython-311.pyc whose header carries
    x.py's mtime and size runs instead of x.py."""
    (image.root / "app" / "__pycache__").mkdir()
    (image.root / "app" / "__pycache__" / "train.cpython-311.pyc").write_bytes(b"\0" * 16)
    code, report = image.report("--fast")
    assert code == 1
    assert problems(report, "code") == [
        "__pycache__/train.cpython-311.pyc is bytecode the built code does not have (Python "
        "would run it instead of the source)"]


def test_bytecode_in_the_venv_is_named(image: FakeImage) -> None:
    pyc = image.site / "tinyml" / "__pycache__" / "__init__.cpython-311.pyc"
    pyc.parent.mkdir()
    pyc.write_bytes(b"\0" * 16)
    code, report = image.report("--fast")
    assert code == 1
    assert any("tinyml/__pycache__/__init__.cpython-311.pyc belongs to no installed" in p
               for p in problems(report, "unowned"))


# -- the venv's own files ----------------------------------------------------------------

def test_include_system_site_packages_is_named(image: FakeImage) -> None:
    cfg = image.root / "opt" / "venv" / "pyvenv.cfg"
    cfg.write_text(cfg.read_text().replace("include-system-site-packages = false",
                                           "include-system-site-packages = true"))
    code, report = image.report("--fast")
    assert code == 1 and failed(report) == {"venv"}
    assert problems(report, "venv") == [
        "/opt/venv/pyvenv.cfg: include-system-site-packages is 'true', the build wrote 'false'"]


def test_other_pyvenv_keys_are_named(image: FakeImage) -> None:
    cfg = image.root / "opt" / "venv" / "pyvenv.cfg"
    cfg.write_text(cfg.read_text() + "home = /tmp/evil\ninclude-system-site-packages = false\n")
    code, report = image.report("--fast")
    assert code == 1
    found = problems(report, "venv")
    assert "/opt/venv/pyvenv.cfg: home is '/tmp/evil', the build wrote " \
        f"'{os.path.dirname(BASE_PYTHON)}'" in found
    assert "/opt/venv/pyvenv.cfg sets home more than once" in found


def test_repointed_venv_python_is_named(image: FakeImage, tmp_path: Path) -> None:
    """bin/python linked to a wrapper that runs anything first: run by the base
    interpreter (as 'reprolock run' does), the checker sees the link."""
    wrapper = tmp_path / "python"
    wrapper.write_text(f"#!/bin/sh\nexec {BASE_PYTHON} \"$@\"\n")
    wrapper.chmod(0o755)
    link = image.root / "opt" / "venv" / "bin" / "python"
    link.unlink()
    link.symlink_to(wrapper)
    code, report = isolated_report(image, "--fast", env=image.env())
    assert code == 1 and failed(report) == {"venv", "python"}
    assert problems(report, "venv") == [
        f"/opt/venv/bin/python points to {wrapper}, the build made it a link to {BASE_PYTHON}"]


def test_unowned_files_anywhere_in_the_venv(image: FakeImage) -> None:
    plant(image, "/opt/venv/lib/sitecustomize.py")
    code, report = image.report("--fast")
    assert code == 1 and problems(report, "unowned") == [
        "/opt/venv/lib/sitecustomize.py belongs to no installed distribution"]


# -- the environment ---------------------------------------------------------------------

def isolated_report(image: FakeImage, *args: str, env: dict[str, str]) -> tuple[int, dict]:
    """The checker as 'reprolock run' starts it: the base interpreter, -I -S (a plain
    start of Python does not survive some of these variables, PYTHONHOME for one)."""
    done = subprocess.run([BASE_PYTHON, "-I", "-S", str(image.checker), "--root",
                           str(image.root), "--json", *args], capture_output=True, text=True,
                          env=env, check=False)
    return done.returncode, json.loads(done.stdout)


@pytest.mark.parametrize("name", ["PYTHONPATH", "LD_PRELOAD", "PYTHONSTARTUP", "PYTHONHOME",
                                  "PYTHONUSERBASE", "PYTHONPYCACHEPREFIX", "PYTHONWARNINGS",
                                  "PYTHONINSPECT", "LD_LIBRARY_PATH", "PYTHONNOUSERSITE"])
def test_undeclared_variable_is_named_without_its_value(image: FakeImage, name: str) -> None:
    code, report = isolated_report(image, "--fast", env=image.env(**{name: "/secret-token-42"}))
    found = [p for c in report["checks"] if c["name"] == "env" for p in c["problems"]]
    assert found and f"{name} is set, but the image does not declare it" in found[0]
    assert code == 1 and failed(report) <= {"env", "startup"}
    assert "secret-token-42" not in json.dumps(report)


def test_harmless_and_declared_variables_pass(image: FakeImage) -> None:
    code, report = image.report("--fast", env=image.env(PYTHONVERBOSE="1",
                                                        PYTHONUNBUFFERED="1"))
    assert code == 0, report


# -- the checker itself ------------------------------------------------------------------

def test_a_hook_cannot_patch_the_checker(image: FakeImage, tmp_path: Path) -> None:
    """A sitecustomize that makes every check pass: it runs in a plain interpreter's
    start, never in the isolated checker, which reports the drift it hid."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    marker = tmp_path / "ran"
    (hooks / "sitecustomize.py").write_text(
        f"open({str(marker)!r}, 'a').write('x')\n" + EVIL)
    (image.root / "app" / "train.py").write_text("print('patched')\n")
    code, report = image.report("--fast", env=image.env(PYTHONPATH=str(hooks)))
    assert code == 1 and not report["ok"]
    assert {"code", "env"} <= failed(report)
    assert marker.read_text() == "x"  # once, in the plain start; not in the checker


def test_verify_runtime_and_run_invoke_the_checker_isolated(tmp_path: Path) -> None:
    from reprolock.verify.runtime import checker_argv
    from reprolock.workflows.run import check_argv

    directory = tmp_path / ".reprolock"
    directory.mkdir()
    (directory / "check.py").write_text("")
    (directory / "lock.json").write_text(json.dumps(
        {"base": {"python": {"path": BASE_PYTHON}}}))
    argv = checker_argv(directory, fast=True, as_json=False)
    assert argv[:4] == [BASE_PYTHON, "-I", "-S", "-B"] and argv[4].endswith("check.py")

    class Base:
        python_path = "/usr/bin/python3.11"

    class Lock:
        base = Base()

    assert check_argv(Lock(), fast=False)[:4] == [  # type: ignore[arg-type]
        "/usr/bin/python3.11", "-I", "-S", "-B"]
    (directory / "lock.json").write_text('{"base": {"base": 1}, "base": 2}')
    from reprolock.errors import ReprolockError

    with pytest.raises(ReprolockError, match="twice"):
        checker_argv(directory, fast=True, as_json=False)


# -- the base record ---------------------------------------------------------------------

def _layer(members: list[tuple[str, bytes | str | None]]) -> tuple[io.BytesIO, str]:
    import hashlib

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, str):
                info.type, info.linkname = tarfile.SYMTYPE, data
                tar.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    return io.BytesIO(raw), "sha256:" + hashlib.sha256(raw).hexdigest()


def test_base_record_applies_whiteouts_and_checks_digests() -> None:
    lower = _layer([("usr/lib/python3.11/sitecustomize.py", "/etc/python3.11/sc.py"),
                    ("etc/python3.11/sitecustomize.py", b"pass\n"),
                    ("usr/lib/python3.11/__pycache__/os.cpython-311.pyc", b"pyc"),
                    ("usr/lib/python3/dist-packages/old.pth", b"x\n"),
                    ("usr/lib/python3.11/os.py", b"not recorded\n"),
                    ("./top.pth", b"gone\n")])
    upper = _layer([("usr/lib/python3/dist-packages/.wh.old.pth", b""), ("./.wh.top.pth", b""),
                    ("usr/lib/python3.11/__pycache__/.wh..wh..opq", b""),
                    ("usr/lib/python3.11/__pycache__/json.cpython-311.pyc", b"j")])
    record = scan_layers([lower, upper])
    assert record["files"] == {
        "/etc/python3.11/sitecustomize.py": {"sha256": _sha(b"pass\n"), "size": 5},
        "/usr/lib/python3.11/sitecustomize.py": {"link": "/etc/python3.11/sc.py"},
        "/usr/lib/python3.11/__pycache__/json.cpython-311.pyc": {"sha256": _sha(b"j"),
                                                                 "size": 1}}
    stream, _ = _layer([("a.pth", b"x")])
    from reprolock.errors import ImageSourceError

    with pytest.raises(ImageSourceError, match="its manifest says sha256:00"):
        scan_layers([(stream, "sha256:" + "0" * 64)])


def test_base_record_is_cached_by_digest_and_an_unreadable_base_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """'reprolock run' reads the locked base once; a corrupt cache entry is read again;
    a base that cannot be read (here: not the locked digest) leaves the check without a
    record, which it reports, instead of stopping the run with a traceback."""
    from types import SimpleNamespace

    import reprolock.runtime.basefiles as basefiles
    from reprolock.workflows.run import base_startup_files
    from tests.support.services import require

    require((BASE / "index.json").is_file(), "the Debian base is missing")
    digest = json.loads((BASE / "index.json").read_text())["manifests"][0]["digest"]
    lock = SimpleNamespace(base=SimpleNamespace(reference=f"oci-layout:{BASE}:bookworm",
                                                digest=digest),
                           target=SimpleNamespace(platform="linux/amd64"))
    config = SimpleNamespace(root=tmp_path)
    record = base_startup_files(config, lock, tmp_path, lambda _m: None)  # type: ignore[arg-type]
    assert record is not None
    assert record["files"]["/usr/lib/python3.11/sitecustomize.py"] == {
        "link": "/etc/python3.11/sitecustomize.py"}
    (cached,) = (tmp_path / "runtime-base").iterdir()
    real = basefiles.base_record
    monkeypatch.setattr(basefiles, "base_record", lambda *_a: pytest.fail("not cached"))
    assert base_startup_files(config, lock, tmp_path, lambda _m: None) == record  # type: ignore[arg-type]
    cached.write_text('{"files": 1}')
    monkeypatch.setattr(basefiles, "base_record", real)
    assert base_startup_files(config, lock, tmp_path, lambda _m: None) == record  # type: ignore[arg-type]
    other = SimpleNamespace(base=SimpleNamespace(reference=lock.base.reference,
                                                 digest="sha256:" + "1" * 64),
                            target=lock.target)
    assert base_startup_files(config, other, tmp_path, lambda _m: None) is None  # type: ignore[arg-type]
    assert "warning: cannot read the locked base image (base image" in capsys.readouterr().err


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


# -- in real containers of the example image, through what 'reprolock run' runs -----------

EXAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "example"
BASE = EXAMPLE / ".reprolock" / "base"
SITE = "/opt/venv/lib/python3.11/site-packages"
FAKE_REPORT = '{"ok": true, "mode": "full", "checks": [], "seconds": 0, "accelerators": {}}'


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    import shutil
    import uuid

    from tests.support.cli import run_cli
    from tests.support.services import docker_available, require

    require((BASE / "index.json").is_file(),
            f"the Debian base is missing: run python fixtures/make_base.py {BASE}")
    require(docker_available(), "no Docker Engine is running")
    root = tmp_path_factory.mktemp("attacks") / "example"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(
        ".reprolock", "reprolock.lock.json", "outputs", "reprolock.lock.json.sig"))
    (root / ".reprolock").mkdir()
    (root / ".reprolock" / "base").symlink_to(BASE)
    assert run_cli("lock", "-C", root, "--no-sbom").returncode == 0
    name = f"reprolock-test/attacks-{uuid.uuid4().hex[:8]}:v1"
    proc = run_cli("build", "-C", root, "--json", "-q", "-o", f"docker:{name}")
    assert proc.returncode == 0, proc.stderr
    yield {"root": root, "name": name}
    from tests.support.services import remove_images

    remove_images(name.split(":")[0])  # the tampered ones too: tags in the same repository


def write(path: str, text: str) -> str:
    """A shell command that writes ``text`` to ``path``, quoted whatever it holds."""
    import shlex

    return f"printf %s {shlex.quote(text)} > {path}"


def tamper(built: dict, script: str, tag: str) -> str:
    """An image of ``built`` with ``script`` run in it: what an attacker commits."""
    import docker

    client = docker.from_env()
    container = client.containers.run(built["name"], ["sh", "-c", script], entrypoint=[],
                                      network_mode="none", detach=True)
    try:
        assert container.wait()["StatusCode"] == 0, container.logs().decode()
        container.commit(repository=built["name"].split(":")[0], tag=tag)
    finally:
        container.remove(force=True)
    return f"{built['name'].split(':')[0]}:{tag}"


def run_refused(built: dict, image: str, tmp_path: Path) -> str:
    """'reprolock run' of ``image``: refused for drift; its stderr."""
    from tests.support.cli import run_cli

    proc = run_cli("run", "-C", built["root"], "--image", image, "--record",
                   tmp_path / "r.json", "--", "python3", "-c", "print(42)")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "the run was refused" in proc.stderr and not (tmp_path / "r.json").exists()
    return proc.stderr


def _in_process(built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                **options: object) -> object:
    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.workflows.run import RunOptions, run

    monkeypatch.chdir(tmp_path)
    return run(load_config(built["root"]),
               RunOptions(record=tmp_path / "r.json", image=built["name"],
                          command=("python3", "-c", "print(42)"),
                          **options),  # type: ignore[arg-type]
               cache_dir=default_cache_dir(), progress=lambda _m: None, stream=io.BytesIO())


def test_run_vouches_for_the_bases_own_hooks_and_bytecode(
        built: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian's /usr/lib/python3.11/sitecustomize.py (a link to /etc) and its ~550 .pyc
    are the base's: recorded from the locked base on the host, they pass."""
    outcome = _in_process(built, tmp_path, monkeypatch)
    check = outcome.check  # type: ignore[attr-defined]
    assert check["ok"] and check["isolated"], check
    startup = next(c for c in check["checks"] if c["name"] == "startup")
    assert int(startup["detail"].split()[0]) > 500, startup


def test_run_refuses_an_undeclared_pythonpath(built: dict, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The image untouched, the container's environment not: PYTHONPATH, LD_PRELOAD."""
    from reprolock.workflows.run import DriftError

    with pytest.raises(DriftError) as refused:
        _in_process(built, tmp_path, monkeypatch,
                    env={"PYTHONPATH": "/tmp", "LD_PRELOAD": "/no/such.so"})
    assert "(env differ)" in refused.value.message


def test_run_names_a_replaced_debian_sitecustomize(built: dict, tmp_path: Path) -> None:
    """The hook behind Debian's link, replaced by one that makes every check pass: the
    isolated checker does not run it, and names it."""
    image = tamper(built, write("/etc/python3.11/sitecustomize.py", EVIL), "sitecust")
    stderr = run_refused(built, image, tmp_path)
    assert "✗ runtime startup" in stderr
    assert "/etc/python3.11/sitecustomize.py (a startup hook) changed" in stderr


@pytest.mark.parametrize("site_dir", ["/usr/lib/python3/dist-packages",
                                      "/usr/local/lib/python3.11/dist-packages",
                                      "/usr/lib/python3.11/site-packages"])
def test_run_names_system_site_packages_and_a_dist_packages_pth(built: dict, tmp_path: Path,
                                                                site_dir: str) -> None:
    """Every directory Debian's site.py adds for a venv with system site packages (the
    last only inside a venv, which the isolated checker is not)."""
    image = tamper(built, "sed -i 's/include-system-site-packages = false/"
                   "include-system-site-packages = true/' /opt/venv/pyvenv.cfg && "
                   f"mkdir -p {site_dir} && echo 'import os' > {site_dir}/zz.pth",
                   "syssite-" + site_dir.replace("/", "-").strip("-"))  # one tag each
    stderr = run_refused(built, image, tmp_path)
    assert "/opt/venv/pyvenv.cfg: include-system-site-packages is 'true'" in stderr
    assert f"{site_dir}/zz.pth is a .pth file" in stderr


def test_run_names_bytecode_in_the_code(built: dict, tmp_path: Path) -> None:
    image = tamper(built, "mkdir -p /app/__pycache__ && "
                   "python3 -c 'import py_compile; py_compile.compile(\"/app/train.py\", "
                   "cfile=\"/app/__pycache__/train.cpython-311.pyc\")'", "pyc")
    stderr = run_refused(built, image, tmp_path)
    assert "__pycache__/train.cpython-311.pyc is bytecode the built code does not have" \
        in stderr


def test_run_names_a_repointed_venv_python(built: dict, tmp_path: Path) -> None:
    """bin/python pointed at a script that prints a clean report: the checker is not run
    by it, and sees the link."""
    script = (write("/usr/local/bin/fakepy", f"#!/bin/sh\necho '{FAKE_REPORT}'\n") +
              " && chmod +x /usr/local/bin/fakepy && ln -sf /usr/local/bin/fakepy "
              "/opt/venv/bin/python")
    image = tamper(built, script, "repoint")
    stderr = run_refused(built, image, tmp_path)
    assert "/opt/venv/bin/python points to /usr/local/bin/fakepy" in stderr


def test_a_hook_in_the_container_cannot_patch_runs_checker(built: dict, tmp_path: Path
                                                           ) -> None:
    """run's checker and expectations, mounted as 'run' mounts them, in a container where
    a sitecustomize makes every check pass: started as run starts it, the hook does not
    run in it and is named."""
    import docker

    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.inspection.codeset import collect_code
    from reprolock.lock.io import read_lock
    from reprolock.workflows.run import (
        CHECK_DIR,
        _expectations,
        base_startup_files,
        check_argv,
        locked_env,
    )

    config = load_config(built["root"])
    lock = read_lock(config.lock_path, cache_dir=default_cache_dir())
    client = docker.from_env()
    env = dict(e.split("=", 1) for e in client.images.get(built["name"]).attrs["Config"]["Env"])
    expect = tmp_path / "expect"
    expect.mkdir()
    _expectations(lock, config.lock_path.read_bytes(), collect_code(config), config,
                  locked_env(config, lock.image.prefix, env), expect,  # type: ignore[union-attr]
                  base_startup_files(config, lock, default_cache_dir(), lambda _m: None))
    expect.chmod(0o755)
    argv = " ".join(check_argv(lock, fast=False))
    container = client.containers.run(
        built["name"], ["sh", "-c", write("/etc/python3.11/sitecustomize.py", EVIL) +
                        f" && {argv}"], entrypoint=[], network_mode="none", detach=True,
        volumes={str(expect): {"bind": CHECK_DIR, "mode": "ro"}})
    try:
        code = container.wait()["StatusCode"]
        report = json.loads(container.logs(stdout=True, stderr=False))
    finally:
        container.remove(force=True)
    assert code == 1 and not report["ok"] and report["isolated"]
    (only,) = problems(report, "startup")
    assert only.startswith("/etc/python3.11/sitecustomize.py (a startup hook) changed")


def test_run_refuses_a_code_layer_that_replaces_the_interpreter(built: dict,
                                                                tmp_path: Path) -> None:
    """A forged image: the environment layers and config exactly the locked ones, the
    code layer the real one plus the base's interpreter replaced by a script that prints
    a clean report. The config check passes (it covers the environment only) and the
    runtime check runs that interpreter: only the code layer's diff_id, compared with the
    one 'reprolock build' writes for this checkout, tells."""
    import gzip
    import hashlib
    import json
    import tarfile
    import uuid

    import docker

    from reprolock.lock.io import read_lock
    from tests.support.cli import run_cli
    from tests.support.services import skopeo_copy

    out = tmp_path / "out"
    proc = run_cli("build", "-C", built["root"], "-q", "-o", f"oci:{out}:v1")
    assert proc.returncode == 0, proc.stderr
    python = read_lock(built["root"] / "reprolock.lock.json").base.python_path.lstrip("/")

    def blob(digest: str) -> Path:
        return out / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def put(data: bytes) -> tuple[str, int]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blob(digest).write_bytes(data)
        return digest, len(data)

    index = json.loads((out / "index.json").read_text())
    manifest = json.loads(blob(index["manifests"][0]["digest"]).read_bytes())
    config = json.loads(blob(manifest["config"]["digest"]).read_bytes())
    combined = io.BytesIO()
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(
            blob(manifest["layers"][-1]["digest"]).read_bytes()))) as old, \
            tarfile.open(fileobj=combined, mode="w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        fake = f"#!/bin/sh\necho '{FAKE_REPORT}'\n".encode()
        info = tarfile.TarInfo(python)
        info.size, info.mode = len(fake), 0o755
        new.addfile(info, io.BytesIO(fake))
    tar = combined.getvalue()
    digest, size = put(gzip.compress(tar))
    manifest["layers"][-1] = {**manifest["layers"][-1], "digest": digest, "size": size}
    config["rootfs"]["diff_ids"][-1] = "sha256:" + hashlib.sha256(tar).hexdigest()
    manifest["config"]["digest"], manifest["config"]["size"] = put(json.dumps(config).encode())
    index["manifests"][0]["digest"], index["manifests"][0]["size"] = put(
        json.dumps(manifest).encode())
    (out / "index.json").write_text(json.dumps(index))
    name = f"reprolock-test/forged-{uuid.uuid4().hex[:8]}"
    archive = tmp_path / "forged.tar"
    skopeo_copy(f"oci:{out}:v1", f"docker-archive:{archive}:{name}:v1")
    client = docker.from_env()
    client.images.load(archive.read_bytes())
    try:
        stderr = run_refused(built, f"{name}:v1", tmp_path)
        assert "✗ runtime code-layer" in stderr, stderr
    finally:
        from tests.support.services import remove_images

        remove_images(name)


def test_base_record_reads_a_zstd_base(tiny_base: Path, tmp_path: Path) -> None:
    """A base pushed with zstd layers: the record reads it as the build does (it refused
    zstd bases, which made every build and run of them fail), and checks its diff_ids."""
    import gzip
    import shutil
    from types import SimpleNamespace

    import zstandard

    from reprolock.errors import ImageSourceError
    from reprolock.oci.model import LayerBlob
    from reprolock.runtime.basefiles import base_record
    from tests.support.oci_writer import write_image

    layout = Path(shutil.copytree(tiny_base, tmp_path / "layout"))
    index = json.loads((layout / "index.json").read_text())
    entry = next(m for m in index["manifests"]
                 if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == "tiny")
    blob = lambda digest: layout / "blobs" / "sha256" / digest.removeprefix("sha256:")  # noqa: E731
    manifest = json.loads(blob(entry["digest"]).read_bytes())
    config = json.loads(blob(manifest["config"]["digest"]).read_bytes())
    tar = gzip.decompress(blob(manifest["layers"][0]["digest"]).read_bytes())
    packed = zstandard.ZstdCompressor().compress(tar)
    (layout / "blobs" / "sha256" / _sha(packed)).write_bytes(packed)

    def lock_of(diff_id: str, tag: str) -> SimpleNamespace:
        layer = LayerBlob("sha256:" + _sha(packed), diff_id, len(packed),
                          "application/vnd.oci.image.layer.v1.tar+zstd")
        digest = write_image(layout, config=config, layers=[layer], tag=tag)
        return SimpleNamespace(base=SimpleNamespace(reference=f"oci-layout:{layout}:{tag}",
                                                    digest=digest),
                               target=SimpleNamespace(platform="linux/amd64"))

    record = base_record(tmp_path, lock_of("sha256:" + _sha(tar), "zstd"))
    gzipped = SimpleNamespace(base=SimpleNamespace(reference=f"oci-layout:{layout}:tiny",
                                                   digest=entry["digest"]),
                              target=SimpleNamespace(platform="linux/amd64"))
    assert record == base_record(tmp_path, gzipped)  # the same files, however packed
    with pytest.raises(ImageSourceError, match="diff_id"):
        base_record(tmp_path, lock_of("sha256:" + "1" * 64, "bogus"))
