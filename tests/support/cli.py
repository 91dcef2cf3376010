"""Run reprolock's real console entry point in a subprocess, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def run_cli(*args: str | Path, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reprolock", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL,
                          check=False)
