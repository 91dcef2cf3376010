"""The job workflow: a cluster job for the locked image, checked before it is written.

``reprolock job`` first verifies the image as ``verify --image`` does (every layer hashed,
the environment's configuration and the code layer compared with the lock): a job is never
written for an image that is not the locked one. It then writes what each node needs to
check itself before training (the checker, the lock, the code listing, the expected
runtime, ``job.json``, the job wrapper) and the engine's files, each atomically, and
submits the job where asked (Slurm).

    >>> from reprolock.workflows.job import JobOptions, write_job           # doctest: +SKIP
    >>> write_job(config, JobOptions(engine="slurm", image="oci-layout:img:latest"),
    ...           cache_dir=cache, progress=print)                          # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reprolock import __version__
from reprolock._internal.files import atomic_write_bytes, sha256_bytes
from reprolock.config import Config
from reprolock.errors import ConfigError, DriftError, LockFileError
from reprolock.image.interface import ResolvedImage
from reprolock.image.reference import open_image, parse_image_option
from reprolock.inspection.codeset import CodeSet, collect_code
from reprolock.jobs.interface import DEFAULT_MASTER_PORT, JOB_WRAPPER, JobEngine, JobSpec
from reprolock.lock.io import read_lock_bytes
from reprolock.lock.model import Lock
from reprolock.oci.contract import env_pairs, locked_env, venv_prefix
from reprolock.runtime.embed import job_wrapper_source
from reprolock.target import Platform
from reprolock.verify.record import CLAIM_PREFIX
from reprolock.workflows.run import (
    DETERMINISM_VARIABLES,
    base_startup_files,
    expectation_files,
)

if TYPE_CHECKING:
    from reprolock.jobs.slurm import SlurmOptions

Progress = Callable[[str], None]
ENGINES = ("slurm", "kubernetes")
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$(?!\n)")  # DNS-1035: Service names


@dataclass(frozen=True)
class JobOptions:
    engine: str
    image: str
    command: tuple[str, ...] = ()
    nodes: int = 1
    procs_per_node: int = 1
    gpus_per_node: int = 0
    master_port: int = DEFAULT_MASTER_PORT
    name: str | None = None
    out: Path | None = None  # the job directory
    outputs: Path | None = None  # Slurm: the host directory mounted at /outputs
    fast: bool = False
    submit: bool = False
    bundle: Path | None = None  # Slurm
    partition: str | None = None  # Slurm
    time_limit: str | None = None  # Slurm
    cpus_per_task: int | None = None  # Slurm
    runtime: str = "oci"  # Slurm: oci (srun --container), pyxis, docker
    namespace: str = "default"  # Kubernetes
    queue: str | None = None  # Kubernetes: a Kueue LocalQueue
    jobset: bool = False  # Kubernetes
    outputs_claim: str | None = None  # Kubernetes: the PVC mounted at /outputs
    policy: str = "none"  # Kubernetes: kyverno | sigstore | none
    public_key: Path | None = None  # Kubernetes: for the admission policy


@dataclass(frozen=True)
class JobOutcome:
    engine: str
    job_dir: Path
    files: tuple[str, ...]
    image: str
    manifest_digest: str
    bundle: Mapping[str, str] | None
    job_id: str | None

    def to_json(self) -> dict[str, Any]:
        return {"engine": self.engine, "jobDir": str(self.job_dir), "files": list(self.files),
                "image": self.image, "manifestDigest": self.manifest_digest,
                "bundle": dict(self.bundle) if self.bundle else None, "jobId": self.job_id}


def write_job(config: Config, options: JobOptions, *, cache_dir: Path,
              progress: Progress) -> JobOutcome:
    check_options(options)
    lock, lock_bytes = read_lock_bytes(config.lock_path, cache_dir=cache_dir)
    if lock.image is None:
        raise LockFileError(f"{config.lockfile} records no environment image (it was made "
                            "with --no-build), so no image can be checked against it",
                            hint="run 'reprolock lock' (without --no-build), then "
                            "'reprolock build'")
    image = verified_image(config, lock, options.image, progress)
    name = options.name or default_name(config)
    job_dir = (options.out or config.root / ".reprolock" / "jobs" / name).resolve()
    outputs = (options.outputs or config.root / config.run_outputs).resolve()
    engine, reference, bundle = _engine(config, options, image, job_dir, outputs, progress)
    code = collect_code(config)
    expectations = _expectations(config, lock, lock_bytes, code, image, cache_dir, progress)
    expectations["job.json"] = _job_json(config, lock_bytes, lock, options, image, reference,
                                         outputs, bundle, code)
    spec = JobSpec(name=name, image=reference, manifest_digest=str(image.manifest_digest),
                   config_digest=image.config_digest, python=lock.base.python_path,
                   workdir=config.image.workdir, command=_command(config, options),
                   nodes=options.nodes, procs_per_node=options.procs_per_node,
                   gpus_per_node=options.gpus_per_node, master_port=options.master_port,
                   fast_check=options.fast, expectations=expectations)
    files = engine.render(spec)
    for item in files:
        atomic_write_bytes(job_dir / item.path, item.data,
                           mode=0o755 if item.executable else 0o644)
    progress(f"wrote the {engine.name} job {name} in {job_dir}")
    job_id = engine.submit(files, str(job_dir)) if options.submit else None
    return JobOutcome(engine.name, job_dir, tuple(f.path for f in files), reference,
                      str(image.manifest_digest), bundle, job_id)


def check_options(options: JobOptions) -> None:
    if options.engine not in ENGINES:
        raise ConfigError(f"--engine {options.engine!r} is not one reprolock writes jobs for",
                          hint=f"use one of: {', '.join(ENGINES)}")
    for flag, value, least in (("--nodes", options.nodes, 1),
                               ("--procs-per-node", options.procs_per_node, 1),
                               ("--gpus-per-node", options.gpus_per_node, 0)):
        if not least <= value <= 4096:
            raise ConfigError(f"{flag} {value} is out of range", hint=f"use {least}..4096")
    if not 1 <= options.master_port <= 65535:
        raise ConfigError(f"--master-port {options.master_port} is not a TCP port",
                          hint="use 1..65535 (torchrun's default is 29500)")
    if options.name is not None and not _NAME.match(options.name):
        raise ConfigError(f"--name {options.name!r} is not a valid job name",
                          hint="use lower-case letters, digits and '-', at most 63, "
                          "starting with a letter and ending with a letter or digit "
                          "(Kubernetes Service names)")
    if options.runtime not in ("oci", "pyxis", "docker"):
        raise ConfigError(f"--runtime {options.runtime!r} is not one reprolock writes Slurm "
                          "jobs for", hint="use oci (srun --container), pyxis or docker")
    if options.submit and options.engine != "slurm":
        raise ConfigError("--submit works for Slurm jobs only",
                          hint="create them with 'kubectl create -f DIR' (a plain 'kubectl "
                          "apply' stores each object in a 256 KiB annotation, too small for "
                          "the ConfigMap of a large lock)")


def default_name(config: Config) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", config.root.name.lower()).strip("-")[:40]
    name = name if name[:1].isalpha() else f"job-{name}".rstrip("-")
    return f"{name}-train"


def verified_image(config: Config, lock: Lock, reference: str,
                   progress: Progress) -> ResolvedImage:
    """The image ``reference`` names, after ``verify --image`` found it to be the locked
    environment plus this checkout's code; else the job is refused, naming what differs."""
    from reprolock.verify.image import verify_image

    report = verify_image(config, reference, key=None, attestation=None,
                          allow_code_drift=False, progress=progress)
    if not report.ok:
        failed = [c for c in report.checks if not c.ok]
        detail = "; ".join(f"{c.name}: {c.detail}" for c in failed)
        raise DriftError(f"{reference} is not the locked image, so no job was written "
                         f"({detail})", hint="; ".join(report.fixes()) or
                         "build it again ('reprolock build')")
    with open_image(reference, root=Path.cwd()) as source:
        image = source.resolve(Platform.parse(lock.target.platform))
    if image.manifest_digest is None:
        raise ConfigError(f"{reference} has no manifest digest (a Docker Engine image)",
                          hint="give the image as an OCI layout (oci-layout:DIR:TAG) or a "
                          "registry reference (registry:HOST/NAME@sha256:…)")
    return image


def _engine(config: Config, options: JobOptions, image: ResolvedImage, job_dir: Path,
            outputs: Path, progress: Progress
            ) -> tuple[JobEngine, str, Mapping[str, str] | None]:
    ref = parse_image_option(options.image)
    if options.engine == "slurm":
        return _slurm(options, ref.scheme, ref.location, ref.tag, image, job_dir, outputs,
                      progress)
    if ref.scheme != "registry":
        raise ConfigError(f"a Kubernetes job pulls its image from a registry; {options.image} "
                          "is not one", hint="push it ('reprolock build --output "
                          "registry:HOST/NAME:TAG') and pass --image registry:HOST/NAME:TAG")
    from reprolock.jobs.kubernetes import KubernetesEngine, KubernetesOptions, repository

    key = options.public_key.read_bytes() if options.public_key else None
    engine = KubernetesEngine(KubernetesOptions(
        namespace=options.namespace, queue=options.queue, jobset=options.jobset,
        outputs_claim=_claim(config, options), policy=options.policy, public_key_pem=key))
    return engine, f"{repository(ref.location.split('@', 1)[0])}@{image.manifest_digest}", None


def _slurm(options: JobOptions, scheme: str, location: str, tag: str | None,
           image: ResolvedImage, job_dir: Path, outputs: Path, progress: Progress
           ) -> tuple[JobEngine, str, Mapping[str, str] | None]:
    from reprolock.jobs.kubernetes import repository
    from reprolock.jobs.slurm import SlurmEngine, SlurmOptions

    slurm = SlurmOptions(job_dir=job_dir, bundle=(options.bundle or job_dir / "bundle")
                         .resolve(), outputs=outputs, partition=options.partition,
                         time_limit=options.time_limit, cpus_per_task=options.cpus_per_task,
                         runtime=options.runtime)
    outputs.mkdir(parents=True, exist_ok=True)
    if options.runtime != "oci":  # the node pulls the image by digest from a registry
        if scheme != "registry":
            raise ConfigError(f"--runtime {options.runtime} pulls the image from a registry; "
                              f"{options.image} is not one",
                              hint="push it ('reprolock build --output registry:HOST/NAME:"
                              "TAG') and pass --image registry:HOST/NAME:TAG")
        name = repository(location.split("@", 1)[0])
        return SlurmEngine(slurm), f"{name}@{image.manifest_digest}", None
    if scheme != "oci-layout":
        raise ConfigError(f"a Slurm job runs an OCI runtime bundle unpacked from an OCI "
                          f"layout; {options.image} is not one",
                          hint="write one ('reprolock build --output oci:DIR') and pass "
                          "--image oci-layout:DIR:TAG, or pick --runtime docker or pyxis "
                          "for a registry image")
    return _bundle(options, location, tag, image, slurm, progress)


def _bundle(options: JobOptions, location: str, tag: str | None, image: ResolvedImage,
            slurm: SlurmOptions, progress: Progress
            ) -> tuple[JobEngine, str, Mapping[str, str] | None]:
    from reprolock.jobs.slurm import SlurmEngine, make_bundle

    zstd = [d.digest for d in image.layers if d.media_type.endswith("+zstd")]
    if zstd:
        # Debian's umoci (0.4.7) refuses them: "blob is not correct mediatype"
        raise ConfigError(f"{options.image} has zstd layers ({zstd[0][:19]}…), which umoci "
                          "cannot unpack into the runtime bundle Slurm runs",
                          hint="lock and build with gzip layers for Slurm ('reprolock lock "
                          "--compression gzip', then 'reprolock build'), or use --runtime "
                          "docker")
    layout = Path(location).resolve()
    bundle = make_bundle(layout, tag or "latest", str(image.manifest_digest), slurm, progress)
    if bundle.reused:
        progress(f"the bundle {bundle.path} is already this image's; reused")
    return (SlurmEngine(slurm), f"oci-layout:{layout}@{image.manifest_digest}",
            bundle.to_json())


def _claim(config: Config, options: JobOptions) -> str:
    return options.outputs_claim or f"{options.name or default_name(config)}-outputs"


def _expectations(config: Config, lock: Lock, lock_bytes: bytes, code: CodeSet,
                  image: ResolvedImage, cache_dir: Path, progress: Progress
                  ) -> dict[str, bytes]:
    base = base_startup_files(config, lock, cache_dir, progress)
    env = locked_env(config, venv_prefix(lock), env_pairs(image.config), lock.accelerator)
    files = expectation_files(lock, lock_bytes, code, config, env, base)
    files[JOB_WRAPPER] = job_wrapper_source()
    return files


def _job_json(config: Config, lock_bytes: bytes, lock: Lock, options: JobOptions,
              image: ResolvedImage, reference: str, outputs: Path,
              bundle: Mapping[str, str] | None, code: CodeSet) -> bytes:
    """What each node's wrapper writes into its run record and cannot learn itself."""
    try:
        outputs_dir = str(outputs.relative_to(config.root.resolve()))
    except ValueError:
        outputs_dir = str(outputs)
    if options.engine == "kubernetes":  # the pods write to the claim, not to this machine
        outputs_dir = f"{CLAIM_PREFIX}{_claim(config, options)}"
    doc = {"engine": options.engine, "generator": __version__, "image": reference,
           "manifestDigest": image.manifest_digest, "configDigest": image.config_digest,
           "lock": {"path": config.lockfile, "digest": "sha256:" + sha256_bytes(lock_bytes),
                    "inputsDigest": lock.inputs_digest},
           "codeTree": code.tree_digest, "gitCommit": code.git.commit if code.git else None,
           "gpusPerNode": options.gpus_per_node, "outputsDir": outputs_dir,
           "determinismVariables": list(DETERMINISM_VARIABLES), "bundle": bundle}
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def _command(config: Config, options: JobOptions) -> tuple[str, ...]:
    command = options.command or (*config.image.entrypoint, *config.image.cmd)
    if not command:
        raise ConfigError("the job has no command: the image declares no entrypoint",
                          hint="give one after '--' (reprolock job ... -- python train.py), or "
                          "set [image] entrypoint in reprolock.toml")
    return tuple(command)
