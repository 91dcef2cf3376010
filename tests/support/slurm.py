"""A real single-node Slurm cluster for tests: start it, submit a batch script, wait.

The cluster is Debian's slurm-wlm on this machine, configured and started by
``.ci/slurm`` (root only). Every wait here is bounded and every failure names what
Slurm said, so a hung or refused job fails a test with the reason instead of hanging it.
No pytest here: fixtures decide whether a missing cluster skips or fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SETUP_SCRIPT = REPO / ".ci" / "slurm"
POLL_SECONDS = 0.2
# Slurm's terminal job states (squeue/scontrol spelling); any other state is still going.
FINAL_STATES = frozenset({
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY",
    "PREEMPTED", "BOOT_FAIL", "DEADLINE", "SPECIAL_EXIT",
})


class SlurmError(RuntimeError):
    """The cluster could not be started, or a job could not be submitted or awaited."""


def _run(argv: Sequence[str], *, timeout: float, cwd: Path | None = None,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SlurmError(f"{argv[0]} is not installed: run `bash .ci/slurm` as root") from exc
    except subprocess.TimeoutExpired as exc:
        raise SlurmError(f"`{' '.join(argv)}` did not finish within {timeout:.0f}s") from exc


def available() -> bool:
    """Whether this machine can run the cluster at all (root, and the setup script)."""
    return os.geteuid() == 0 and SETUP_SCRIPT.is_file()


def node_state() -> str | None:
    """The state ``sinfo`` reports for the node (``idle``, ``mixed``...), or None."""
    if shutil.which("sinfo") is None:
        return None
    proc = _run(["sinfo", "-h", "-o", "%T"], timeout=15)
    if proc.returncode != 0:
        return None
    states = proc.stdout.split()
    return states[0] if states else None


def ensure_cluster(timeout: float = 180) -> None:
    """Install, configure and start the cluster (``.ci/slurm``, idempotent: about 1 s
    when it already runs); return once the node accepts jobs."""
    if not available():
        raise SlurmError(f"a Slurm cluster needs root and {SETUP_SCRIPT}")
    env = {**os.environ, "SLURM_WAIT": str(max(10, int(timeout / 2)))}
    proc = _run(["bash", str(SETUP_SCRIPT)], timeout=timeout, env=env)
    if proc.returncode != 0:
        raise SlurmError(f".ci/slurm failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    state = node_state()
    if state not in {"idle", "mixed", "allocated", "completing"}:
        raise SlurmError(f".ci/slurm finished but the node is {state!r}:\n{proc.stderr[-2000:]}")


def submit(script_path: Path, cwd: Path, args: Sequence[str] = ()) -> int:
    """``sbatch`` the script from ``cwd`` (where ``slurm-%j.out`` lands unless the
    script says ``#SBATCH -o``); return the job id. ``args`` go before the script."""
    if not script_path.is_file():
        raise SlurmError(f"batch script {script_path} does not exist")
    proc = _run(["sbatch", "--parsable", *args, str(script_path)], timeout=30, cwd=cwd)
    if proc.returncode != 0:
        raise SlurmError(f"sbatch {script_path} refused (exit {proc.returncode}): "
                         f"{proc.stderr.strip()}")
    # --parsable prints "jobid" or "jobid;cluster".
    first = proc.stdout.strip().split(";")[0]
    if not first.isdigit():
        raise SlurmError(f"sbatch printed no job id: {proc.stdout!r} {proc.stderr!r}")
    return int(first)


def job_fields(job_id: int) -> dict[str, str]:
    """``scontrol show job`` as a dict (JobState, ExitCode, StdOut...). Slurm keeps a
    finished job's record for MinJobAge (300 s in .ci/slurm's configuration)."""
    proc = _run(["scontrol", "show", "job", "-o", str(job_id)], timeout=15)
    if proc.returncode != 0:
        raise SlurmError(f"scontrol show job {job_id} failed: {proc.stderr.strip()}")
    return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))


def _exit_code(field: str) -> int:
    """Slurm's ``ExitCode=CODE:SIGNAL`` as one number, shell style: 128+SIGNAL when a
    signal ended the batch script (scancel gives 0:15, i.e. 143)."""
    code, _, signal = field.partition(":")
    if signal and signal != "0":
        return 128 + int(signal)
    return int(code or 0)


def wait(job_id: int, timeout: float) -> tuple[str, int]:
    """Wait until the job ends; return (JobState, exit code of its batch script).

    A job still pending or running after ``timeout`` seconds is cancelled (so the
    one-node cluster is free for the next test) and SlurmError names its state and reason.
    """
    deadline = time.monotonic() + timeout
    fields = job_fields(job_id)
    while fields.get("JobState") not in FINAL_STATES:
        if time.monotonic() > deadline:
            _run(["scancel", str(job_id)], timeout=15)
            raise SlurmError(
                f"job {job_id} still {fields.get('JobState')} after {timeout:.0f}s "
                f"(Reason={fields.get('Reason')}); cancelled it")
        time.sleep(POLL_SECONDS)
        fields = job_fields(job_id)
    return fields["JobState"], _exit_code(fields.get("ExitCode", "0:0"))


def output(job_id: int) -> str:
    """The job's standard output file (its StdOut path), as text."""
    path = job_fields(job_id).get("StdOut", "")
    if not path:
        raise SlurmError(f"job {job_id} has no StdOut path")
    try:
        return Path(path).read_text(errors="replace")
    except OSError as exc:
        raise SlurmError(f"cannot read job {job_id}'s output {path}: {exc}") from exc


def unpack_bundle(layout: Path, tag: str, bundle: Path) -> Path:
    """Unpack ``layout:tag`` into an OCI runtime bundle for ``srun --container``.

    ``bundle`` must not exist yet (umoci refuses) and Slurm needs it as an absolute
    path: it reads BUNDLE/config.json and runs BUNDLE/rootfs whatever root.path says.
    """
    target = bundle.resolve()
    proc = _run(["umoci", "unpack", "--image", f"{layout}:{tag}", str(target)], timeout=300)
    if proc.returncode != 0:
        raise SlurmError(f"umoci unpack {layout}:{tag} failed: {proc.stderr.strip()}")
    return target
