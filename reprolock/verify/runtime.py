"""``reprolock verify --runtime``: run the image's own checker with the image's own
interpreter, where reprolock happens to be installed too.

The checker compares the interpreter that runs it with the lock, so it must run under the
image's Python, never reprolock's: the base interpreter the venv's ``bin/python`` links to
(the lock's ``base.python.path``), isolated (``-I -S``). Not ``PREFIX/bin/python``
itself: a repointed link could run anything that prints a clean report, while the checker
run by the base interpreter sees the link. Not without ``-I -S``: a ``sitecustomize.py``,
``.pth`` or ``PYTHONPATH`` in the image would run inside the checker and could patch it.

    >>> from reprolock.verify.runtime import run_checker               # doctest: +SKIP
    >>> run_checker("/.reprolock", fast=True, as_json=False)          # doctest: +SKIP
    0

``python /.reprolock/check.py`` does the same without reprolock.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from reprolock._internal.jsonio import read_json
from reprolock.errors import ReprolockError
from reprolock.oci.contract import DEFAULT_PREFIX
from reprolock.runtime.check import DEFAULT_DIR


def checker_argv(directory: Path, *, fast: bool, as_json: bool) -> list[str]:
    """``[BASE_PYTHON, -I, -S, DIR/check.py, --dir DIR, …]``, the interpreter the lock's
    ``base.python.path`` (else ``PREFIX/bin/python``, the prefix read from
    ``DIR/runtime.json``, else the lock's ``image.prefix``, else /opt/venv)."""
    checker = directory / "check.py"
    if not checker.is_file():
        raise ReprolockError(f"no runtime checker at {checker}: this is not a container of an "
                             "image 'reprolock build' made with code",
                             hint=f"run it inside such a container, or pass --dir with the "
                             f"directory that holds check.py (default {DEFAULT_DIR})")
    python = _lookup(directory, (("lock.json", ("base", "python", "path")),)) or \
        f"{_prefix(directory).rstrip('/')}/bin/python"
    if not os.access(python, os.X_OK):
        raise ReprolockError(f"the locked environment's interpreter {python} is missing or "
                             "not executable, so the runtime check cannot run",
                             hint="run it in a container of the image the lock describes "
                             f"('python {checker}' there)")
    return [python, "-I", "-S", "-B", str(checker), "--dir", str(directory),
            *(["--fast"] if fast else []), *(["--json"] if as_json else [])]


def _prefix(directory: Path) -> str:
    return _lookup(directory, (("runtime.json", ("prefix",)),
                               ("lock.json", ("image", "prefix")))) or DEFAULT_PREFIX


def _lookup(directory: Path, places: tuple[tuple[str, tuple[str, ...]], ...]) -> str | None:
    """The first string found at ``keys`` in one of the files; a file that is missing is
    skipped, one that is malformed is an error (the image's expectations are damaged)."""
    for name, keys in places:
        if not (directory / name).exists():
            continue
        value: object = read_json(directory / name, hint="the image's /.reprolock/ is "
                                  "damaged: rebuild it")
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and value:
            return value
    return None


def run_checker(directory: Path, *, fast: bool, as_json: bool) -> int:
    """Run the checker; its output goes straight through, its exit code is returned."""
    argv = checker_argv(directory, fast=fast, as_json=as_json)
    try:
        return subprocess.run(argv, check=False, stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise ReprolockError(f"cannot run {argv[0]}: {exc}",
                             hint="run 'python /.reprolock/check.py' in the container") from exc


__all__ = ["checker_argv", "run_checker"]
