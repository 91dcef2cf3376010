#!/usr/bin/env python3
"""Benchmark set S2 (issue 13, "Multi-gigabyte images, fast"): a PyTorch training stack.

    python bench/bench_s2.py [--prepare-only] [--small] [--out docs/benchmarks.md]

S2 = ``torch==2.13.0`` (PyPI's, with its CUDA 13 dependencies), ``transformers``,
``accelerate``, ``datasets`` for linux/amd64 over the Debian bookworm base of
``fixtures/example/.reprolock/base``, with a one-file ``train.py`` as the code. Side by
side in one run, each row with its target and verdict:

1. ``docker build --no-cache`` (legacy builder, ``--network none``) of a Dockerfile that
   runs pip from its wheel: ``pip install --require-hashes --no-index --find-links
   /wheelhouse -r req.txt``, then copies the code (``bench_build.DOCKERFILE``); and, as
   a diagnostic (1b), the same install from a parent image that already holds the
   wheelhouse, so that the timed build neither sends 2.9 GB of build context nor commits
   a layer copying it in;
2. ``reprolock build --output oci:DIR``, gzip and zstd, cold from a warm wheel cache: each
   build gets a fresh ``REPROLOCK_CACHE_DIR`` holding only the wheel store
   (``artifacts/``, hard links to a copy filled once), so no layer is cached; speedup
   over 1 (target >= 3x) and ratio to the floor (target <= 2x);
3. the floor, ``bench/floor_s2.py``: inflate every member of the same wheels, sha256 it
   and compress the same bytes with the same compressor, on every core (members in tasks
   of up to 64 MB, so one big wheel does not leave a core idle);
4. determinism across threads: the manifest digest of cold builds with ``--jobs 1`` and
   ``--jobs 2`` (when ``reprolock build`` has ``--jobs``), gzip and zstd;
5. peak RSS of the cold builds (``/usr/bin/time -v``; target <= 300 MB);
6. a code-only rebuild (``train.py`` changes, warm cache; target <= 1 s);
7. compressed size: reprolock's gzip layers in total vs ``docker save IMAGE | gzip`` of
   the docker-built image (target: reprolock's within 5% of, or below, docker's figure;
   the images differ: docker's holds pip's files and .pyc);
8. SBOM: ``reprolock lock`` (which builds the environment image and writes the SBOM) vs
   ``reprolock lock --no-sbom``, both from a warm wheel cache and no layer cache (target:
   the SBOM adds <= 25%); a second SBOM run must give the same SBOM bytes; an unchanged
   re-lock (warm cache) should reuse the SBOM;
9. ``reprolock build --output docker`` (warm layer cache; time), then ``reprolock run
   --fast -- true`` vs ``docker run --rm IMAGE true`` (target: <= 2 s more).

A row whose command fails records the error and the verdict "failed"; the others go on.

Preparation (not timed) needs PyPI: ``reprolock lock --no-build``, then exactly the locked
wheels (the lock's URLs, checked by sha256) into a persistent wheelhouse
(``/var/tmp/reprolock-s2/wheelhouse``, about 3 GB for S2, reused when present), the
project switched to ``no-index`` + ``find-links`` and locked again (same pins, checked),
``reprolock export`` of the hash-pinned ``req.txt``, the base copied into the Docker
Engine (skopeo), and a first ``reprolock build`` that fills the wheel store which every
cold build then starts from. ``--prepare-only`` stops there (the real run then needs no
network); ``--small`` runs everything on ``requests`` + ``numpy`` to check the script.

reprolock runs from a venv in the work directory (non-editable ``pip install`` of this
checkout, reinstalled every run), every command with ``PIP_CONFIG_FILE=/dev/null`` and no
other ``PIP_*``/``UV_*``/``REPROLOCK_*`` variables (bench_lock.clean_env). Writes the "s2"
section of ``docs/benchmarks.md`` and the raw numbers as JSON in ``bench/results/``
(``s2-*.json``). Docker images it makes are tagged ``reprolock-bench/s2*`` and removed at
the end (unless ``--keep``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _report  # bench/_report.py: one file, one section per benchmark
from bench_build import (  # the build benchmark's helpers, shared
    DOCKERFILE,
    Ctx,
    _cpu_s,
    _maxrss_kb,
    docker_build,
    lock_pins,
    lock_summary,
    machine_facts,
    reprolock_toml,
)
from bench_lock import (  # the lock benchmark's environment handling, shared
    BASE_DIR,
    BASE_TAG,
    BENCH,
    REPO,
    BenchError,
    cache_vars,
    clean_env,
    ensure_base,
    fmt_s,
    log,
    missing_from_wheel,
    ready_venv,
    run,
)

SECTION = "s2"

S2 = ["torch==2.13.0", "transformers", "accelerate", "datasets"]
SMALL = ["requests", "numpy"]
WORK = Path("/var/tmp/reprolock-s2")
FLOOR = BENCH / "floor_s2.py"
DOCKER_REPO = "reprolock-bench/s2"
DOCKER_BASE = "reprolock-bench/s2-base:bookworm"
TIMEOUT_S = 3600  # any one command; a hung command fails its row, not the run

TARGETS = {"speedup": 3.0, "floor_ratio": 2.0, "rss_mb": 300.0, "rebuild_s": 1.0,
           "size_ratio": 1.05, "sbom_overhead": 0.25, "run_overhead_s": 2.0}

# Row 1b: the same install, the wheelhouse, pip's wheel and req.txt already in the parent.
DOCKERFILE_PRESTAGED = """\
FROM {parent}
ENV PYTHONHASHSEED=0 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 \\
    PIP_ROOT_USER_ACTION=ignore
RUN python3 /tmp/{pip_wheel}/pip install --break-system-packages \\
    --no-index --find-links /wheelhouse --require-hashes -r /req.txt
WORKDIR /app
COPY train.py /app/train.py
ENTRYPOINT ["python3", "train.py"]
"""

TRAIN_PY = '''"""A stand-in training job: the benchmark only builds and changes it."""

import json
import sys


def main() -> None:
    print(json.dumps({"python": sys.version.split()[0]}))


if __name__ == "__main__":
    main()
'''


# --------------------------------------------------------------------------- preparation

class S2Ctx(Ctx):
    """bench_build's context plus what S2 keeps between runs."""

    def __init__(self, venv: Path, scratch: Path, work: Path, name: str) -> None:
        super().__init__(venv, scratch, work)
        self.name = name
        self.project = work / name
        self.wheelhouse = work / ("wheelhouse" if name == "s2" else f"wheelhouse-{name}")
        self.wheel_cache = work / f"wheel-cache-{name}"  # holds artifacts/ only
        self.prep_caches = work / "prep-caches"
        self.pip_wheel = ""  # pip's wheel file name, in the project (prepare_docker)
        self.build_jobs: int | None = None  # --jobs N when `reprolock build` has it
        self.lock_jobs: int | None = None

    def env(self, caches: Path | None) -> dict[str, str]:
        return clean_env(self.venv, caches)


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def fetch_locked(project: Path, store: Path) -> dict[str, Any]:
    """Exactly the wheel the lock chose for each package into ``store`` (kept between
    runs: a file already there with the right sha256 is not downloaded again), checked
    by sha256; the project's ``wheelhouse/`` gets hard links to them.

    Not ``pip download --platform ...``: see ``bench_build.download_locked`` for why pip
    picks other wheels than the lock's."""
    lock = json.loads((project / "reprolock.lock.json").read_text())
    store.mkdir(parents=True, exist_ok=True)
    context = ssl.create_default_context()
    if Path("/etc/ssl/certs/ca-certificates.crt").is_file():
        context.load_verify_locations("/etc/ssl/certs/ca-certificates.crt")
    arts = [p["artifact"] for p in lock["packages"]]

    def one(art: dict[str, Any]) -> int:
        dest = store / str(art["filename"])
        if dest.is_file() and _sha256(dest) == art["sha256"]:
            return 0
        if not art.get("url"):
            raise BenchError(f"{art['filename']}: the online lock names no URL")
        tmp = dest.with_name(f".part-{os.getpid()}-{dest.name}")
        with urllib.request.urlopen(art["url"], context=context, timeout=300) as resp, \
                open(tmp, "wb") as out:
            shutil.copyfileobj(resp, out, 1 << 20)
        actual = _sha256(tmp)
        if actual != art["sha256"]:
            tmp.unlink()
            raise BenchError(f"{art['filename']}: sha256 {actual}, the lock says {art['sha256']}")
        os.replace(tmp, dest)
        return dest.stat().st_size

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        fetched = list(pool.map(one, arts))
    seconds = time.perf_counter() - start
    local = project / "wheelhouse"
    local.mkdir(exist_ok=True)
    for art in arts:
        dest = local / art["filename"]
        if not dest.exists():
            os.link(store / art["filename"], dest)
    return {"seconds": seconds, "downloaded": sum(1 for f in fetched if f),
            "downloaded_bytes": sum(fetched), "wheels": len(arts),
            "bytes": sum((store / a["filename"]).stat().st_size for a in arts)}


def prepare_project(ctx: S2Ctx, requirements: list[str]) -> dict[str, Any]:
    """Lock online, fetch the locked wheels, lock again against the wheelhouse only."""
    project = ctx.project
    done = project / ".prepared.json"
    if done.is_file():
        earlier: dict[str, Any] = json.loads(done.read_text())
        if earlier.get("requirements") == requirements and all(
                (project / "wheelhouse" / w).is_file() for w in earlier["wheels"]):
            log(f"{ctx.name}: reusing the prepared project {project}; locking it again "
                "against the wheelhouse (offline), as this checkout writes locks")
            relock_offline(ctx)
            if lock_pins(project) != earlier["pins"]:
                raise BenchError(f"{ctx.name}: locking again changed the pins; delete "
                                 f"{done} to prepare from scratch")
            return earlier
    if project.exists():
        shutil.rmtree(project)
    project.mkdir(parents=True)
    (project / "requirements.in").write_text("\n".join(requirements) + "\n")
    (project / "train.py").write_text(TRAIN_PY)
    (project / ".dockerignore").write_text(".reprolock\n.prepared.json\noutputs\n"
                                           "reprolock.sbom.*\n")
    (project / "reprolock.toml").write_text(reprolock_toml(offline=False, find_links=False))
    env = ctx.env(ctx.prep_caches)
    rl = ctx.reprolock
    log(f"{ctx.name}: reprolock lock --no-build (PyPI)")
    start = time.perf_counter()
    run([rl, "lock", "-C", str(project), "--no-build", "-q"], env=env, what="lock (PyPI)")
    lock_online_s = time.perf_counter() - start
    online = lock_pins(project)
    log(f"{ctx.name}: fetching the {len(online)} locked wheels into {ctx.wheelhouse}")
    fetch = fetch_locked(project, ctx.wheelhouse)
    log(f"  {fetch['downloaded']} downloaded ({fetch['downloaded_bytes'] / 1e9:.2f} GB) in "
        f"{fetch['seconds']:.0f} s; {fetch['wheels']} wheels, {fetch['bytes'] / 1e9:.2f} GB")
    (project / "reprolock.toml").write_text(reprolock_toml(offline=True, find_links=True))
    relock_offline(ctx)
    offline = lock_pins(project)
    if offline != online:
        raise BenchError(f"{ctx.name}: locking against the wheelhouse changed the pins: "
                         f"{sorted(set(offline.items()) ^ set(online.items()))}")
    summary = lock_summary(project)
    if summary["local_artifacts"] != summary["packages"]:
        raise BenchError(f"{ctx.name}: the lock still names remote artifacts")
    summary.update(requirements=requirements, project=str(project),
                   wheelhouse=str(ctx.wheelhouse), fetch=fetch, lock_online_s=lock_online_s,
                   wheelhouse_bytes=fetch["bytes"])
    done.write_text(json.dumps(summary, indent=2))
    return summary


def relock_offline(ctx: S2Ctx) -> None:
    """``reprolock lock --no-build`` against the wheelhouse only, and ``export``."""
    project, env = ctx.project, ctx.env(ctx.prep_caches)
    log(f"{ctx.name}: reprolock lock --no-build against the wheelhouse only")
    (project / "reprolock.lock.json").unlink(missing_ok=True)
    run([ctx.reprolock, "lock", "-C", str(project), "--no-build", "-q"], env=env,
        what="lock (wheelhouse)")
    run([ctx.reprolock, "export", "-C", str(project), "-f", "requirements", "-o",
         str(project / "req.txt")], env=env, what="export")


def prepare_docker(ctx: S2Ctx) -> dict[str, Any]:
    """The base in the engine, pip's wheel in the build context, the Dockerfile."""
    pipdir = ctx.work / "pipwheel"
    if not list(pipdir.glob("pip-*.whl")):
        pipdir.mkdir(parents=True, exist_ok=True)
        run([str(ctx.venv / "bin" / "python"), "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary", ":all:", "-d", str(pipdir), "pip"], env=ctx.env(ctx.prep_caches),
            what="pip download pip")
    pip_wheel = sorted(pipdir.glob("pip-*.whl"))[-1]
    shutil.copy2(pip_wheel, ctx.project / pip_wheel.name)
    ctx.pip_wheel = pip_wheel.name
    log(f"loading the base into the Docker Engine as {DOCKER_BASE} (skopeo)")
    run(["skopeo", "copy", "--quiet", f"oci:{BASE_DIR}:{BASE_TAG}",
         f"docker-daemon:{DOCKER_BASE}"], what="skopeo copy of the base into Docker")
    text = DOCKERFILE.format(base=DOCKER_BASE, pip_wheel=pip_wheel.name, pip_extra="")
    (ctx.project / "Dockerfile.standard").write_text(text)
    return {"pip_wheel": pip_wheel.name, "dockerfile": text}


def _artifacts_ok(ctx: S2Ctx, lock: dict[str, Any]) -> bool:
    root = ctx.wheel_cache / "artifacts" / "sha256"
    return all((root / p["artifact"]["sha256"] / p["artifact"]["filename"]).is_file()
               for p in lock["packages"])


def prepare_wheel_cache(ctx: S2Ctx) -> dict[str, Any]:
    """A first ``reprolock build`` fills a cache; its wheel store (``artifacts/``) is kept
    and every cold build starts from hard links to it, with no layer cached."""
    lock = json.loads((ctx.project / "reprolock.lock.json").read_text())
    if _artifacts_ok(ctx, lock):
        log(f"{ctx.name}: reusing the wheel store {ctx.wheel_cache}")
        return {"reused": True}
    shutil.rmtree(ctx.wheel_cache, ignore_errors=True)
    root = ctx.fresh("fill")
    log(f"{ctx.name}: a first reprolock build fills the wheel store (not timed as a row)")
    try:
        r = rl_build(ctx, root / "caches", root / "image", "gzip", jobs=ctx.build_jobs)
        ctx.wheel_cache.mkdir(parents=True)
        os.replace(root / "caches" / "reprolock" / "artifacts", ctx.wheel_cache / "artifacts")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if not _artifacts_ok(ctx, lock):
        raise BenchError(f"the first build did not leave every locked wheel in "
                         f"{ctx.wheel_cache}/artifacts (cache layout changed?)")
    log(f"  first build {r['seconds']:.1f} s, {r['maxrss_kb'] / 1024:.0f} MB RSS")
    return {"reused": False, "first_build_s": r["seconds"], "first_build_rss_kb": r["maxrss_kb"]}


# --------------------------------------------------------------------------- commands

def _has_option(ctx: S2Ctx, command: str, option: str) -> bool:
    text = run([ctx.reprolock, command, "--help"], env=ctx.env(None),
               what=f"reprolock {command} --help").stdout
    return re.search(rf"(^|\s){re.escape(option)}[\s,=]", text) is not None


def timed_cmd(argv: list[str], *, env: dict[str, str], cwd: Path | None = None,
              what: str, gnu_time: Path | None = None) -> tuple[float, str]:
    """Run ``argv`` (under ``/usr/bin/time -v`` when ``gnu_time`` names its output file):
    wall seconds and stdout; BenchError with the error text when it fails."""
    full = ["/usr/bin/time", "-v", "-o", str(gnu_time), *argv] if gnu_time else argv
    start = time.perf_counter()
    try:
        proc = subprocess.run(full, cwd=cwd, env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, check=False, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{what} did not finish in {TIMEOUT_S} s (killed): "
                         f"{' '.join(argv)}") from exc
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                         f"{proc.stderr[-3000:] or proc.stdout[-3000:]}")
    return seconds, proc.stdout


def rl_build(ctx: S2Ctx, caches: Path, out: Path, compression: str, *, jobs: int | None,
             output: str | None = None) -> dict[str, Any]:
    """One ``reprolock build``, timed under GNU time, its JSON report kept."""
    cache_vars(caches)
    timefile = ctx.scratch / f"time-{time.monotonic_ns()}.txt"
    argv = [ctx.reprolock, "build", "-C", str(ctx.project), "--output",
            output or f"oci:{out}", "--json", "-q", "--compression", compression]
    if jobs is not None:
        argv += ["--jobs", str(jobs)]
    try:
        seconds, stdout = timed_cmd(argv, env=ctx.env(caches), cwd=ctx.scratch,
                                    what="reprolock build", gnu_time=timefile)
        report = json.loads(stdout[stdout.index("{"):stdout.rindex("}") + 1])
        return {"seconds": seconds, "compression": compression, "jobs": jobs,
                "maxrss_kb": _maxrss_kb(timefile), "cpu_s": _cpu_s(timefile),
                "manifest": report.get("manifestDigest"), "config": report.get("configDigest"),
                "env_manifest": (report.get("environment") or {}).get("manifestDigest"),
                "layers": [{"digest": x["digest"], "size": x["size"]}
                           for x in report.get("layers", [])],
                "layer_bytes": sum(x["size"] for x in report.get("layers", [])),
                "warnings": report.get("warnings", []), "argv": argv}
    finally:
        timefile.unlink(missing_ok=True)


def _tool_name(sbom: dict[str, Any]) -> str:
    """The SBOM tool as the lock records it: {"name", "version"} or name + version keys."""
    tool = sbom.get("tool")
    if isinstance(tool, dict):
        return f"{tool.get('name', '?')} {tool.get('version', '')}".strip()
    version = sbom.get("tool_version") or sbom.get("toolVersion") or ""
    return f"{tool or '?'} {version}".strip()


def cold_root(ctx: S2Ctx, prefix: str) -> Path:
    """A fresh directory whose ``caches/reprolock`` holds the wheel store and nothing else."""
    root = ctx.fresh(prefix)
    caches = root / "caches"
    cache_vars(caches)
    run(["cp", "-al", str(ctx.wheel_cache / "artifacts"), str(caches / "reprolock" / "artifacts")],
        what="cp -al of the wheel store")
    return root


def cold_build(ctx: S2Ctx, compression: str, *, jobs: int | None,
               keep: bool = False) -> dict[str, Any]:
    root = cold_root(ctx, f"cold-{compression}-j{jobs}")
    try:
        r = rl_build(ctx, root / "caches", root / "image", compression, jobs=jobs)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    if keep:
        r["root"] = str(root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    log(f"  reprolock build {compression} --jobs {jobs or 'n/a'}: {r['seconds']:.1f} s, "
        f"{(r['maxrss_kb'] or 0) / 1024:.0f} MB RSS, {r['layer_bytes'] / 1e6:.0f} MB of layers, "
        f"{str(r['manifest'])[:19]}")
    return r


def floor(ctx: S2Ctx, compression: str) -> dict[str, Any]:
    timefile = ctx.scratch / f"time-floor-{compression}.txt"
    # gzip: as reprolock's default gzip layers, the wheels' own deflate streams copied
    reuse = ["--wheel-deflate"] if compression == "gzip" else []
    argv = [str(ctx.venv / "bin" / "python"), str(FLOOR), "--compression", compression,
            *reuse, "--procs", str(os.cpu_count() or 1), str(ctx.project / "wheelhouse")]
    seconds, stdout = timed_cmd(argv, env=ctx.env(None), what=f"floor ({compression})",
                                gnu_time=timefile)
    r: dict[str, Any] = json.loads(stdout)
    r.update(wall_s=seconds, maxrss_kb=_maxrss_kb(timefile), cpu_s=_cpu_s(timefile))
    timefile.unlink(missing_ok=True)
    log(f"  floor {compression}: {seconds:.1f} s ({r['inflated_bytes'] / 1e9:.2f} GB inflated, "
        f"{r['compressed_bytes'] / 1e9:.2f} GB compressed)")
    return r


class _Tee:
    """A read-only stream that copies everything read from ``source`` into ``sink``."""

    def __init__(self, source: Any, sink: Any) -> None:
        self.source, self.sink = source, sink

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.source.read(size)
        if data:
            self.sink.write(data)
        return data


def docker_save_sizes(image: str) -> dict[str, Any]:
    """``docker save IMAGE | gzip -c | wc -c``, and in the same pass each layer tar of the
    stream gzipped on its own (zlib level 6, gzip's default), matched to the Dockerfile
    step that made it through the image config's history: the layers that COPY the build
    inputs (the wheelhouse, pip's wheel, req.txt) are marked, being files reprolock's image
    does not hold."""
    import tarfile
    import zlib

    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    gz = subprocess.Popen(["bash", "-c", "gzip -c | wc -c"], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert save.stdout is not None and gz.stdin is not None and gz.stdout is not None
    tee = _Tee(save.stdout, gz.stdin)
    per_member: dict[str, int] = {}
    small: dict[str, bytes] = {}
    with tarfile.open(fileobj=tee, mode="r|") as archive:  # type: ignore[call-overload]
        for member in archive:
            handle = archive.extractfile(member)
            if handle is None:
                continue
            if member.name.endswith(".json"):
                small[member.name] = handle.read()
                continue
            zobj = zlib.compressobj(6, zlib.DEFLATED, 31)
            size = 0
            while chunk := handle.read(1 << 20):
                size += len(zobj.compress(chunk))
            per_member[member.name] = size + len(zobj.flush())
    while tee.read(1 << 20):  # the end-of-archive blocks
        pass
    gz.stdin.close()
    total = int(gz.stdout.read().decode().strip())
    gz.wait()
    if save.wait() != 0:
        raise BenchError(f"docker save failed: {save.stderr.read().decode()[-2000:]}"
                         if save.stderr else "docker save failed")
    manifest = json.loads(small["manifest.json"])[0]
    config = json.loads(small[manifest["Config"]])
    steps = [h.get("created_by", "") for h in config.get("history", [])
             if not h.get("empty_layer")]
    layers = []
    for i, name in enumerate(manifest["Layers"]):
        step = steps[i] if i < len(steps) else ""
        layers.append({"step": step[-160:], "gzip_bytes": per_member.get(name, 0),
                       "build_input": bool(re.search(r"COPY .* in (/wheelhouse/|/tmp/pip-|"
                                                     r"/req\.txt)", step))})
    return {"gzip_bytes": total, "layers": layers}


# --------------------------------------------------------------------------- measuring

def guarded(rows: dict[str, Any], key: str, fn: Callable[[], dict[str, Any]]) -> None:
    """Run one row; a failure is recorded with its error text and the run goes on."""
    log(f"row {key}")
    start = time.perf_counter()
    try:
        rows[key] = fn()
    except Exception as exc:  # every row must survive any failure
        text = str(exc)
        log(f"row {key} FAILED: {text[:600]}")
        rows[key] = {"verdict": "failed", "error": text[-3000:]}
    rows[key]["load_1min"] = round(os.getloadavg()[0], 2)
    rows[key]["row_s"] = round(time.perf_counter() - start, 1)


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def measure(ctx: S2Ctx, args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    jobs = ctx.build_jobs
    docker_tag = f"{DOCKER_REPO}:docker"

    # 1. docker build --no-cache
    def row_docker() -> dict[str, Any]:
        runs = [docker_build(ctx, ctx.project, "standard", no_cache=True, tag=docker_tag)
                for _ in range(args.runs)]
        secs = [r["seconds"] for r in runs]
        log(f"  docker build --no-cache: {', '.join(f'{s:.1f} s' for s in secs)}")
        return {"seconds": statistics.median(secs), "runs_s": secs,
                "image_id": runs[-1]["image_id"], "verdict": "measured"}
    guarded(rows, "docker", row_docker)

    # 1b. diagnostic: the same pip install with the wheelhouse already in a parent image
    # (built first, not timed) and a build context of train.py alone, so the timed build
    # neither sends the wheelhouse as context nor commits a layer copying it
    def row_docker_prestaged() -> dict[str, Any]:
        staged = ctx.fresh("docker-wheels")
        (staged / "Dockerfile.wheels").write_text(
            f"FROM {DOCKER_BASE}\nCOPY {ctx.pip_wheel} /tmp/{ctx.pip_wheel}\n"
            "COPY wheelhouse/ /wheelhouse/\nCOPY req.txt /req.txt\n")
        (staged / ".dockerignore").write_text("*\n!wheelhouse\n!req.txt\n!" + ctx.pip_wheel
                                              + "\n")
        shutil.copy2(ctx.project / "req.txt", staged / "req.txt")
        shutil.copy2(ctx.project / ctx.pip_wheel, staged / ctx.pip_wheel)
        run(["cp", "-al", str(ctx.project / "wheelhouse"), str(staged / "wheelhouse")],
            what="cp -al of the wheelhouse")
        log("  building the parent image with the wheelhouse (not timed)")
        parent = docker_build(ctx, staged, "wheels", no_cache=True,
                              tag=f"{DOCKER_REPO}-wheels:latest")
        code = ctx.fresh("docker-code")
        text = DOCKERFILE_PRESTAGED.format(parent=f"{DOCKER_REPO}-wheels:latest",
                                           pip_wheel=ctx.pip_wheel)
        (code / "Dockerfile.prestaged").write_text(text)
        shutil.copy2(ctx.project / "train.py", code / "train.py")
        runs = [docker_build(ctx, code, "prestaged", no_cache=True,
                             tag=f"{DOCKER_REPO}:prestaged") for _ in range(args.runs)]
        shutil.rmtree(staged, ignore_errors=True)
        secs = [r["seconds"] for r in runs]
        log(f"  docker build --no-cache, wheelhouse pre-staged: "
            f"{', '.join(f'{s:.1f} s' for s in secs)} (parent image {parent['seconds']:.1f} s)")
        return {"seconds": statistics.median(secs), "runs_s": secs,
                "parent_s": parent["seconds"], "dockerfile": text, "verdict": "measured"}
    guarded(rows, "docker_prestaged", row_docker_prestaged)

    # 3. the floor (before reprolock's builds: it reads the same wheels, page cache warm)
    def row_floor() -> dict[str, Any]:
        out: dict[str, Any] = {"verdict": "measured"}
        for comp in ("gzip", "zstd"):
            runs = [floor(ctx, comp) for _ in range(args.runs)]
            out[comp] = runs[-1] | {"wall_s": statistics.median(r["wall_s"] for r in runs),
                                    "runs_s": [r["wall_s"] for r in runs]}
        return out
    guarded(rows, "floor", row_floor)

    # 2. cold builds from a warm wheel cache
    def row_cold() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for comp in ("gzip", "zstd"):
            runs = []
            for i in range(args.runs):
                runs.append(cold_build(ctx, comp, jobs=jobs,
                                       keep=(comp == "gzip" and i == args.runs - 1)))
            secs = [r["seconds"] for r in runs]
            best = runs[-1] | {"seconds": statistics.median(secs), "runs_s": secs,
                               "maxrss_kb": max(r["maxrss_kb"] or 0 for r in runs)}
            out[comp] = best
            d = rows.get("docker", {}).get("seconds")
            f = rows.get("floor", {}).get(comp, {}).get("wall_s")
            best["speedup"] = d / best["seconds"] if d else None
            best["floor_ratio"] = best["seconds"] / f if f else None
        ok = all(out[c]["speedup"] is not None and out[c]["speedup"] >= TARGETS["speedup"]
                 and out[c]["floor_ratio"] is not None
                 and out[c]["floor_ratio"] <= TARGETS["floor_ratio"] for c in out)
        out["verdict"] = _verdict(ok)
        return out
    guarded(rows, "cold", row_cold)
    gzip_root = Path(rows["cold"]["gzip"]["root"]) if "gzip" in rows["cold"] else None

    # 4. determinism across threads
    def row_threads() -> dict[str, Any]:
        if jobs is None:
            return {"verdict": "n/a", "note": "`reprolock build` has no --jobs option yet"}
        out: dict[str, Any] = {}
        for comp in ("gzip", "zstd"):
            digests: dict[str, Any] = {}
            for j in (1, 2):
                earlier = rows.get("cold", {}).get(comp)
                if earlier and earlier.get("jobs") == j and earlier.get("manifest"):
                    digests[str(j)] = earlier["manifest"]
                else:
                    digests[str(j)] = cold_build(ctx, comp, jobs=j)["manifest"]
            out[comp] = digests
        ok = all(len(set(out[c].values())) == 1 for c in ("gzip", "zstd"))
        out["verdict"] = "met" if ok else "not met (digests differ)"
        return out
    guarded(rows, "threads", row_threads)

    # 5. peak RSS of the cold builds
    def row_rss() -> dict[str, Any]:
        cold = rows["cold"]
        mb = {c: cold[c]["maxrss_kb"] / 1024 for c in ("gzip", "zstd") if c in cold}
        if not mb:
            raise BenchError("no cold build finished")
        return {"mb": mb, "verdict": _verdict(max(mb.values()) <= TARGETS["rss_mb"])}
    guarded(rows, "rss", row_rss)

    # 6. code-only rebuild (warm cache, same output directory)
    def row_rebuild() -> dict[str, Any]:
        if gzip_root is None:
            raise BenchError("the cold gzip build failed; nothing to rebuild from")
        train = ctx.project / "train.py"
        original = train.read_text()
        runs = []
        try:
            for i in range(args.rebuild_runs):
                train.write_text(original + f"# code change {i + 1}\n")
                runs.append(rl_build(ctx, gzip_root / "caches", gzip_root / "image", "gzip",
                                     jobs=jobs))
        finally:
            train.write_text(original)
        secs = [r["seconds"] for r in runs]
        log(f"  code-only rebuilds: {', '.join(f'{s:.2f} s' for s in secs)}")
        return {"seconds": statistics.median(secs), "runs_s": secs,
                "verdict": _verdict(statistics.median(secs) <= TARGETS["rebuild_s"])}
    guarded(rows, "rebuild", row_rebuild)

    # 7. compressed size vs docker save | gzip
    def row_size() -> dict[str, Any]:
        ours = rows["cold"]["gzip"]["layer_bytes"]
        if "image_id" not in rows.get("docker", {}):
            raise BenchError("the docker build failed; nothing to save")
        log("  docker save | gzip -c | wc -c, and each layer gzipped apart (not timed)")
        start = time.perf_counter()
        saved = docker_save_sizes(docker_tag)
        theirs = saved["gzip_bytes"]
        inputs = sum(x["gzip_bytes"] for x in saved["layers"] if x["build_input"])
        ratio, ratio_installed = ours / theirs, ours / (theirs - inputs)
        log(f"  reprolock {ours / 1e9:.3f} GB, docker save | gzip {theirs / 1e9:.3f} GB "
            f"({inputs / 1e9:.3f} GB of it the layers that copy the build inputs in)")
        return {"reprolock_bytes": ours, "docker_save_gzip_bytes": theirs, "ratio": ratio,
                "docker_build_input_gzip_bytes": inputs, "ratio_installed": ratio_installed,
                "docker_layers": saved["layers"], "seconds": time.perf_counter() - start,
                "verdict": _verdict(ratio_installed <= TARGETS["size_ratio"])}
    guarded(rows, "size", row_size)

    # 8. SBOM: lock with and without it, from a warm wheel cache and no layer cache
    lock_file = ctx.project / "reprolock.lock.json"
    saved_lock = lock_file.read_bytes()

    def lock_once(root: Path, extra: list[str]) -> dict[str, Any]:
        timefile = ctx.scratch / f"time-lock-{time.monotonic_ns()}.txt"
        argv = [ctx.reprolock, "lock", "-C", str(ctx.project), "-q", *extra]
        if ctx.lock_jobs is not None:
            argv += ["--jobs", str(ctx.lock_jobs)]
        seconds, _ = timed_cmd(argv, env=ctx.env(root / "caches"), cwd=ctx.scratch,
                               what="reprolock lock", gnu_time=timefile)
        out: dict[str, Any] = {"seconds": seconds, "maxrss_kb": _maxrss_kb(timefile),
                               "argv": argv}
        timefile.unlink(missing_ok=True)
        sbom = json.loads(lock_file.read_text()).get("sbom")
        if sbom:
            data = (ctx.project / sbom["path"]).read_bytes()
            out.update(sbom_path=sbom["path"], sbom_sha256=hashlib.sha256(data).hexdigest(),
                       sbom_bytes=len(data), sbom_tool=_tool_name(sbom))
        log(f"  reprolock lock {' '.join(extra)}: {seconds:.1f} s, "
            f"{(out['maxrss_kb'] or 0) / 1024:.0f} MB RSS"
            + (f", SBOM {out['sbom_sha256'][:12]}" if "sbom_sha256" in out else ""))
        return out

    def row_sbom() -> dict[str, Any]:
        out: dict[str, Any] = {}
        roots = []
        try:
            for key, extra in (("no_sbom", ["--no-sbom"]), ("sbom", []), ("sbom_again", [])):
                root = cold_root(ctx, f"lock-{key}")
                roots.append(root)
                recorded = json.loads(lock_file.read_text()).get("sbom")
                if key == "sbom_again" and recorded:  # syft again: the SBOM of the run
                    (ctx.project / recorded["path"]).unlink(missing_ok=True)  # before is gone
                out[key] = lock_once(root, extra)
                if key != "sbom_again":
                    shutil.rmtree(root, ignore_errors=True)
            # nothing changed, warm cache: with the SBOM (reused) and without, alternated;
            # the lock with its SBOM is put back before each run with it
            with_sbom = lock_file.read_bytes()
            relocks: dict[str, list[dict[str, Any]]] = {"relock": [], "relock_no_sbom": []}
            for _ in range(3):
                lock_file.write_bytes(with_sbom)
                relocks["relock"].append(lock_once(roots[-1], []))
                relocks["relock_no_sbom"].append(lock_once(roots[-1], ["--no-sbom"]))
            for key, runs in relocks.items():
                out[key] = {**runs[0], "seconds": statistics.median(r["seconds"] for r in runs),
                            "runs_s": [r["seconds"] for r in runs]}
        finally:
            for root in roots:
                shutil.rmtree(root, ignore_errors=True)
            lock_file.write_bytes(saved_lock)
        out["overhead"] = out["sbom"]["seconds"] / out["no_sbom"]["seconds"] - 1
        out["same_bytes"] = out["sbom"].get("sbom_sha256") == out["sbom_again"].get("sbom_sha256")
        out["relock_overhead"] = (out["relock"]["seconds"] / out["relock_no_sbom"]["seconds"]
                                  - 1)
        ok = out["overhead"] <= TARGETS["sbom_overhead"] and out["same_bytes"] \
            and out["sbom"].get("sbom_sha256") is not None
        out["verdict"] = _verdict(ok)
        return out
    guarded(rows, "sbom", row_sbom)

    # 9. build --output docker, then reprolock run --fast -- true vs docker run. `run`
    # wants a lock that records the environment image: lock (not timed) with the warm
    # cache of the cold gzip build first; the lock file is restored afterwards.
    rl_tag = f"{DOCKER_REPO}-reprolock:latest"

    def row_docker_output() -> dict[str, Any]:
        if gzip_root is None:
            raise BenchError("the cold gzip build failed; no warm cache to load from")
        env = ctx.env(gzip_root / "caches")
        log("  reprolock lock --no-sbom with the warm cache (not timed), for `run`")
        run([ctx.reprolock, "lock", "-C", str(ctx.project), "-q", "--no-sbom"], env=env,
            what="reprolock lock (for run)")
        ctx.docker_images.append(rl_tag)
        b = rl_build(ctx, gzip_root / "caches", gzip_root / "image", "gzip", jobs=jobs,
                     output=f"docker:{rl_tag}")
        log(f"  reprolock build --output docker: {b['seconds']:.1f} s")
        return {"seconds": b["seconds"], "maxrss_kb": b["maxrss_kb"], "verdict": "met"}

    def row_run() -> dict[str, Any]:
        if "seconds" not in rows.get("docker_output", {}):
            raise BenchError("`reprolock build --output docker` failed; nothing to run")
        env = ctx.env(gzip_root / "caches") if gzip_root else ctx.env(None)
        record = ctx.scratch / "run-record.json"
        plain: list[float] = []
        ours: list[float] = []
        for i in range(args.run_runs):
            pair = [("docker", ["docker", "run", "--rm", "--network", "none",
                                "--entrypoint", "true", rl_tag]),
                    ("reprolock", [ctx.reprolock, "run", "-C", str(ctx.project), "--fast",
                                   "-q", "--record", str(record), "--", "true"])]
            if i % 2:
                pair.reverse()
            for who, argv in pair:
                s, _ = timed_cmd(argv, env=env, cwd=ctx.project, what=who + " run")
                (plain if who == "docker" else ours).append(s)
        out: dict[str, Any] = {"docker_run_s": statistics.median(plain), "docker_runs_s": plain,
                               "reprolock_run_s": statistics.median(ours),
                               "reprolock_runs_s": ours}
        out["overhead_s"] = out["reprolock_run_s"] - out["docker_run_s"]
        log(f"  run --fast -- true {out['reprolock_run_s']:.2f} s vs docker run "
            f"{out['docker_run_s']:.2f} s")
        out["verdict"] = _verdict(out["overhead_s"] <= TARGETS["run_overhead_s"])
        return out

    try:
        guarded(rows, "docker_output", row_docker_output)
        guarded(rows, "run", row_run)
    finally:
        lock_file.write_bytes(saved_lock)

    if gzip_root is not None:
        shutil.rmtree(gzip_root, ignore_errors=True)
    return rows


# --------------------------------------------------------------------------- report

def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _mb(kb: float | None) -> str:
    return "–" if not kb else f"{kb / 1024:.0f} MB"


def _fail(row: dict[str, Any]) -> str:
    text = " ".join(str(row.get("error", "")).split())
    return f"failed: `{text[:300]}`" if text else "failed"


def table(doc: dict[str, Any]) -> list[str]:
    r, t = doc["rows"], TARGETS
    lines = ["| # | measure | result | target | verdict |", "|---|---|---|---|---|"]

    def add(n: str, what: str, row: dict[str, Any] | None, result: Callable[[], str],
            target: str, verdict: str | None = None) -> None:
        if row is None:
            lines.append(f"| {n} | {what} | not run | {target} | – |")
        elif row.get("error"):
            lines.append(f"| {n} | {what} | {_fail(row)} | {target} | failed |")
        else:
            lines.append(f"| {n} | {what} | {result()} | {target} | "
                         f"{verdict or row.get('verdict', '')} |")

    d, fl, cold = r.get("docker"), r.get("floor"), r.get("cold")
    add("1", "`docker build --no-cache` (pip from the local wheelhouse)", d,
        lambda: fmt_s(d["seconds"]), "–", "measured")
    dp = r.get("docker_prestaged")
    add("1b", "the same, wheelhouse pre-staged in a parent image (diagnostic)", dp,
        lambda: f"{fmt_s(dp['seconds'])} (parent image, not timed: {fmt_s(dp['parent_s'])})",
        "–", "measured")
    for comp in ("gzip", "zstd"):
        def res_f(c: str = comp) -> str:
            return fmt_s(fl[c]["wall_s"])
        add("3", f"floor, {comp}: inflate + sha256 + compress on every core", fl, res_f, "–",
            "measured")
    for comp in ("gzip", "zstd"):
        def res(c: str = comp) -> str:
            b = cold[c]
            pre = (dp or {}).get("seconds")
            return (f"{fmt_s(b['seconds'])}: {_x(b['speedup'])} faster than docker build"
                    + (f" ({_x(pre / b['seconds'])} vs 1b)" if pre else "")
                    + f", {_x(b['floor_ratio'])} the floor")
        ok = None
        if cold and comp in cold:
            b = cold[comp]
            ok = _verdict(b["speedup"] is not None and b["speedup"] >= t["speedup"]
                          and b["floor_ratio"] is not None and b["floor_ratio"] <= t["floor_ratio"])
        add("2", f"`reprolock build`, cold from a warm wheel cache, {comp}", cold, res,
            f"≥ {t['speedup']:.0f}x faster, ≤ {t['floor_ratio']:.0f}x the floor", ok)
    th = r.get("threads")
    for comp in ("gzip", "zstd"):
        def res_t(c: str = comp) -> str:
            if th.get("verdict") == "n/a":
                return str(th.get("note", "n/a"))
            return " / ".join(f"`--jobs {j}`: `{v[:19]}…`" for j, v in th[c].items())
        verdict = th and (th.get("verdict") if th.get("verdict") == "n/a" else
                          _verdict(comp in th and len(set(th[comp].values())) == 1))
        add("4", f"manifest digest, 1 and 2 threads, {comp}", th, res_t, "equal",
            verdict or None)
    rss = r.get("rss")
    add("5", "peak RSS of the cold builds", rss,
        lambda: ", ".join(f"{c} {v:.0f} MB" for c, v in rss["mb"].items()),
        f"≤ {t['rss_mb']:.0f} MB")
    rb = r.get("rebuild")
    add("6", "code-only rebuild (warm cache)", rb,
        lambda: f"{fmt_s(rb['seconds'])} (median of {len(rb['runs_s'])})",
        f"≤ {fmt_s(t['rebuild_s'])}")
    sz = r.get("size")
    add("7", "gzip size: reprolock's layers vs `docker save \\| gzip`", sz,
        lambda: f"{sz['reprolock_bytes'] / 1e6:,.0f} MB vs "
        f"{sz['docker_save_gzip_bytes'] / 1e6:,.0f} MB ({100 * sz['ratio']:.1f}%); vs "
        f"{(sz['docker_save_gzip_bytes'] - sz['docker_build_input_gzip_bytes']) / 1e6:,.0f} "
        f"MB without the layers that copy the build inputs in "
        f"({100 * sz['ratio_installed']:.1f}%)", "≤ 105% (without the build inputs)")
    sb = r.get("sbom")
    sb_ok = sb is not None and not sb.get("error")
    add("8", "SBOM: `lock` vs `lock --no-sbom`", sb,
        lambda: f"{fmt_s(sb['sbom']['seconds'])} vs {fmt_s(sb['no_sbom']['seconds'])} "
        f"({100 * sb['overhead']:+.0f}%)", f"≤ +{100 * t['sbom_overhead']:.0f}%",
        _verdict(sb["overhead"] <= t["sbom_overhead"]) if sb_ok and sb else None)
    add("8", "SBOM bytes, two runs", sb,
        lambda: "identical" if sb["same_bytes"] else
        f"differ (`{sb['sbom'].get('sbom_sha256', '?')[:12]}` vs "
        f"`{sb['sbom_again'].get('sbom_sha256', '?')[:12]}`)", "identical",
        _verdict(sb["same_bytes"]) if sb_ok and sb else None)
    add("8", "unchanged re-lock (warm cache, median of 3 alternated): with the SBOM vs "
        "`--no-sbom`", sb,
        lambda: f"{fmt_s(sb['relock']['seconds'])} vs {fmt_s(sb['relock_no_sbom']['seconds'])}"
        f" ({100 * sb['relock_overhead']:+.0f}%)", "SBOM reused (≤ +25%)",
        _verdict(sb["relock_overhead"] <= t["sbom_overhead"]) if sb_ok and sb else None)
    do = r.get("docker_output")
    add("9", "`reprolock build --output docker` (warm layer cache)", do,
        lambda: f"succeeded, {fmt_s(do['seconds'])}", "succeeds")
    rn = r.get("run")
    add("9", "`reprolock run --fast -- true` vs `docker run --rm IMAGE true`", rn,
        lambda: f"{fmt_s(rn['reprolock_run_s'])} vs {fmt_s(rn['docker_run_s'])} "
        f"({'+' if rn['overhead_s'] >= 0 else '−'}{fmt_s(abs(rn['overhead_s']))})",
        f"≤ +{fmt_s(t['run_overhead_s'])}")
    return lines


def render_markdown(doc: dict[str, Any]) -> str:
    f, p, r = doc["facts"], doc["prepared"], doc["rows"]
    git = f.get("git", {})
    title = "S2" if doc["set"] == "s2" else f"S2 script check on the small set ({doc['set']})"
    lines = [
        f"## {title}: a PyTorch stack, reprolock build vs docker build (issue 13)",
        "",
        f"Made by `python bench/bench_s2.py{' --small' if doc['set'] != 's2' else ''}` "
        f"(see `bench/README.md`); raw numbers in `bench/results/{doc['results_file']}` "
        "(not committed). One run, side by side; each timed command ran "
        f"{doc['runs']} time(s) (median shown).",
        "",
        "### Machine (S2 run)",
        "",
        f"- date: {f['date']}; CPU: {f['cpu']}, nproc {f['nproc']}, memory {f['memory']}; "
        f"{f['os']}, kernel {f['kernel']}; disk {f.get('disk')}",
        f"- load average at start {f['loadavg_start']}, at end {f.get('loadavg_end')}; "
        "1-minute load as each row ended: "
        + ", ".join(f"{k} {v.get('load_1min')}" for k, v in r.items()),
        f"- reprolock {f['reprolock']} at commit {str(git.get('commit', '?'))[:12]}"
        + (" (with uncommitted changes)" if git.get("dirty") else "")
        + f", Python {f['python']}, zlib {f['zlib']}, zstd {f['zstd']}; docker "
        f"{f['docker_server']} ({f['docker_storage']}, legacy builder); `--jobs`: "
        + (f"`build --jobs {doc['jobs']['build']}`" if doc["jobs"]["build"] else
           "n/a (`reprolock build` has no --jobs)")
        + (f", `lock --jobs {doc['jobs']['lock']}`" if doc["jobs"]["lock"] else
           ", n/a for `lock`"),
        "",
        "### Workload",
        "",
        f"`requirements.in`: {', '.join(p['requirements'])}, locked from PyPI for linux/amd64 "
        f"over the Debian bookworm base (CPython 3.11.2): {p['packages']} packages, "
        f"{len(p['wheels'])} wheels, {p['wheelhouse_bytes'] / 1e9:.2f} GB "
        f"(torch {p['pins'].get('torch', '–')}). The wheels were fetched once into "
        f"`{p['wheelhouse']}` and the project locked again against them only, so no timed "
        "command used the network. The docker build's Dockerfile (`req.txt` is `reprolock "
        "export` of the lock):",
        "",
        "```dockerfile",
        doc["docker"]["dockerfile"].rstrip(),
        "```",
        "",
        *([f"Row 1b (a diagnostic) builds `{DOCKER_REPO}-wheels` first, untimed (`FROM` the "
           "base, then the three `COPY` lines of the Dockerfile above), and times this "
           "Dockerfile with a build context of `train.py` alone:", "", "```dockerfile",
           r["docker_prestaged"]["dockerfile"].rstrip(), "```", ""]
          if (r.get("docker_prestaged") or {}).get("dockerfile") else []),
        "### Results",
        "",
        *table(doc),
        "",
        "### How each row was measured",
        "",
        "- Cold builds: `reprolock build --output oci:DIR --compression C"
        + (f" --jobs {doc['jobs']['build']}" if doc["jobs"]["build"] else "")
        + "`, each with a fresh `REPROLOCK_CACHE_DIR` that holds only the wheel store "
        "(`artifacts/`, hard links to one filled by an earlier build): no layer and no base "
        "blob cached. Under `/usr/bin/time -v` for the peak RSS.",
        "- The floor: `bench/floor_s2.py` inflates every member of the same wheels, sha256s "
        "it and compresses it with reprolock's compressor settings (gzip: zlib raw deflate "
        "level 5 + CRC-32, except that a deflated member of 64 KiB or more is only CRC-32'd "
        "and its own deflate stream counted, as reprolock's `wheelDeflate` layers copy it "
        "(`--wheel-deflate`); zstd: level 3, one thread per stream), the members cut into "
        f"tasks of up to 64 MB spread over {f['nproc']} processes (a bigger member is one "
        "task); it writes nothing, builds no tar and skips the base layer.",
        "- docker build: legacy builder (`DOCKER_BUILDKIT=0`), `--network none`, `--no-cache`; "
        "it keeps layers uncompressed (overlay2) and compresses nothing, while reprolock's "
        "output is the compressed, pushable OCI layout. No docker warm-up build: reprolock's "
        "first build read the same wheel files (hard links) just before. The Dockerfile "
        "copies the wheelhouse into the image, so docker's time includes sending it as "
        "build context and committing that layer; row 1b shows docker's time without both. "
        "The verdicts use row 1, the Dockerfile of `bench_build.py`.",
        "- Size: the sum of the layer blob sizes in reprolock's gzip manifest (base layer "
        "included) vs the bytes of `docker save IMAGE | gzip -c` (gzip level 6, the docker "
        "tarball of the docker-built image, base included). The Dockerfile copies the "
        "wheelhouse, pip's wheel and req.txt into layers of their own; the verdict compares "
        "with docker's figure less those layers (each layer tar of the same `docker save` "
        "stream gzipped apart at level 6, matched to its step by the image history). "
        "Docker's image also holds pip's "
        "own install output (.pyc files from pip's compile step, RECORD, INSTALLER) that "
        "reprolock's does not: the two images are not the same files.",
        "- SBOM: `reprolock lock` and `reprolock lock --no-sbom` on the same offline project, "
        "each from a fresh cache holding only the wheel store (so each builds the "
        "environment image); the SBOM run twice, its file compared byte for byte; then "
        "`reprolock lock` again with nothing changed and the last run's cache, then "
        "`reprolock lock --no-sbom` the same way (the SBOM is reused when the re-lock costs "
        "no more than 25% over that). The lock file is restored afterwards.",
        "- Run: `reprolock lock --no-sbom` (not timed; `run` needs a lock that records the "
        "environment image) and `reprolock build --output docker:"
        + f"{DOCKER_REPO}-reprolock:latest` (timed), both with the warm cache of the cold "
        "gzip build; then `reprolock run --fast -q -- true` and "
        "`docker run --rm --network none --entrypoint true IMAGE`, alternated.",
    ]
    sb = r.get("sbom") or {}
    if sb.get("relock"):
        lines.append(f"- SBOM details: {sb['sbom'].get('sbom_bytes', 0) / 1e6:.1f} MB "
                     f"{sb['sbom'].get('sbom_path', '')} by {sb['sbom'].get('sbom_tool', '?')}; "
                     f"peak RSS of `lock` {_mb(sb['sbom'].get('maxrss_kb'))} with the SBOM, "
                     f"{_mb(sb['no_sbom'].get('maxrss_kb'))} without.")
    cold = r.get("cold") or {}
    for comp in ("gzip", "zstd"):
        b, fl = cold.get(comp), (r.get("floor") or {}).get(comp)
        if b and fl:
            lines.append(f"- {comp}: reprolock wrote {b['layer_bytes'] / 1e6:,.0f} MB of layers "
                         f"in {fmt_s(b['seconds'])} (CPU {b.get('cpu_s') or 0:.0f} s); the floor "
                         f"compressed {fl['inflated_bytes'] / 1e6:,.0f} MB of wheel members to "
                         f"{fl['compressed_bytes'] / 1e6:,.0f} MB in {fmt_s(fl['wall_s'])} "
                         f"(CPU {fl.get('cpu_s') or 0:.0f} s).")
    fails = [k for k, v in r.items() if v.get("error")]
    if fails:
        lines += ["", "Failed rows, with the end of their error text:", ""]
        for k in fails:
            text = "\n".join(str(r[k]["error"]).splitlines()[-12:])
            lines += [f"- {k}:", "", "  ```text", *[f"  {x}" for x in text.splitlines()],
                      "  ```"]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true",
                        help=f"use {' + '.join(SMALL)} instead of S2 (checks the script)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="only the untimed preparation (lock, wheels, wheel store)")
    parser.add_argument("--runs", type=int, default=1, help="runs of each cold command")
    parser.add_argument("--rebuild-runs", type=int, default=3)
    parser.add_argument("--run-runs", type=int, default=3, help="runs of each `run ... true`")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="--jobs for reprolock build/lock when they have it")
    parser.add_argument("--work", type=Path, default=WORK,
                        help="venv, wheelhouse, projects and scratch (kept between runs)")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--results", type=Path, default=BENCH / "results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory and "
                        "the docker images")
    parser.add_argument("--from-json", type=Path, default=None, metavar="RESULTS_JSON",
                        help="only re-render --out from an earlier run's results JSON")
    args = parser.parse_args()
    if args.from_json:
        _report.splice(args.out, SECTION, render_markdown(json.loads(args.from_json.read_text())))
        log(f"wrote {args.out} from {args.from_json}")
        return 0
    if args.runs < 1 or args.rebuild_runs < 1 or args.run_runs < 1:
        parser.error("--runs, --rebuild-runs and --run-runs must be >= 1")
    if not Path("/usr/bin/time").is_file():
        parser.error("needs GNU time at /usr/bin/time (apt-get install time)")
    for tool in ("docker", "skopeo", "gzip"):
        if not shutil.which(tool):
            parser.error(f"needs {tool}")

    name = "small" if args.small else "s2"
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    ensure_base()
    args.results.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=work))
    log(f"scratch directory {scratch}")
    ctx: S2Ctx | None = None
    try:
        venv = work / "venv"
        undeclared = ready_venv(venv)
        ctx = S2Ctx(venv, scratch, work, name)
        if _has_option(ctx, "build", "--jobs"):
            ctx.build_jobs = args.jobs
        if _has_option(ctx, "lock", "--jobs"):
            ctx.lock_jobs = args.jobs
        log(f"--jobs: build {ctx.build_jobs or 'n/a'}, lock {ctx.lock_jobs or 'n/a'}")
        facts = machine_facts(ctx)
        facts["undeclared_dependencies"] = undeclared
        facts["missing_from_wheel"] = missing_from_wheel(venv)
        log(f"reprolock {facts['reprolock']} at {facts['git'].get('commit', '?')[:12]}, "
            f"docker {facts['docker_server']}")

        start = time.perf_counter()
        prepared = prepare_project(ctx, SMALL if args.small else S2)
        docker = prepare_docker(ctx)
        prepared["wheel_cache"] = prepare_wheel_cache(ctx)
        prepared["seconds"] = time.perf_counter() - start
        log(f"preparation done in {prepared['seconds']:.0f} s: {prepared['packages']} packages, "
            f"{prepared['wheelhouse_bytes'] / 1e9:.2f} GB of wheels in {ctx.wheelhouse}")
        if args.prepare_only:
            (args.results / f"s2-{name}-prepared.json").write_text(
                json.dumps({"facts": facts, "prepared": prepared}, indent=2, default=str))
            return 0

        rows = measure(ctx, args)
        facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        stamp = time.strftime("%Y%m%dT%H%M%S")
        prefix = "s2" if name == "s2" else f"s2-{name}"
        doc: dict[str, Any] = {
            "set": name, "facts": facts, "prepared": prepared, "docker": docker,
            "rows": rows, "targets": TARGETS, "runs": args.runs,
            "jobs": {"build": ctx.build_jobs, "lock": ctx.lock_jobs},
            "results_file": f"{prefix}-{stamp}.json",
        }
        for fname in (doc["results_file"], f"{prefix}-latest.json"):
            (args.results / fname).write_text(json.dumps(doc, indent=2, default=str))
        _report.splice(args.out, SECTION, render_markdown(doc))
        log(f"wrote {args.out}")
        print("\n".join(table(doc)))
        return 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if ctx is not None and not args.keep and not args.prepare_only:
            # newest first: a parent image goes after the images built on it
            tags = [*reversed(dict.fromkeys(ctx.docker_images)), DOCKER_BASE]
            if tags:
                subprocess.run(["docker", "rmi", "--force", *tags], capture_output=True,
                               check=False)
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
