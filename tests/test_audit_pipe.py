"""``reprolock audit ... | head``: the reader goes away early (issue 14, "Bugs seen").

A real pipe: the child's stdout is a pipe this test closes after a few bytes. No "Broken
pipe" text may reach stderr, and the exit is 0 or the conventional quiet SIGPIPE exit
(141, or death by SIGPIPE), never 2 (a usage or tool error).
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.projects import write_project

QUIET_SIGPIPE = (128 + signal.SIGPIPE, -signal.SIGPIPE)


def _read_then_close(args: list[str], size: int) -> tuple[bytes, int, str]:
    proc = subprocess.Popen([sys.executable, "-m", "reprolock", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    head = proc.stdout.read(size)
    proc.stdout.close()  # the reader is gone: the next writes fail with EPIPE
    err = proc.stderr.read().decode()
    proc.stderr.close()
    return head, proc.wait(timeout=120), err


def test_list_rules_into_a_closed_pipe() -> None:
    head, code, err = _read_then_close(["audit", "--list-rules"], 6)
    assert head == b"RL001 "
    assert "Broken pipe" not in err and err == "", err
    assert code in (0, *QUIET_SIGPIPE), code


@pytest.mark.parametrize("fmt", ["json", "text", "sarif"])
def test_a_long_report_into_a_closed_pipe(tmp_path: Path, fmt: str) -> None:
    # 3,000 unpinned requirements: a report far larger than a pipe's buffer, so the
    # write really fails once the reader is gone
    reqs = "".join(f"package-{i}>=1\n" for i in range(3000))
    root = write_project(tmp_path, {"requirements.txt": reqs})
    head, code, err = _read_then_close(["audit", str(root), "--format", fmt,
                                        "--no-hadolint"], 10)
    assert len(head) == 10
    assert "Broken pipe" not in err and err == "", err
    # never 0 (a report with findings must not pass), never 2 (not a tool error); 1 when
    # the whole report was in the pipe before the reader left (some kernels take it all)
    assert code in (1, *QUIET_SIGPIPE), code
