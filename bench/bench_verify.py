#!/usr/bin/env python3
"""Benchmark the runtime check and ``lock --check``; writes section ``verify`` of
docs/benchmarks.md and the raw numbers to bench/results/verify-*.json.

    python bench/bench_verify.py [--runs N] [--out docs/benchmarks.md]

Environment S1 (numpy, pandas, scikit-learn, matplotlib, requests, pyyaml, from PyPI)
is installed with ``uv pip install`` into a fresh venv at ROOT/opt/venv, laid out as in
an image (no .pyc: uv compiles none by default). ROOT/.reprolock/ gets what the build
embeds (lock.json listing the installed versions, an empty code listing, the RECORD
digests), through reprolock.runtime.embed. Then, side by side and alternating:

* ``python ROOT/.reprolock/check.py --root ROOT`` (full: every file's sha256 against
  RECORD, all cores) with the venv's own interpreter, as in a container;
* ``find SITE -type f -print0 | xargs -0 -P2 sha256sum`` over the same site-packages;
* ``check.py --fast`` (metadata only);
* ``reprolock lock --check`` on fixtures/example (needs its lock).

Each run after a warm-up (page cache warm: both sides read the same cached files).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _report import splice

S1 = ["numpy", "pandas", "scikit-learn", "matplotlib", "requests", "pyyaml"]
REPO = Path(__file__).resolve().parent.parent
PREFIX = "/opt/venv"


def make_environment(root: Path) -> Path:
    from reprolock.inspection.codeset import CodeSet
    from reprolock.runtime.check import _metadata
    from reprolock.runtime.embed import image_files
    from reprolock.runtime.records import record_digests

    venv = root / PREFIX.lstrip("/")
    from reprolock.resolver.uv import uv_binary

    uv = uv_binary()  # as reprolock finds it: beside the interpreter, else on PATH
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(venv / "bin/python"), *S1],
                   check=True)
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    site = venv / f"lib/python{minor}/site-packages"
    for extra in site.glob("_virtualenv.*"):  # uv's venv helper: no dist owns it
        extra.unlink()
    for name in os.listdir(venv / "bin"):
        if not name.startswith("python") and not (venv / "bin" / name).is_symlink() and \
                name.startswith(("activate", "Activate", "deactivate", "pydoc")):
            (venv / "bin" / name).unlink()
    packages = [_metadata(str(d)) for d in sorted(site.glob("*.dist-info"))]
    lock = {"lockVersion": 1, "target": {
        "os": "linux", "architecture": "amd64",
        "python": {"implementation": "cpython", "version": platform.python_version()},
        "libc": {"family": "glibc", "version": platform.libc_ver()[1]}},
        "packages": [{"name": n, "version": v} for n, v in packages]}
    code = CodeSet((), "sha256:" + "0" * 64, None)
    (root / "app").mkdir()
    for item in image_files(lock_bytes=json.dumps(lock).encode(), code=code, workdir="/app",
                            prefix=PREFIX, records=record_digests(site)):
        (root / item.path).parent.mkdir(parents=True, exist_ok=True)
        (root / item.path).write_bytes(item.data)
    return site


def timed(argv: list[str], *, shell: bool = False, env: dict[str, str] | None = None,
          ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv if not shell else " ".join(argv), shell=shell, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{argv[:3]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def measure(root: Path, site: Path, runs: int) -> dict[str, object]:
    python = str(root / PREFIX.lstrip("/") / "bin/python")
    env = {"PATH": f"{PREFIX}/bin:/usr/bin:/bin", "VIRTUAL_ENV": PREFIX,
           "PYTHONDONTWRITEBYTECODE": "1"}
    check = [python, str(root / ".reprolock/check.py"), "--root", str(root)]
    sums = ["find", str(site), "-type", "f", "-print0", "|", "xargs", "-0", "-P2", "sha256sum"]
    files = sum(1 for p in site.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    timed(check, env=env)  # warm-up: page cache, and the check must pass
    timed(sums, shell=True)
    full, baseline, fast = [], [], []
    for _ in range(runs):
        full.append(timed(check, env=env))
        baseline.append(timed(sums, shell=True))
        fast.append(timed([*check, "--fast"], env=env))
    lock_check = []
    example = REPO / "fixtures" / "example"
    if (example / "reprolock.lock.json").is_file():
        argv = [sys.executable, "-m", "reprolock", "lock", "--check", "-C", str(example)]
        timed(argv, ok=(0, 1))
        lock_check = [timed(argv, ok=(0, 1)) for _ in range(max(runs, 15))]
    return {"files": files, "bytes": size, "full": full, "sha256sum": baseline, "fast": fast,
            "lockCheck": lock_check}


def render(data: dict[str, object], facts: dict[str, str]) -> str:
    med = {k: statistics.median(v) for k, v in data.items()  # type: ignore[arg-type]
           if isinstance(v, list) and v}
    ratio = med["full"] / med["sha256sum"]
    rows = [("`check.py` full (every file's sha256 vs RECORD, 2 threads)", med["full"]),
            ("`find SITE -type f -print0 \\| xargs -0 -P2 sha256sum`", med["sha256sum"]),
            ("`check.py --fast` (metadata only)", med["fast"])]
    if "lockCheck" in med:
        rows.append(("`reprolock lock --check` on fixtures/example", med["lockCheck"]))
    table = "\n".join(f"| {name} | {secs:.3f} s |" for name, secs in rows)
    return f"""## Verify: the runtime check and `lock --check` (issue 5)

`bench/bench_verify.py`, {facts['when']}, {facts['machine']}. Environment S1 (numpy,
pandas, scikit-learn, matplotlib, requests, pyyaml and their dependencies from PyPI,
installed by `uv pip install` into a fresh venv laid out as `/opt/venv` of an image; the
versions PyPI serves today, smaller than the field notes' 465 MB S1): {data['files']} files,
{int(data['bytes']) / 1e6:.0f} MB in site-packages. The checker is the file the build
embeds as `/.reprolock/check.py`, run by the venv's interpreter with `--root` pointing at
the tree (so it reads the same paths a container would). Medians of {len(data['full'])}
alternating runs (page cache warm for both sides).

| what | median |
| --- | --- |
{table}

Full check / `sha256sum` baseline: **{ratio:.2f}x** (target: within 1.5x). The check does
more than the baseline: it also parses every RECORD, stats each file, hashes each RECORD
against the build's digest and walks site-packages and bin for unowned files.
`--fast` target: under 0.3 s; `lock --check` target: median under 150 ms.
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args()
    now = dt.datetime.now(dt.UTC)
    facts = {"when": now.strftime("%Y-%m-%d"),
             "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        root = Path(tmp) / "root"
        site = make_environment(root)
        data = measure(root, site, args.runs)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"verify-{now.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({**data, **facts}, indent=2) + "\n")
    splice(args.out, "verify", render(data, facts))
    print(render(data, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
