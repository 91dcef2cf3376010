"""The cluster job wrapper's decisions, in process (the real runs are in
tests/test_job_slurm.py and tests/test_job_kubernetes_pod.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprolock.jobs.interface import CHECK_DIR, CHECK_REPORT, JobSpec
from reprolock.runtime import jobrun


def spec(**overrides: object) -> JobSpec:
    fields: dict[str, object] = {
        "name": "train", "image": "r.example/t@sha256:" + "a" * 64,
        "manifest_digest": "sha256:" + "a" * 64, "config_digest": "sha256:" + "b" * 64,
        "python": "/usr/bin/python3.11", "workdir": "/app", "command": ("train.py",)}
    return JobSpec(**{**fields, **overrides})  # type: ignore[arg-type]


def test_the_wrapper_and_the_engines_agree_on_where_the_report_is() -> None:
    assert jobrun.DEFAULT_REPORT == CHECK_REPORT
    assert jobrun.RECORDS_SUBDIR == ".reprolock-runs"


def test_one_process_runs_the_command_as_given() -> None:
    args = jobrun.parse(spec().wrapper_argv()[5:])
    assert jobrun.command_argv(args, 0, "m") == ["train.py"]
    assert args.report is None


def test_several_processes_run_through_torchrun_each_in_the_wrapper_again() -> None:
    args = jobrun.parse(spec(nodes=2, procs_per_node=4).wrapper_argv()[5:])
    argv = jobrun.command_argv(args, 1, "node-a")
    assert argv[:7] == ["torchrun", "--nnodes=2", "--nproc-per-node=4", "--node-rank=1",
                        "--master-addr=node-a", "--master-port=29500", "--no-python"]
    wrapper = argv[7:argv.index("--")]
    assert wrapper[1:4] == ["-I", "-S", "-B"] and "--rank-record" in wrapper
    assert wrapper[wrapper.index("--report") + 1] == CHECK_REPORT
    assert wrapper[wrapper.index("--dir") + 1] == CHECK_DIR
    assert argv[argv.index("--") + 1:] == ["python", "train.py"]


def test_a_process_wrapper_never_checks_again(tmp_path: object) -> None:
    args = jobrun.parse(["--dir", "/nowhere", "--outputs", "/o", "--report", "/no/report",
                         "--rank-record", "--", "python", "t.py"])
    with pytest.raises(ValueError, match="check report /no/report is missing"):
        jobrun.checked(args)


@pytest.mark.parametrize(("env", "rank"), [({"SLURM_NODEID": "3"}, 3),
                                          ({"JOB_COMPLETION_INDEX": "2"}, 2),
                                          ({"SLURM_NODEID": "x", "NODE_RANK": "1"}, 1), ({}, 0)])
def test_the_node_rank_comes_from_the_engine(env: dict[str, str], rank: int) -> None:
    assert jobrun.node_rank(env) == rank


def test_a_command_killed_by_a_signal_exits_as_a_shell_says_it(tmp_path: Path) -> None:
    """The check is stubbed here (its real runs are in test_job_slurm); the command is
    real and dies of SIGKILL: 128 + 9, as sh and Slurm report it, never -9."""
    check_dir, outputs = tmp_path / "check", tmp_path / "outputs"
    check_dir.mkdir()
    outputs.mkdir()
    (check_dir / "check.py").write_text(
        "def run(directory, root, fast, jobs):\n"
        "    return {'ok': True, 'checks': [], 'seconds': 0.0}\n"
        "def render(report):\n    return ''\n")
    (check_dir / "job.json").write_text(json.dumps({
        "engine": "slurm", "image": "oci-layout:/x@sha256:" + "a" * 64,
        "manifestDigest": "sha256:" + "a" * 64, "configDigest": "sha256:" + "b" * 64,
        "lock": {"path": "reprolock.lock.json", "digest": "sha256:" + "c" * 64,
                 "inputsDigest": "d"}, "codeTree": "sha256:" + "e" * 64,
        "outputsDir": "outputs"}))
    code = jobrun.main(["--dir", str(check_dir), "--outputs", str(outputs), "--",
                        "sh", "-c", "kill -KILL $$"])
    assert code == 137
    (record,) = (outputs / ".reprolock-runs").glob("*.json")
    assert json.loads(record.read_text())["exitCode"] == 137
