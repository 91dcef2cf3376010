"""uv as the resolver: fast, and it resolves for a target other than this machine."""

from __future__ import annotations

import concurrent.futures
import contextlib
import functools
import os
import sys
from collections.abc import Iterable
from pathlib import Path

from reprolock._internal.proc import find_tool, run
from reprolock.errors import ToolError
from reprolock.resolver._common import explain_failure, relative_inputs, scratch_dir, scratch_output
from reprolock.resolver.interface import (
    IndexVariables,
    Pin,
    Resolution,
    Resolver,
    ResolveRequest,
)
from reprolock.target import Target

_UV_INDEX = IndexVariables(
    index_url="UV_INDEX_URL", extra_index_urls="UV_EXTRA_INDEX_URL",
    find_links="UV_FIND_LINKS", find_links_separator=",",
    cleared=("UV_INDEX", "UV_DEFAULT_INDEX", "UV_NO_INDEX"))
_HINT = "install uv (pip install uv) or set resolver = \"pip-tools\" in reprolock.toml"


def uv_binary() -> str:
    return _uv()[0]


@functools.cache
def _uv() -> tuple[str, bool]:
    """The uv binary, and whether it is the one the PyPI package ships.

    Called once, before any thread starts: find_uv_bin reads sysconfig, whose first use
    is not thread-safe (it gave None for EXE when raced).
    """
    try:
        from uv import find_uv_bin  # the PyPI package ships the binary

        return str(find_uv_bin()), True
    except (ImportError, FileNotFoundError):
        return find_tool("uv", hint=_HINT), False


class UvResolver(Resolver):
    name = "uv"

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        _, bundled = _uv()
        if bundled:
            with contextlib.suppress(PackageNotFoundError):
                return version("uv")  # the binary the PyPI package ships: no process to start
        done = run([uv_binary(), "--version"], what="uv", hint=_HINT)
        return done.stdout.split()[1] if len(done.stdout.split()) > 1 else done.stdout.strip()

    def check_target(self, target: Target) -> None:
        """uv resolves for any CPython version and Linux platform it knows."""

    def resolve(self, request: ResolveRequest) -> Resolution:
        _uv()  # before the thread below
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool, \
                scratch_dir() as tmp:
            version = pool.submit(self.version)  # beside the resolution, not before it
            if not request.index.named:
                pins = _compile(request, scratch_output(request, Path(tmp)), ())
            else:
                from reprolock.resolver.named import resolve_pinned

                # each pass starts from the previous lock's pins, not the last pass's
                pins = resolve_pinned(request.index, _direct_names(request), lambda declared:
                                      _compile(request, scratch_output(request, Path(tmp)),
                                               declared))
            return Resolution(pins=pins, resolver=self.name, resolver_version=version.result())


def _direct_names(request: ResolveRequest) -> set[str]:
    from reprolock.resolver.requested import read_requested

    return {r.name for r in read_requested((p, p.name) for p in request.inputs)}


def _compile(request: ResolveRequest, out: Path, declared: Iterable[str]) -> tuple[Pin, ...]:
    """One ``uv pip compile`` into ``out``; with named indexes, ``declared`` are the
    pinned packages the written project declares (see reprolock.resolver.named)."""
    index_argv, index_env = request.index.options(_UV_INDEX)
    inputs = relative_inputs(request)
    if request.index.named:
        from reprolock.resolver.named import write_project

        project = out.parent / "index-pins"
        index_env.update(write_project(request.index, declared, project))
        inputs.append(str(project / "pyproject.toml"))
    argv = [uv_binary(), "pip", "compile", *inputs,
            "--generate-hashes", "--no-header", "--annotation-style", "split",
            "--no-config", "--quiet", "--only-binary", ":all:",
            # a pre-release only where a requirement names one: uv's default takes
            # one when no final release can be used (an sdist-only dependency)
            "--prerelease", "explicit",
            "--python-version", request.target.python_version,
            # With --python-version and wheels only, uv needs no interpreter; naming
            # one spares its search of PATH (0.6 s through pyenv shims here).
            "--python", sys.executable,
            "--python-platform", request.target.uv_platform,
            "--output-file", str(out), *index_argv]
    for name in request.upgrade_packages:
        argv += ["--upgrade-package", name]
    for name in request.from_source:  # its sdist, even where a wheel exists
        argv += ["--no-binary", name]
    try:
        run(argv, cwd=request.root, env=_env(index_env), what="uv pip compile", hint=_HINT)
    except ToolError as exc:
        raise explain_failure(exc, request, "uv") from exc
    from reprolock.resolver.compiled import parse_compiled

    return parse_compiled(out.read_text(encoding="utf-8"), tool="uv")


def _env(index: dict[str, str]) -> dict[str, str]:
    # the user's UV_INDEX_<NAME>_* would give their credentials to an index of that name
    base = {k: v for k, v in os.environ.items() if not k.startswith("UV_INDEX_")}
    env = _UV_INDEX.environment(base, index)
    env.setdefault("UV_NO_PROGRESS", "1")
    return env
