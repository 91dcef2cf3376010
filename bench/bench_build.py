#!/usr/bin/env python3
"""Benchmark ``reprolock build`` against ``docker build`` of the equivalent Dockerfile.

    python bench/bench_build.py [--cold-runs 3] [--rebuild-runs 5] [--determinism-runs 10]

Wheel set S1 (the locked wheels of numpy, pandas, scikit-learn, matplotlib, requests,
pyyaml: 24 cp311 manylinux wheels, about 100 MB) over the Debian bookworm base of
``fixtures/example/.reprolock/base``, side by side in one run:

* ``docker build`` (Docker Engine, legacy builder) of a Dockerfile that runs pip from its
  wheel: ``pip install --require-hashes --no-index --find-links /wheelhouse -r req.txt``,
  then copies the code; cold (``--no-cache``) and after a code-only change (cached);
  whether two ``--no-cache`` builds give the same image ID;
* ``reprolock build --output oci:DIR`` with gzip, zstd and no compression, cold (empty
  ``REPROLOCK_CACHE_DIR``) and after a code-only change (warm cache); ten cold builds
  counted for distinct manifest digests; peak RSS (``/usr/bin/time -v``), also for a
  set that includes the 191 MB torch 2.13.0 CPU wheel of ``/opt/wheels``;
* where a cold build spends its time: the arrival time of each progress line, and a
  py-spy sampling profile of every thread, sorted into compression, hashing, tar
  writing, installing, copying.

Preparation (not timed) needs PyPI: it locks the projects with ``reprolock lock
--no-build``, downloads exactly the locked wheels into a wheelhouse with pip, and locks
again against that wheelhouse only (``no-index``), so no timed build touches the network.

reprolock runs from a venv made for the run (non-editable ``pip install`` of this
checkout), with ``PYTHONDONTWRITEBYTECODE`` unset and the machine's pip configuration
kept out. Writes the "build" section of ``docs/benchmarks.md`` and the raw numbers as JSON
in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import splice  # bench/_report.py: one file, one section per benchmark
from bench_lock import (  # the lock benchmark's environment handling, shared
    BASE_DIR,
    BASE_TAG,
    BENCH,
    REPO,
    S1,
    BenchError,
    _os_name,
    cache_vars,
    clean_env,
    ensure_base,
    fmt_delta,
    fmt_s,
    log,
    met,
    missing_from_wheel,
    ready_venv,
    run,
)

TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")
TORCH_PIN = "torch==2.13.0+cpu"
DOCKER_BASE = "reprolock-bench/base:bookworm"
DOCKER_REPO = "reprolock-bench/s1"

TARGETS = {"cold_gzip_s": 12.0, "speedup": 3.0, "cold_zstd_s": 5.0, "rebuild_s": 1.0,
           "same_digest": 10, "peak_mb_torch": 300.0}

TRAIN_PY = '''"""A small training job: fit a classifier on a synthetic data set, print its score."""

import json

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression


def main() -> None:
    rng = np.random.default_rng(0)
    features = pd.DataFrame(rng.normal(size=(2000, 8)), columns=[f"x{i}" for i in range(8)])
    labels = (features["x0"] + 0.5 * features["x1"] > 0).astype(int)
    model = LogisticRegression(max_iter=200).fit(features, labels)
    print(json.dumps({"accuracy": round(float(model.score(features, labels)), 4)}))


if __name__ == "__main__":
    main()
'''

# The Dockerfile: the base has python3 but no pip (and no venv module), so pip runs from
# its own wheel, as pip's documentation shows for bootstrapping ("python pip.whl/pip").
# Debian marks its Python externally managed (PEP 668), hence --break-system-packages:
# the packages go to /usr/local/lib/python3.11/dist-packages, where python3 finds them,
# as `pip install -r requirements.txt` does on python:3.11-slim.
DOCKERFILE = """\
FROM {base}
ENV PYTHONHASHSEED=0 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \\
    PIP_ROOT_USER_ACTION=ignore
COPY {pip_wheel} /tmp/{pip_wheel}
COPY wheelhouse/ /wheelhouse/
COPY req.txt /req.txt
RUN python3 /tmp/{pip_wheel}/pip install --break-system-packages{pip_extra} \\
    --no-index --find-links /wheelhouse --require-hashes -r /req.txt
WORKDIR /app
COPY train.py /app/train.py
ENTRYPOINT ["python3", "train.py"]
"""


def log_cmd(argv: list[str]) -> str:
    return " ".join(argv)


# --------------------------------------------------------------------------- preparation

def reprolock_toml(*, offline: bool, find_links: bool) -> str:
    lines = [f'base = "oci-layout:{BASE_DIR}:{BASE_TAG}"', 'platform = "linux/amd64"',
             'resolver = "uv"', "", "[dependencies]", 'requirements = ["requirements.in"]', ""]
    if offline or find_links:
        lines += ["[index]"]
        if offline:
            lines += ["no-index = true"]
        lines += ['find-links = ["wheelhouse"]', ""]
    lines += ["[code]", 'include = ["train.py"]', "", "[image]", 'workdir = "/app"',
              'entrypoint = ["python", "train.py"]', ""]
    return "\n".join(lines)


def lock_pins(project: Path) -> dict[str, str]:
    lock = json.loads((project / "reprolock.lock.json").read_text())
    return {p["name"]: p["version"] for p in lock["packages"]}


def lock_summary(project: Path) -> dict[str, Any]:
    lock = json.loads((project / "reprolock.lock.json").read_text())
    pkgs = lock["packages"]
    return {"packages": len(pkgs),
            "artifact_bytes": sum(p["artifact"].get("size") or 0 for p in pkgs),
            "local_artifacts": sum(1 for p in pkgs if p["artifact"].get("path")),
            "pins": {p["name"]: p["version"] for p in pkgs},
            "wheels": sorted(p["artifact"]["filename"] for p in pkgs)}


def prepare_project(ctx: Ctx, name: str, requirements: list[str], *,
                    extra_wheels: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Lock online, download the locked wheels, lock again against the wheelhouse only."""
    project = ctx.work / name
    done = project / ".prepared.json"
    if done.is_file():
        log(f"{name}: reusing the prepared project {project}")
        earlier: dict[str, Any] = json.loads(done.read_text())
        return earlier
    if project.exists():
        shutil.rmtree(project)
    wheelhouse = project / "wheelhouse"
    wheelhouse.mkdir(parents=True)
    for wheel in extra_wheels:
        shutil.copy2(wheel, wheelhouse / wheel.name)
    (project / "requirements.in").write_text("\n".join(requirements) + "\n")
    (project / "train.py").write_text(TRAIN_PY)
    (project / ".dockerignore").write_text(".reprolock\n.prepared.json\n")
    (project / "reprolock.toml").write_text(
        reprolock_toml(offline=False, find_links=bool(extra_wheels)))
    env = clean_env(ctx.venv, ctx.prep_caches)
    rl = ctx.reprolock
    log(f"{name}: reprolock lock --no-build (PyPI)")
    run([rl, "lock", "-C", str(project), "--no-build", "-q"], env=env, what=f"{name}: lock")
    online = lock_pins(project)
    log(f"{name}: downloading the {len(online)} locked wheels into the wheelhouse")
    download_locked(project, wheelhouse)
    (project / "reprolock.toml").write_text(reprolock_toml(offline=True, find_links=True))
    log(f"{name}: reprolock lock --no-build against the wheelhouse only")
    run([rl, "lock", "-C", str(project), "--no-build", "-q"], env=env,
        what=f"{name}: lock (wheelhouse)")
    offline = lock_pins(project)
    if offline != online:
        raise BenchError(f"{name}: locking against the wheelhouse changed the pins: "
                         f"{sorted(set(offline.items()) ^ set(online.items()))}")
    run([rl, "export", "-C", str(project), "-f", "requirements", "-o", str(project / "req.txt")],
        env=env, what=f"{name}: export")
    summary = lock_summary(project)
    if summary["local_artifacts"] != summary["packages"]:
        raise BenchError(f"{name}: the lock still names remote artifacts")
    summary["wheelhouse_bytes"] = sum(p.stat().st_size for p in wheelhouse.iterdir())
    summary["project"] = str(project)
    done.write_text(json.dumps(summary, indent=2))
    return summary


def download_locked(project: Path, wheelhouse: Path) -> None:
    """Fetch exactly the wheel the lock chose for each package, checked by its sha256.

    Not ``pip download --platform manylinux_2_36_x86_64 -r exported.txt``: pip 26 takes
    ``--platform`` literally (no older manylinux tags), so for charset-normalizer, whose
    locked wheel is tagged manylinux1/manylinux_2_5/manylinux_2_28, it takes the
    py3-none-any wheel and then fails the hash check. (On the real target pip does take
    the locked wheel; the Docker build shows it.)
    """
    lock = json.loads((project / "reprolock.lock.json").read_text())
    context = ssl.create_default_context()
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        context.load_verify_locations("/etc/ssl/certs/ca-certificates.crt")
    for pkg in lock["packages"]:
        art = pkg["artifact"]
        dest = wheelhouse / art["filename"]
        if art.get("path"):
            src = project / art["path"]
            if src.resolve() != dest.resolve():
                shutil.copy2(src, dest)
        else:
            with urllib.request.urlopen(art["url"], context=context, timeout=300) as resp, \
                    open(dest, "wb") as out:
                shutil.copyfileobj(resp, out, 1 << 20)
        with open(dest, "rb") as handle:
            actual = hashlib.file_digest(handle, "sha256").hexdigest()
        if actual != art["sha256"]:
            raise BenchError(f"{art['filename']}: sha256 {actual}, the lock says {art['sha256']}")


def disk_probe(ctx: Ctx, wheelhouse: Path, tmpfs: Path | None) -> dict[str, Any]:
    """Unzip every wheel of the set (``zipfile.extractall``) on the scratch disk and on
    tmpfs: how much this machine's file system charges for writing many small files."""
    wheels = sorted(wheelhouse.glob("*.whl"))
    files = sum(len(zipfile.ZipFile(w).infolist()) for w in wheels)
    out: dict[str, Any] = {"files": files, "wheels": len(wheels)}
    for name, where in (("disk", ctx.scratch), ("tmpfs", tmpfs)):
        if where is None:
            continue
        root = Path(tempfile.mkdtemp(prefix="disk-probe-", dir=where))
        try:
            start = time.perf_counter()
            for wheel in wheels:
                with zipfile.ZipFile(wheel) as archive:
                    archive.extractall(root)
            out[name] = time.perf_counter() - start
        finally:
            shutil.rmtree(root, ignore_errors=True)
    log(f"unzip of the {len(wheels)} wheels ({files} files): "
        + ", ".join(f"{k} {v:.2f} s" for k, v in out.items() if isinstance(v, float)))
    return out


def prepare_docker(ctx: Ctx, project: Path) -> dict[str, Any]:
    """The base in the engine, pip's wheel in the build context, the two Dockerfiles."""
    env = clean_env(ctx.venv, ctx.prep_caches)
    pipdir = ctx.work / "pipwheel"
    if not list(pipdir.glob("pip-*.whl")):
        pipdir.mkdir(parents=True, exist_ok=True)
        run([str(ctx.venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "-d", str(pipdir), "pip"], env=env,
            what="pip download pip")
    pip_wheel = sorted(pipdir.glob("pip-*.whl"))[-1]
    shutil.copy2(pip_wheel, project / pip_wheel.name)
    log(f"loading the base into the Docker Engine as {DOCKER_BASE} (skopeo)")
    run(["skopeo", "copy", "--quiet", f"oci:{BASE_DIR}:{BASE_TAG}",
         f"docker-daemon:{DOCKER_BASE}"], what="skopeo copy of the base into Docker")
    files = {}
    for variant, extra in (("standard", ""), ("no-compile", " --no-compile")):
        text = DOCKERFILE.format(base=DOCKER_BASE, pip_wheel=pip_wheel.name, pip_extra=extra)
        path = project / f"Dockerfile.{variant}"
        path.write_text(text)
        files[variant] = {"path": path.name, "text": text}
    return {"pip_wheel": pip_wheel.name, "dockerfiles": files}


# --------------------------------------------------------------------------- one build

class Ctx:
    def __init__(self, venv: Path, scratch: Path, work: Path) -> None:
        self.venv = venv
        self.scratch = scratch
        self.work = work
        self.reprolock = str(venv / "bin" / "reprolock")
        self.prep_caches = work / "prep-caches"
        self.counter = 0
        self.docker_images: list[str] = []

    def fresh(self, prefix: str, under: Path | None = None) -> Path:
        self.counter += 1
        path = (under or self.scratch) / f"{prefix}-{self.counter:03d}"
        path.mkdir(parents=True)
        return path


def _cpu_s(timefile: Path) -> float | None:
    """User + system CPU seconds of the build (GNU time), less sensitive to load than wall."""
    text = timefile.read_text()
    user = re.search(r"User time \(seconds\): ([\d.]+)", text)
    system = re.search(r"System time \(seconds\): ([\d.]+)", text)
    return float(user.group(1)) + float(system.group(1)) if user and system else None


def _maxrss_kb(timefile: Path) -> int | None:
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", timefile.read_text())
    return int(m.group(1)) if m else None


def reprolock_build(ctx: Ctx, project: Path, *, cache: Path, out: Path, compression: str,
                    umask: int | None = None, tz: str | None = None,
                    timeline: bool = False, wrap: list[str] | None = None) -> dict[str, Any]:
    """One ``reprolock build``, timed, under ``/usr/bin/time -v``; its JSON report kept."""
    timefile = ctx.scratch / f"time-{ctx.counter}-{time.monotonic_ns()}.txt"
    argv = [ctx.reprolock, "build", "-C", str(project), "--output", f"oci:{out}", "--json"]
    if compression != "gzip":
        argv += ["--compression", compression]
    if not timeline:
        argv.append("-q")
    if wrap:
        argv = [*wrap, *argv]
    full = ["/usr/bin/time", "-v", "-o", str(timefile), *argv]
    env = clean_env(ctx.venv, cache)
    if tz:
        env["TZ"] = tz
    lines: list[tuple[float, str]] = []
    start = time.perf_counter()
    proc = subprocess.Popen(full, cwd=ctx.scratch, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            umask=-1 if umask is None else umask)
    stdout_parts: list[str] = []
    reader = threading.Thread(target=lambda: stdout_parts.append(proc.stdout.read()))  # type: ignore[union-attr]
    reader.start()
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((time.perf_counter() - start, line.rstrip("\n")))
    proc.wait()
    seconds = time.perf_counter() - start
    reader.join()
    stdout = "".join(stdout_parts)
    if proc.returncode != 0:
        raise BenchError(f"reprolock build failed (exit {proc.returncode}): {log_cmd(argv)}\n"
                         + "\n".join(t for _, t in lines[-40:]))
    # the JSON report is the one object on stdout (a profiler may print its own lines)
    report = json.loads(stdout[stdout.index("{"):stdout.rindex("}") + 1])
    result = {"seconds": seconds, "compression": compression,
              "maxrss_kb": _maxrss_kb(timefile), "cpu_s": _cpu_s(timefile),
              "manifest": report["manifestDigest"], "config": report["configDigest"],
              "env_manifest": report["environment"]["manifestDigest"],
              "env_config": report["environment"]["configDigest"],
              "layers": [{"digest": x["digest"], "diffId": x["diffId"], "size": x["size"],
                          "holds": x["holds"]} for x in report["layers"]],
              "warnings": report.get("warnings", [])}
    if timeline:
        result["timeline"] = lines
    timefile.unlink(missing_ok=True)
    return result


def cold_reprolock(ctx: Ctx, project: Path, compression: str, *, under: Path | None = None,
                   **kw: Any) -> dict[str, Any]:
    """A build with an empty cache (base, wheels and layers all from scratch)."""
    root = ctx.fresh(f"cold-{compression}", under)
    try:
        caches = root / "caches"
        cache_vars(caches)  # makes the directories
        result = reprolock_build(ctx, project, cache=caches, out=root / "image",
                                 compression=compression, **kw)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return result


def docker_build(ctx: Ctx, project: Path, variant: str, *, no_cache: bool,
                 tag: str) -> dict[str, Any]:
    iid = ctx.scratch / f"iid-{time.monotonic_ns()}"
    argv = ["docker", "build", "--network", "none", "-f", f"Dockerfile.{variant}",
            "--iidfile", str(iid), "-t", tag]
    if no_cache:
        argv.append("--no-cache")
    argv.append(".")
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"docker build failed (exit {done.returncode}): {log_cmd(argv)}\n"
                         f"{done.stderr[-3000:]}\n{done.stdout[-3000:]}")
    image_id = iid.read_text().strip()
    iid.unlink()
    ctx.docker_images.append(image_id)
    return {"seconds": seconds, "image_id": image_id, "variant": variant,
            "cache_hits": done.stdout.count("Using cache"), "tag": tag}


# --------------------------------------------------------------------------- measuring

def measure(ctx: Ctx, s1: Path, torch_project: Path | None, args: argparse.Namespace,
            results: Path) -> dict[str, Any]:
    out: dict[str, Any] = {"load": {}}

    def section(name: str) -> None:  # the 1-minute load average as each part starts
        out["load"][name] = round(os.getloadavg()[0], 2)

    # Warm-ups (not counted): the page cache holds the wheelhouse and the base for both
    # tools; the reprolock one records the arrival time of each progress line.
    log("warm-up: docker build --no-cache (standard), not counted")
    docker_build(ctx, s1, "standard", no_cache=True, tag=f"{DOCKER_REPO}:warmup")
    log("warm-up: cold reprolock build (gzip) with progress lines, not counted")
    warm = cold_reprolock(ctx, s1, "gzip", timeline=True)
    out["timeline"] = {"seconds": warm["seconds"], "lines": warm["timeline"]}
    log(f"  {warm['seconds']:.2f} s")

    # Cold builds, rotated round by round so that drift hits every command alike.
    commands = [("docker", "standard"), ("docker", "no-compile"), ("reprolock", "gzip"),
                ("reprolock", "zstd"), ("reprolock", "none")]
    if args.tmpfs:
        # Diagnostic: the same cold gzip build with cache, staging and output on tmpfs,
        # to show what writing the staged files to this machine's disk costs.
        commands.append(("reprolock", "gzip-tmpfs"))
    cold: dict[str, list[dict[str, Any]]] = {f"{a}:{b}": [] for a, b in commands}
    section("cold builds")
    for i in range(args.cold_runs):
        order = commands[i % len(commands):] + commands[:i % len(commands)]
        for tool, what in order:
            key = f"{tool}:{what}"
            if tool == "docker":
                r = docker_build(ctx, s1, what, no_cache=True,
                                 tag=f"{DOCKER_REPO}:cold-{what}-{i}")
                note = r["image_id"][:19]
            elif what == "gzip-tmpfs":
                r = cold_reprolock(ctx, s1, "gzip", under=args.tmpfs)
                note = f"{r['manifest'][:19]}, {r['maxrss_kb'] / 1024:.0f} MB RSS"
            else:
                r = cold_reprolock(ctx, s1, what)
                note = f"{r['manifest'][:19]}, {r['maxrss_kb'] / 1024:.0f} MB RSS"
            cold[key].append(r)
            log(f"cold round {i + 1}/{args.cold_runs} {key}: {r['seconds']:.2f} s ({note})")
    out["cold"] = cold

    # Code-only change: both tools start from a finished build of the current code (warm
    # cache), then train.py changes before each timed build.
    log("code-only rebuilds: preparing warm state")
    section("code-only rebuilds")
    rl_root = ctx.fresh("rebuild")
    rl_cache, rl_out = rl_root / "caches", rl_root / "image"
    cache_vars(rl_cache)
    first = reprolock_build(ctx, s1, cache=rl_cache, out=rl_out, compression="gzip")
    prime = docker_build(ctx, s1, "standard", no_cache=False, tag=f"{DOCKER_REPO}:latest")
    if prime["cache_hits"] == 0:
        log("WARNING: the cached docker build used no cache")
    train = s1 / "train.py"
    original = train.read_text()
    rebuild: dict[str, list[dict[str, Any]]] = {"docker": [], "reprolock": []}
    previous = first
    try:
        for i in range(args.rebuild_runs):
            train.write_text(original + f"# code change {i + 1}\n")
            pair = [("docker", None), ("reprolock", None)]
            if i % 2:
                pair.reverse()
            for tool, _ in pair:
                if tool == "docker":
                    r = docker_build(ctx, s1, "standard", no_cache=False,
                                     tag=f"{DOCKER_REPO}:latest")
                else:
                    r = reprolock_build(ctx, s1, cache=rl_cache, out=rl_out, compression="gzip")
                    r["changed_layers"] = sum(
                        1 for a, b in zip(previous["layers"], r["layers"], strict=True)
                        if a["digest"] != b["digest"])
                    r["env_unchanged"] = r["env_manifest"] == previous["env_manifest"]
                    previous = r
                rebuild[tool].append(r)
            log(f"code-only rebuild {i + 1}/{args.rebuild_runs}: docker "
                f"{rebuild['docker'][-1]['seconds']:.2f} s, reprolock "
                f"{rebuild['reprolock'][-1]['seconds']:.2f} s "
                f"({rebuild['reprolock'][-1]['changed_layers']} layer(s) changed)")
        # Nothing changed at all: what a repeated build costs.
        nochange = [reprolock_build(ctx, s1, cache=rl_cache, out=rl_out, compression="gzip")
                    for _ in range(3)]
        log("no-change rebuilds (reprolock): "
            + ", ".join(f"{r['seconds']:.2f} s" for r in nochange))
        if not args.no_profile:
            log("profiling 3 more code-only rebuilds with py-spy")
            out["profile_rebuild"] = profile_rebuilds(ctx, s1, rl_cache, rl_out, results)
    finally:
        train.write_text(original)
    out["rebuild"] = rebuild
    out["rebuild_first"] = first
    out["nochange"] = nochange

    # Sanity: both images run the training job (untimed).
    out["runs_in_docker"] = sanity_run(ctx, rl_out)
    shutil.rmtree(rl_root, ignore_errors=True)

    # Determinism: cold builds, each with a fresh cache and output directory, under
    # alternating umask and TZ.
    det = []
    section("determinism")
    for i in range(args.determinism_runs):
        umask, tz = (0o022, "UTC") if i % 2 == 0 else (0o077, "Pacific/Chatham")
        r = cold_reprolock(ctx, s1, "gzip", umask=umask, tz=tz)
        r["umask"], r["tz"] = f"{umask:04o}", tz
        det.append(r)
        log(f"determinism {i + 1}/{args.determinism_runs}: {r['seconds']:.2f} s "
            f"{r['manifest'][:19]}")
    out["determinism"] = det

    if torch_project is not None:
        log("torch set: one cold gzip build under /usr/bin/time -v")
        section("torch")
        r = cold_reprolock(ctx, torch_project, "gzip")
        out["torch"] = r
        log(f"  {r['seconds']:.2f} s, max RSS {r['maxrss_kb'] / 1024:.0f} MB")

    if not args.no_profile:
        section("cold profile")
        out["profile"] = profile_build(ctx, s1, results)
    section("end")
    return out


def sanity_run(ctx: Ctx, layout: Path) -> dict[str, Any]:
    """Run train.py in the docker-built image and in reprolock's (loaded with skopeo)."""
    found: dict[str, Any] = {}
    tag = "reprolock-bench/s1-reprolock:latest"
    try:
        index = json.loads((layout / "index.json").read_text())
        ref = index["manifests"][0].get("annotations", {}).get(
            "org.opencontainers.image.ref.name", "latest")
        run(["skopeo", "copy", "--quiet", f"oci:{layout}:{ref}", f"docker-daemon:{tag}"],
            what="skopeo copy of reprolock's image into Docker")
        ctx.docker_images.append(tag)
        for name, image in (("docker build", f"{DOCKER_REPO}:latest"), ("reprolock", tag)):
            done = run(["docker", "run", "--rm", "--network", "none", image],
                       what=f"docker run ({name})")
            found[name] = done.stdout.strip()
    except (BenchError, OSError, ValueError, KeyError) as exc:
        found["error"] = str(exc)[:500]
        log(f"WARNING: sanity run failed: {exc}")
    return found


# --------------------------------------------------------------------------- profiling

# What each sampled stack was doing: decided from the functions on the stack and, inside
# layer writing, from the source line the innermost Python frame is on (C code such as
# zlib, zstd or hashlib shows as the Python line that called it).
COMPRESS = "compressing layers (zlib deflate / zstd)"
CRC = "gzip CRC-32"
TAR_SHA = "sha256 of layer tars and blobs while writing"
BLOB_WRITE = "writing compressed layer blobs to disk"
TAR = "tar writing (headers, buffering)"
INFLATE = "reading wheel members (zipfile inflate + CRC-32)"
RECORD = "RECORD check (sha256 of every installed file, while streaming)"
INSTALL = "install plan (installer: schemes, scripts, RECORD; no file written)"
WHEELS = "wheels: copy into the cache + sha256"
BASE = "base layers: copy into the cache + sha256"
REHASH = "re-hashing cache entries when read (BlobStore.valid)"
OUTPUT = "writing the OCI layout"
FRONT = "config, lock check, code set"
RMTREE = "removing temporary directories"
WAIT = "blocked waiting (py-spy sampled it as active)"
IMPORTS = "imports"
OTHER = "other"


def _frame(text: str) -> tuple[str, str, int]:
    """py-spy's ``Class.function (file:line)``: (function without its class, file, line)."""
    m = re.match(r"(.*) \((.*):(\d+)\)$", text)
    if not m:
        return text, "", 0
    return m.group(1).rsplit(".", 1)[-1], m.group(2), int(m.group(3))


class _Lines:
    def __init__(self) -> None:
        self.cache: dict[str, list[str]] = {}

    def get(self, filename: str, line: int) -> str:
        if filename not in self.cache:
            try:
                self.cache[filename] = Path(filename).read_text(errors="replace").splitlines()
            except OSError:
                self.cache[filename] = []
        lines = self.cache[filename]
        return lines[line - 1] if 0 < line <= len(lines) else ""


def classify(stack: list[str], lines: _Lines) -> str:
    frames = [_frame(f) for f in stack if "(" in f]
    if not frames:
        return OTHER

    def has(func: str, where: str) -> bool:
        return any(f == func and where in path for f, path, _ in frames)

    def within(where: str) -> bool:
        return any(where in path for _, path, _ in frames)

    if within("importlib") or frames[-1][0] == "<module>":
        return IMPORTS  # lazy imports happen inside the phases: count them apart
    if within("installer/") or within("reprolock/imagebuild/install.py"):
        return INSTALL
    if has("write_layer", "reprolock/oci/tarball.py"):
        func, path, line = frames[-1]
        text = lines.get(path, line)
        if path.endswith("zipfile.py") or func in ("_inflate", "_member_chunks"):
            return INFLATE
        if path.endswith("reprolock/oci/tarball.py") and func in ("_copy", "_copy_member") \
                and "sha.update" in text:
            return RECORD
        if path.endswith("reprolock/oci/compress.py"):
            return CRC if "crc32" in text else COMPRESS if re.search(r"compress|flush", text) \
                else BLOB_WRITE
        if path.endswith("reprolock/oci/tarball.py") and func == "write":
            if "sha.update" in text:
                return TAR_SHA
            if "target.write" in text:
                # the tar-level hasher hands data to a compressor written in C (zstd): that
                # is compression; any other caller means the bytes are going to the file
                caller = frames[-2][1] if len(frames) > 1 else ""
                return COMPRESS if "tarball.py" in caller and "_Hashing" not in \
                    frames[-2][0] else BLOB_WRITE
        if "_internal/files.py" in path:
            return BLOB_WRITE
        return TAR
    if has("valid", "reprolock/imagebuild/store.py"):
        return REHASH
    if has("_fetch_artifacts", "reprolock/imagebuild/builder.py") \
            or within("reprolock/imagebuild/artifacts.py"):
        return WHEELS
    if has("rmtree", "shutil.py"):
        return RMTREE
    if (frames[-1][0] == "wait" and frames[-1][1].endswith("threading.py")) or \
            (frames[-1][0] == "_worker" and frames[-1][1].endswith("futures/thread.py")):
        return WAIT
    if has("_base", "reprolock/imagebuild/builder.py"):
        return BASE
    if within("reprolock/output/"):
        return OUTPUT
    if any(p in path for _, path, _ in frames for p in
           ("reprolock/lock/", "reprolock/inspection/", "reprolock/config", "jsonschema")):
        return FRONT
    return OTHER


PYSPY_RATE = 200  # samples per second; much higher and py-spy slows the build it samples


def pyspy_binary(ctx: Ctx) -> str | None:
    """py-spy in the benchmark's venv, installed from PyPI on first use."""
    pyspy = shutil.which("py-spy", path=str(ctx.venv / "bin"))
    if pyspy is None:
        try:
            run([str(ctx.venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "py-spy"],
                env=clean_env(ctx.venv, None), what="pip install py-spy")
            pyspy = str(ctx.venv / "bin" / "py-spy")
        except BenchError as exc:
            log(f"WARNING: no py-spy ({exc})")
    return pyspy


def pyspy_wrap(pyspy: str, raw: Path) -> list[str]:
    return [pyspy, "record", "--rate", str(PYSPY_RATE), "--format", "raw", "--threads",
            "--full-filenames", "--output", str(raw), "--"]


def profile_rebuilds(ctx: Ctx, project: Path, cache: Path, out: Path, results: Path,
                     runs: int = 3) -> dict[str, Any] | None:
    """py-spy over a few code-only rebuilds (warm cache), samples pooled."""
    pyspy = pyspy_binary(ctx)
    if pyspy is None:
        return None
    train = project / "train.py"
    original = train.read_text()
    raws, walls = [], []
    try:
        for i in range(runs):
            train.write_text(original + f"# profiled code change {i + 1}\n")
            raw = results / f"build-pyspy-rebuild-{i + 1}.txt"
            r = reprolock_build(ctx, project, cache=cache, out=out, compression="gzip",
                                wrap=pyspy_wrap(pyspy, raw))
            raws.append(raw)
            walls.append(r["seconds"])
    except BenchError as exc:
        log(f"WARNING: py-spy failed on a rebuild ({str(exc)[:300]})")
        return None
    finally:
        train.write_text(original)
    result = summarize_pyspy(raws, PYSPY_RATE, statistics.median(walls), ctx)
    result["runs"] = runs
    return result


def profile_build(ctx: Ctx, project: Path, results: Path) -> dict[str, Any]:
    """py-spy samples every thread of one cold gzip build (falls back to cProfile)."""
    pyspy = pyspy_binary(ctx)
    raw = results / "build-pyspy.txt"
    if pyspy:
        log("profiling one cold gzip build with py-spy")
        try:
            r = cold_reprolock(ctx, project, "gzip", wrap=pyspy_wrap(pyspy, raw))
            return summarize_pyspy([raw], PYSPY_RATE, r["seconds"], ctx)
        except BenchError as exc:
            log(f"WARNING: py-spy failed ({str(exc)[:300]}); falling back to cProfile")
    prof = results / "build-cprofile.out"
    wrap = [str(ctx.venv / "bin" / "python"), "-m", "cProfile", "-o", str(prof), "-m",
            "reprolock"]
    root = ctx.fresh("profile")
    cache_vars(root / "caches")
    argv = [*wrap, "build", "-C", str(project), "--output", f"oci:{root / 'image'}", "-q"]
    start = time.perf_counter()
    run(argv, env=clean_env(ctx.venv, root / "caches"), what="cProfile build")
    wall = time.perf_counter() - start
    shutil.rmtree(root, ignore_errors=True)
    import pstats

    with open(results / "build-cprofile.txt", "w") as handle:
        pstats.Stats(str(prof), stream=handle).sort_stats("tottime").print_stats(40)
    return {"tool": "cProfile (main thread only)", "wall_s": wall,
            "file": "bench/results/build-cprofile.txt"}


def summarize_pyspy(raws: list[Path], rate: int, wall: float, ctx: Ctx) -> dict[str, Any]:
    lines = _Lines()
    by_cat: collections.Counter[str] = collections.Counter()
    by_thread: collections.Counter[str] = collections.Counter()
    by_leaf: collections.Counter[str] = collections.Counter()
    for line in (x for raw in raws for x in raw.read_text().splitlines()):
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        stack = stack_text.split(";")
        thread = stack[0] if stack and stack[0].startswith("thread") else "?"
        frames = stack[1:] if thread != "?" else stack
        n = int(count)
        cat = classify(frames, lines)
        by_cat[cat] += n
        by_thread[thread] += n
        leaf = _frame(frames[-1]) if frames else ("?", "", 0)
        by_leaf[f"{leaf[0]} ({_short_path(leaf[1])}:{leaf[2]})"] += n
    total = sum(by_cat.values())
    site = str(ctx.venv)
    return {
        "tool": f"py-spy record --rate {rate} --threads",
        "wall_s": wall, "rate": rate, "samples": total,
        "cpu_s": total / rate,
        "categories": [(c, n / rate) for c, n in by_cat.most_common()],
        "threads": len(by_thread),
        "top_leaves": [(k.replace(site, "<venv>"), n / rate) for k, n in by_leaf.most_common(15)],
        "file": ", ".join(f"bench/results/{raw.name}" for raw in raws),
    }


def _short_path(path: str) -> str:
    for marker in ("site-packages/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# --------------------------------------------------------------------------- facts

def machine_facts(ctx: Ctx) -> dict[str, Any]:
    env = clean_env(ctx.venv, None)
    py = str(ctx.venv / "bin" / "python")
    cpu = mem = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal"):
            mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
            break
    versions = run([py, "-c", "import importlib.metadata as m, sys, zlib, zstandard; "
                    "from reprolock.oci.compress import DEFAULT_LEVELS as L; "
                    "print(sys.version.split()[0], m.version('reprolock'), m.version('pip'), "
                    "m.version('installer'), zlib.ZLIB_RUNTIME_VERSION, "
                    "'.'.join(map(str, zstandard.ZSTD_VERSION)), zstandard.__version__, "
                    "L['gzip'], L['zstd'])"],
                   env=env, what="versions").stdout.split()
    git: dict[str, Any] = {}
    try:
        git["commit"] = run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                            what="git").stdout.strip()
        git["dirty"] = bool(run(["git", "-C", str(REPO), "status", "--porcelain",
                                 "--untracked-files=no", "--", "reprolock", "pyproject.toml",
                                 "schemas"], what="git").stdout.strip())
    except (BenchError, OSError):
        pass
    docker = json.loads(run(["docker", "version", "--format", "{{json .}}"],
                            what="docker version").stdout)
    info = json.loads(run(["docker", "info", "--format", "{{json .}}"], what="docker info").stdout)
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "kernel": platform.release(),
        "os": _os_name(), "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": versions[0], "reprolock": versions[1], "pip": versions[2],
        "installer": versions[3], "zlib": versions[4], "zstd": versions[5],
        "zstandard": versions[6], "gzip_level": versions[7], "zstd_level": versions[8],
        "git": git,
        "docker_server": docker.get("Server", {}).get("Version"),
        "docker_client": docker.get("Client", {}).get("Version"),
        "docker_storage": info.get("Driver"),
        "buildx": run(["sh", "-c", "docker buildx version 2>/dev/null || echo none"],
                      what="buildx").stdout.strip() or "none",
        "skopeo": run(["skopeo", "--version"], what="skopeo").stdout.strip(),
        "disk": _disk(),
    }


def _disk() -> str:
    try:
        src = run(["findmnt", "-no", "SOURCE,FSTYPE", "--target", tempfile.gettempdir()],
                  what="findmnt").stdout.strip()
        return src
    except (BenchError, OSError):
        return "unknown"


# --------------------------------------------------------------------------- report

def med(values: list[float]) -> float:
    return statistics.median(values)


def summarize(m: dict[str, Any]) -> dict[str, Any]:
    cold = {k: [r["seconds"] for r in v] for k, v in m["cold"].items()}
    cold_med = {k: med(v) for k, v in cold.items()}
    cold_min = {k: min(v) for k, v in cold.items()}
    cold_cpu = {k: [r.get("cpu_s") for r in v] for k, v in m["cold"].items()
                if k.startswith("reprolock")}
    reb = {k: [r["seconds"] for r in v] for k, v in m["rebuild"].items()}
    reb_med = {k: med(v) for k, v in reb.items()}
    det = m["determinism"]
    gzip_builds = det + m["cold"]["reprolock:gzip"] + m["cold"].get("reprolock:gzip-tmpfs", [])
    s: dict[str, Any] = {
        "cold_s": cold, "cold_median_s": cold_med, "cold_min_s": cold_min,
        "cold_cpu_s": cold_cpu, "rebuild_s": reb, "rebuild_median_s": reb_med,
        "nochange_s": [r["seconds"] for r in m["nochange"]],
        "speedup_gzip": cold_med["docker:standard"] / cold_med["reprolock:gzip"],
        "speedup_gzip_vs_nocompile": cold_med["docker:no-compile"] / cold_med["reprolock:gzip"],
        "speedup_zstd": cold_med["docker:standard"] / cold_med["reprolock:zstd"],
        "determinism": {
            "runs": len(det),
            "same_as_most_common": collections.Counter(r["manifest"] for r in det)
            .most_common(1)[0][1],
            "distinct_manifests": sorted({r["manifest"] for r in det}),
            "distinct_configs": sorted({r["config"] for r in det}),
            "all_gzip_builds": len(gzip_builds),
            "all_gzip_distinct_manifests": sorted({r["manifest"] for r in gzip_builds}),
            "zstd_distinct_manifests": sorted({r["manifest"] for r in m["cold"]["reprolock:zstd"]}),
            "configs_across_compressors": sorted({r["config"] for k, v in m["cold"].items()
                                                  if k.startswith("reprolock") for r in v}),
            "seconds": [r["seconds"] for r in det],
        },
        "docker_ids": {k: [r["image_id"] for r in v] for k, v in m["cold"].items()
                       if k.startswith("docker")},
        "rss_mb": {k: [r["maxrss_kb"] / 1024 for r in v] for k, v in m["cold"].items()
                   if k.startswith("reprolock")},
    }
    s["det_same"] = len(s["determinism"]["distinct_manifests"]) == 1
    if m.get("torch"):
        s["torch_rss_mb"] = m["torch"]["maxrss_kb"] / 1024
        s["torch_s"] = m["torch"]["seconds"]
    return s


def _vals(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


def _layers_mb(build: dict[str, Any], base_layers: int = 1) -> str:
    ours = build["layers"][base_layers:]
    return f"{len(ours)} layers, {sum(x['size'] for x in ours) / 1e6:.0f} MB"


def render_markdown(doc: dict[str, Any]) -> str:
    f, m, prep = doc["facts"], doc["measured"], doc["prepared"]
    s = summarize(m)  # recomputed, so that older results render with today's summary
    git = f.get("git", {})
    dirty = " (uncommitted changes under reprolock/)" if git.get("dirty") else ""
    rev = f"{git.get('commit', '?')[:12]}{dirty}"
    cm, rm, cmin = s["cold_median_s"], s["rebuild_median_s"], s["cold_min_s"]

    all_gzip = [*s["cold_s"]["reprolock:gzip"], *s["determinism"]["seconds"]]

    def mm(key: str) -> str:
        return f"{fmt_s(cm[key])} (min {fmt_s(cmin[key])})"

    runs_c, runs_r = len(s["cold_s"]["reprolock:gzip"]), len(s["rebuild_s"]["reprolock"])
    det = s["determinism"]
    s1 = prep["s1"]
    gzip_ok = (cm["reprolock:gzip"] <= TARGETS["cold_gzip_s"]
               and s["speedup_gzip"] >= TARGETS["speedup"])
    det_ok = s["det_same"] and det["runs"] >= TARGETS["same_digest"]
    dockerfile = prep["docker"]["dockerfiles"]["standard"]["text"]
    lines = [
        "## Build: `reprolock build` vs `docker build` (issue 3)",
        "",
        "Made by `python bench/bench_build.py` (see `bench/README.md`); the raw numbers of this "
        f"run are in `bench/results/{doc['results_file']}` (not committed). Every number below "
        "comes from this one run, the tools side by side (cold builds rotated round by round, "
        "code-only rebuilds alternating).",
        "",
        "### Machine (build run)",
        "",
        f"- date: {f['date']}",
        f"- CPU: {f['cpu']}, {f['nproc']} cores, memory {f['memory']}; disk {f['disk']}",
        f"- OS: {f['os']}, kernel {f['kernel']}",
        f"- load average (1, 5, 15 min) at start {f['loadavg_start']}, at end "
        f"{f.get('loadavg_end')} (other work on the machine shows here)",
        f"- reprolock {f['reprolock']}, commit {rev}, installed non-editable into a venv "
        f"(Python {f['python']}, pip {f['pip']}, installer {f['installer']}); "
        "`PYTHONDONTWRITEBYTECODE` unset, `PIP_CONFIG_FILE=/dev/null`",
        f"- compressors: zlib {f['zlib']} (gzip level {f.get('gzip_level', 6)}), zstd "
        f"{f['zstd']} (python-zstandard {f['zstandard']}, level {f.get('zstd_level', 3)})",
        f"- Docker Engine {f['docker_server']} ({f['docker_storage']}), client "
        f"{f['docker_client']}, buildx: {f['buildx']} → the legacy builder "
        "(`DOCKER_BUILDKIT=0`); skopeo " + f["skopeo"].replace("skopeo version ", ""),
        *([f"- **packaging bug**: reprolock imports {', '.join(f['undeclared_dependencies'])} "
           "without declaring it; the benchmark installed it to go on"]
          if f.get("undeclared_dependencies") else []),
        "",
        "### Workload",
        "",
        f"- **S1**: the {s1['packages']} wheels that `reprolock lock` pins for {', '.join(S1)} "
        f"(cp311, manylinux, {s1['artifact_bytes'] / 1e6:.0f} MB), in a local wheelhouse; "
        f"the code is one small `train.py`; the base is the Debian bookworm image of "
        f"`fixtures/example/.reprolock/base` (python3 3.11.2, no pip, one "
        f"{doc.get('base_layer_mb', 0):.0f} MB gzip layer).",
    ]
    if prep.get("torch"):
        t = prep["torch"]
        lines.append(
            f"- **S1 + torch**: `{TORCH_PIN}` added; {t['packages']} wheels, "
            f"{t['artifact_bytes'] / 1e6:.0f} MB (the torch wheel is {TORCH_WHEEL.name} from "
            "/opt/wheels).")
    lines += [
        "- **Preparation** (not timed, uses PyPI): `reprolock lock --no-build`; exactly the "
        "wheels the lock chose downloaded from the lock's URLs into `wheelhouse/` and checked "
        "by sha256 (not `pip download --platform manylinux_2_36_x86_64`: pip takes that tag "
        "literally and picks charset-normalizer's py3-none-any wheel instead of the locked "
        "manylinux1/2_28 one); then `[index] no-index = true, find-links = [\"wheelhouse\"]`, "
        "`reprolock lock --no-build` again (same pins, checked) and `reprolock export -f "
        "requirements -o req.txt`. No timed build touches the network (`docker build "
        "--network none`).",
        "",
        "The project's `reprolock.toml`:",
        "",
        "```toml",
        reprolock_toml(offline=True, find_links=True).replace(
            str(BASE_DIR), "/abs/path/to/fixtures/example/.reprolock/base").rstrip(),
        "```",
        "",
        "The Dockerfile (`Dockerfile.standard`; the `no-compile` variant adds `--no-compile` to "
        "pip, so that, like reprolock, it writes no `.pyc`):",
        "",
        "```dockerfile",
        dockerfile.rstrip(),
        "```",
        "",
        "The base has python3 but neither pip nor the venv module, so pip runs from its own "
        "wheel (`python pip.whl/pip`, the bootstrap pip's documentation shows), with "
        "`--break-system-packages` because Debian marks its Python externally managed: the "
        "packages land in `/usr/local/lib/python3.11/dist-packages`, as `pip install -r "
        "requirements.txt` does on `python:3.11-slim`. The build context holds the wheelhouse, "
        "so every `docker build` sends it to the engine; the wheelhouse layer stays in the "
        "image (a BuildKit bind mount would avoid that; this engine has no buildx).",
        "",
        "Commands (run from the project directory; reprolock with every cache in a fresh "
        "directory for cold builds):",
        "",
        "```sh",
        "docker build --network none -f Dockerfile.standard --iidfile ID -t TAG --no-cache .",
        "reprolock build -C PROJECT --output oci:DIR --json -q                       # gzip",
        "reprolock build -C PROJECT --output oci:DIR --json -q --compression zstd",
        "reprolock build -C PROJECT --output oci:DIR --json -q --compression none",
        "```",
        "",
        "Every reprolock build runs under `/usr/bin/time -v` (its \"Maximum resident set size\" "
        "is the peak RSS below).",
        "",
        "### Results and targets",
        "",
        "Cold rows: median of the runs, judged against the target; the fastest run in "
        "brackets (on a shared machine the minimum is the least disturbed run).",
        "",
        "| measurement | docker build | reprolock | docker / reprolock | target | |",
        "|---|---:|---:|---:|---|---|",
        f"| cold, gzip ({runs_c} runs) | {mm('docker:standard')} | "
        f"{mm('reprolock:gzip')} | {s['speedup_gzip']:.1f}x | ≤ 12 s and ≥ 3x | "
        f"{met(gzip_ok)} |",
        f"| cold, gzip, vs docker with `pip --no-compile` | {mm('docker:no-compile')} | "
        f"{mm('reprolock:gzip')} | {s['speedup_gzip_vs_nocompile']:.1f}x | (like for like: "
        "no .pyc) | |",
        f"| cold, zstd ({runs_c} runs) | {mm('docker:standard')} | "
        f"{mm('reprolock:zstd')} | {s['speedup_zstd']:.1f}x | ≤ 5 s | "
        f"{met(cm['reprolock:zstd'] <= TARGETS['cold_zstd_s'])} |",
        f"| cold, no compression ({runs_c} runs) | | {mm('reprolock:none')} | | "
        "(what compression costs) | |",
        f"| cold, gzip, every cold gzip build of the run ({len(all_gzip)}: the {runs_c} above and "
        f"the {det['runs']} determinism builds) | | {fmt_s(med(all_gzip))} (min "
        f"{fmt_s(min(all_gzip))}) | | | |",
        *([f"| cold, gzip, cache and staging on tmpfs (diagnostic, {runs_c} runs) | | "
           f"{mm('reprolock:gzip-tmpfs')} | | (what this disk costs) | |"]
          if "reprolock:gzip-tmpfs" in cm else []),
        f"| code-only change, warm cache (median of {runs_r}) | {fmt_s(rm['docker'])} | "
        f"{fmt_s(rm['reprolock'])} | {rm['docker'] / rm['reprolock']:.1f}x | ≤ 1 s | "
        f"{met(rm['reprolock'] <= TARGETS['rebuild_s'])} |",
        f"| no change at all, warm cache (median of {len(s['nochange_s'])}) | | "
        f"{fmt_s(med(s['nochange_s']))} | | | |",
        f"| same digest, {det['runs']} cold builds | {len(set(s['docker_ids']['docker:standard']))}"
        f" IDs from {len(s['docker_ids']['docker:standard'])} builds | "
        f"{det['same_as_most_common']}/{det['runs']} ({len(det['distinct_manifests'])} distinct)"
        f" | | {TARGETS['same_digest']}"
        f"/{TARGETS['same_digest']} | {met(det_ok)} |",
    ]
    if "torch_rss_mb" in s:
        lines.append(
            f"| peak RSS, cold gzip build with torch (1 run) | | {s['torch_rss_mb']:.0f} MB | | "
            f"≤ {TARGETS['peak_mb_torch']:.0f} MB | "
            f"{met(s['torch_rss_mb'] <= TARGETS['peak_mb_torch'])} |")
        lines.append(f"| cold gzip build with torch (1 run) | | {fmt_s(s['torch_s'])} | | | |")
    rss = s["rss_mb"]
    lines += [
        f"| peak RSS, cold S1 builds (median) | | gzip {med(rss['reprolock:gzip']):.0f} MB, "
        f"zstd {med(rss['reprolock:zstd']):.0f} MB, none {med(rss['reprolock:none']):.0f} MB | | "
        "| |",
        "",
        "Every value (seconds; for reprolock's cold builds also the CPU seconds, user + system, "
        "that GNU time reports, which other work on the machine disturbs less than wall "
        "time):",
        "",
    ]
    names = {"docker:standard": "docker build --no-cache (standard)",
             "docker:no-compile": "docker build --no-cache (pip --no-compile)",
             "reprolock:gzip": "reprolock build, cold, gzip",
             "reprolock:zstd": "reprolock build, cold, zstd",
             "reprolock:none": "reprolock build, cold, no compression",
             "reprolock:gzip-tmpfs": "reprolock build, cold, gzip, cache on tmpfs"}
    for key, vals in s["cold_s"].items():
        cpu = s["cold_cpu_s"].get(key)
        if cpu and all(c is not None for c in cpu):
            lines.append(f"- {names.get(key, key)}: "
                         + ", ".join(f"{v:.2f} (CPU {c:.1f})" for v, c in zip(vals, cpu,
                                                                             strict=True)))
        else:
            lines.append(f"- {names.get(key, key)}: {_vals(vals)}")
    lines += [
        f"- docker build, code-only change: {_vals(s['rebuild_s']['docker'])}",
        f"- reprolock build, code-only change: {_vals(s['rebuild_s']['reprolock'])}",
        f"- reprolock build, no change: {_vals(s['nochange_s'])}",
        f"- reprolock build, cold gzip, determinism runs: {_vals(det['seconds'])} "
        f"(median {fmt_s(med(det['seconds']))})",
    ]
    if m.get("load"):
        lines.append("- 1-minute load average as each part started: "
                     + ", ".join(f"{k} {v}" for k, v in m["load"].items())
                     + " (the benchmark's own two-thread builds hold it near 2; well above 2 "
                     "means other work shared the two cores)")
    lines.append("")
    reb = m["rebuild"]["reprolock"]
    lines += [
        "What the code-only rebuilds redid: reprolock rebuilt "
        + ", ".join(str(r["changed_layers"]) for r in reb)
        + " layer(s) (of " + str(len(reb[0]["layers"])) + "), the environment image digest "
        + ("stayed the same every time" if all(r["env_unchanged"] for r in reb)
           else "CHANGED")
        + "; docker's cache served "
        + ", ".join(str(r["cache_hits"]) for r in m["rebuild"]["docker"])
        + " steps (the pip install among them) and re-sent the whole build context.",
        "",
        "### Determinism",
        "",
        f"- reprolock, {det['runs']} cold gzip builds (fresh cache and output directory each; "
        "umask 022/077 and TZ UTC/Pacific/Chatham alternating): "
        f"{len(det['distinct_manifests'])} distinct manifest digest(s) "
        f"({', '.join(f'`{d}`' for d in det['distinct_manifests'])}), "
        f"{len(det['distinct_configs'])} distinct config digest(s) (image ID "
        f"{', '.join(f'`{d}`' for d in det['distinct_configs'])}).",
        f"- Across all {det['all_gzip_builds']} cold gzip builds of the run: "
        f"{len(det['all_gzip_distinct_manifests'])} distinct manifest digest(s); the "
        f"{len(s['cold_s']['reprolock:zstd'])} zstd builds: "
        f"{len(det['zstd_distinct_manifests'])}. The config digest (image ID, independent of the "
        f"compressor) over gzip, zstd and uncompressed builds: "
        f"{len(det['configs_across_compressors'])} distinct.",
    ]
    for key, ids in s["docker_ids"].items():
        lines.append(f"- {names.get(key, key)}: {len(set(ids))} distinct image IDs from "
                     f"{len(ids)} builds: " + ", ".join(f"`{i[:19]}…`" for i in ids) + ".")
    sanity = m.get("runs_in_docker") or {}
    if sanity:
        lines += ["", "Both images run the job (`docker run --rm --network none`, reprolock's "
                  "loaded with `skopeo copy oci:… docker-daemon:…`): "
                  + "; ".join(f"{k}: `{v}`" for k, v in sanity.items()) + "."]
    if m.get("torch"):
        t = m["torch"]
        lines += [
            "",
            "### Peak memory",
            "",
            f"Cold gzip build of S1 + torch: {fmt_s(t['seconds'])}, peak RSS "
            f"{t['maxrss_kb'] / 1024:.0f} MB ({_layers_mb(t)} written). S1 alone: "
            f"{med(rss['reprolock:gzip']):.0f} MB.",
        ]
    lines += ["", "### Where a cold gzip build spends its time", ""]
    tl = m.get("timeline")
    if tl:
        lines += [
            f"Progress lines of one cold gzip build (not under a profiler; {fmt_s(tl['seconds'])} "
            "in all), with the time each arrived. Layers are built biggest first on "
            f"{f['nproc']} threads and reported as each finishes:",
            "",
            "```text",
            *[f"{t:6.2f} s  {text}" for t, text in tl["lines"]],
            f"{tl['seconds']:6.2f} s  (process exit)",
            "```",
            "",
        ]
    prof = m.get("profile")
    if prof and "categories" in prof:
        lines += _profile_table(prof, "one more cold gzip build")
    elif prof:
        lines += [f"{prof['tool']}: {fmt_s(prof['wall_s'])}; see `{prof['file']}`."]
    prof_r = m.get("profile_rebuild")
    if prof_r:
        lines += ["", "### Where a code-only rebuild spends its time", ""]
        lines += _profile_table(prof_r, f"{prof_r['runs']} more code-only rebuilds, samples "
                                "pooled")
    lines += ["", "### Reading the numbers", "",
              *_reading(s, m, prof, prep.get("disk_probe") or {})]
    lines.append("")
    return "\n".join(lines)


def _profile_table(prof: dict[str, Any], what: str) -> list[str]:
    lines = [
        f"`{prof['tool']}`, {what} ({fmt_s(prof['wall_s'])} wall under the profiler"
        + (" (median)" if prof.get("runs") else "")
        + f", {prof['cpu_s']:.1f} CPU-seconds sampled over {prof['threads']} threads; py-spy "
        "counts a runnable thread as busy, so on a loaded machine these overcount). Each "
        "sample goes to a category by the functions on its stack and the source line of its "
        "innermost Python frame (C code such as zlib, zstd or hashlib counts as the Python "
        "line that called it):",
        "",
        "| where | CPU time | share |",
        "|---|---:|---:|",
    ]
    for cat, secs in prof["categories"]:
        lines.append(f"| {cat} | {secs:.2f} s | {100 * secs / prof['cpu_s']:.0f}% |")
    lines += [
        "",
        "Busiest innermost frames: "
        + "; ".join(f"`{k}` {v:.2f} s" for k, v in prof["top_leaves"][:8]) + ".",
        "",
        f"Raw stacks: `{prof['file']}`.",
    ]
    return lines


def _reading(s: dict[str, Any], m: dict[str, Any], prof: dict[str, Any] | None,
             probe: dict[str, Any]) -> list[str]:
    """Differences between the measured variants: what each part of a build costs."""
    cm = s["cold_median_s"]
    out = [
        f"- What compression costs reprolock (cold, medians): gzip − none "
        f"{fmt_delta(cm['reprolock:gzip'] - cm['reprolock:none'])}, zstd − none "
        f"{fmt_delta(cm['reprolock:zstd'] - cm['reprolock:none'])}"
        + (" (within the noise between runs: zstd level 3 on two threads is nearly free here)."
           if abs(cm["reprolock:zstd"] - cm["reprolock:none"]) < 1.0 else "."),
    ]
    if "reprolock:gzip-tmpfs" in cm:
        out.append(
            f"- What this machine's disk costs: gzip with the cache on disk − on tmpfs "
            f"{fmt_s(cm['reprolock:gzip'] - cm['reprolock:gzip-tmpfs'])}. reprolock no longer "
            "stages installed files on disk: each wheel member streams from the wheel into the "
            "layer tar, so only the compressed blobs are written."
            + (f" For scale, unzipping the {probe['wheels']} wheels ({probe['files']} files) "
               f"with `zipfile.extractall` took {fmt_s(probe['disk'])} on this disk and "
               f"{fmt_s(probe['tmpfs'])} on tmpfs (untimed preparation)."
               if probe.get("tmpfs") is not None and "disk" in probe else ""))
    out += [
        f"- What pip's .pyc compilation costs docker build: standard − `--no-compile` "
        f"{fmt_s(cm['docker:standard'] - cm['docker:no-compile'])}.",
        f"- Like for like, no compression and no .pyc on either side: reprolock "
        f"`--compression none` {fmt_s(cm['reprolock:none'])} vs docker build with "
        f"`--no-compile` {fmt_s(cm['docker:no-compile'])}. `docker build` never compresses: "
        "the legacy builder keeps layers as overlay2 directories and compresses only on "
        "`docker push`/`docker save`, while reprolock's gzip and zstd outputs are the "
        "compressed, pushable OCI layout.",
    ]
    if prof and "categories" in prof:
        cats = dict(prof["categories"])
        install = cats.get(INSTALL, 0.0) + cats.get(INFLATE, 0.0) + cats.get(RECORD, 0.0)
        comp = cats.get(COMPRESS, 0.0)
        out.append(
            f"- In the cold profile, installing the wheels (install plan, reading and "
            f"inflating members, RECORD check) took {install:.1f} CPU-s "
            f"({100 * install / prof['cpu_s']:.0f}%) and compression "
            f"{comp:.1f} CPU-s ({100 * comp / prof['cpu_s']:.0f}%); sha256 of everything "
            f"{cats.get(TAR_SHA, 0.0) + cats.get(WHEELS, 0.0) + cats.get(BASE, 0.0):.1f} CPU-s.")
    return out


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cold-runs", type=int, default=3, help="cold builds per command")
    parser.add_argument("--rebuild-runs", type=int, default=5, help="code-only rebuilds")
    parser.add_argument("--determinism-runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument("--venv", type=Path, default=None, help="reuse this venv")
    parser.add_argument("--work", type=Path, default=None,
                        help="keep the prepared projects and wheelhouses here (reused when "
                        "present) instead of in the scratch directory")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch set")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--tmpfs", type=Path, default=Path("/dev/shm"),
                        help="also time cold gzip builds with the cache on this tmpfs "
                        "(diagnostic; --tmpfs '' to skip)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory and "
                        "the docker images")
    parser.add_argument("--from-json", type=Path, default=None, metavar="RESULTS_JSON",
                        help="only re-render --out from an earlier run's results JSON")
    args = parser.parse_args()
    if args.from_json:
        splice(args.out, "build", render_markdown(json.loads(args.from_json.read_text())))
        log(f"wrote {args.out} from {args.from_json}")
        return 0
    if args.tmpfs is not None and (str(args.tmpfs) in ("", ".") or not args.tmpfs.is_dir()):
        args.tmpfs = None
    if args.cold_runs < 1 or args.rebuild_runs < 1 or args.determinism_runs < 2:
        parser.error("--cold-runs and --rebuild-runs must be >= 1, --determinism-runs >= 2")
    if not Path("/usr/bin/time").is_file():
        parser.error("needs GNU time at /usr/bin/time (apt-get install time)")
    for tool in ("docker", "skopeo"):
        if not shutil.which(tool):
            parser.error(f"needs {tool} (and a running Docker Engine)")

    ensure_base()
    args.results.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="reprolock-bench-build-"))
    log(f"scratch directory {scratch}")
    ctx: Ctx | None = None
    try:
        venv = args.venv.resolve() if args.venv else scratch / "venv"
        undeclared = ready_venv(venv)
        work = args.work.resolve() if args.work else scratch / "work"
        work.mkdir(parents=True, exist_ok=True)
        ctx = Ctx(venv, scratch, work)
        facts = machine_facts(ctx)
        facts["undeclared_dependencies"] = undeclared
        facts["missing_from_wheel"] = missing_from_wheel(venv)
        log(f"reprolock {facts['reprolock']} at {facts['git'].get('commit', '?')[:12]}, "
            f"docker {facts['docker_server']}")

        prepared: dict[str, Any] = {"s1": prepare_project(ctx, "s1", S1)}
        torch_project = None
        if not args.no_torch:
            if TORCH_WHEEL.is_file():
                prepared["torch"] = prepare_project(ctx, "s1-torch", [*S1, TORCH_PIN],
                                                    extra_wheels=(TORCH_WHEEL,))
                torch_project = work / "s1-torch"
            else:
                log(f"WARNING: {TORCH_WHEEL} missing; no torch measurement")
        s1 = work / "s1"
        prepared["docker"] = prepare_docker(ctx, s1)
        prepared["disk_probe"] = disk_probe(ctx, s1 / "wheelhouse", args.tmpfs)

        measured = measure(ctx, s1, torch_project, args, args.results)
        facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        # the raw numbers first, so that a failure below loses nothing
        (args.results / "build-measured.json").write_text(
            json.dumps({"facts": facts, "prepared": prepared, "measured": measured}, indent=2,
                       default=str))
        base_index = json.loads((BASE_DIR / "index.json").read_text())
        base_manifest = json.loads((BASE_DIR / "blobs" / "sha256" / base_index["manifests"][0]
                                    ["digest"].removeprefix("sha256:")).read_text())
        doc: dict[str, Any] = {
            "facts": facts, "prepared": prepared, "measured": measured,
            "summary": summarize(measured), "targets": TARGETS,
            "base_layer_mb": sum(x["size"] for x in base_manifest["layers"]) / 1e6,
        }
        stamp = time.strftime("%Y%m%dT%H%M%S")
        doc["results_file"] = f"build-{stamp}.json"
        for name in (doc["results_file"], "build-latest.json"):
            (args.results / name).write_text(json.dumps(doc, indent=2, default=str))
        splice(args.out, "build", render_markdown(doc))
        log(f"wrote {args.out}")
        print(json.dumps({k: v for k, v in doc["summary"].items()
                          if k not in ("determinism",)}, indent=2, default=str))
        return 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if ctx is not None and not args.keep:
            tags = [*sorted(set(ctx.docker_images)), DOCKER_BASE]
            subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True, check=False)
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
