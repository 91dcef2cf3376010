"""``reprolock verify --runtime``: run the image's own checker with the image's own
interpreter, where reprolock happens to be installed too.

The checker compares the interpreter that runs it (its prefix, its site-packages) with
the lock, so it must run under the locked environment's Python, never reprolock's:

    >>> from reprolock.verify.runtime import run_checker               # doctest: +SKIP
    >>> run_checker("/.reprolock", fast=True, as_json=False)          # doctest: +SKIP
    0

``python /.reprolock/check.py`` does the same without reprolock.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from reprolock.errors import ReprolockError
from reprolock.runtime.check import DEFAULT_DIR

DEFAULT_PREFIX = "/opt/venv"


def checker_argv(directory: Path, *, fast: bool, as_json: bool) -> list[str]:
    """``[PREFIX/bin/python, DIR/check.py, --dir DIR, …]``, the prefix read from
    ``DIR/runtime.json`` (else the lock's ``image.prefix``, else /opt/venv)."""
    checker = directory / "check.py"
    if not checker.is_file():
        raise ReprolockError(f"no runtime checker at {checker}: this is not a container of an "
                             "image 'reprolock build' made with code",
                             hint=f"run it inside such a container, or pass --dir with the "
                             f"directory that holds check.py (default {DEFAULT_DIR})")
    python = f"{_prefix(directory).rstrip('/')}/bin/python"
    if not os.access(python, os.X_OK):
        raise ReprolockError(f"the locked environment's interpreter {python} is missing or "
                             "not executable, so the runtime check cannot run",
                             hint="run it in a container of the image the lock describes "
                             f"('python {checker}' there)")
    return [python, str(checker), "--dir", str(directory), *(["--fast"] if fast else []),
            *(["--json"] if as_json else [])]


def _prefix(directory: Path) -> str:
    for name, keys in (("runtime.json", ("prefix",)), ("lock.json", ("image", "prefix"))):
        try:
            value: object = json.loads((directory / name).read_bytes())
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise ReprolockError(f"cannot read {directory / name}: {exc}",
                                 hint="the image's /.reprolock/ is damaged: rebuild it") from exc
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return DEFAULT_PREFIX


def run_checker(directory: Path, *, fast: bool, as_json: bool) -> int:
    """Run the checker; its output goes straight through, its exit code is returned."""
    argv = checker_argv(directory, fast=fast, as_json=as_json)
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise ReprolockError(f"cannot run {argv[0]}: {exc}",
                             hint="run 'python /.reprolock/check.py' in the container") from exc


__all__ = ["checker_argv", "run_checker"]
