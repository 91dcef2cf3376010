"""The console script. ``reprolock lock --check`` runs before the CLI framework loads.

The check is what the pre-commit hook runs on every commit, so it must start fast;
importing typer alone costs more than the whole check. Anything but the plain forms
below (``--help``, ``--verbose``, other commands) goes through the typer CLI.

Both paths report errors through :func:`report_error`: one paragraph starting with
``error:``, never a traceback (unless ``--verbose``).
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

#: What a shell reports for a program killed by SIGPIPE (``yes | head -1``): the reader
#: went away. Not 0, so a finding cut short is never read as success; not 2, no error.
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


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


def _one_paragraph(text: str) -> str:
    """Blank lines (from a value quoted in a message) would split the error in two."""
    return "\n".join(line.rstrip() for line in text.splitlines() if line.strip())


def report_error(exc: Exception) -> int:
    """Print ``exc`` as the one paragraph a user reads; return the exit code."""
    from reprolock.errors import EXIT_ERROR, ReprolockError

    if isinstance(exc, ReprolockError):
        print(f"error: {_one_paragraph(exc.diagnostics())}", file=sys.stderr)
        return exc.exit_code
    if isinstance(exc, MemoryError):  # a hostile input can ask for any amount of memory
        print("error: out of memory: an input is far larger or deeper than any file "
              "reprolock writes\n  fix: check the files this command reads", file=sys.stderr)
        return EXIT_ERROR
    if isinstance(exc, OSError):  # disk full, permissions: the user's to fix, not a bug
        print(f"error: {_one_paragraph(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    detail = " ".join(str(exc).split())
    detail = detail if len(detail) <= 300 else detail[:297] + "..."
    print(f"error: internal error ({exc.__class__.__name__}: {detail}); this is a bug in "
          "reprolock: please report it with the output of --verbose", file=sys.stderr)
    return EXIT_ERROR


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


def quiet_broken_pipe() -> int:
    """The reader of stdout is gone (``reprolock audit --list-rules | head -1``): no
    "Broken pipe" message, and none at exit when Python flushes stdout again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):  # stdout is not a file (tests): fine
        pass
    finally:
        os.close(devnull)
    return EXIT_BROKEN_PIPE


def _dispatch() -> None:
    fast = _fast_check_args(sys.argv[1:])
    if fast is not None:
        sys.exit(run_check(*fast))
    from reprolock.cli import main as cli_main

    cli_main()


def main() -> None:
    try:
        try:
            _dispatch()
        finally:  # flushed here, not at interpreter exit, so a closed pipe is seen here
            sys.stdout.flush()
    except BrokenPipeError:
        sys.exit(quiet_broken_pipe())
