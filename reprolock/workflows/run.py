"""``reprolock run``: the locked image, checked, then the training, then a run record.

    >>> from reprolock.workflows.run import RunOptions, run                   # doctest: +SKIP
    >>> outcome = run(config, RunOptions(command=("python", "train.py")))  # doctest: +SKIP
    >>> outcome.record["exitCode"]                                  # doctest: +SKIP
    0

Which image: ``--image REF`` (a name, tag or ID in the Docker Engine), else the image in
the engine whose labels say it was built from this lock file (``dev.reprolock.lock.digest``)
and this code tree (``dev.reprolock.code.tree``): what ``reprolock build --output docker``
made from the current checkout. Either way the container is created from the image's ID
(its config digest), so a tag that moves during the run changes nothing.

Before the command runs, the runtime checker runs in a container of the same image, with
the host's copy of the checker and of the expectations (this lock, this code tree, the
startup hooks and bytecode of the locked base image, read from the base itself) mounted
read-only: a tampered image cannot vouch for itself. It runs under the base interpreter,
isolated (``-I -S -B``), so that no hook in the image runs inside it. The environment
variables it expects come from the config and the lock, as the build sets them, and the
image's configuration (less the code) must have the digest the lock records
(``image.configDigest``). Drift stops the run (exit 1) unless ``warn_only``.
"""

from __future__ import annotations

import datetime
import json
import os
import posixpath
import re
import shlex
import stat
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reprolock import __version__
from reprolock._internal.console import one_paragraph
from reprolock._internal.files import atomic_write_bytes, sha256_bytes, sha256_file
from reprolock.config import Config
from reprolock.engine.docker import connect, image_config, run_container
from reprolock.engine.docker import find_image as engine_find_image
from reprolock.engine.nvidia import HostGpus, host_gpus
from reprolock.errors import (
    EXIT_ERROR,
    DriftError,
    HostError,
    LockFileError,
    ReprolockError,
    ToolError,
    UsageError,
)
from reprolock.inspection.codeset import CodeSet, collect_code
from reprolock.lock.accelerator import driver_problem
from reprolock.lock.io import read_lock_bytes
from reprolock.lock.model import Lock
from reprolock.oci.contract import env_pairs, environment_config_digest, locked_env, venv_prefix
from reprolock.runtime.embed import checker_source, code_listing, runtime_record
from reprolock.signing.model import ModelKey
from reprolock.verify.record import RUN_PREDICATE, data_tree, envelope_path, tree_digest

RECORD_VERSION = 1
CHECK_DIR = "/.reprolock-run"  # where the host's checker and expectations are mounted
OUTPUTS_IN_CONTAINER = "/outputs"
OUTPUTS_ENV = "REPROLOCK_OUTPUTS"
MODEL_FORMAT = "https://model_signing/signature/v1.0"  # the library's predicateType
NETWORKS = ("none", "bridge", "host")  # --network: the container's, none by default
Progress = Callable[[str], None]


@dataclass(frozen=True)
class RunOptions:
    command: tuple[str, ...] = ()  # empty: the image's entrypoint and CMD
    image: str | None = None  # None: the image built from this lock and code
    outputs: Path | None = None  # None: the config's [run] outputs
    network: str = "none"
    gpus: str | None = None  # "all" or a count, passed to the engine as a device request
    warn_only: bool = False
    fast: bool = False
    record: Path | None = None  # None: .reprolock/runs/<start time>.json
    env: Mapping[str, str] = field(default_factory=dict)
    data: tuple[DataMount, ...] = ()  # --data: mounted read-only, recorded by tree digest
    attach: str | None = None  # registry:REF: the signed statement as the image's referrer


@dataclass(frozen=True)
class DataMount:
    host: Path
    mount: str


DATA_MOUNT = "/data"
_MOUNT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def parse_data(values: Sequence[str]) -> tuple[DataMount, ...]:
    """``--data DIR[:/MOUNT]``: one directory defaults to /data, several to /data/NAME
    (the directory's name). Mount points are absolute, normal, distinct, and clear of
    /outputs and the checker's directory; a bad one is a usage error (exit 2)."""
    mounts = []
    for value in values:
        split = value.rfind(":/")
        host, mount = (value[:split], value[split + 1:]) if split > 0 else (value, None)
        path = Path(host)
        if not path.is_dir():
            raise UsageError(f"--data {value!r}: {host} is not a directory",
                             hint="pass an existing directory: --data DIR[:/MOUNT]")
        if mount is None:
            mount = DATA_MOUNT if len(values) == 1 else f"{DATA_MOUNT}/{_name(path, value)}"
        mounts.append(DataMount(path.resolve(), _mount(mount, value)))
    _distinct([m.mount for m in mounts])
    return tuple(mounts)


def _name(path: Path, value: str) -> str:
    name = path.resolve().name
    if not _MOUNT_NAME.fullmatch(name):
        raise UsageError(f"--data {value!r}: the directory's name {name!r} cannot name a "
                         "mount point", hint="give one: --data DIR:/data/NAME")
    return name


def _mount(mount: str, value: str) -> str:
    parts = mount.split("/")[1:]
    if (posixpath.normpath(mount) != mount or not parts or parts == [""]
            or not all(_MOUNT_NAME.fullmatch(p) for p in parts)):
        raise UsageError(f"--data {value!r}: {mount!r} is not a mount point reprolock takes",
                         hint="an absolute path of plain names, such as /data or "
                         "/data/train (no '..', no trailing '/')")
    return mount


def _distinct(mounts: list[str]) -> None:
    taken = [OUTPUTS_IN_CONTAINER, CHECK_DIR]
    for mount in mounts:
        for other in taken:
            if mount == other or (mount + "/").startswith(other + "/") or \
                    (other + "/").startswith(mount + "/"):
                raise UsageError(f"--data mount point {mount} overlaps {other}",
                                 hint="give each --data its own mount point: DIR:/MOUNT")
        taken.append(mount)


@dataclass(frozen=True)
class RunOutcome:
    record: dict[str, Any]
    path: Path
    envelope: Path | None
    exit_code: int
    check: dict[str, Any]


def check_gpus(value: str | None, *, source: str = "--gpus") -> str | None:
    """``all`` or a positive count; anything else is a usage error (exit 2)."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if text == "all" or (text.isdigit() and int(text) > 0):
        return text
    raise UsageError(f"{source} {value!r} is not a GPU request",
                         hint="use 'all' or a number of GPUs such as 1 (leave it out for none)")


def engine_name(reference: str) -> str:
    """The name ``--image REF`` gives the image in the Docker Engine, by the rule
    ``verify --image`` follows too (``parse_image_option``): a bare NAME:TAG or ID, or
    ``docker:``/``docker-daemon:``. An image elsewhere must be loaded into the engine."""
    from reprolock.image.reference import IMAGE_FORMS, parse_image_option

    ref = parse_image_option(reference)
    if ref.scheme != "docker-daemon":
        raise ReprolockError(
            f"--image {reference!r} is not in the Docker Engine, and 'run' runs images there",
            hint="build it into the engine ('reprolock build --output docker:NAME:TAG') and "
            f"pass --image NAME:TAG; 'verify --image' reads every form ({IMAGE_FORMS})")
    return ref.location


def find_image(client: Any, *, lock_digest: str, code_tree: str, reference: str | None,
               env_config: str | None = None, revision: str | None = None) -> Any:
    """The image to run: ``--image REF`` (by the rule of :func:`engine_name`), else the one
    the engine holds with this lock's and code's labels."""
    return engine_find_image(client, lock_digest=lock_digest, code_tree=code_tree,
                             name=None if reference is None else engine_name(reference),
                             env_config=env_config, revision=revision)


def _iso(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Size and mtime of every regular file (links are not followed); a file that cannot
    be stat'ed gets (-1, -1), so it counts as written and its reading fails visibly."""
    if not directory.is_dir():
        return {}
    found = {}
    for dirpath, _dirs, filenames in os.walk(directory):  # an unlistable directory: skipped
        for name in filenames:
            path = Path(dirpath, name)
            rel = path.relative_to(directory).as_posix()
            try:
                info = path.lstat()
            except FileNotFoundError:
                continue  # removed while we looked: not an output
            except OSError:
                found[rel] = (-1, -1)
                continue
            if stat.S_ISREG(info.st_mode):
                found[rel] = (info.st_size, info.st_mtime_ns)
    return dict(sorted(found.items()))


def written_files(directory: Path, before: Mapping[str, tuple[int, int]]) -> list[dict[str, Any]]:
    """Every file that is new or changed since ``before``, with its sha256 and size; one
    that cannot be read is listed with ``unreadable`` (the reason) instead of a sha256."""
    after = _snapshot(directory)
    found = []
    for rel in (r for r in after if before.get(r) != after[r]):
        entry: dict[str, Any] = {"path": rel, "size": max(after[rel][0], 0)}
        try:
            entry["sha256"] = sha256_file(directory / rel)
        except OSError as exc:
            entry["unreadable"] = exc.strerror or exc.__class__.__name__
        found.append(entry)
    return found


def expectation_files(lock: Lock, lock_bytes: bytes, code: CodeSet, config: Config,
                      env: Mapping[str, str], base: Mapping[str, Any] | None
                      ) -> dict[str, bytes]:
    """The checker and what it compares with, from the host: this lock, this code, the
    environment variables the build sets (``env``), the base's startup files (``base``).
    Mounted by ``run``; written into a cluster job by ``job``."""
    prefix = venv_prefix(lock)
    records = dict(lock.image.records) if lock.image else {}
    return {"check.py": checker_source(), "lock.json": lock_bytes,
            "code.json": _json(code_listing(code, config.image.workdir)),
            "runtime.json": _json(runtime_record(prefix=prefix, records=records, env=env,
                                                 base=base))}


def _expectations(lock: Lock, lock_bytes: bytes, code: CodeSet, config: Config,
                  env: Mapping[str, str], dest: Path,
                  base: Mapping[str, Any] | None) -> None:
    for name, data in expectation_files(lock, lock_bytes, code, config, env, base).items():
        (dest / name).write_bytes(data)


def base_startup_files(config: Config, lock: Lock, cache_dir: Path,
                       progress: Progress) -> dict[str, Any] | None:
    """The locked base image's startup hooks and bytecode (what the checker compares the
    container's with), read from the base as the build reads it, every layer checked
    against its digest; kept in the cache by the base's digest. None, with a warning, when
    the base cannot be read: the check then cannot vouch for those files and says so."""
    from reprolock.runtime.basefiles import cached_base_record

    progress(f"the startup hooks and bytecode of the base {lock.base.reference}")
    try:
        return cached_base_record(config.root, lock, cache_dir)
    except ReprolockError as exc:
        print(f"warning: cannot read the locked base image ({one_paragraph(exc.message)}): the "
              "runtime check cannot tell its startup hooks and bytecode from planted ones",
              file=sys.stderr)
        return None


def check_argv(lock: Lock, *, fast: bool) -> list[str]:
    """The checker under the base interpreter that the venv's ``bin/python`` links to,
    isolated: ``-I`` ignores PYTHON* variables and the user site, ``-S`` skips site.py and
    with it every sitecustomize, usercustomize and .pth. A hook in the image cannot patch
    the checker then; the checker finds the hooks by reading directories. Not the venv's
    bin/python: a repointed link could print a clean report; the checker sees the link."""
    return [lock.base.python_path, "-I", "-S", "-B", f"{CHECK_DIR}/check.py", "--dir",
            CHECK_DIR, "--json", *(["--fast"] if fast else [])]


def _json(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


def config_check(lock: Lock, config: Mapping[str, Any],
                 project: Config | None = None) -> dict[str, Any]:
    """The image's configuration less the code against the lock's ``image.configDigest``,
    as ``verify --image`` compares them (naming the fields that differ when the
    ``project`` config is given); a result in the runtime checker's form."""
    from reprolock.verify.image import config_differences, config_fields

    if lock.image is None:
        return {"name": "config", "ok": False, "detail": "the lock records no environment "
                "image to compare with (it was made with --no-build)",
                "problems": ["run 'reprolock lock' without --no-build, then build again"]}
    try:
        digest = environment_config_digest(config)
    except (KeyError, TypeError, ValueError) as exc:
        return {"name": "config", "ok": False, "detail": "the image configuration is not a "
                "reprolock image's", "problems": [f"cannot derive its environment config: "
                                                   f"{exc!r}"]}
    if digest == lock.image.config_digest:
        return {"name": "config", "ok": True, "detail": "the image configuration is the "
                f"locked environment's ({digest[:19]}…) plus the code", "problems": []}
    return {"name": "config", "ok": False, "detail": "the image configuration (env, "
            "entrypoint, workdir or layers) differs from the locked environment's",
            "problems": [f"environment config {lock.image.config_digest} → {digest}",
                         *(config_fields(config) if project is None
                           else config_differences(project, lock, config))]}


def code_layer_check(config: Config, lock: Lock, lock_bytes: bytes, code: CodeSet,
                     image_conf: Mapping[str, Any], cache_dir: Path) -> dict[str, Any]:
    """The image's last layer against the code layer 'reprolock build' writes for this
    lock and checkout. The config check proves the environment; this proves the rest: a
    code layer may otherwise replace any file of the image (the base's interpreter, which
    runs the checker, included). The engine checked each layer's content against its
    diff_id when the image was loaded, so comparing diff_ids is comparing content."""
    from reprolock.imagebuild.builder import Builder

    assert lock.image is not None
    diff_ids = list((image_conf.get("rootfs") or {}).get("diff_ids") or [])
    expected = Builder(config, lock, cache_dir=cache_dir, lock_bytes=lock_bytes).code_layer(
        code, env_pairs(image_conf))
    if len(diff_ids) == len(lock.image.layers) + 1 and diff_ids[-1] == expected.diff_id:
        return {"name": "config", "ok": True, "detail": "the image is the locked "
                f"environment ({lock.image.config_digest[:19]}…) plus this checkout's code "
                f"layer ({expected.diff_id[:19]}…)", "problems": []}
    have = diff_ids[-1] if len(diff_ids) == len(lock.image.layers) + 1 else (
        f"{len(diff_ids)} layers, not {len(lock.image.layers) + 1}")
    return {"name": "code-layer", "ok": False, "detail": "the image's code layer is not the "
            "one 'reprolock build' writes for this lock and checkout (it may hold other "
            "code, or files outside the code)",
            "problems": [f"code layer {have} → {expected.diff_id}"]}


class Runner:
    def __init__(self, config: Config, options: RunOptions, *, progress: Progress,
                 stream: IO[bytes] | None = None, model_key: ModelKey | None = None) -> None:
        self.model_key = model_key
        self.config = config
        self.options = options
        self.progress = progress
        self.stream = stream or sys.stdout.buffer
        self.gpus = check_gpus(options.gpus)
        self.client = connect()
        self.host: HostGpus | None = None
        self.determinism: dict[str, str] = {}

    def run(self, cache_dir: Path) -> RunOutcome:
        config, options = self.config, self.options
        lock, lock_bytes = read_lock_bytes(config.lock_path, cache_dir=cache_dir)
        self.host = gpu_preflight(lock, self.gpus)  # before any container starts
        if lock.image is None and not options.warn_only:
            raise LockFileError(
                f"{config.lockfile} records no environment image (it was made with "
                "--no-build), so the image cannot be checked against it before the run",
                hint="run 'reprolock lock' (without --no-build), then 'reprolock build "
                "--output docker'; or pass --warn-only to run unchecked (the record says so)")
        lock_digest = "sha256:" + sha256_bytes(lock_bytes)
        code = collect_code(config)
        for warning in code.warnings:
            print(f"warning: {one_paragraph(warning)}", file=sys.stderr)
        image = find_image(self.client, lock_digest=lock_digest, code_tree=code.tree_digest,
                           reference=options.image,
                           env_config=None if lock.image is None else lock.image.config_digest,
                           revision=code.git.commit if code.git else None)
        self.progress(f"image {image.id} ({', '.join(image.tags) or 'untagged'})")
        if not options.command:
            refuse_without_command(config, image)
        outputs = (options.outputs or config.root / config.run_outputs).resolve()
        outputs.mkdir(parents=True, exist_ok=True)
        self.data = self._data()  # before any container: a refused dir costs nothing
        self.progress("reading the image configuration")
        image_conf = image_config(image, cache_dir=cache_dir)
        self.determinism = determinism_env({**env_pairs(image_conf), **options.env})
        configured = config_check(lock, image_conf, config)
        if configured["ok"]:
            self.progress("comparing the image's code layer with this checkout's")
            configured = code_layer_check(config, lock, lock_bytes, code, image_conf,
                                          cache_dir)
        # the base's variables as the image carries them only when its configuration is
        # the locked one (then they are the locked base's); otherwise the config check
        # above fails already and only what the config and lock declare is expected
        base_env = env_pairs(image_conf) if configured["ok"] else {}
        base = base_startup_files(config, lock, cache_dir, self.progress)
        with tempfile.TemporaryDirectory(prefix="reprolock-run-") as tmp:
            _expectations(lock, lock_bytes, code, config,
                          locked_env(config, venv_prefix(lock), base_env, lock.accelerator),
                          Path(tmp), base)
            os.chmod(tmp, 0o755)
            check = self._check(image, Path(tmp), lock, configured)
        before = _snapshot(outputs)
        started = datetime.datetime.now(datetime.UTC)
        exit_code = self._command(image, outputs)
        ended = datetime.datetime.now(datetime.UTC)
        written = written_files(outputs, before)  # never raises: the record is always written
        record = self._record(image, lock, lock_digest, code, check, outputs, written,
                              started, ended, exit_code)
        path = options.record or (config.root / ".reprolock" / "runs" /
                                  f"{started.strftime('%Y%m%dT%H%M%S%fZ')}.json")
        self._write(record, path, outputs)
        unreadable = [f"{f['path']} ({f['unreadable']})" for f in written if "unreadable" in f]
        if unreadable:
            print(f"error: {len(unreadable)} output file(s) could not be read, so the record "
                  f"{path} has no sha256 for them: {', '.join(unreadable[:5])}",
                  file=sys.stderr)
            exit_code = exit_code or EXIT_ERROR
        return RunOutcome(record, path, None, exit_code, check)

    def _data(self) -> list[dict[str, Any]]:
        found = []
        for item in self.options.data:
            self.progress(f"hashing the data in {item.host} (mounted read-only at "
                          f"{item.mount})")
            files = data_tree(item.host)
            found.append({"dir": _relative(item.host, self.config.root), "mount": item.mount,
                          "treeDigest": tree_digest(files), "files": files})
        return found

    def _write(self, record: dict[str, Any], path: Path, outputs: Path) -> None:
        """The record, with the model signature's manifest digest when a key signs: the
        outputs are signed first, so that the record (and the statement) can name it."""
        if self.model_key is not None:
            from reprolock.signing.model import sign_model

            self.progress(f"signing the outputs {outputs} (OpenSSF Model Signing)")
            signed = sign_model(outputs, self.model_key)
            record["model"] = {"signature": _relative(signed.signature, self.config.root),
                               "manifestDigest": signed.manifest_digest,
                               "files": signed.files, "format": MODEL_FORMAT}
        atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode())

    # -- the runtime check -------------------------------------------------------------
    def _check(self, image: Any, expect: Path, lock: Lock,
               configured: Mapping[str, Any]) -> dict[str, Any]:
        argv = check_argv(lock, fast=self.options.fast)
        self.progress("runtime check in the container "
                      f"({'--fast' if self.options.fast else 'every file hashed'})")
        code, out, err = self._container(image, argv, volumes={
            str(expect): {"bind": CHECK_DIR, "mode": "ro"}}, capture=True)
        stderr = err.decode("utf-8", "replace")
        try:
            report: dict[str, Any] = json.loads(out)
        except ValueError as exc:
            raise ToolError(f"the runtime check in {image.id[:19]} did not run (exit {code})",
                            hint="the image has no Python at the locked prefix, or it is not "
                            "a reprolock image", stderr=stderr or out.decode("utf-8", "replace")
                            ) from exc
        if not isinstance(report, dict) or "error" in report or "checks" not in report:
            error = report.get("error") if isinstance(report, dict) else None
            raise ToolError(f"the runtime check could not run: {error or 'no report'}",
                            stderr=stderr)
        report["checks"] = [*report["checks"], dict(configured)]
        report["ok"] = bool(report["ok"]) and bool(configured["ok"])
        self._report_check(report)
        return report

    def _report_check(self, report: Mapping[str, Any]) -> None:
        failed = [c for c in report["checks"] if not c["ok"]]
        for check in failed:
            lines = "; ".join(check["problems"][:5])
            more = f" (and {len(check['problems']) - 5} more)" if len(check["problems"]) > 5 \
                else ""
            print(f"✗ runtime {check['name']}: {check['detail']}: {lines}{more}",
                  file=sys.stderr)
        if failed and not self.options.warn_only:
            raise DriftError(f"the image is not the locked environment "
                             f"({', '.join(c['name'] for c in failed)} differ); the run was "
                             "refused", hint="rebuild it ('reprolock build --output docker'), "
                             "or pass --warn-only to run anyway (the record says so)")
        if not failed:
            self.progress(f"runtime check passed ({report['seconds']:.2f} s)")

    # -- the command -------------------------------------------------------------------
    def _command(self, image: Any, outputs: Path) -> int:
        argv = list(self.options.command)
        self.progress(f"running {' '.join(argv) if argv else 'the image entrypoint/CMD'} "
                      f"(network {self.options.network})")
        volumes = {str(outputs): {"bind": OUTPUTS_IN_CONTAINER, "mode": "rw"},
                   **{str(d.host): {"bind": d.mount, "mode": "ro"} for d in self.options.data}}
        code, _, _ = self._container(image, argv or None, volumes=volumes, capture=False,
                                     entrypoint=bool(argv))
        return code

    def _container(self, image: Any, argv: list[str] | None, *,
                   volumes: Mapping[str, Any], capture: bool,
                   entrypoint: bool = True) -> tuple[int, bytes, bytes]:
        """Run a container; with ``capture``, its stdout and stderr apart, else both
        streamed to ``self.stream``."""
        return run_container(self.client, image, argv, volumes=volumes,
                             env={OUTPUTS_ENV: OUTPUTS_IN_CONTAINER, **self.options.env},
                             network=self.options.network, gpus=self.gpus, capture=capture,
                             stream=self.stream, entrypoint=entrypoint)

    # -- the record --------------------------------------------------------------------
    def _record(self, image: Any, lock: Lock, lock_digest: str, code: CodeSet,
                check: Mapping[str, Any], outputs: Path, written: list[dict[str, Any]],
                started: datetime.datetime, ended: datetime.datetime,
                exit_code: int) -> dict[str, Any]:
        config = self.config
        return {
            "recordVersion": RECORD_VERSION,
            "generator": {"name": "reprolock", "version": __version__},
            "image": {"id": image.id, "tags": sorted(image.tags),
                      "repoDigests": sorted(image.attrs.get("RepoDigests") or [])},
            "lock": {"path": config.lockfile, "digest": lock_digest,
                     "inputsDigest": lock.inputs_digest},
            "codeTree": code.tree_digest,
            "gitCommit": code.git.commit if code.git else None,
            "command": list(self.options.command) or _default_command(image),
            "network": self.options.network,
            "gpus": self.options.gpus,
            **({"gpuHost": self.host.to_json()} if self.host is not None else {}),
            "determinism": self.determinism,
            "started": _iso(started), "ended": _iso(ended), "exitCode": exit_code,
            "check": {"ok": bool(check["ok"]), "mode": check["mode"],
                      "warnOnly": self.options.warn_only,
                      "failed": [c["name"] for c in check["checks"] if not c["ok"]],
                      "seconds": check["seconds"]},
            "accelerators": dict(check.get("accelerators") or {}),
            "outputs": {"dir": _relative(outputs, config.root), "files": written},
            **({"data": self.data} if self.data else {}),
        }


#: variables that change whether a run repeats bit for bit: the record keeps their values
DETERMINISM_VARIABLES = ("PYTHONHASHSEED", "CUBLAS_WORKSPACE_CONFIG", "CUDA_LAUNCH_BLOCKING",
                "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                "TF_DETERMINISTIC_OPS", "NVIDIA_TF32_OVERRIDE")


def determinism_env(env: Mapping[str, str]) -> dict[str, str]:
    """What the container runs with of the variables that decide whether a training
    repeats (hash seed, cuBLAS workspace, thread counts, NCCL_*), for the record."""
    return {name: value[:256] for name, value in sorted(env.items())
            if name in DETERMINISM_VARIABLES or name.startswith("NCCL_")}


def gpu_preflight(lock: Lock, gpus: str | None,
                  probe: Callable[[], HostGpus | None] = host_gpus) -> HostGpus | None:
    """With ``--gpus``: the host's driver, which must run the CUDA the lock's wheels were
    built for (``accelerator.minDriver``); else a :class:`HostError` naming both."""
    if gpus is None:
        return None
    host = probe()
    if host is None:
        raise HostError("--gpus asks for GPUs, but this host has no NVIDIA driver (NVML and "
                        "nvidia-smi do not answer)",
                        hint="install the NVIDIA driver and the NVIDIA Container Toolkit, or "
                        "run without --gpus")
    accelerator = lock.accelerator
    if accelerator is not None and accelerator.kind == "cpu":
        print("warning: --gpus passes GPUs to a CPU-only lock (no locked package needs CUDA)",
              file=sys.stderr)
    problem = driver_problem(host.driver, accelerator) if accelerator is not None else None
    if problem is not None:
        assert accelerator is not None
        raise HostError(problem, hint=f"update the driver to {accelerator.min_driver} or "
                        "newer, or lock wheels built for an older CUDA (for torch, a local "
                        "version such as +cu126 from a PyTorch index)")
    return host


def refuse_without_command(config: Config, image: Any) -> None:
    """No ``-- CMD``, and the image has no command of the project's: no Entrypoint, and
    either no Cmd or only the one the base brings (reprolock keeps a base's Cmd when
    ``[image]`` sets neither), such as ``python3``, which starts with no input and exits 0.
    A run record of that would say a training ran: refuse (exit 2) and say what to pass."""
    conf = image.attrs.get("Config") or {}
    if conf.get("Entrypoint"):
        return
    if conf.get("Cmd") and (config.image.entrypoint or config.image.cmd):
        return
    base = f" (only the base's default {shlex.join(map(str, conf['Cmd']))!r})" \
        if conf.get("Cmd") else ""
    raise ReprolockError(
        f"nothing to run: the image {str(image.id)[:19]}… has no command of this project"
        f"{base}, and none was given after '--'",
        hint=f"set [image] entrypoint in {config.source_name} (e.g. entrypoint = "
        "[\"python\", \"train.py\"]), then 'reprolock lock' and 'reprolock build --output "
        "docker'; or pass the command: reprolock run -- python train.py")


def _default_command(image: Any) -> list[str]:
    conf = image.attrs.get("Config") or {}
    return [*(conf.get("Entrypoint") or []), *(conf.get("Cmd") or [])]


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root.resolve()).as_posix()
    except ValueError:
        return str(path)


def sign_record(record: Mapping[str, Any], path: Path, signer: Any) -> Path:
    """An in-toto Statement (subjects: the outputs) whose predicate is the record, in a
    DSSE envelope written beside the record as ``RECORD.dsse.json``, and in a Sigstore
    bundle as ``RECORD.sigstore.json``."""
    from reprolock.signing.bundle import write_envelope_bundle
    from reprolock.signing.dsse import STATEMENT_V1, sign_envelope

    outputs = record["outputs"]
    statement = {
        "_type": STATEMENT_V1,
        "subject": [{"name": f"{outputs['dir']}/{f['path']}", "digest": {"sha256": f["sha256"]}}
                    for f in outputs["files"] if "sha256" in f] + _model_subject(record),
        "predicateType": RUN_PREDICATE,
        "predicate": dict(record),
    }
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    envelope = sign_envelope(payload, signer)
    target = envelope_path(path)
    atomic_write_bytes(target, (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode())
    write_envelope_bundle(envelope, target, signer)  # RECORD.sigstore.json
    return target


def _model_subject(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The signed model as a subject too: its manifest digest, as the model signature's
    own subject names it, so that tools matching subjects find the run from the model."""
    model = record.get("model")
    if not model:
        return []
    digest = str(model["manifestDigest"]).removeprefix("sha256:")
    return [{"name": f"model:{record['outputs']['dir']}", "digest": {"sha256": digest}}]


def run(config: Config, options: RunOptions, *, cache_dir: Path, progress: Progress,
        signer: Any = None, stream: IO[bytes] | None = None,
        model_key: ModelKey | None = None) -> RunOutcome:
    """With ``model_key`` (the key ``signer`` holds, as a file and passphrase), the outputs
    are signed in the OpenSSF Model Signing format too, and the record names the model."""
    if options.attach and signer is None:  # before anything runs
        raise UsageError("--attach pushes the run's signed statement: it needs --sign-key "
                         "(or --keyless)", hint="add --sign-key KEY")
    outcome = Runner(config, options, progress=progress, stream=stream,
                     model_key=model_key).run(cache_dir)
    if signer is None:
        return outcome
    envelope = sign_record(outcome.record, outcome.path, signer)
    if options.attach:
        from reprolock.workflows.attach import attach_run_statement

        where = attach_run_statement(options.attach, envelope,
                                     image_id=outcome.record["image"]["id"],
                                     created=outcome.record["ended"], progress=progress)
        progress(f"run statement attached to {where}")
    return RunOutcome(outcome.record, outcome.path, envelope, outcome.exit_code, outcome.check)


__all__ = ["DataMount", "DriftError", "RunOptions", "RunOutcome", "base_startup_files",
           "check_argv", "check_gpus", "config_check", "find_image", "gpu_preflight",
           "parse_data", "run", "written_files"]
