#!/usr/bin/env python3
"""Benchmark the runtime check and ``lock --check``; writes section ``verify`` of
docs/benchmarks.md and the raw numbers to bench/results/verify-*.json.

    python bench/bench_verify.py [--runs N] [--out docs/benchmarks.md] [--venv DIR] [--keep]

The environment is a real image: S1 (numpy, pandas, scikit-learn, matplotlib, requests,
pyyaml, from PyPI) locked with ``reprolock lock --no-build`` over the Debian base of
``fixtures/example/.reprolock/base``, built with ``reprolock build --output oci:DIR``
(with a one-file code tree) and unpacked with ``umoci unpack --rootless``. So ROOT (the
unpacked rootfs) holds exactly what a build writes: the venv at /opt/venv as the build
lays it out, the base's interpreter, stdlib and bytecode, and /.reprolock/ with the lock,
the code listing and runtime.json, including the record of the base's startup hooks and
bytecode that the checker compares the interpreter's path with (issue 10). Then, side by
side and alternating:

* the full check, ``python /.reprolock/check.py`` (every file's sha256 against RECORD, all
  cores; the base's startup files against the base record), run as in a container: the
  image's own interpreter in ``chroot ROOT`` with the image config's environment (as root;
  otherwise ``ROOT/opt/venv/bin/python ROOT/.reprolock/check.py --root ROOT``, which
  needs the host's /usr/bin/python3.11 to be the base's version);
* ``find SITE -type f -print0 | xargs -0 -P2 sha256sum`` over the same site-packages;
* ``check.py --fast`` (metadata only);
* ``reprolock lock --check`` on fixtures/example (needs its lock).

Each run after a warm-up (page cache warm: both sides read the same cached files).
reprolock runs from a venv made for the run (non-editable ``pip install`` of this
checkout, as bench_lock.py makes it), with the machine's pip configuration kept out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import splice  # bench/_report.py: one file, one section per benchmark
from bench_lock import (  # the lock benchmark's environment handling, shared
    BASE_DIR,
    BASE_TAG,
    REPO,
    S1,
    BenchError,
    clean_env,
    ensure_base,
    log,
    ready_venv,
    run,
)

PREFIX = "/opt/venv"
TAG = "bench"
TRAIN_PY = "print('training')\n"


def reprolock_toml() -> str:
    return "\n".join([f'base = "oci-layout:{BASE_DIR}:{BASE_TAG}"', 'platform = "linux/amd64"',
                      'resolver = "uv"', "", "[dependencies]",
                      'requirements = ["requirements.in"]', "", "[code]",
                      'include = ["train.py"]', "", "[image]", 'workdir = "/app"',
                      'entrypoint = ["python", "train.py"]', ""])


def make_environment(venv: Path, work: Path) -> tuple[Path, dict[str, str]]:
    """Lock and build S1 with reprolock, unpack the image; its rootfs and the environment
    its config declares (what a container of it starts with)."""
    project = work / "s1"
    project.mkdir(parents=True)
    (project / "requirements.in").write_text("\n".join(S1) + "\n")
    (project / "train.py").write_text(TRAIN_PY)
    (project / "reprolock.toml").write_text(reprolock_toml())
    env = clean_env(venv, work / "caches")
    reprolock = str(venv / "bin" / "reprolock")
    log("reprolock lock --no-build --no-sbom (S1, PyPI)")
    run([reprolock, "lock", "-C", str(project), "--no-build", "--no-sbom", "-q"], env=env,
        what="reprolock lock")
    layout = work / "image"
    log("reprolock build --output oci:DIR (wheels from PyPI)")
    run([reprolock, "build", "-C", str(project), "--output", f"oci:{layout}:{TAG}",
         "--compression", "none", "-q"], env=env, what="reprolock build")
    umoci = shutil.which("umoci")
    if umoci is None:
        raise BenchError("umoci is not installed (apt-get install -y umoci)")
    bundle = work / "bundle"
    log("umoci unpack --rootless")
    run([umoci, "unpack", "--rootless", "--image", f"{layout}:{TAG}", str(bundle)],
        env=env, what="umoci unpack")
    config = json.loads((bundle / "config.json").read_text())
    declared = dict(item.split("=", 1) for item in config["process"]["env"])
    return bundle / "rootfs", declared


def image_python(root: Path) -> tuple[list[str], str]:
    """The image's venv python, run as in a container, and how it is run."""
    chroot = shutil.which("chroot")
    if os.geteuid() == 0 and chroot:
        return [chroot, str(root), f"{PREFIX}/bin/python"], "chroot"
    return [str(root / PREFIX.lstrip("/") / "bin/python")], "--root"


def checker_argv(root: Path) -> tuple[list[str], str]:
    """The embedded checker run by the image's venv python, and how it is run."""
    python, how = image_python(root)
    if how == "chroot":
        return [*python, "/.reprolock/check.py"], how
    return [*python, str(root / ".reprolock/check.py"), "--root", str(root)], how


# what check.py imports (and site, which it imports to find the site directories): the
# floor of any check is the image's python starting isolated and importing them
CHECKER_IMPORTS = ("import argparse, base64, concurrent.futures, contextlib, csv, hashlib, "
                   "io, json, platform, posixpath, re, shutil, site, stat, subprocess, time, "
                   "collections.abc, typing")


def timed(argv: list[str], *, shell: bool = False, env: dict[str, str] | None = None,
          ok: tuple[int, ...] = (0,)) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv if not shell else " ".join(argv), shell=shell, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode not in ok:
        raise SystemExit(f"{argv[:3]} exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    return elapsed


def first_check(check: list[str], env: dict[str, str]) -> dict[str, object]:
    """One full check before any timing: it must find the image as locked."""
    done = subprocess.run([*check, "--json"], env=env, capture_output=True, text=True,
                          check=False)
    try:
        report: dict[str, object] = json.loads(done.stdout)
    except ValueError:
        report = {}
    if done.returncode != 0:
        failed = [c for c in report.get("checks", []) if not c["ok"]]  # type: ignore[union-attr]
        raise BenchError(f"the check finds drift on the built image (exit {done.returncode}):"
                         f"\n{json.dumps(failed or report, indent=1)[:6000]}\n"
                         f"{done.stderr[-2000:]}")
    return report


def measure(root: Path, declared: dict[str, str], venv: Path, runs: int) -> dict[str, object]:
    check, how = checker_argv(root)
    env = dict(declared)  # the image config's environment, as a container starts with it
    site = root / PREFIX.lstrip("/") / "lib" / f"python{first_minor(root)}" / "site-packages"
    sums = ["find", str(site), "-type", "f", "-print0", "|", "xargs", "-0", "-P2", "sha256sum"]
    files = sum(1 for p in site.rglob("*") if p.is_file())
    size = sum(p.stat().st_size for p in site.rglob("*") if p.is_file())
    report = first_check(check, env)  # warm-up too: page cache
    first_check([*check, "--fast"], env)
    timed(sums, shell=True)
    full, baseline, fast = [], [], []
    for _ in range(runs):
        full.append(timed(check, env=env))
        baseline.append(timed(sums, shell=True))
        fast.append(timed([*check, "--fast"], env=env))
    floor_argv = [*image_python(root)[0], "-I", "-S", "-B", "-c", CHECKER_IMPORTS]
    timed(floor_argv, env=env)
    floor = [timed(floor_argv, env=env) for _ in range(max(runs, 5))]
    lock_check = []
    example = REPO / "fixtures" / "example"
    if (example / "reprolock.lock.json").is_file():
        argv = [str(venv / "bin" / "reprolock"), "lock", "--check", "-C", str(example)]
        lock_env = clean_env(venv, None)
        timed(argv, env=lock_env, ok=(0, 1))
        lock_check = [timed(argv, env=lock_env, ok=(0, 1)) for _ in range(max(runs, 15))]
    details = {c["name"]: c["detail"] for c in report["checks"]}  # type: ignore[attr-defined]
    return {"files": files, "bytes": size, "full": full, "sha256sum": baseline, "fast": fast,
            "lockCheck": lock_check, "floor": floor, "how": how,
            "stalePyc": stale_stdlib_pyc(root, first_minor(root)), "checks": details}


def stale_stdlib_pyc(root: Path, minor: str) -> int:
    """How many of the base's stdlib .pyc record a source mtime their source does not have
    (timestamp-based .pyc of a base packed with fixed mtimes): Python ignores those and
    compiles the module from source at every start (with -B, or PYTHONDONTWRITEBYTECODE,
    it never keeps the result)."""
    stdlib = root / "usr" / "lib" / f"python{minor}"
    stale = 0
    for pyc in stdlib.glob(f"__pycache__/*.cpython-{minor.replace('.', '')}.pyc"):
        source = stdlib / (pyc.name.split(".", 1)[0] + ".py")
        with pyc.open("rb") as handle:
            header = handle.read(16)
        timestamped = len(header) == 16 and int.from_bytes(header[4:8], "little") == 0
        recorded = int.from_bytes(header[8:12], "little")
        if timestamped and source.is_file() and recorded != int(source.stat().st_mtime):
            stale += 1
    return stale


def first_minor(root: Path) -> str:
    lock = json.loads((root / ".reprolock" / "lock.json").read_text())
    return ".".join(str(lock["target"]["python"]["version"]).split(".")[:2])


def render(data: dict[str, object], facts: dict[str, str]) -> str:
    med = {k: statistics.median(v) for k, v in data.items()  # type: ignore[arg-type]
           if isinstance(v, list) and v}
    ratio = med["full"] / med["sha256sum"]
    rows = [("`check.py` full (every file's sha256 vs RECORD, 2 threads)", med["full"]),
            ("`find SITE -type f -print0 \\| xargs -0 -P2 sha256sum`", med["sha256sum"]),
            ("`check.py --fast` (metadata only)", med["fast"]),
            ("floor: the image's python `-I -S -B` importing what `check.py` imports",
             med["floor"])]
    if "lockCheck" in med:
        rows.append(("`reprolock lock --check` on fixtures/example", med["lockCheck"]))
    table = "\n".join(f"| {name} | {secs:.3f} s |" for name, secs in rows)
    if data.get("how") == "chroot":
        how = ("run as in a container: `chroot ROOTFS /opt/venv/bin/python\n"
               "/.reprolock/check.py`, the image's own interpreter, with the environment of\n"
               "the image's config")
    else:
        how = ("run with `--root ROOTFS` by the venv's python (the host's\n"
               "`/usr/bin/python3.11`, the base's version), with the environment of the\n"
               "image's config")
    stale = ""
    if data.get("stalePyc"):
        stale = (f"\n\nThe floor row is what any check pays before it reads a file: "
                 f"{data['stalePyc']} of the base's\nstdlib `.pyc` files record a source mtime "
                 "that their source, packed with a fixed mtime, does\nnot have, so Python "
                 "compiles every stdlib module it imports from source at each start.")
    checks: dict[str, str] = data.get("checks") or {}  # type: ignore[assignment]
    startup, python = checks.get("startup", ""), checks.get("python", "")
    return f"""## Verify: the runtime check and `lock --check` (issue 5)

`bench/bench_verify.py`, {facts['when']}, {facts['machine']}. Environment S1 (numpy,
pandas, scikit-learn, matplotlib, requests, pyyaml and their dependencies from PyPI; the
versions PyPI serves today, smaller than the field notes' 465 MB S1) as a real image:
locked by `reprolock lock` over the Debian bookworm base, built by `reprolock build
--output oci:DIR` and unpacked by `umoci unpack --rootless`, so the tree holds what a build
embeds under `/.reprolock/` (lock, code listing, RECORD digests, the base's record of
startup hooks and bytecode): {data['files']} files, {int(data['bytes']) / 1e6:.0f} MB in
site-packages. The checker is the embedded `/.reprolock/check.py`,
{how} ({python}).
Its startup check: {startup}.
Medians of {len(data['full'])} alternating runs (page cache warm for both sides).

| what | median |
| --- | --- |
{table}

Full check / `sha256sum` baseline: **{ratio:.2f}x** (target: within 1.5x). The check does
more than the baseline: it also parses every RECORD, stats each file, hashes each RECORD
against the build's digest, walks site-packages and bin for unowned files and checks the
startup hooks and bytecode on the interpreter's path against the base's record.
`--fast` target: under 0.3 s; `lock --check` target: median under 150 ms.{stale}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--venv", type=Path, default=None,
                        help="reuse this venv (made if missing) instead of a temporary one")
    parser.add_argument("--keep", action="store_true",
                        help="keep the scratch directory (project, image, unpacked rootfs)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be >= 1")
    now = dt.datetime.now(dt.UTC)
    facts = {"when": now.strftime("%Y-%m-%d"),
             "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}"}
    ensure_base()
    scratch = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    log(f"scratch directory {scratch}")
    try:
        venv = args.venv.resolve() if args.venv else scratch / "venv"
        ready_venv(venv)
        root, declared = make_environment(venv, scratch)
        data = measure(root, declared, venv, args.runs)
    except BenchError as exc:
        log(f"FAILED: {exc}")
        return 1
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    results = REPO / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / f"verify-{now.strftime('%Y%m%dT%H%M%S')}.json").write_text(
        json.dumps({**data, **facts}, indent=2) + "\n")
    splice(args.out, "verify", render(data, facts))
    print(render(data, facts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
