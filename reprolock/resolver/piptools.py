"""pip-tools as the resolver. It resolves for the interpreter it runs in, so the target
must match this machine (Python minor version, OS, architecture, C library)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

from reprolock._internal.proc import run
from reprolock.errors import ResolverError, ToolError
from reprolock.resolver._common import explain_failure, relative_inputs, scratch_dir, scratch_output
from reprolock.resolver.interface import IndexVariables, Resolution, Resolver, ResolveRequest
from reprolock.target import Target

# pip reads each of its options from PIP_<OPTION> too; lists are whitespace-separated
_PIP_INDEX = IndexVariables(
    index_url="PIP_INDEX_URL", extra_index_urls="PIP_EXTRA_INDEX_URL",
    find_links="PIP_FIND_LINKS", find_links_separator=" ", cleared=("PIP_NO_INDEX",))
_HINT = "install pip-tools (pip install pip-tools) or set resolver = \"uv\" in reprolock.toml"


class PipToolsResolver(Resolver):
    name = "pip-tools"

    def version(self) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("pip-tools")
        except PackageNotFoundError as exc:
            raise ToolError("pip-tools is not installed", hint=_HINT) from exc

    def check_target(self, target: Target) -> None:
        here = host_facts()
        wanted = {"Python": f"{target.python_minor[0]}.{target.python_minor[1]}",
                  "OS": target.platform.os, "architecture": target.platform.machine,
                  "C library": target.libc_family}
        diffs = [f"{k} {here[k]} here, {v} in the target" for k, v in wanted.items()
                 if here[k] != v]
        if diffs:
            raise ResolverError(
                "pip-tools resolves only for the interpreter it runs in, and this one does "
                f"not match the target ({'; '.join(diffs)})",
                hint="set resolver = \"uv\" in reprolock.toml (it resolves for another "
                "target), or run reprolock with a matching interpreter",
            )

    def resolve(self, request: ResolveRequest) -> Resolution:
        from reprolock.resolver.named import refuse_named

        refuse_named(request.index, "pip-compile")
        self.check_target(request.target)
        version = self.version()
        with scratch_dir() as tmp:
            out = scratch_output(request, Path(tmp))
            index_argv, index_env = request.index.options(_PIP_INDEX)
            argv = [sys.executable, "-m", "piptools", "compile", *relative_inputs(request),
                    "--generate-hashes", "--allow-unsafe", "--no-header", "--annotate",
                    "--no-emit-index-url", "--no-emit-trusted-host", "--no-config",
                    "--strip-extras", "--quiet", "--output-file", str(out),
                    # sdists would be built (their code run) just to read metadata;
                    # only those the config names are
                    "--pip-args", "--only-binary=:all:" + "".join(
                        f" --no-binary={name}" for name in request.from_source),
                    *index_argv]
            if request.upgrade:
                argv.append("--upgrade")
            for name in request.upgrade_packages:
                argv += ["--upgrade-package", name]
            try:
                run(argv, cwd=request.root, env=_PIP_INDEX.environment(os.environ, index_env),
                    what="pip-compile", hint=_HINT)
            except ToolError as exc:
                raise explain_failure(exc, request, "pip-compile") from exc
            from reprolock.resolver.compiled import parse_compiled

            pins = parse_compiled(out.read_text(encoding="utf-8"), tool="pip-compile")
        return Resolution(pins=pins, resolver=self.name, resolver_version=version)


def host_facts() -> dict[str, str]:
    libc, _ = platform.libc_ver()
    return {
        "Python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "OS": sys.platform,
        "architecture": platform.machine(),
        # platform.libc_ver() knows only glibc; an empty answer on Linux means musl
        "C library": libc or "musl",
    }
