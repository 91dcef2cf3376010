"""A 'reprolock run' told to stop (SIGTERM: a scheduler's cancel, a CI job's stop) stops
its container instead of leaving it training, removes it, and exits 128+15 as a shell
reports it; a killed 'docker run' proxies the signal to its command the same way."""

from __future__ import annotations

import signal
import subprocess
import sys

import docker

from tests.test_run import built  # noqa: F401  (the module's built example image)

TRAIN = ("import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(0)); "
         "print('training', flush=True); time.sleep(300)")


def test_sigterm_stops_and_removes_the_container(built: dict) -> None:  # noqa: F811
    image = docker.from_env().images.get(built["name"])
    proc = subprocess.Popen(
        [sys.executable, "-m", "reprolock", "run", "-C", str(built["root"]), "-q", "--",
         "python3", "-c", TRAIN], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "training"  # the container is running
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "stopped by SIGTERM" in err and "Traceback" not in err, err
    left = docker.from_env().containers.list(all=True, filters={"ancestor": image.id})
    assert left == [], [c.status for c in left]
