"""Slurm: an ``sbatch`` script that runs the locked image through Slurm's OCI container
support (``srun --container=BUNDLE``, runc as the runtime), and the runtime bundle it runs.

Slurm 22.05 runs one task per node in a container step (two are refused: "unexpected
number of tasks"), so the script starts one task per node and ``torchrun`` inside it
starts the node's processes. ``srun --export=MASTER_ADDR`` passes the rendezvous address
and Slurm's own ``SLURM_*`` variables and nothing else of the submitter's environment:
with the default ``--export=ALL`` the submitter's ``PATH`` (and every other variable)
overrides the image's.

The bundle is the image unpacked by umoci, the OCI tool made for it, with a
``config.json`` that reprolock adjusts:

- the host's network and host name (no ``network``/``uts`` namespace): processes on other
  nodes must reach the rendezvous address;
- a read-only root file system with a private ``/tmp``: a job cannot change the bundle the
  next job runs from (a writable root writes through to the host's copy);
- the job's check directory (read-only), its outputs (read-write) and the node's
  ``/etc/hosts`` and ``/etc/resolv.conf`` (read-only) bind-mounted; Slurm 22.05 mounts
  nothing itself.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprolock._internal.files import atomic_write_bytes, sha256_bytes
from reprolock._internal.jsonio import parse_json
from reprolock.errors import ConfigError, ToolError
from reprolock.jobs.interface import CHECK_DIR, OUTPUTS_IN_CONTAINER, JobEngine, JobFile, JobSpec

BUNDLE_MARK = "reprolock-bundle.json"
RUNTIMES = ("oci", "pyxis", "docker")
HOST_FILES = ("/etc/hosts", "/etc/resolv.conf")
UMOCI_TIMEOUT = 3600  # unpacking a multi-gigabyte CUDA image takes minutes


@dataclass(frozen=True)
class SlurmOptions:
    job_dir: Path  # absolute; on storage every node sees
    bundle: Path  # absolute; the runtime bundle the script runs
    outputs: Path  # absolute; mounted at /outputs
    partition: str | None = None
    time_limit: str | None = None  # sbatch --time
    cpus_per_task: int | None = None
    runtime: str = "oci"  # oci (srun --container, a bundle), pyxis, docker


@dataclass(frozen=True)
class Bundle:
    path: Path
    config_sha256: str  # sha256 of the bundle's config.json as written
    manifest_digest: str
    reused: bool

    def to_json(self) -> dict[str, str]:
        return {"path": str(self.path), "configSha256": self.config_sha256,
                "manifestDigest": self.manifest_digest}


class SlurmEngine(JobEngine):
    name = "slurm"

    def __init__(self, options: SlurmOptions) -> None:
        self.options = options

    def render(self, spec: JobSpec) -> Sequence[JobFile]:
        files = [JobFile(f"check/{name}", data) for name, data in
                 sorted(spec.expectations.items())]
        return [*files, JobFile("job.sbatch", self.script(spec).encode(), executable=True)]

    def script(self, spec: JobSpec) -> str:
        opts = self.options
        directives = [f"--job-name={spec.name}", f"--nodes={spec.nodes}",
                      "--ntasks-per-node=1", f"--output={opts.job_dir}/slurm-%j.out"]
        if spec.gpus_per_node:
            directives.append(f"--gpus-per-node={spec.gpus_per_node}")
        if opts.cpus_per_task:
            directives.append(f"--cpus-per-task={opts.cpus_per_task}")
        if opts.partition:
            directives.append(f"--partition={opts.partition}")
        if opts.time_limit:
            directives.append(f"--time={opts.time_limit}")
        where = (f"run from the OCI bundle {opts.bundle}" if opts.runtime == "oci"
                 else f"run by {opts.runtime} as {spec.image}")
        return "\n".join([
            "#!/bin/bash",
            f"# Written by 'reprolock job' for the locked image {spec.manifest_digest}",
            f"# (image ID {spec.config_digest}), {where}.",
            "# Every node runs the runtime check before the training; a node whose",
            "# environment drifted stops the job (exit 3) with the check's report.",
            *(f"#SBATCH {shlex.quote(d)}" for d in directives),
            "set -euo pipefail",
            'MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
            "export MASTER_ADDR",
            " ".join(shlex.quote(a) for a in self.step(spec)),
            ""])

    def step(self, spec: JobSpec) -> list[str]:
        """The one ``srun`` of the job: one task per node, in the runtime chosen."""
        opts = self.options
        srun = ["srun", "--ntasks-per-node=1"]
        if opts.runtime == "oci":
            return [*srun, f"--container={opts.bundle}", "--export=MASTER_ADDR",
                    *spec.wrapper_argv()]
        if opts.runtime == "pyxis":
            # enroot names a registry image HOST#NAME; a digest pins it as for the others
            host, _, name = spec.image.partition("/")
            return [*srun, f"--container-image={host}#{name}",
                    f"--container-mounts={opts.job_dir / 'check'}:{CHECK_DIR}:ro,"
                    f"{opts.outputs}:{OUTPUTS_IN_CONTAINER}",
                    f"--container-workdir={spec.workdir}", "--no-container-mount-home",
                    "--export=MASTER_ADDR", *spec.wrapper_argv()]
        # docker on the node: the image by digest, as read-only as the bundle, with only the
        # rendezvous and Slurm's node variables passed in
        python, *rest = spec.wrapper_argv()
        env = [f"--env={name}" for name in ("MASTER_ADDR", "SLURM_NODEID", "SLURM_JOB_ID")]
        return [*srun, "docker", "run", "--rm", "--network=host", "--read-only",
                "--tmpfs=/tmp:rw,nosuid,nodev,mode=1777",
                f"--volume={opts.job_dir / 'check'}:{CHECK_DIR}:ro",
                f"--volume={opts.outputs}:{OUTPUTS_IN_CONTAINER}:rw", *env,
                *(["--gpus=all"] if spec.gpus_per_node else []),
                f"--entrypoint={python}", spec.image, *rest]

    def submit(self, files: Sequence[JobFile], job_dir: str) -> str:
        argv = ["sbatch", "--parsable", str(Path(job_dir) / "job.sbatch")]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60,
                                  check=False, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolError(f"sbatch could not submit the job: {exc}",
                            hint="run it on a Slurm login node (sbatch on PATH), or submit "
                            f"{job_dir}/job.sbatch yourself") from exc
        if done.returncode != 0:
            raise ToolError("sbatch refused the job", stderr=done.stderr,
                            hint=f"see Slurm's message; the job is in {job_dir}")
        return done.stdout.strip().split(";")[0]


def make_bundle(layout: Path, tag: str, manifest_digest: str, options: SlurmOptions,
                progress: Any) -> Bundle:
    """The runtime bundle of the image ``layout:tag`` (already verified against the lock
    as ``manifest_digest``) at ``options.bundle``: reused when it was made from the same
    image with the same mounts, else unpacked again, atomically (a failed unpack leaves
    the previous bundle)."""
    target = options.bundle
    mark = _read_mark(target)
    if mark is not None and mark.get("manifestDigest") == manifest_digest:
        config = bundle_config(_read_config(target), options)
        data = _config_bytes(config)
        if sha256_bytes(data) == mark.get("configSha256") and \
                (target / "config.json").read_bytes() == data:
            return Bundle(target, sha256_bytes(data), manifest_digest, reused=True)
    umoci = shutil.which("umoci")
    if umoci is None:
        raise ToolError("umoci is not installed: it unpacks the image into the runtime "
                        "bundle Slurm runs", hint="apt-get install umoci (Debian, Ubuntu)")
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = target.with_name(f".{target.name}.new-{os.getpid()}")
    shutil.rmtree(fresh, ignore_errors=True)
    progress(f"unpacking {layout}:{tag} into the bundle {target} (umoci)")
    try:
        _umoci_unpack(umoci, layout, tag, fresh)
        data = _config_bytes(bundle_config(_read_config(fresh), options))
        atomic_write_bytes(fresh / "config.json", data)
        atomic_write_bytes(fresh / BUNDLE_MARK, _config_bytes(
            {"manifestDigest": manifest_digest, "configSha256": sha256_bytes(data)}))
        _swap_in(fresh, target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return Bundle(target, sha256_bytes(data), manifest_digest, reused=False)


def _umoci_unpack(umoci: str, layout: Path, tag: str, dest: Path) -> None:
    try:
        done = subprocess.run([umoci, "unpack", "--image", f"{layout}:{tag}", str(dest)],
                              capture_output=True, text=True, timeout=UMOCI_TIMEOUT,
                              check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"umoci did not unpack {layout}:{tag} in {UMOCI_TIMEOUT} s") from exc
    if done.returncode != 0:
        raise ToolError(f"umoci could not unpack {layout}:{tag}", stderr=done.stderr,
                        hint="check that the layout is complete ('reprolock verify "
                        "--image oci-layout:DIR:TAG')")


def _swap_in(fresh: Path, target: Path) -> None:
    """Replace ``target`` by ``fresh``: the old bundle is moved aside first, then removed."""
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(fresh, target)
    shutil.rmtree(old, ignore_errors=True)


def bundle_config(config: Mapping[str, Any], options: SlurmOptions) -> dict[str, Any]:
    """umoci's runtime config, adjusted for a cluster job (see the module's docstring)."""
    doc = json.loads(json.dumps(config))  # a deep copy
    linux = doc.setdefault("linux", {})
    linux["namespaces"] = [ns for ns in linux.get("namespaces", [])
                           if ns.get("type") not in ("network", "uts")]
    doc.pop("hostname", None)  # runc refuses a host name without a UTS namespace
    doc.setdefault("root", {})["readonly"] = True
    ours = {"/tmp", CHECK_DIR, OUTPUTS_IN_CONTAINER, *HOST_FILES}
    mounts = [m for m in doc.get("mounts", []) if m.get("destination") not in ours]
    # the node's own name resolution: MASTER_ADDR is a host name the image's files know
    # nothing of (as Docker mounts them too)
    hosts = [{"destination": f, "type": "bind", "source": f, "options": ["rbind", "ro"]}
             for f in HOST_FILES if Path(f).is_file()]
    doc["mounts"] = [*mounts, *hosts,
                     {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                      "options": ["nosuid", "nodev", "mode=1777"]},
                     {"destination": CHECK_DIR, "type": "bind",
                      "source": str(options.job_dir / "check"),
                      "options": ["rbind", "ro"]},
                     {"destination": OUTPUTS_IN_CONTAINER, "type": "bind",
                      "source": str(options.outputs), "options": ["rbind", "rw"]}]
    return dict(doc)


def _read_config(bundle: Path) -> dict[str, Any]:
    return _read_json(bundle / "config.json")


def _read_mark(bundle: Path) -> dict[str, Any] | None:
    try:
        return _read_json(bundle / BUNDLE_MARK)
    except (OSError, ConfigError):
        return None


def _read_json(path: Path) -> dict[str, Any]:
    doc = parse_json(path.read_bytes(), source=str(path), error=ConfigError,
                     hint=f"remove {path.parent} and run 'reprolock job' again")
    return dict(doc)


def _config_bytes(doc: Mapping[str, Any]) -> bytes:
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
