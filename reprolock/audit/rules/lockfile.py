"""RL103/RL104/RL107/RL108: the lock against the inputs and against the imports."""

from __future__ import annotations

import re
from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.config import Config
from reprolock.errors import ReprolockError
from reprolock.inspection.imports import ImportReport, third_party_report, unprovided
from reprolock.lock.model import Lock


def check(ctx: AuditContext) -> Iterator[Finding]:
    config = ctx.config
    if config is None:
        return  # a plain directory has no lock to check
    if ctx.lock_problem is not None or ctx.lock is None:
        yield from [ctx.lock_problem] if ctx.lock_problem is not None else []
        return
    lock = ctx.lock
    yield from _freshness(config, lock)
    imports = _imports(ctx)
    yield from _unprovided(imports, lock)
    yield from _unused(ctx, imports, lock)


def read(config: Config) -> tuple[Lock | None, Finding | None]:
    """The project's lock, or the RL107 finding that says why there is none (read once
    by the engine, for every rule)."""
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
    """RL108 is ``reprolock lock --check``: the same check, reported as a finding."""
    from reprolock._internal.cache import default_cache_dir
    from reprolock.lock.check import check_lock

    try:
        outcome = check_lock(config, cache_dir=default_cache_dir(), lock=lock)
    except ReprolockError as exc:
        yield Finding("RL108", Severity.ERROR, config.lockfile, 0,
                      f"cannot compute the lock's inputs: {exc.message}")
        return
    if not outcome.fresh:
        yield Finding("RL108", Severity.ERROR, config.lockfile, 0,
                      f"the lock is stale ({'; '.join(outcome.changes)}): run 'reprolock lock'")


def _imports(ctx: AuditContext) -> ImportReport:
    """The third-party imports of the code set, as 'reprolock lock' counts them."""
    return third_party_report((f.path for f in ctx.python),
                              (site for facts in ctx.python for site in facts.imports))


def _unprovided(imports: ImportReport, lock: Lock) -> Iterator[Finding]:
    provided = {module: package.name for package in lock.packages
                for module in package.modules}
    for missing in unprovided(imports, provided):
        yield Finding("RL103", Severity.ERROR, missing.first.path, missing.first.line,
                      f"module {missing.module!r} is imported, but no locked distribution "
                      "provides it: add its distribution to the requirement inputs")


def _unused(ctx: AuditContext, imports: ImportReport, lock: Lock) -> Iterator[Finding]:
    imported = set(imports.third_party())
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
