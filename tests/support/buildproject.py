"""A small project that locks and builds offline (its wheels and base inside it)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.images import make_plain_base
from tests.support.wheels import build_wheel

TRAIN = """import tinyml, tinyconfig, bigdata
print("trained", tinyml.__name__, len(bigdata.BLOB))
"""


def _big_module() -> str:
    # 3.2 MB of hex digits (about 1.7 MB zipped), the same on every run: a wheel big
    # enough for a layer of its own
    chunks = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50000)]
    return "BLOB = " + repr("".join(chunks)) + "\n"


def make_build_project(tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path) -> Path:
    """A project that locks and builds offline: wheels and base image inside it."""
    root = tmp_path_factory.mktemp("template") / "project"
    wheels = root / "wheels"
    wheels.mkdir(parents=True)
    for name in ("tinyml-1.1.0-py3-none-any.whl", "tinyconfig-1.2.0-py3-none-any.whl"):
        shutil.copy(wheelhouse / name, wheels / name)
    build_wheel(wheels, "bigdata", "1.0.0", modules={"bigdata/__init__.py": _big_module()},
                extra_files=None)
    make_plain_base(root / "base", tmp_path_factory.mktemp("rootfs"))
    (root / "requirements.in").write_text("tinyml\nbigdata\n")
    (root / "train.py").write_text(TRAIN)
    (root / "data").mkdir()
    (root / "data" / "labels.csv").write_text("a,b\n1,2\n")
    (root / "run.sh").write_text("#!/bin/sh\nexec python train.py\n")
    (root / "run.sh").chmod(0o755)
    (root / "reprolock.toml").write_text(
        'base = "oci-layout:base:tiny"\nresolver = "uv"\n'
        '[dependencies]\nrequirements = ["requirements.in"]\n'
        '[index]\nno-index = true\nfind-links = ["wheels"]\n'
        '[code]\nexclude = ["wheels/", "base/", "out*/"]\n'
        '[image]\nentrypoint = ["python", "train.py"]\nenv = { SEED = "7" }\n')
    proc = cli("lock", "-C", root, cache=tmp_path_factory.mktemp("lock-cache"))
    assert proc.returncode == 0, proc.stderr
    return root


def cli(*args: str | Path, cache: Path, env: dict[str, str] | None = None,
        cwd: Path | None = None, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "REPROLOCK_CACHE_DIR": str(cache), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "reprolock", *map(str, args)], capture_output=True, text=True,
        env=full_env, cwd=cwd, check=False,
        preexec_fn=(lambda: os.umask(umask)) if umask is not None else None)


def build_json(root: Path, cache: Path, *extra: str, **kwargs: object) -> dict:
    proc = cli("build", "-C", root, "--json", "-q", "-o", f"oci:{root}/out", *extra, cache=cache,
               **kwargs)  # type: ignore[arg-type]
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def copy_project(template: Path, dest: Path, *, reverse: bool = False) -> Path:
    """Copy file by file, optionally creating files in reverse order."""
    files = sorted(p for p in template.rglob("*") if p.is_file()
                   and p.relative_to(template).parts[0] not in ("out", ".reprolock"))
    if reverse:
        files.reverse()
    for path in files:
        target = dest / path.relative_to(template)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    return dest
