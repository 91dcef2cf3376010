"""RL601: the git working tree has changes no commit holds."""

from __future__ import annotations

from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity


def check(ctx: AuditContext) -> Iterator[Finding]:
    changed = _changed_paths(ctx)
    if not changed:
        return
    shown = ", ".join(changed[:3]) + (", …" if len(changed) > 3 else "")
    yield Finding("RL601", Severity.INFO, changed[0], 0,
                  f"the git working tree has uncommitted changes in {len(changed)} "
                  f"file{'s' * (len(changed) != 1)} ({shown}): an image built now matches "
                  "no commit")


def _changed_paths(ctx: AuditContext) -> list[str]:
    """Tracked files under the project that differ from HEAD, relative to the project."""
    from reprolock._internal.proc import run
    from reprolock.errors import ToolError

    git = ["git", "-C", str(ctx.root)]
    try:
        prefix = run([*git, "rev-parse", "--show-prefix"], what="git", check=False)
        if prefix.returncode != 0:
            return []  # not a git work tree
        status = run([*git, "status", "--porcelain", "-z", "--untracked-files=no",
                      "--no-renames", "--", "."], what="git", check=False)
    except ToolError:
        return []  # no git: nothing to say about a work tree
    strip = prefix.stdout.strip()
    paths = [entry[3:] for entry in status.stdout.split("\0") if len(entry) > 3]
    return sorted(p[len(strip):] if p.startswith(strip) else p for p in paths)
