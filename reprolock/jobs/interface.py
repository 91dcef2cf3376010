"""What every cluster engine is given, and what it gives back.

A :class:`JobSpec` is engine-neutral: the image by digest, the command, the shape of the
job (nodes, processes and GPUs per node, the rendezvous port), and the expectations the
per-node runtime check compares the container with. An engine turns it into files
(:class:`JobFile`): an ``sbatch`` script and a runtime bundle for Slurm, manifests for
Kubernetes.

On every node, before the training starts, the container runs the job wrapper
(``/.reprolock-run/jobrun.py``, standard library only) under the image's own base
interpreter, isolated (``python -I -S -B``): it runs the runtime check against the mounted
expectations, stops the node with the check's report if the environment drifted, sets the
rendezvous variables, runs the command (through ``torchrun`` when the job has more than one
process) and writes one run record per node into the outputs.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: where the host's checker, wrapper and expectations are mounted in the container
CHECK_DIR = "/.reprolock-run"
#: the wrapper's file name in CHECK_DIR
JOB_WRAPPER = "jobrun.py"
#: where the outputs are mounted; the wrapper writes run records under RECORDS_SUBDIR
OUTPUTS_IN_CONTAINER = "/outputs"
RECORDS_SUBDIR = ".reprolock-runs"
DEFAULT_MASTER_PORT = 29500
#: where an init step leaves the check's report for the training container (a pod's /tmp,
#: an emptyDir both mount)
CHECK_REPORT = "/tmp/reprolock-check.json"


@dataclass(frozen=True)
class JobSpec:
    """One training job of the locked image. ``expectations`` are the files mounted
    read-only at :data:`CHECK_DIR` (file name -> bytes: ``check.py``, ``jobrun.py``,
    ``job.json``, ``lock.json``, ``code.json``, ``runtime.json``)."""

    name: str  # a DNS-1123 label: lower case letters, digits and '-', at most 63
    image: str  # the image by digest: 'host/repo@sha256:…', or a layout 'oci:DIR@sha256:…'
    manifest_digest: str  # sha256:… of the image manifest
    config_digest: str  # sha256:… of the image configuration (the image ID)
    python: str  # the base interpreter in the image (the lock's base.python.path)
    workdir: str
    command: tuple[str, ...]  # what each node runs, before torchrun wraps it
    nodes: int = 1
    procs_per_node: int = 1
    gpus_per_node: int = 0
    master_port: int = DEFAULT_MASTER_PORT
    fast_check: bool = False
    expectations: Mapping[str, bytes] = field(default_factory=dict)

    @property
    def world_size(self) -> int:
        return self.nodes * self.procs_per_node

    def wrapper_argv(self, *, report: str | None = None) -> list[str]:
        """The argv each node's container runs: the wrapper, then the command. With
        ``report``, the wrapper takes the check's report an init step of the same pod
        wrote there (:meth:`check_argv`) instead of checking again."""
        return [*self._wrapper(), "--outputs", OUTPUTS_IN_CONTAINER,
                *(["--report", report] if report else []),
                "--nodes", str(self.nodes), "--procs-per-node", str(self.procs_per_node),
                "--master-port", str(self.master_port), "--", *self.command]

    def check_argv(self, report: str = CHECK_REPORT) -> list[str]:
        """The runtime check alone, as an init step: the wrapper checks, prints the
        report, writes it to ``report`` and exits 3 on drift."""
        return [*self._wrapper(), "--check-only", "--report", report]

    def _wrapper(self) -> list[str]:
        return [self.python, "-I", "-S", "-B", f"{CHECK_DIR}/{JOB_WRAPPER}", "--dir",
                CHECK_DIR, *(["--fast"] if self.fast_check else [])]


@dataclass(frozen=True)
class JobFile:
    """A file an engine writes: ``path`` relative to the job directory."""

    path: str
    data: bytes
    executable: bool = False


class JobEngine(abc.ABC):
    """Renders a job for one cluster engine; submits it where that engine is reachable."""

    name: str

    @abc.abstractmethod
    def render(self, spec: JobSpec) -> Sequence[JobFile]:
        """The files of the job, deterministic for a given spec and options."""

    def submit(self, files: Sequence[JobFile], job_dir: str) -> str:
        """Submit the written job; the engine's job ID. Not every engine can."""
        raise NotImplementedError(f"{self.name} jobs are written, not submitted, by reprolock")


def job_environment(spec: JobSpec) -> Mapping[str, str]:
    """Rendezvous settings every node agrees on (MASTER_ADDR is the engine's to set)."""
    return {"MASTER_PORT": str(spec.master_port), "WORLD_SIZE": str(spec.world_size),
            "NNODES": str(spec.nodes), "NPROC_PER_NODE": str(spec.procs_per_node)}
