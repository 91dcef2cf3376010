"""reprolock's job wrapper: runs on every node of a cluster job, in the locked image.

Standard library only: it runs under the image's base interpreter, isolated
(``python -I -S -B``), from the directory the host mounted read-only (``--dir``), beside
``check.py`` and the expectations ``reprolock job`` wrote (``job.json``, ``lock.json``,
``code.json``, ``runtime.json``). On each node it:

1. runs the runtime check (every file hashed, or ``--fast``); on drift it prints the check's
   report, writes a record saying so and exits 3 before the training starts;
2. sets the rendezvous variables (``MASTER_ADDR`` from the engine, ``MASTER_PORT``,
   ``WORLD_SIZE``, ``NODE_RANK``) and runs the command, through ``torchrun`` when the job
   has more than one process;
3. writes this node's run record (the form ``reprolock run`` writes, plus ``job``) into
   ``OUTPUTS/.reprolock-runs/``, with the sha256 of every output file it saw written.

Exit: the command's exit code; 3 when the check found drift; 2 when the wrapper or the
check could not run.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
from typing import Any

EXIT_USAGE = 2
EXIT_DRIFT = 3
RECORDS_SUBDIR = ".reprolock-runs"
DEFAULT_REPORT = "/tmp/reprolock-check.json"
MAX_JOB_JSON = 1 << 20
#: the engine's variable that numbers this node (Slurm, indexed Kubernetes Job, torchrun)
RANK_VARIABLES = ("SLURM_NODEID", "JOB_COMPLETION_INDEX", "NODE_RANK")
JOB_ID_VARIABLES = ("SLURM_JOB_ID", "REPROLOCK_JOB_ID", "HOSTNAME")


def _iso(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def read_job(directory: str) -> dict[str, Any]:
    path = os.path.join(directory, "job.json")
    with open(path, "rb") as handle:
        data = handle.read(MAX_JOB_JSON + 1)
    if len(data) > MAX_JOB_JSON:
        raise ValueError(f"{path} is larger than {MAX_JOB_JSON} bytes")
    job = json.loads(data)
    if not isinstance(job, dict):
        raise ValueError(f"{path} is not a JSON object")
    return job


def node_rank(env: dict[str, str]) -> int:
    for name in RANK_VARIABLES:
        value = env.get(name, "")
        if value.isdigit():
            return int(value)
    return 0


def job_id(env: dict[str, str]) -> str:
    for name in JOB_ID_VARIABLES:
        if env.get(name):
            return re.sub(r"[^A-Za-z0-9_.-]", "_", env[name])[:64]
    return "job"


def run_check(directory: str, *, fast: bool) -> dict[str, Any]:
    """The runtime check, in this interpreter: it is already the isolated base one."""
    sys.path.insert(0, directory)
    try:
        import check  # type: ignore[import-not-found]  # the mounted check.py

        report: dict[str, Any] = check.run(directory, root="/", fast=fast, jobs=None)
        report["text"] = check.render(report)
    finally:
        sys.path.remove(directory)
    return report


def snapshot(outputs: str) -> dict[str, tuple[int, int]]:
    """Every file under the outputs (but the records), by (size, mtime_ns)."""
    found = {}
    for top, dirs, files in os.walk(outputs):
        if top == outputs and RECORDS_SUBDIR in dirs:
            dirs.remove(RECORDS_SUBDIR)
        for name in files:
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            found[os.path.relpath(path, outputs)] = (info.st_size, info.st_mtime_ns)
    return found


def written(outputs: str, before: dict[str, tuple[int, int]]) -> list[dict[str, Any]]:
    files = []
    for rel, stamp in sorted(snapshot(outputs).items()):
        if before.get(rel) == stamp:
            continue
        entry: dict[str, Any] = {"path": rel, "size": stamp[0]}
        try:
            with open(os.path.join(outputs, rel), "rb") as handle:
                entry["sha256"] = hashlib.file_digest(handle, "sha256").hexdigest()
        except OSError as exc:
            entry["unreadable"] = exc.strerror or exc.__class__.__name__
        files.append(entry)
    return files


def command_argv(args: argparse.Namespace, rank: int, master: str) -> list[str]:
    """The command, through torchrun when the job has more than one process: torchrun
    starts this node's processes and gives each its RANK, LOCAL_RANK and WORLD_SIZE. Each
    process is this wrapper again (``--rank-record``), which runs the command and writes
    the process's own record, with the node's check report (never a second check)."""
    if args.rank_record or args.nodes * args.procs_per_node == 1:
        return list(args.command)
    rank_wrapper = [sys.executable, "-I", "-S", "-B", os.path.abspath(__file__),
                    "--dir", args.dir, "--outputs", args.outputs, "--report", args.report,
                    "--rank-record", "--nodes", str(args.nodes),
                    "--procs-per-node", str(args.procs_per_node), "--"]
    return ["torchrun", f"--nnodes={args.nodes}", f"--nproc-per-node={args.procs_per_node}",
            f"--node-rank={rank}", f"--master-addr={master}",
            f"--master-port={args.master_port}", "--no-python", *rank_wrapper,
            *python_command(args.command)]


def python_command(command: list[str]) -> list[str]:
    """torchrun --no-python runs an executable: a script is given to the image's python."""
    return ["python", *command] if command[0].endswith(".py") else list(command)


def command_env(args: argparse.Namespace, rank: int, master: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MASTER_ADDR=master, MASTER_PORT=str(args.master_port), NODE_RANK=str(rank),
               WORLD_SIZE=str(args.nodes * args.procs_per_node), REPROLOCK_OUTPUTS=args.outputs)
    if args.nodes * args.procs_per_node == 1:
        env.update(RANK="0", LOCAL_RANK="0")
    return env


def record(job: dict[str, Any], args: argparse.Namespace, report: dict[str, Any], *,
           rank: int, ident: str, started: datetime.datetime, ended: datetime.datetime,
           exit_code: int, files: list[dict[str, Any]], argv: list[str]) -> dict[str, Any]:
    determinism = {k: v[:256] for k, v in sorted(os.environ.items())
                   if k in job.get("determinismVariables", ()) or k.startswith("NCCL_")}
    return {
        "recordVersion": 1,
        "generator": {"name": "reprolock", "version": str(job.get("generator", "unknown"))},
        "image": {"id": job["configDigest"], "tags": [],
                  "repoDigests": [job["image"]] if "@sha256:" in job["image"] else []},
        "lock": job["lock"], "codeTree": job["codeTree"], "gitCommit": job.get("gitCommit"),
        "command": argv, "network": "host",
        "gpus": f"{job['gpusPerNode']} per node" if job.get("gpusPerNode") else None,
        "determinism": determinism,
        "started": _iso(started), "ended": _iso(ended), "exitCode": exit_code,
        "check": {"ok": bool(report.get("ok")), "mode": "fast" if args.fast else "full",
                  "warnOnly": False, "seconds": float(report.get("seconds", 0.0)),
                  "failed": [c["name"] for c in report.get("checks", []) if not c.get("ok")]},
        "accelerators": dict(report.get("accelerators") or {}),
        "outputs": {"dir": job["outputsDir"], "files": files},
        "job": {"engine": job["engine"], "id": ident, "node": rank, "nodes": args.nodes,
                "procsPerNode": args.procs_per_node, "host": socket.gethostname()[:253],
                "manifestDigest": job["manifestDigest"], **process_rank(args)},
    }


def process_rank(args: argparse.Namespace) -> dict[str, int]:
    """A process's global and local rank, as torchrun set them (a --rank-record record)."""
    if not args.rank_record:
        return {}
    env = os.environ
    return {name: int(env[var]) for name, var in (("rank", "RANK"), ("localRank", "LOCAL_RANK"))
            if env.get(var, "").isdigit()}


def write_record(outputs: str, ident: str, rank: int, doc: dict[str, Any]) -> str:
    directory = os.path.join(outputs, RECORDS_SUBDIR)
    os.makedirs(directory, exist_ok=True)
    process = doc["job"].get("rank")
    suffix = "" if process is None else f"-rank{process}"
    path = os.path.join(directory, f"{ident}-node{rank}{suffix}.json")
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    return path


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="jobrun.py", description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--outputs")
    parser.add_argument("--check-only", action="store_true",
                        help="run the check, write --report, exit (a Kubernetes init step)")
    parser.add_argument("--report", help="the check's report: written with --check-only, "
                        "else read from there (when present) instead of checking again")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--procs-per-node", type=int, default=1)
    parser.add_argument("--master-port", type=int, default=29500)
    parser.add_argument("--fast", action="store_true")
    parser.add_argument("--rank-record", action="store_true",
                        help="one process of torchrun's: run the command with the node's "
                        "--report, write this process's record")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if args.check_only and not args.report:
        parser.error("--check-only needs --report")
    if not args.check_only and (not args.command or not args.outputs):
        parser.error("--outputs and a command after -- are needed")
    if args.rank_record and not args.report:
        parser.error("--rank-record needs the node's --report")
    if args.nodes * args.procs_per_node > 1 and not args.report:
        args.report = DEFAULT_REPORT  # where this node's processes find the check's report
    return args


def checked(args: argparse.Namespace) -> dict[str, Any]:
    """The check's report: the one an init step of this pod wrote, or a check run now."""
    if args.rank_record and not os.path.isfile(args.report):
        raise ValueError(f"the node's check report {args.report} is missing")
    if args.report and not args.check_only and os.path.isfile(args.report):
        with open(args.report, "rb") as handle:
            report: dict[str, Any] = json.loads(handle.read(MAX_JOB_JSON))
        return report
    report = run_check(args.dir, fast=args.fast)
    if args.report:
        with open(args.report, "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in report.items() if k != "text"}, handle)
    return report


def check_only(args: argparse.Namespace, report: dict[str, Any], rank: int) -> int:
    if report.get("ok"):
        print(f"reprolock job: node {rank}: runtime check passed "
              f"({report.get('seconds', 0):.2f} s)", file=sys.stderr)
        return 0
    sys.stderr.write(f"reprolock job: node {rank} ({socket.gethostname()}): the environment "
                     "is not the locked one; the training will not start\n"
                     + str(report.get("text", "")))
    return EXIT_DRIFT


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    env = dict(os.environ)
    rank, ident = node_rank(env), job_id(env)
    master = env.get("MASTER_ADDR") or "127.0.0.1"
    try:
        job = read_job(args.dir)
        started = _now()
        report = checked(args)
    except Exception as exc:  # the check could not run: never training, never "drift"
        print(f"reprolock job: node {rank}: the runtime check could not run: {exc}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.check_only:
        return check_only(args, report, rank)
    argv_run = command_argv(args, rank, master)
    if not report.get("ok"):
        sys.stderr.write(f"reprolock job: node {rank} ({socket.gethostname()}): the "
                         "environment is not the locked one; the training was not started\n"
                         + str(report.get("text", "")))
        write_record(args.outputs, ident, rank, record(
            job, args, report, rank=rank, ident=ident, started=started, ended=_now(),
            exit_code=EXIT_DRIFT, files=[], argv=argv_run))
        return EXIT_DRIFT
    if not args.rank_record:
        print(f"reprolock job: node {rank}: runtime check passed "
              f"({report.get('seconds', 0):.2f} s); starting {' '.join(argv_run)}",
              file=sys.stderr, flush=True)
    before = snapshot(args.outputs)
    started = _now()
    try:
        code = subprocess.call(argv_run, env=command_env(args, rank, master))
        code = 128 - code if code < 0 else code  # killed by a signal: as a shell says it
    except OSError as exc:
        print(f"reprolock job: node {rank}: cannot start {argv_run[0]}: {exc}", file=sys.stderr)
        code = 127
    ended = _now()
    path = write_record(args.outputs, ident, rank, record(
        job, args, report, rank=rank, ident=ident, started=started, ended=ended,
        exit_code=code, files=written(args.outputs, before), argv=argv_run))
    print(f"reprolock job: node {rank}: exit {code}; record {path}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
