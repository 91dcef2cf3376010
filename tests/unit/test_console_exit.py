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


def test_a_closed_stderr_does_not_change_the_exit_status(tmp_path: Path) -> None:
    """With fd 2 closed Python sets sys.stderr to None: flushing it raised
    AttributeError, and the exit status became 1 (main() alone gives 0)."""
    code = ("import sys; sys.argv = ['reprolock', '--version']\n"
            "from reprolock._entry import console\nconsole()\n")
    proc = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True, check=False, timeout=120,
                          pass_fds=(), close_fds=True,
                          preexec_fn=lambda: __import__("os").close(2))
    assert proc.returncode == 0
    assert proc.stdout.startswith("reprolock ")


def test_a_reader_gone_before_the_last_flush_is_a_quiet_broken_pipe(tmp_path: Path) -> None:
    """The output is still buffered when the reader has gone: the status is the broken
    pipe's, with nothing on stderr, and stderr is still flushed."""
    from reprolock._entry import EXIT_BROKEN_PIPE

    proc = _console(tmp_path, ["--version"], """
        import io, os
        def late():  # output after main() flushed: only console() flushes it
            r, w = os.pipe()
            os.close(r)
            sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(w, "w"), 1 << 16))
            sys.stdout.write("late")
            sys.stderr.write("kept on stderr")
        atexit.register(late)
        """)
    assert proc.returncode == EXIT_BROKEN_PIPE, proc.stderr
    assert proc.stderr == "kept on stderr"


def test_an_error_shows_control_characters_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    """An adversarial pass: a ref name in a crafted index.json carried "\\x1b[2J" (clear
    the screen), an OSC title and "\\r" (a fake line of its own) into the error."""
    from reprolock._internal.console import report_error
    from reprolock.errors import ImageSourceError

    report_error(ImageSourceError("has no image 'x\x1b[2J\x1b]0;pwned\x07\rlock OK'\u202e",
                                  hint="name one"))
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\r" not in err and "\u202e" not in err and "\x07" not in err
    assert "x\\x1b[2J\\x1b]0;pwned\\x07\\x0dlock OK'\\u202e" in err
    assert err.count("\n") == 2  # the message and its fix: one paragraph


def test_an_error_past_the_bound_is_cut(capsys: pytest.CaptureFixture[str]) -> None:
    """A crafted index of 70,000 platforms made an error of 1.18 MB."""
    from reprolock._internal.console import MAX_MESSAGE, report_error
    from reprolock.errors import ImageSourceError

    report_error(ImageSourceError("it offers: " + "linux/x, " * 200_000))
    err = capsys.readouterr().err
    assert len(err) < MAX_MESSAGE + 200 and "more characters)" in err


def test_a_list_in_a_message_names_the_first_and_counts_the_rest() -> None:
    from reprolock.image.interface import listed

    assert listed([]) == "none"
    assert listed(["a", "b"]) == "a, b"
    assert listed([str(n) for n in range(70_000)], most=3) == "0, 1, 2 and 69997 more"
