"""What every verify mode reports: checks (✓/✗, what, why) and the fixes to run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reprolock.errors import EXIT_FINDING, EXIT_OK, VerificationError


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    differences: tuple[str, ...] = ()  # one line per difference: "package X 1.2.3 → 1.2.4"
    fix: str | None = None
    # passes, but proves less than it may seem to (e.g. an unsigned record): shown as "!"
    unproven: bool = False

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail,
                "differences": list(self.differences), "fix": self.fix,
                "unproven": self.unproven}


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_FINDING

    def fixes(self) -> list[str]:
        return list(dict.fromkeys(c.fix for c in self.checks if not c.ok and c.fix))

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "checks": [c.to_json() for c in self.checks],
                "fix": self.fixes()}

    def render(self) -> str:
        lines = []
        for check in self.checks:
            mark = "✗" if not check.ok else "!" if check.unproven else "✓"
            lines.append(f"{mark} {check.name}: {check.detail}")
            lines += [f"    {d}" for d in check.differences]
        fixes = self.fixes()
        if fixes:
            lines.append("fix:")
            lines += [f"  {f}" for f in fixes]
        return "\n".join(lines) + "\n"


def attempt(name: str, check: Callable[[], str], *, fix: str | None = None) -> Check:
    """Run one check; a VerificationError is its failure, any other error propagates
    (exit 2: the check could not run)."""
    try:
        return Check(name, True, check())
    except VerificationError as exc:
        return Check(name, False, exc.message, fix=exc.hint or fix)
