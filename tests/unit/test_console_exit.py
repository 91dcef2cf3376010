"""The console script ends the process without the interpreter's teardown, but only after
the ``atexit`` handlers ran, the streams were flushed and no other thread still works."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PRELUDE = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv[1])

class Teardown:
    def __del__(self):
        (out / "teardown").write_text("ran")

KEEP = Teardown()  # freed only by the interpreter's teardown
atexit.register(lambda: (out / "atexit").write_text("ran"))
"""


def _console(tmp_path: Path, argv: list[str], extra: str = "") -> subprocess.CompletedProcess[str]:
    code = PRELUDE + textwrap.dedent(extra) + (
        f"sys.argv = {['reprolock', *argv]!r}\n"
        "from reprolock._entry import console\n"
        "console()\n")
    return subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, check=False, timeout=120)


def test_the_console_script_skips_teardown_but_runs_atexit_and_flushes(
        tmp_path: Path) -> None:
    proc = _console(tmp_path, ["--version"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("reprolock "), proc.stdout  # flushed before the exit
    assert (tmp_path / "atexit").read_text() == "ran"
    assert not (tmp_path / "teardown").exists()


@pytest.mark.parametrize(("argv", "status"), [(["lock", "--no-such-option"], 2),
                                              (["lock", "--project", "/nonexistent/x"], 2)])
def test_the_console_script_keeps_the_exit_status(tmp_path: Path, argv: list[str],
                                                  status: int) -> None:
    proc = _console(tmp_path, argv)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr.strip(), "the error is reported"
    assert (tmp_path / "atexit").read_text() == "ran"


def test_a_running_thread_is_waited_for(tmp_path: Path) -> None:
    proc = _console(tmp_path, ["--version"], """
        def late():
            time.sleep(0.3)
            (out / "thread").write_text("done")
        threading.Thread(target=late).start()
        """)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "thread").read_text() == "done"
    assert (tmp_path / "teardown").read_text() == "ran"  # the usual exit, teardown and all


def test_a_message_given_to_sys_exit_is_printed_with_status_1() -> None:
    from reprolock._entry import _status

    assert _status(None) == 0 and _status(3) == 3 and _status(-1) == 255
    assert _status("boom") == 1
