#!/usr/bin/env python3
"""Benchmark ``reprolock lock`` against the plain resolvers it drives, side by side.

    python bench/bench_lock.py [--runs N] [--out docs/benchmarks.md]

Requirement set S1 (numpy, pandas, scikit-learn, matplotlib, requests, pyyaml) is
resolved from PyPI (this benchmark uses the network; the test suite never does):

* ``uv pip compile --generate-hashes ...`` vs ``reprolock lock`` with ``resolver = "uv"``,
  cold (fresh uv, pip, XDG and reprolock caches) and warm (median of N runs); plain uv runs
  twice over: with exactly reprolock's arguments, and as a user types it (USER_UV_ARGS,
  without ``--python``, so uv searches PATH for a matching interpreter);
* ``pip-compile --generate-hashes ...`` vs ``reprolock lock`` with
  ``resolver = "pip-tools"``, cold and warm;
* ``reprolock lock --check`` (30 runs, hyperfine when installed) next to
  ``python -c pass`` of the same interpreter as a floor.

reprolock runs from a venv made for the run (non-editable ``pip install`` of this
checkout, so its .pyc files exist), with ``PYTHONDONTWRITEBYTECODE`` unset and the
machine's pip configuration kept out (``PIP_CONFIG_FILE=/dev/null``, other ``PIP_*``
and ``UV_*`` variables removed). The plain tools are the same binaries from that venv
and get the arguments reprolock passes (reprolock/resolver/uv.py, piptools.py).

Writes ``docs/benchmarks.md`` and the raw numbers as JSON in ``bench/results/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import splice  # bench/_report.py: one file, one section per benchmark

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
BASE_DIR = REPO / "fixtures" / "example" / ".reprolock" / "base"
BASE_TAG = "bookworm"
S1 = ["numpy", "pandas", "scikit-learn", "matplotlib", "requests", "pyyaml"]

# The target the Debian bookworm base gives (python3 3.11.2, glibc 2.36); reprolock
# derives the same values from the base image (Target.uv_platform).
PY_VERSION = "3.11.2"
UV_PLATFORM = "x86_64-manylinux_2_36"

# What reprolock/resolver/uv.py and piptools.py pass, with the project-relative input
# first and out.txt in place of reprolock's scratch file. These are only the fallback:
# tool_argv() asks the installed reprolock for the exact arguments it passes today.
UV_ARGS = ["pip", "compile", "requirements.in", "--generate-hashes", "--no-header",
           "--annotation-style", "split", "--no-config", "--quiet", "--only-binary", ":all:",
           "--python-version", PY_VERSION, "--python-platform", UV_PLATFORM,
           "--output-file", "out.txt"]
PIPTOOLS_ARGS = ["requirements.in", "--generate-hashes", "--allow-unsafe", "--no-header",
                 "--annotate", "--no-emit-index-url", "--no-emit-trusted-host", "--no-config",
                 "--strip-extras", "--quiet", "--output-file", "out.txt",
                 "--pip-args", "--only-binary=:all:"]
# "uv as a user runs it": the command a user would type for the same target. Without
# --python, uv looks for an interpreter that matches --python-version on PATH (it queries
# each python it finds, pyenv shims included), which reprolock spares it by naming its own.
USER_UV_ARGS = ["pip", "compile", "requirements.in", "--generate-hashes",
                "--python-platform", UV_PLATFORM, "--python-version", PY_VERSION,
                "-o", "out.txt"]
LOCK_ARGS = ["lock", "--quiet"]  # plus --no-build when lock can build an image (lock_args)
CHECK_ARGS = ["lock", "--check"]

TARGETS = {"uv": 1.3, "pip-tools": 1.1, "check_ms": 150.0}


class BenchError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- environment

def clean_env(venv: Path, caches: Path | None) -> dict[str, str]:
    """The environment every measured command gets: no machine pip/uv config, .pyc allowed."""
    drop_exact = {"PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME",
                  "XDG_CACHE_HOME", "PYTHONPYCACHEPREFIX"}
    env = {k: v for k, v in os.environ.items()
           if k not in drop_exact and not k.startswith(("PIP_", "UV_", "REPROLOCK_"))}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["UV_NO_PROGRESS"] = "1"  # reprolock sets it for uv; the plain run gets it too
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    if caches is not None:
        env.update(cache_vars(caches))
    return env


def cache_vars(root: Path) -> dict[str, str]:
    dirs = {"UV_CACHE_DIR": root / "uv", "PIP_CACHE_DIR": root / "pip",
            "XDG_CACHE_HOME": root / "xdg", "REPROLOCK_CACHE_DIR": root / "reprolock"}
    for path in dirs.values():
        path.mkdir(parents=True, exist_ok=True)
    return {k: str(v) for k, v in dirs.items()}


def run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
        what: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise BenchError(f"{what} failed (exit {proc.returncode}): {' '.join(argv)}\n"
                         f"{proc.stderr[-4000:] or proc.stdout[-4000:]}")
    return proc


def timed(argv: list[str], *, cwd: Path, env: dict[str, str], what: str) -> float:
    start = time.perf_counter()
    run(argv, cwd=cwd, env=env, what=what)
    return time.perf_counter() - start


def ensure_base() -> None:
    if (BASE_DIR / "index.json").is_file():
        return
    log("base image missing; making it with fixtures/make_base.py (about a minute)")
    run([sys.executable, str(REPO / "fixtures" / "make_base.py"), str(BASE_DIR)],
        cwd=REPO, what="fixtures/make_base.py")


def make_venv(venv: Path) -> None:
    log(f"creating venv {venv} and installing {REPO} (non-editable)")
    base_env = clean_env(venv, None)
    run([sys.executable, "-m", "venv", str(venv)], env=base_env, what="python -m venv")
    py = str(venv / "bin" / "python")
    with tempfile.TemporaryDirectory(prefix="reprolock-bench-pipcache-") as pipcache:
        env = {**base_env, "PIP_CACHE_DIR": pipcache}
        run([py, "-m", "pip", "install", "--quiet", "--upgrade", "pip"], env=env,
            what="pip install --upgrade pip")
        run([py, "-m", "pip", "install", "--quiet", str(REPO)], env=env,
            what=f"pip install {REPO}")
    pycs = list((venv / "lib").glob("python3*/site-packages/reprolock/__pycache__/*.pyc"))
    if not pycs:
        raise BenchError("reprolock was installed without .pyc files")


# Imports every reprolock module and prints the top-level names that are not installed.
_FIND_MISSING = """
import importlib, pkgutil, reprolock
missing = set()
for info in pkgutil.walk_packages(reprolock.__path__, "reprolock."):
    if info.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(info.name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("reprolock"):
            missing.add(exc.name.split(".")[0])
print(" ".join(sorted(missing)))
"""


def missing_from_wheel(venv: Path) -> list[str]:
    """Modules of the checkout that the installed wheel lacks (a packaging bug if any)."""
    site = next((venv / "lib").glob("python3*/site-packages"))
    have = {p.relative_to(site).as_posix() for p in (site / "reprolock").rglob("*.py")}
    want = {p.relative_to(REPO).as_posix() for p in (REPO / "reprolock").rglob("*.py")}
    return sorted(want - have)


def install_missing(venv: Path) -> list[str]:
    """Install modules reprolock imports but does not declare; return their names.

    A clean non-editable install must run on its own, so anything listed here is a
    packaging bug in pyproject.toml; the benchmark installs it to go on and reports it.
    """
    env = clean_env(venv, None)
    py = str(venv / "bin" / "python")
    added: list[str] = []
    for _ in range(5):
        missing = run([py, "-c", _FIND_MISSING], env=env, what="import check").stdout.split()
        missing = [m for m in missing if m not in added]
        if not missing:
            return added
        log(f"WARNING: reprolock imports undeclared modules {missing}; installing them")
        run([py, "-m", "pip", "install", "--quiet", *missing], env=env,
            what=f"pip install {' '.join(missing)}")
        added += missing
    return added


def make_project(root: Path, resolver: str) -> Path:
    root.mkdir(parents=True)
    (root / "requirements.in").write_text("\n".join(S1) + "\n", encoding="utf-8")
    if resolver:
        (root / "reprolock.toml").write_text(
            f'base = "oci-layout:{BASE_DIR}:{BASE_TAG}"\n'
            'platform = "linux/amd64"\n'
            f'resolver = "{resolver}"\n\n'
            "[dependencies]\n"
            'requirements = ["requirements.in"]\n', encoding="utf-8")
    return root


# --------------------------------------------------------------------------- facts

# Runs both resolvers of the installed reprolock with its process runner replaced, and
# prints the argv each would run for the benchmark's target (nothing is resolved).
_CAPTURE = """
import json, sys
from pathlib import Path
from reprolock.resolver.interface import IndexSettings, ResolveRequest
from reprolock.target import Platform, Target
import reprolock.resolver.uv as uv_mod, reprolock.resolver.piptools as pt_mod

class Captured(Exception):
    pass

seen = {}
def capturing(real, key):
    def fake(argv, **kw):
        if "compile" in argv:
            seen[key] = [str(a) for a in argv]
            raise Captured
        return real(argv, **kw)
    return fake

root = Path(sys.argv[1])
target = Target(Platform.parse("linux/amd64"), sys.argv[2], "glibc", sys.argv[3])
request = ResolveRequest(root=root, inputs=(root / "requirements.in",), target=target,
                         index=IndexSettings())
for key, mod, cls in (("uv", uv_mod, uv_mod.UvResolver), ("pip-tools", pt_mod,
                                                          pt_mod.PipToolsResolver)):
    mod.run = capturing(mod.run, key)
    try:
        cls().resolve(request)
    except Captured:
        pass
print(json.dumps(seen))
"""


def tool_argv(venv: Path, project: Path, uv_bin: str) -> tuple[list[str], list[str], str]:
    """The plain commands, with exactly the arguments the installed reprolock passes."""
    env = clean_env(venv, None)
    fallback = ([uv_bin, *UV_ARGS], [str(venv / "bin" / "pip-compile"), *PIPTOOLS_ARGS],
                "fallback (bench_lock.py's copy)")
    try:
        seen = json.loads(run([str(venv / "bin" / "python"), "-c", _CAPTURE, str(project),
                               PY_VERSION, "2.36"], cwd=project, env=env,
                              what="capture resolver arguments").stdout)
        uv, pt = seen["uv"], seen["pip-tools"]
    except (BenchError, KeyError, ValueError) as exc:
        log(f"WARNING: could not capture reprolock's resolver arguments ({exc}); using the "
            "copies in bench_lock.py")
        return fallback
    uv = [uv_bin, *uv[1:]]
    if pt[1:4] != ["-m", "piptools", "compile"]:
        log(f"WARNING: unexpected pip-tools command {pt[:4]}; using the copy in bench_lock.py")
        return fallback
    pt = [str(venv / "bin" / "pip-compile"), *pt[4:]]
    for argv in (uv, pt):
        argv[argv.index("--output-file") + 1] = "out.txt"
    return uv, pt, "captured from the installed reprolock"


def lock_args(venv: Path, env: dict[str, str]) -> list[str]:
    """``reprolock lock`` resolving only: once lock also builds an image, pass --no-build."""
    helptext = run([str(venv / "bin" / "reprolock"), "lock", "--help"], env=env,
                   what="reprolock lock --help").stdout
    return [*LOCK_ARGS, "--no-build"] if "--no-build" in helptext else list(LOCK_ARGS)


def machine_facts(venv: Path, env: dict[str, str]) -> dict[str, Any]:
    py = str(venv / "bin" / "python")
    cpu = "unknown"
    mem = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    nproc = run(["nproc"], what="nproc").stdout.strip()
    pyver = run([py, "-c", "import sys; print(sys.version.split()[0])"], env=env,
                what="python").stdout.strip()
    uv_bin = uv_binary(venv, env)
    uv_ver = run([uv_bin, "--version"], env=env, what="uv --version").stdout.strip()
    meta = run([py, "-c", "import importlib.metadata as m; "
                "print(m.version('pip-tools'), m.version('pip'), m.version('reprolock'))"],
               env=env, what="versions").stdout.split()
    git: dict[str, Any] = {}
    try:
        git["commit"] = run(["git", "-C", str(REPO), "rev-parse", "HEAD"],
                            what="git").stdout.strip()
        # only what goes into the installed reprolock counts (bench/ and docs/ change
        # while benchmarks are written)
        git["dirty"] = bool(run(["git", "-C", str(REPO), "status", "--porcelain",
                                 "--untracked-files=no", "--", "reprolock", "pyproject.toml",
                                 "schemas"], what="git").stdout.strip())
    except (BenchError, OSError):
        pass
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": nproc, "cpu": cpu, "memory": mem,
        "kernel": platform.release(), "os": _os_name(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "python": pyver, "python_path": py,
        "uv": uv_ver, "uv_path": uv_bin, "pip_tools": meta[0], "pip": meta[1],
        "reprolock": meta[2], "git": git,
        "hyperfine": shutil.which("hyperfine") and run(
            ["hyperfine", "--version"], what="hyperfine").stdout.strip(),
    }


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.platform()


def uv_binary(venv: Path, env: dict[str, str]) -> str:
    """The uv binary reprolock itself runs: the one the ``uv`` PyPI package ships."""
    return run([str(venv / "bin" / "python"), "-c",
                "from uv import find_uv_bin; print(find_uv_bin())"], env=env,
               what="find uv").stdout.strip()


# --------------------------------------------------------------------------- measuring

@dataclass
class Pair:
    """One plain tool and reprolock driving it."""

    name: str
    plain: list[str]
    reprolock: list[str]
    plain_dir: Path
    reprolock_dir: Path
    # Optional second plain command (uv as a user types it), measured in the same rounds.
    user: list[str] | None = None
    user_dir: Path | None = None
    cold: dict[str, float] = field(default_factory=dict)
    warm: dict[str, list[float]] = field(default_factory=dict)

    def commands(self) -> list[tuple[str, list[str], Path]]:
        out = [("plain", self.plain, self.plain_dir),
               ("reprolock", self.reprolock, self.reprolock_dir)]
        if self.user is not None and self.user_dir is not None:
            out.append(("user", self.user, self.user_dir))
        return out

    def measure_cold(self, venv: Path, scratch: Path) -> None:
        # reprolock first: anything a CDN warms on the first fetch then favours the plain run.
        cmds = self.commands()
        for who, argv, cwd in [cmds[1], cmds[0], *cmds[2:]]:
            caches = Path(tempfile.mkdtemp(prefix=f"cold-{self.name}-{who}-", dir=scratch))
            _reset_outputs(cwd)
            log(f"{self.name} cold, {who}: {' '.join(argv)}")
            self.cold[who] = timed(argv, cwd=cwd, env=clean_env(venv, caches),
                                   what=f"{self.name} cold {who}")
            log(f"  {self.cold[who]:.2f} s")
            shutil.rmtree(caches, ignore_errors=True)

    def measure_warm(self, venv: Path, caches: Path, runs: int) -> None:
        env = clean_env(venv, caches)
        self.warm = {who: [] for who, _, _ in self.commands()}
        for who, argv, cwd in self.commands():
            log(f"{self.name} warm-up, {who}")
            timed(argv, cwd=cwd, env=env, what=f"{self.name} warm-up {who}")
        for i in range(runs):
            order = self.commands()
            if i % 2:
                order.reverse()  # ABBA (ABCCBA) order: drift hits every command alike
            for who, argv, cwd in order:
                t = timed(argv, cwd=cwd, env=env, what=f"{self.name} warm {who}")
                self.warm[who].append(t)
            log(f"{self.name} warm run {i + 1}/{runs}: "
                + ", ".join(f"{who} {v[-1]:.2f} s" for who, v in self.warm.items()))

    def summary(self) -> dict[str, Any]:
        warm = {k: statistics.median(v) for k, v in self.warm.items()}
        out: dict[str, Any] = {
            "cold_s": self.cold, "warm_runs_s": self.warm, "warm_median_s": warm,
            "cold_ratio": self.cold["reprolock"] / self.cold["plain"],
            "warm_ratio": warm["reprolock"] / warm["plain"],
            "argv": {"plain": self.plain, "reprolock": self.reprolock},
        }
        if "user" in warm:
            out["cold_ratio_user"] = self.cold["reprolock"] / self.cold["user"]
            out["warm_ratio_user"] = warm["reprolock"] / warm["user"]
            out["argv"]["user"] = self.user
        return out


def _reset_outputs(project: Path) -> None:
    for name in ("out.txt", "reprolock.lock.json"):
        (project / name).unlink(missing_ok=True)


def measure_check(venv: Path, project: Path, env: dict[str, str], runs: int,
                  results: Path) -> dict[str, Any]:
    reprolock = str(venv / "bin" / "reprolock")
    py = str(venv / "bin" / "python")
    commands = {"reprolock lock --check": [reprolock, *CHECK_ARGS],
                "python -c pass": [py, "-c", "pass"]}
    run(commands["reprolock lock --check"], cwd=project, env=env, what="reprolock lock --check")
    hyperfine = shutil.which("hyperfine")
    out: dict[str, Any] = {"runs": runs, "tool": "hyperfine" if hyperfine else "perf_counter loop"}
    if hyperfine:
        export = results / "check-hyperfine.json"
        argv = [hyperfine, "--shell=none", "--warmup", "3", "--runs", str(runs),
                "--export-json", str(export), "--style", "basic"]
        for name, cmd in commands.items():
            argv += ["--command-name", name, " ".join(cmd)]
        log("check: " + " ".join(argv))
        run(argv, cwd=project, env=env, what="hyperfine")
        doc = json.loads(export.read_text())
        for item in doc["results"]:
            out[item["command"]] = {"median_s": item["median"], "mean_s": item["mean"],
                                    "stddev_s": item["stddev"], "min_s": item["min"],
                                    "max_s": item["max"], "times_s": item["times"]}
        out["hyperfine_argv"] = argv
    else:
        for name, cmd in commands.items():
            for _ in range(3):
                timed(cmd, cwd=project, env=env, what=name)
            times = [timed(cmd, cwd=project, env=env, what=name) for _ in range(runs)]
            out[name] = {"median_s": statistics.median(times), "mean_s": statistics.fmean(times),
                         "stddev_s": statistics.stdev(times), "min_s": min(times),
                         "max_s": max(times), "times_s": times}
    return out


def pins_of(project: Path) -> dict[str, str]:
    out = project / "out.txt"
    if out.is_file():
        pins = {}
        for line in out.read_text().splitlines():
            m = re.match(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)", line)
            if m:
                pins[re.sub(r"[-_.]+", "-", m.group(1)).lower()] = m.group(2)
        return pins
    lock = json.loads((project / "reprolock.lock.json").read_text())
    return {p["name"]: p["version"] for p in lock["packages"]}


def lock_stats(project: Path) -> dict[str, Any]:
    lock = json.loads((project / "reprolock.lock.json").read_text())
    pkgs = lock["packages"]
    return {"packages": len(pkgs), "hashes": sum(len(p.get("hashes", [])) for p in pkgs),
            "artifact_bytes": sum(p.get("artifact", {}).get("size") or 0 for p in pkgs)}


# --------------------------------------------------------------------------- profiling

# Phases of ``reprolock lock``, found in a cProfile by (file suffix, function name) so
# that line-number changes do not matter; a phase the code no longer has shows "n/a".
PHASES = [
    ("read the previous lock", "reprolock/workflows/lock.py", "_previous"),
    ("base image: open, resolve, probe", "reprolock/workflows/lock.py", "_base"),
    ("resolver (subprocess, with its --version call)", "reprolock/resolver/", "resolve"),
    ("index pages: fetch and parse every pinned project's page",
     "reprolock/index/simple.py", "files_for"),
    ("wheel file lists (modules) and choosing artifacts", "reprolock/workflows/lock.py",
     "_packages"),
    ("validate and write the lock", "reprolock/lock/io.py", "write_lock"),
    ("code set and import scan (beside the resolver)", "reprolock/workflows/lock.py",
     "_scan_code"),
]


def profile_lock(venv: Path, project: Path, env: dict[str, str], results: Path,
                 lock_argv: list[str], scratch: Path) -> dict[str, Any]:
    """Where ``reprolock lock`` spends its time: imports, and cProfile of a warm and a cold run."""
    py = str(venv / "bin" / "python")
    log("profiling reprolock lock (-X importtime; cProfile warm and cold)")
    done = run([py, "-X", "importtime", "-m", "reprolock", *lock_argv], cwd=project, env=env,
               what="importtime")
    (results / "lock-importtime.txt").write_text(done.stderr)
    imports = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(3)) == 1:  # top-level imports only
            imports.append((m.group(4), int(m.group(2)) / 1e6))
    imports.sort(key=lambda x: -x[1])
    out: dict[str, Any] = {"imports_top": imports[:15],
                           "imports_total_s": sum(t for _, t in imports)}
    cold_project = scratch / "projects" / "profile-cold"
    shutil.copytree(project, cold_project)
    _reset_outputs(cold_project)
    cold_caches = Path(tempfile.mkdtemp(prefix="profile-cold-", dir=scratch))
    for label, cwd, run_env in (("warm", project, env),
                                ("cold", cold_project, clean_env(venv, cold_caches))):
        prof = results / f"lock-cprofile-{label}.out"
        start = time.perf_counter()
        run([py, "-m", "cProfile", "-o", str(prof), "-m", "reprolock", *lock_argv], cwd=cwd,
            env=run_env, what=f"cProfile ({label})")
        wall = time.perf_counter() - start
        with open(results / f"lock-cprofile-{label}.txt", "w") as handle:
            pstats.Stats(str(prof), stream=handle).sort_stats("cumulative").print_stats(80)
        out[label] = {"wall_s": wall, "phases": _phases(pstats.Stats(str(prof)))}
    return out


def _phases(stats: pstats.Stats) -> list[dict[str, Any]]:
    table: dict[tuple[str, str], float] = {}
    for (filename, _line, func), entry in stats.stats.items():  # type: ignore[attr-defined]
        for _label, suffix, name in PHASES:
            if func == name and suffix in filename:
                table[(suffix, name)] = table.get((suffix, name), 0.0) + entry[3]
    rows = []
    for label, suffix, name in PHASES:
        value = table.get((suffix, name))
        if name == "_packages" and value is not None:
            value -= table.get(("reprolock/index/simple.py", "files_for"), 0.0)
        rows.append({"phase": label, "function": f"{name}", "seconds": value})
    return rows


# --------------------------------------------------------------------------- report

def fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_delta(seconds: float) -> str:
    return ("+" if seconds >= 0 else "−") + fmt_s(abs(seconds))


def met(ok: bool) -> str:
    return "**met**" if ok else "**not met**"


def render_markdown(doc: dict[str, Any]) -> str:
    """The lock section of docs/benchmarks.md (spliced in by ``_report.splice``)."""
    f = doc["facts"]
    uv, pt, ck = doc["uv"], doc["pip-tools"], doc["check"]
    has_user = "warm_ratio_user" in uv
    check_med = ck["reprolock lock --check"]["median_s"]
    floor_med = ck["python -c pass"]["median_s"]
    git = f.get("git", {})
    rev = (f"{git.get('commit', '?')[:12]}"
           f"{' (uncommitted changes in reprolock/)' if git.get('dirty') else ''}")
    venv = doc.get("venv") or "\0"

    def shown(argv: list[str]) -> str:
        return " ".join(a.replace(venv, "$VENV") for a in argv)

    lines = [
        "## Lock: `reprolock lock` vs uv and pip-tools (issue 2)",
        "",
        "Made by `python bench/bench_lock.py` (see `bench/README.md`); the raw numbers of this "
        f"run are in `bench/results/{doc['results_file']}` (not committed). Everything below "
        "was measured in one run, side by side, so the ratios compare like with like; absolute "
        "times depend on PyPI and the network at the time.",
        "",
        "### Machine (lock run)",
        "",
        f"- date: {f['date']}",
        f"- CPU: {f['cpu']}, nproc {f['nproc']}, memory {f['memory']}",
        f"- OS: {f['os']}, kernel {f['kernel']}",
        f"- load average (1, 5, 15 min) at start {f.get('loadavg_start')}, at end "
        f"{f.get('loadavg_end')} (other work on the machine shows here)",
        f"- Python {f['python']} (the venv reprolock runs from; pip {f['pip']})",
        f"- {f['uv']} (the binary of the `uv` PyPI package, which reprolock runs), "
        f"pip-tools {f['pip_tools']}",
        f"- reprolock {f['reprolock']}, commit {rev}, installed non-editable "
        "(`pip install .`, .pyc files present), `PYTHONDONTWRITEBYTECODE` unset",
        *([f"- **packaging bug**: reprolock imports {', '.join(f['undeclared_dependencies'])} "
           "without declaring it in pyproject.toml; the benchmark installed it into the venv "
           "to go on"] if f.get("undeclared_dependencies") else []),
        *([f"- **packaging bug**: the wheel lacks {', '.join(f['missing_from_wheel'])}"]
          if f.get("missing_from_wheel") else []),
        f"- timing of `lock --check`: {ck['tool']}"
        + (f" ({f['hyperfine']})" if ck["tool"] == "hyperfine" else ""),
        "",
        "### Workload: requirement set S1",
        "",
        f"`requirements.in`: {', '.join(S1)}; resolved from PyPI for the Debian bookworm base "
        f"(`oci-layout:fixtures/example/.reprolock/base:{BASE_TAG}`: CPython {PY_VERSION}, "
        f"glibc 2.36, linux/amd64). The lock holds {doc['lock_stats']['packages']} packages "
        f"with {doc['lock_stats']['hashes']} sha256 hashes; the chosen wheels total "
        f"{doc['lock_stats']['artifact_bytes'] / 1e6:.0f} MB.",
        "",
        "The project's `reprolock.toml`:",
        "",
        "```toml",
        doc["config_example"].rstrip(),
        "```",
        "",
        "### Commands",
        "",
        "Every command runs in the project directory with `PIP_CONFIG_FILE=/dev/null`, no other "
        "`PIP_*`/`UV_*` variables, `UV_NO_PROGRESS=1`, reprolock's venv active (`VIRTUAL_ENV`, "
        "its `bin` first on `PATH`), and `UV_CACHE_DIR`, `PIP_CACHE_DIR`, "
        "`XDG_CACHE_HOME` and `REPROLOCK_CACHE_DIR` pointing at fresh empty directories (cold) or "
        "at one shared directory warmed by a first run of each command (warm). The plain tools are "
        "the binaries in reprolock's venv (`$VENV` below). \"Identical arguments\" means "
        "exactly the arguments "
        f"reprolock passes them ({f.get('plain_argv_source', '?')})"
        + ("; \"as a user runs it\" is the uv command a user would type for the same target, "
           "without reprolock's `--python` (uv then looks on `PATH` for an interpreter that "
           "matches `--python-version 3.11.2`, querying each `python*` it finds, pyenv shims "
           "included, and settles on Debian's `/usr/bin/python3.11`)." if has_user else "."),
        "",
        "```sh",
        "# uv, identical arguments",
        shown(["uv", *doc["uv"]["argv"]["plain"][1:]]),
        *(["# uv, as a user runs it", shown(["uv", *doc["uv"]["argv"]["user"][1:]])]
          if has_user else []),
        f"reprolock {' '.join(doc['uv']['argv']['reprolock'][1:])}   # resolver = \"uv\"",
        "# pip-tools",
        shown(["pip-compile", *doc["pip-tools"]["argv"]["plain"][1:]]),
        f"reprolock {' '.join(doc['pip-tools']['argv']['reprolock'][1:])}   "
        "# resolver = \"pip-tools\"",
        "# check (offline)",
        f"hyperfine --shell=none --warmup 3 --runs {ck['runs']} 'reprolock lock --check' "
        "'python -c pass'",
        "```",
        "",
        "- **cold**: once per command (a single sample: network noise of several seconds is "
        "normal at pip-compile's scale), every cache empty, no earlier `out.txt`/lock "
        "(reprolock also probes the base image and reads the wheels' file lists over HTTP range "
        "requests: work plain uv does not do).",
        f"- **warm**: median of {doc['runs']} runs per command after one warm-up run, the commands "
        "of a tool alternating (ABBA; ABCCBA for uv's three). The previous run's `out.txt` / "
        "`reprolock.lock.json` stays in place, as when a user re-locks; every command then starts "
        "from its earlier pins.",
        "",
        "### Results",
        "",
        "| measurement | plain tool | reprolock | reprolock − plain | reprolock / plain | "
        "target | |",
        "|---|---:|---:|---:|---:|---|---|",
    ]

    def row(label: str, plain: float, rl: float, target: float) -> str:
        ratio = rl / plain
        return (f"| {label} | {fmt_s(plain)} | {fmt_s(rl)} | {fmt_delta(rl - plain)} | "
                f"{ratio:.2f}x | ≤ {target}x | {met(ratio <= target)} |")

    variants = [("plain", "identical arguments")]
    if has_user:
        variants.append(("user", "as a user runs it"))
    for who, what in variants:
        lines.append(row(f"uv ({what}), cold", uv["cold_s"][who], uv["cold_s"]["reprolock"],
                         TARGETS["uv"]))
    for who, what in variants:
        lines.append(row(f"uv ({what}), warm (median of {doc['runs']})",
                         uv["warm_median_s"][who], uv["warm_median_s"]["reprolock"],
                         TARGETS["uv"]))
    lines.append(row("pip-tools, cold", pt["cold_s"]["plain"], pt["cold_s"]["reprolock"],
                     TARGETS["pip-tools"]))
    lines.append(row(f"pip-tools, warm (median of {doc['runs']})", pt["warm_median_s"]["plain"],
                     pt["warm_median_s"]["reprolock"], TARGETS["pip-tools"]))
    lines.append(f"| `lock --check` (median of {ck['runs']}) vs `python -c pass` | "
                 f"{fmt_s(floor_med)} | {fmt_s(check_med)} | {fmt_delta(check_med - floor_med)} | "
                 f"{check_med / floor_med:.1f}x | "
                 f"< {TARGETS['check_ms']:.0f} ms | "
                 f"{met(check_med * 1000 < TARGETS['check_ms'])} |")
    names = {"plain": "plain (identical arguments)", "user": "plain (as a user runs it)",
             "reprolock": "reprolock"}
    lines += [
        "",
        "Warm runs, every value (seconds):",
        "",
    ]
    for key in ("uv", "pip-tools"):
        for who, vals in doc[key]["warm_runs_s"].items():
            label = names[who] if key == "uv" else who
            lines.append(f"- {key}, {label}: " + ", ".join(f"{v:.2f}" for v in vals))
    c = ck["reprolock lock --check"]
    p = ck["python -c pass"]
    lines += [
        f"- `lock --check`: median {fmt_s(c['median_s'])}, mean {fmt_s(c['mean_s'])} "
        f"± {c['stddev_s'] * 1000:.0f} ms, min {fmt_s(c['min_s'])}, max {fmt_s(c['max_s'])}; "
        f"`python -c pass`: median {fmt_s(p['median_s'])}, min {fmt_s(p['min_s'])}",
        "",
        "### Targets (issue 2)",
        "",
        f"- `reprolock lock` with the uv resolver within {TARGETS['uv']}x of uv with identical "
        f"arguments: warm {uv['warm_ratio']:.2f}x {met(uv['warm_ratio'] <= TARGETS['uv'])}, "
        f"cold {uv['cold_ratio']:.2f}x {met(uv['cold_ratio'] <= TARGETS['uv'])}.",
    ]
    if has_user:
        lines.append(
            f"- the same against uv as a user runs it (no `--python`): warm "
            f"{uv['warm_ratio_user']:.2f}x {met(uv['warm_ratio_user'] <= TARGETS['uv'])}, cold "
            f"{uv['cold_ratio_user']:.2f}x {met(uv['cold_ratio_user'] <= TARGETS['uv'])}. "
            "The identical-arguments ratio is the fair measure of reprolock's own overhead; the "
            "user-style ratio is what a user switching from plain uv would see on this machine, "
            "where most of the gap between the two plain commands is uv's interpreter search.")
    lines += [
        f"- `reprolock lock` with the pip-tools resolver within {TARGETS['pip-tools']}x of "
        f"pip-compile: warm {pt['warm_ratio']:.2f}x "
        f"{met(pt['warm_ratio'] <= TARGETS['pip-tools'])}, "
        f"cold {pt['cold_ratio']:.2f}x {met(pt['cold_ratio'] <= TARGETS['pip-tools'])}.",
        f"- `reprolock lock --check` median under {TARGETS['check_ms']:.0f} ms: "
        f"{fmt_s(check_med)} {met(check_med * 1000 < TARGETS['check_ms'])} "
        f"(the interpreter alone takes {fmt_s(floor_med)}).",
        "",
        "### Same pins",
        "",
    ]
    for key in ("uv", "pip-tools"):
        same = doc["pins"][key]
        lines.append(f"- {key}: plain (identical arguments) and reprolock pinned "
                     + ("the same versions." if same["same"] else
                        f"different versions: {same['diff']}"))
        if "user_diff" in same:
            lines.append(f"- {key}: plain (as a user runs it) and reprolock pinned "
                         + ("the same versions." if not same["user_diff"] else
                            f"different versions: {same['user_diff']}"))
    prof = doc.get("profile")
    if prof:
        user_note = (f"; as a user runs it: warm {fmt_s(uv['warm_median_s']['user'])}, cold "
                     f"{fmt_s(uv['cold_s']['user'])}" if has_user else "")
        lines += [
            "",
            "### Where `reprolock lock` (uv resolver) spends its time",
            "",
            "One extra warm and one extra cold run under cProfile (profiler overhead included; "
            "threads are not profiled, so a phase that runs a thread pool is the wall time it "
            "waits, and n/a marks a phase that ran in a thread only or no longer exists: "
            "reprolock now runs the resolver in a thread while it scans the code). Plain uv in "
            "the same run, identical arguments: warm "
            f"{fmt_s(uv['warm_median_s']['plain'])}, cold {fmt_s(uv['cold_s']['plain'])}"
            f"{user_note}.",
            "",
            "| phase | warm | cold |",
            "|---|---:|---:|",
            f"| whole run under cProfile | {fmt_s(prof['warm']['wall_s'])} | "
            f"{fmt_s(prof['cold']['wall_s'])} |",
            f"| imports (`-X importtime`, sum of top-level imports) | "
            f"{fmt_s(prof['imports_total_s'])} | |",
        ]
        for warm_row, cold_row in zip(prof["warm"]["phases"], prof["cold"]["phases"],
                                      strict=True):
            w, c2 = warm_row["seconds"], cold_row["seconds"]
            lines.append(f"| {warm_row['phase']} (`{warm_row['function']}`) | "
                         f"{'n/a' if w is None else fmt_s(w)} | "
                         f"{'n/a' if c2 is None else fmt_s(c2)} |")
        lines += [
            "",
            "Largest top-level imports:",
            "",
            ", ".join(f"`{name}` {fmt_s(t)}" for name, t in prof["imports_top"][:8]),
            "",
            "Full profiles: `bench/results/lock-cprofile-warm.txt`, "
            "`bench/results/lock-cprofile-cold.txt`, `bench/results/lock-importtime.txt`.",
        ]
    lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- main

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="warm runs per command (median)")
    parser.add_argument("--check-runs", type=int, default=30, help="runs of lock --check")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "benchmarks.md",
                        help="Markdown report to write")
    parser.add_argument("--results", type=Path, default=BENCH / "results",
                        help="directory for raw JSON results")
    parser.add_argument("--venv", type=Path, default=None,
                        help="reuse this venv (made if missing) instead of a temporary one")
    parser.add_argument("--skip-cold", action="store_true",
                        help="warm runs only (for quick iterations; the report needs cold)")
    parser.add_argument("--profile", action="store_true",
                        help="profile reprolock lock even when it is within the uv target")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--from-json", type=Path, default=None, metavar="RESULTS_JSON",
                        help="only re-render --out from an earlier run's results JSON")
    args = parser.parse_args()
    if args.from_json:
        earlier = json.loads(args.from_json.read_text())
        splice(args.out, "lock", render_markdown(earlier))
        log(f"wrote {args.out} from {args.from_json}")
        return 0
    if sys.version_info < (3, 11):  # noqa: UP036 - run by hand with whatever python is on PATH
        parser.error("run with Python 3.11 or later (reprolock needs it)")
    if args.runs < 1 or args.check_runs < 2:
        parser.error("--runs must be >= 1 and --check-runs >= 2")

    ensure_base()
    args.results.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="reprolock-bench-"))
    log(f"scratch directory {scratch}")
    try:
        venv = args.venv.resolve() if args.venv else scratch / "venv"
        undeclared = ready_venv(venv)
        facts = machine_facts(venv, clean_env(venv, None))
        facts["undeclared_dependencies"] = undeclared
        facts["missing_from_wheel"] = missing_from_wheel(venv)
        if facts["missing_from_wheel"]:
            log(f"WARNING: the installed wheel lacks {facts['missing_from_wheel']}")
        log(f"python {facts['python']}, {facts['uv']}, pip-tools {facts['pip_tools']}")
        uv_bin = facts["uv_path"]
        reprolock = str(venv / "bin" / "reprolock")
        lock_argv = lock_args(venv, clean_env(venv, None))
        projects = scratch / "projects"
        uv_plain = make_project(projects / "uv-plain", "")
        uv_user = make_project(projects / "uv-user", "")
        uv_argv, pt_argv, argv_source = tool_argv(venv, uv_plain, uv_bin)
        facts["plain_argv_source"] = argv_source
        log(f"plain commands ({argv_source}):\n  {' '.join(uv_argv)}\n  {' '.join(pt_argv)}")
        pairs = {
            "uv": Pair("uv", uv_argv, [reprolock, *lock_argv], uv_plain,
                       make_project(projects / "uv-reprolock", "uv"),
                       user=[uv_bin, *USER_UV_ARGS], user_dir=uv_user),
            "pip-tools": Pair("pip-tools", pt_argv, [reprolock, *lock_argv],
                              make_project(projects / "pt-plain", ""),
                              make_project(projects / "pt-reprolock", "pip-tools")),
        }
        warm_caches = scratch / "warm-caches"
        for pair in pairs.values():
            if not args.skip_cold:
                pair.measure_cold(venv, scratch)
            else:
                pair.cold = {who: float("nan") for who, _, _ in pair.commands()}
            pair.measure_warm(venv, warm_caches, args.runs)

        warm_env = clean_env(venv, warm_caches)
        check = measure_check(venv, pairs["uv"].reprolock_dir, warm_env, args.check_runs,
                              args.results)
        pins = {}
        for name, pair in pairs.items():
            a, b = pins_of(pair.plain_dir), pins_of(pair.reprolock_dir)
            diff = {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
                    if a.get(k) != b.get(k)}
            pins[name] = {"same": not diff, "diff": diff, "plain": a, "reprolock": b}
            if pair.user_dir is not None:
                c = pins_of(pair.user_dir)
                pins[name]["user"] = c
                pins[name]["user_diff"] = {k: (c.get(k), b.get(k)) for k in sorted(set(c) | set(b))
                                           if c.get(k) != b.get(k)}

        doc: dict[str, Any] = {
            "facts": facts, "runs": args.runs, "venv": str(venv),
            "uv": pairs["uv"].summary(), "pip-tools": pairs["pip-tools"].summary(),
            "check": check, "pins": pins, "lock_stats": lock_stats(pairs["uv"].reprolock_dir),
            "config_example": (pairs["uv"].reprolock_dir / "reprolock.toml").read_text()
            .replace(str(BASE_DIR), "/abs/path/to/fixtures/example/.reprolock/base"),
            "targets": TARGETS,
        }
        if args.profile or doc["uv"]["warm_ratio"] > TARGETS["uv"]:
            doc["profile"] = profile_lock(venv, pairs["uv"].reprolock_dir, warm_env, args.results,
                                          lock_argv, scratch)

        facts["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
        stamp = time.strftime("%Y%m%dT%H%M%S")
        doc["results_file"] = f"lock-{stamp}.json"
        (args.results / doc["results_file"]).write_text(json.dumps(doc, indent=2, default=str))
        (args.results / "latest.json").write_text(json.dumps(doc, indent=2, default=str))
        if args.skip_cold:
            log("--skip-cold: not writing the Markdown report")
        else:
            splice(args.out, "lock", render_markdown(doc))
            log(f"wrote {args.out}")
        print(json.dumps({k: doc[k] for k in ("uv", "pip-tools")}, indent=2, default=str))
        print(f"check median {check['reprolock lock --check']['median_s'] * 1000:.1f} ms, "
              f"python -c pass {check['python -c pass']['median_s'] * 1000:.1f} ms")
        return 0
    except BenchError as exc:
        log(f"error: {exc}")
        return 2
    finally:
        if args.keep:
            log(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def ready_venv(venv: Path) -> list[str]:
    """``venv`` with this checkout installed (made, or reinstalled when it exists); the
    modules reprolock imports but does not declare, installed to go on."""
    if (venv / "bin" / "python").exists():
        _reinstall(venv)
    else:
        make_venv(venv)
    return install_missing(venv)


def _reinstall(venv: Path) -> None:
    log(f"reusing venv {venv}; reinstalling reprolock from {REPO}")
    env = clean_env(venv, None)
    run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--force-reinstall",
         "--no-deps", str(REPO)], env=env, what=f"pip install {REPO}")


if __name__ == "__main__":
    sys.exit(main())
