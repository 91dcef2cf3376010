"""The console script. ``reprolock lock --check`` runs before the CLI framework loads.

The check is what the pre-commit hook runs on every commit, so it must start fast;
importing typer alone costs more than the whole check. Anything but the plain forms
below (``--help``, ``--verbose``, other commands) goes through the typer CLI.

Both paths report errors through :func:`report_error`: one paragraph starting with
``error:``, never a traceback (unless ``--verbose``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from pathlib import Path

from reprolock._internal.console import (  # noqa: F401 - EXIT_BROKEN_PIPE: tests
    EXIT_BROKEN_PIPE,
    quiet_broken_pipe,
    report_error,
)


def _fast_check_args(args: list[str]) -> tuple[Path, bool] | None:
    if not args or args[0] != "lock" or "--check" not in args:
        return None
    project, as_json = Path(), False
    rest = iter(args[1:])
    for arg in rest:
        if arg in ("--check", "-q", "--quiet"):
            continue
        if arg == "--json":
            as_json = True
        elif arg in ("--project", "-C"):
            value = next(rest, None)
            if value is None:
                return None
            project = Path(value)
        elif arg.startswith("--project="):
            project = Path(arg.split("=", 1)[1])
        else:
            return None
    return project, as_json


def run_check(project: Path, as_json: bool) -> int:
    from reprolock._internal.cache import default_cache_dir
    from reprolock.config import load_config
    from reprolock.lock.check import check_lock, render_check

    try:
        outcome = check_lock(load_config(project), cache_dir=default_cache_dir())
    except Exception as exc:  # the same last resort as the typer commands
        return report_error(exc)
    out, err, code = render_check(outcome, as_json=as_json)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _dispatch() -> None:
    fast = _fast_check_args(sys.argv[1:])
    if fast is not None:
        sys.exit(run_check(*fast))
    from reprolock.cli import main as cli_main

    cli_main()


def _stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise :class:`Terminated` in the main thread instead of ending
    the process at once: a container ``run`` started is stopped, not left training, and
    atomic writes remove their temporary files."""
    import signal

    from reprolock.errors import Terminated

    def stop(signum: int, _frame: object) -> None:
        raise Terminated(signum, signal.Signals(signum).name)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        # an ignored signal stays ignored: 'nohup reprolock build' must outlive its terminal
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, stop)


def main() -> None:
    from reprolock.errors import Terminated

    _stop_on_signals()
    try:
        try:
            _dispatch()
        finally:  # flushed here, not at interpreter exit, so a closed pipe is seen here
            sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(quiet_broken_pipe())
    except Terminated as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        sys.exit(exc.exit_code)


def console() -> None:
    """The console script: :func:`main`, then the process ends without the interpreter's
    teardown, as mypy's ``hard_exit`` does (``python -m reprolock`` exits the usual way,
    for profilers and coverage, which write their results at exit). Freeing every
    module and object took about 30 ms after each command, most of what a warm ``lock``
    spends beyond uv itself. The ``atexit`` handlers still run (they remove temporary
    blobs) and the streams are flushed; while another thread still runs, the process
    ends the usual way so that thread is not cut short."""
    from reprolock.errors import Terminated

    try:
        main()
        code = 0
    except SystemExit as exc:
        code = _status(exc.code)
    try:
        if threading.active_count() > 1:
            sys.exit(code)
        atexit._run_exitfuncs()
        code = _flushed(code)
    except Terminated as exc:  # a signal after main() returned: its status, as main's
        code = exc.exit_code
    os._exit(code)


def _flushed(code: int) -> int:
    """Flush stdout and stderr as the interpreter would at exit: a reader gone is the
    quiet broken pipe; another failure gives CPython's 120. A closed stream is None."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except BrokenPipeError:
            code = quiet_broken_pipe() if stream is sys.stdout else code
        except (OSError, ValueError):
            code = 120
    return code


def _status(code: object) -> int:
    """The exit status ``sys.exit(code)`` would give; a message is printed as it would."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1
