"""One wrapper for running external programs (pip-compile, uv, syft, docker)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprolock._internal.urls import has_credentials
from reprolock.errors import ToolError


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def find_tool(name: str, *, hint: str) -> str:
    """Find ``name`` next to the running interpreter first (a venv's bin), then on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} was not found on PATH", hint=hint)
    return found


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    what: str,
    check: bool = True,
    hint: str | None = None,
    umask: int = -1,
) -> Completed:
    """Run a program to completion; raise :class:`ToolError` with its stderr on failure.

    An argument that holds a URL with user information is refused: every local user can
    read a process's argv (/proc/PID/cmdline), so credentials go through ``env``.
    """
    if any(has_credentials(arg) for arg in argv):
        raise ToolError(f"refusing to pass credentials to {what} on its command line",
                        hint="this is a reprolock bug: pass them through the environment")
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
            umask=umask,  # -1: this process's
        )
    except OSError as exc:
        raise ToolError(f"could not start {what} ({argv[0]}): {exc}", hint=hint) from exc
    done = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise ToolError(
            f"{what} failed with exit code {proc.returncode}",
            hint=hint,
            argv=argv,
            stderr=proc.stderr or proc.stdout,
        )
    return done
