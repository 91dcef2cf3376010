#!/usr/bin/env python3
"""Benchmark ``reprolock job --engine slurm`` on the single-node Slurm of ``.ci/slurm``.

    python bench/bench_slurm.py [--runs 3]

Environment S1 (numpy, pandas, scikit-learn, matplotlib, requests, pyyaml, from PyPI)
over the Debian base, locked and built by reprolock into an OCI layout (gzip). Measured:

* ``reprolock job`` itself: cold (verify the image, unpack the bundle with umoci) and again
  (the bundle is reused);
* the time from ``sbatch`` to the training's first line, for the job as written (every
  file of the environment hashed on the node before training), with ``--fast`` (sizes
  only), and with no check at all (the same script, ``srun --container`` running the
  command directly): the difference is what the per-node check costs;
* the check's own time per node, as the wrapper reports it.

The training command prints ``time.time()`` at its start; ``sbatch`` is timed on the same
host clock. Preparation needs PyPI (the lock). Writes the "slurm" section of
``docs/benchmarks.md`` and the raw numbers in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import splice  # bench/_report.py: one file, one section per benchmark
from bench_lock import REPO, S1, BenchError, clean_env, ensure_base, log, ready_venv, run
from bench_verify import reprolock_toml

sys.path.insert(0, str(REPO))
from tests.support import slurm  # the same cluster helpers as the tests

START = ["python", "-c", "import time; print('TRAINING-START', repr(time.time()), flush=True)"]


def prepare(venv: Path, work: Path) -> tuple[Path, Path, dict[str, str]]:
    project = work / "s1"
    project.mkdir(parents=True)
    (project / "requirements.in").write_text("\n".join(S1) + "\n")
    (project / "train.py").write_text("print('training')\n")
    (project / "reprolock.toml").write_text(reprolock_toml())
    env = clean_env(venv, work / "caches")
    reprolock = str(venv / "bin" / "reprolock")
    log("reprolock lock --no-sbom (S1, PyPI)")
    run([reprolock, "lock", "-C", str(project), "--no-sbom", "-q"], env=env, what="lock")
    layout = work / "image"
    run([reprolock, "build", "-C", str(project), "--output", f"oci:{layout}:s1", "-q"],
        env=env, what="build")
    return project, layout, env


def write_job(venv: Path, project: Path, layout: Path, env: dict[str, str], name: str,
              *extra: str) -> tuple[float, Path]:
    argv = [str(venv / "bin" / "reprolock"), "job", "-C", str(project), "--engine", "slurm",
            "--image", f"oci-layout:{layout}:s1", "--name", name, "--json", "-q",
            "--bundle", str(project.parent / "bundle"), *extra, "--", *START]
    started = time.monotonic()
    out = run(argv, env=env, what="reprolock job")
    return time.monotonic() - started, Path(json.loads(out.stdout)["jobDir"])


def no_check_script(job_dir: Path) -> Path:
    """The job's script with the wrapper (and so the check) taken out."""
    text = (job_dir / "job.sbatch").read_text()
    text = re.sub(r"/usr/bin/python3\S* -I -S -B /\.reprolock-run/jobrun\.py .*? -- ", "",
                  text)
    path = job_dir / "job-nocheck.sbatch"
    path.write_text(text)
    return path


def sbatch_to_start(script: Path, cwd: Path) -> tuple[float, float | None]:
    submitted = time.time()
    job_id = slurm.submit(script, cwd)
    state, code = slurm.wait(job_id, timeout=600)
    out = (cwd / f"slurm-{job_id}.out").read_text()
    if (state, code) != ("COMPLETED", 0):
        raise BenchError(f"job {job_id} ended {state} {code}:\n{out[-2000:]}")
    start = float(re.search(r"TRAINING-START (\S+)", out).group(1))  # type: ignore[union-attr]
    check = re.search(r"runtime check passed \(([\d.]+) s\)", out)
    return start - submitted, float(check.group(1)) if check else None


def measure(venv: Path, project: Path, layout: Path, env: dict[str, str],
            runs: int) -> dict[str, object]:
    cold, job_dir = write_job(venv, project, layout, env, "s1-full")
    again, _ = write_job(venv, project, layout, env, "s1-full")
    _, fast_dir = write_job(venv, project, layout, env, "s1-fast", "--fast")
    variants = {"full": job_dir / "job.sbatch", "fast": fast_dir / "job.sbatch",
                "none": no_check_script(job_dir)}
    rows: dict[str, list[tuple[float, float | None]]] = {k: [] for k in variants}
    for _ in range(runs):
        for name, script in variants.items():
            rows[name].append(sbatch_to_start(script, script.parent))
    med = {k: statistics.median(r[0] for r in v) for k, v in rows.items()}
    checks = {k: statistics.median(r[1] for r in v if r[1] is not None)
              for k, v in rows.items() if k != "none"}
    return {"job_cold_s": cold, "job_again_s": again, "sbatch_to_start_s": med,
            "runs": {k: [r[0] for r in v] for k, v in rows.items()}, "check_s": checks,
            "image_mb": sum(p.stat().st_size for p in (layout / "blobs").rglob("*")) / 1e6}


def render(data: dict[str, object], facts: dict[str, str]) -> str:
    start: dict[str, float] = data["sbatch_to_start_s"]  # type: ignore[assignment]
    check: dict[str, float] = data["check_s"]  # type: ignore[assignment]
    runs = data["runs"]
    return f"""## Cluster jobs: Slurm (issue 15)

`bench/bench_slurm.py`, {facts['when']}, {facts['machine']}, {facts['slurm']}, one node
(`.ci/slurm`: slurmctld, slurmd, runc through `srun --container`). Image: S1 over the
Debian base, built by reprolock (gzip layers, {data['image_mb']:.0f} MB of blobs). Medians of
{len(runs['full'])} jobs each (every run: {json.dumps(runs)}).

| what | time |
| --- | --- |
| `reprolock job` cold (verify the image, unpack the bundle) | {data['job_cold_s']:.2f} s |
| `reprolock job` again (bundle reused) | {data['job_again_s']:.2f} s |
| `sbatch` to training start, no check (srun runs the command) | {start['none']:.2f} s |
| `sbatch` to training start, per-node check `--fast` (sizes) | {start['fast']:.2f} s |
| `sbatch` to training start, check hashing every file (default) | {start['full']:.2f} s |
| the check's own time on the node, full / fast | {check['full']:.2f} s / {check['fast']:.2f} s |

The check adds {start['full'] - start['none']:.2f} s per job start on this node (all nodes
check in parallel, so a job of N nodes pays it once, plus the slowest node's disk).
Slurm's scheduler tick is most of the rest (`SchedulerParameters=batch_sched_delay=0,
sched_min_interval=100000` in `.ci/slurm`).
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    ensure_base()
    slurm.ensure_cluster()
    version = subprocess.run(["sinfo", "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    facts = {"when": now.strftime("%Y-%m-%d"), "slurm": version,
             "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    scratch = Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    try:
        venv = scratch / "venv"
        ready_venv(venv)
        project, layout, env = prepare(venv, scratch)
        data = measure(venv, project, layout, env, args.runs)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"slurm-{now.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({**data, **facts}, indent=2) + "\n")
    splice(args.out, "slurm", render(data, facts))
    print(render(data, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
