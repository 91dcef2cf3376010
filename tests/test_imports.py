"""Every module imports on its own (no import cycles), and the CLI starts light."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import reprolock

MODULES = sorted(m.name for m in pkgutil.walk_packages(reprolock.__path__, "reprolock.")
                 if m.name != "reprolock.__main__")


@pytest.mark.parametrize("name", MODULES)
def test_module_imports_alone(name: str) -> None:
    proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_every_module_is_listed() -> None:
    assert "reprolock.workflows.lock" in MODULES and "reprolock.resolver.uv" in MODULES
    for name in MODULES:
        importlib.import_module(name)


def test_check_path_does_not_load_heavy_libraries() -> None:
    """The pre-commit path must not import typer, requests, docker or jsonschema."""
    code = ("import sys; from reprolock._entry import _fast_check_args, run_check; "
            "import reprolock.lock.check, reprolock.config; "
            "print(','.join(sorted(m for m in ('typer', 'requests', 'docker', 'jsonschema', "
            "'packaging') if m in sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == ""
