"""SIGTERM and SIGHUP become :class:`Terminated` in reprolock's main thread, except where
the signal is ignored: 'nohup reprolock build' must outlive the terminal it started in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

PROBE = """
import os, signal, sys
from reprolock._entry import _stop_on_signals
from reprolock.errors import Terminated
_stop_on_signals()
try:
    os.kill(os.getpid(), signal.SIGHUP)  # the handler runs before the next line
    print("still running")
except Terminated as exc:
    print("terminated", exc.exit_code)
"""


def _probe(ignore_hup: bool) -> str:
    def prepare() -> None:  # both ways explicitly: this test may itself run under nohup
        signal.signal(signal.SIGHUP, signal.SIG_IGN if ignore_hup else signal.SIG_DFL)
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          preexec_fn=prepare, env={**os.environ}, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_sighup_stops_a_command_with_the_shell_exit_code() -> None:
    assert _probe(ignore_hup=False) == f"terminated {128 + signal.SIGHUP}"


def test_an_ignored_sighup_stays_ignored() -> None:
    assert _probe(ignore_hup=True) == "still running"
