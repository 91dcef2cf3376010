"""The ``reprolock audit`` command (registered in reprolock.cli): parse, audit, print."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reprolock.errors import EXIT_OK, ReprolockError

if TYPE_CHECKING:
    from reprolock.audit.engine import AuditOptions
    from reprolock.audit.model import AuditReport

_SEVERITIES = ("error", "warning", "info")

BaselineOpt = Annotated[Path | None, typer.Option(
    "--baseline", help="Report only findings not recorded in this file (from "
    "--write-baseline); those are suppressed and the exit code counts only the new.",
    dir_okay=False)]
WriteBaselineOpt = Annotated[Path | None, typer.Option(
    "--write-baseline", help="Record every unsuppressed finding in this file "
    "(atomically), then report with it; with --baseline, keep only findings already "
    "recorded there.", dir_okay=False)]


def audit(
    path: Annotated[Path, typer.Argument(help="Project directory to audit.")] = Path(),
    fmt: Annotated[str, typer.Option("--format", "-f",
                                     help="text, json or sarif (SARIF 2.1.0).")] = "text",
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="Write the report to this file (atomically) instead of "
        "stdout.", dir_okay=False)] = None,
    fail_on: Annotated[str | None, typer.Option(
        "--fail-on", help="Exit 1 when a finding of this severity or above is not "
        "suppressed: error, warning or info. Default: [audit] fail-on, else error.")] = None,
    ignore: Annotated[list[str] | None, typer.Option(
        "--ignore", help="Suppress this rule (repeatable); still counted.")] = None,
    explain: Annotated[str | None, typer.Option(
        "--explain", help="Print the documentation of a rule (e.g. RL101) and exit.")] = None,
    list_rules: Annotated[bool, typer.Option("--list-rules",
                                             help="List every rule and exit.")] = False,
    color: Annotated[str, typer.Option(
        "--color", help="auto (on a terminal, unless NO_COLOR is set), always or never.")
    ] = "auto",
    no_hadolint: Annotated[bool, typer.Option(
        "--no-hadolint", help="Do not run hadolint (its Dockerfile rules are skipped).")
    ] = False,
    baseline: BaselineOpt = None,
    write_baseline: WriteBaselineOpt = None,
) -> None:
    """Find what makes a training run unreproducible: unpinned dependencies, moving base
    images, unseeded or nondeterministic training code, unverified downloads, secrets
    that would be baked into the image. Exit 1 on a finding at or above --fail-on."""
    if explain is not None:
        _explain(explain)
        return
    if list_rules:
        _list_rules()
        return
    from reprolock.audit.engine import AuditOptions
    from reprolock.audit.model import Severity
    from reprolock.audit.report import FormatChoice

    choice = _choice(fmt, [c.value for c in FormatChoice], "--format")
    _choice(color, ["auto", "always", "never"], "--color")
    asked = Severity(_choice(fail_on, list(_SEVERITIES), "--fail-on")) if fail_on else None
    report = _audit(path, AuditOptions(ignore=tuple(ignore or ()), hadolint=not no_hadolint),
                    baseline, write_baseline)
    threshold = asked or report.fail_on or Severity.ERROR
    rendered = FormatChoice(choice).to_format().render(
        report, fail_on=threshold, color=output is None and _use_color(color))
    if output is None:
        sys.stdout.write(rendered)
    else:
        from reprolock._internal.files import atomic_write_text
        from reprolock.audit.report.text import summary

        atomic_write_text(output, rendered)
        print(f"wrote {output}: {summary(report)}", file=sys.stderr)
    raise typer.Exit(report.exit_code(threshold))


def _audit(path: Path, options: AuditOptions, read: Path | None,
           write: Path | None) -> AuditReport:
    """The audit, with the baseline ``read`` applied; after writing ``write``, that one is
    applied. What the baseline did goes to standard error: stdout stays the report."""
    from reprolock._internal.cache import default_cache_dir
    from reprolock.audit import baseline
    from reprolock.audit.engine import audit_project

    # a bad baseline stops before the audit runs
    old = baseline.load(read, cache_dir=default_cache_dir()) if read is not None else None
    report = audit_project(path, options)
    if read is None and write is None:
        return report
    entries = baseline.entries_for(report.findings, baseline.project_lines(report.root))
    if write is not None:
        used, name = baseline.record(report, entries, within=old), write
        baseline.save(write, used)
        print(f"wrote {write}: {_count(len(used.entries), 'finding')} recorded",
              file=sys.stderr)
    elif old is not None and read is not None:
        used, name = old, read
    else:
        return report
    applied = baseline.apply(report, entries, used, detail=f"--baseline {name}")
    stale = (f"; {_count(applied.stale, 'recorded finding')} no longer found (drop them: "
             f"reprolock audit --baseline {name} --write-baseline {name})"
             if applied.stale else "")
    print(f"baseline {name}: {_count(applied.baselined, 'finding')} baselined (suppressed, "
          f"not counted){stale}", file=sys.stderr)
    return applied.report


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _explain(rule_id: str) -> None:
    from reprolock.audit.catalog import RULES

    rule = RULES.get(rule_id.strip().upper())
    if rule is None:
        raise ReprolockError(f"no audit rule {rule_id!r}",
                             hint="'reprolock audit --list-rules' lists the rule ids")
    sys.stdout.write(rule.explain())
    raise typer.Exit(EXIT_OK)


def _list_rules() -> None:
    from reprolock.audit.catalog import RULES

    for rule in RULES.values():
        print(f"{rule.id}  {rule.severity.value:<7}  {rule.name:<36} {rule.summary}")


def _choice(value: str, allowed: list[str], option: str) -> str:
    if value not in allowed:
        raise ReprolockError(f"{option} {value!r} is not known",
                             hint=f"use one of: {', '.join(allowed)}")
    return value


def _use_color(mode: str) -> bool:
    if mode != "auto":
        return mode == "always"
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return sys.stdout.isatty()
