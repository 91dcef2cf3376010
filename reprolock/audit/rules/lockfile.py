"""RL103/RL104/RL107/RL108: the lock against the inputs and against the imports."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.audit.pyindex import ImportSite
from reprolock.config import Config
from reprolock.errors import ReprolockError
from reprolock.inspection.imports import own_modules
from reprolock.lock.model import Lock


def check(ctx: AuditContext) -> Iterator[Finding]:
    config = ctx.config
    if config is None:
        return  # a plain directory has no lock to check
    lock, problem = _read(config)
    if problem is not None:
        yield problem
        return
    assert lock is not None
    yield from _freshness(config, lock)
    yield from _unprovided(ctx, lock)
    yield from _unused(ctx, lock)


def _read(config: Config) -> tuple[Lock | None, Finding | None]:
    from reprolock._internal.cache import default_cache_dir
    from reprolock.lock.io import read_lock

    try:
        return read_lock(config.lock_path, cache_dir=default_cache_dir()), None
    except ReprolockError as exc:
        where = config.source_name
        return None, Finding("RL107", Severity.ERROR, where, 0,
                             f"{exc.message}: nothing pins the environment "
                             "(run 'reprolock lock')")


def _freshness(config: Config, lock: Lock) -> Iterator[Finding]:
    from reprolock.lock.inputs import collect_inputs, describe_changes, inputs_digest

    try:
        inputs = collect_inputs(config)
    except ReprolockError as exc:
        yield Finding("RL108", Severity.ERROR, config.lockfile, 0,
                      f"cannot compute the lock's inputs: {exc.message}")
        return
    if inputs_digest(inputs) == lock.inputs_digest:
        return
    changes = describe_changes(lock.inputs, inputs) or ["the inputs digest differs"]
    yield Finding("RL108", Severity.ERROR, config.lockfile, 0,
                  f"the lock is stale ({'; '.join(changes)}): run 'reprolock lock'")


def _third_party(ctx: AuditContext) -> dict[str, list[tuple[str, ImportSite]]]:
    """Top-level module → where it is imported, less the stdlib and the project's own."""
    own = own_modules(f.path for f in ctx.python)
    found: dict[str, list[tuple[str, ImportSite]]] = {}
    for facts in ctx.python:
        for site in facts.imports:
            if site.module in own or site.module in sys.stdlib_module_names \
                    or site.module in ("__future__", "__main__"):
                continue
            found.setdefault(site.module, []).append((facts.path, site))
    return found


def _unprovided(ctx: AuditContext, lock: Lock) -> Iterator[Finding]:
    provided = {module for package in lock.packages for module in package.modules}
    for module, sites in sorted(_third_party(ctx).items()):
        required = sorted((path, site.line) for path, site in sites if not site.optional)
        if module in provided or not required:
            continue
        path, line = required[0]
        yield Finding("RL103", Severity.ERROR, path, line,
                      f"module {module!r} is imported, but no locked distribution provides "
                      "it: add its distribution to the requirement inputs")


def _unused(ctx: AuditContext, lock: Lock) -> Iterator[Finding]:
    imported = set(_third_party(ctx))
    for package in sorted(lock.packages, key=lambda p: p.name):
        if not package.direct or not package.modules or imported & set(package.modules):
            continue
        path, line = _requested_at(ctx, package.name, package.requested_by)
        yield Finding("RL104", Severity.INFO, path, line,
                      f"{package.name} is a direct dependency, but none of its modules "
                      f"({', '.join(package.modules)}) is imported")


def _requested_at(ctx: AuditContext, name: str, requested_by: tuple[str, ...]) -> tuple[str, int]:
    """The requirement line that names ``name``, else the lock file."""
    wanted = _canonical(name)
    for path in [*requested_by, *sorted(ctx.lock_inputs)]:
        source = ctx.file(path)
        text = source.text() if source is not None else None
        for number, line in enumerate((text or "").splitlines(), 1):
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
            if match and _canonical(match.group(1)) == wanted:
                return path, number
    assert ctx.config is not None
    return ctx.config.lockfile, 0


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
