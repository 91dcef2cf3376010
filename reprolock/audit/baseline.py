"""Audit baselines: record today's findings, then report only the ones that are new.

A team adopting the audit on a large project cannot fix every finding on the first day.
``reprolock audit --write-baseline FILE`` records what is found now; ``--baseline FILE``
marks those findings as suppressed (kept and counted, as every suppression is) so that
only new ones are reported and counted by the exit code.

A finding is recorded by its rule, its file and a *content fingerprint*, never by its line
number: the sha256 of the flagged line (with its backslash continuations), whitespace
collapsed, plus an occurrence index among the findings of that rule on identical lines of
that file. Moving code keeps a finding baselined; editing the flagged line makes it new.
A finding about a whole file or the whole project (line 0) is keyed by its rule and file
only, so rewording a message in a later reprolock does not make it new.

    >>> from reprolock.audit.model import Finding, Severity
    >>> found = [Finding("RL101", Severity.ERROR, "req.txt", 3, "numpy is not pinned")]
    >>> keys = entries_for(found, lambda path, line: "numpy  >=1.0")
    >>> keys[0].occurrence, keys[0].fingerprint == entries_for(
    ...     found, lambda path, line: " numpy >=1.0 ")[0].fingerprint
    (0, True)
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from reprolock.audit.model import AuditReport, Finding, Suppression
from reprolock.errors import ReprolockError

BASELINE_VERSION = 1
#: A baseline of 100,000 findings is about 25 MB; a larger file is refused unread.
MAX_BYTES = 32 << 20
_MESSAGE_LIMIT = 500  # the message is for reviewers of the file, never matched
_CONTINUATIONS = 50  # a RUN instruction longer than this is hashed by its first lines
_SCHEMA = "audit-baseline"

#: ``line_text(path, line)``: the text of a 1-based line, None when there is none.
LineText = Callable[[str, int], str | None]


@dataclass(frozen=True, order=True)
class Entry:
    """One recorded finding. Sorted by place, so the file diffs well."""

    path: str
    rule: str
    fingerprint: str
    occurrence: int
    message: str = dataclasses.field(default="", compare=False)

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.path, self.rule, self.fingerprint, self.occurrence)


@dataclass(frozen=True)
class Baseline:
    entries: tuple[Entry, ...]

    def keys(self) -> frozenset[tuple[str, str, str, int]]:
        return frozenset(e.key for e in self.entries)


@dataclass(frozen=True)
class Applied:
    """A report with the baselined findings marked, and what the baseline did."""

    report: AuditReport
    baselined: int  # findings the baseline suppressed
    stale: int  # entries that match no finding any more (fixed, or the file is gone)


def fingerprint(finding: Finding, line_text: LineText) -> str:
    """The content fingerprint of ``finding`` (see the module docstring)."""
    text = _logical_line(finding, line_text) if finding.line > 0 else None
    basis = "file" if text is None else "line\0" + " ".join(text.split())
    # the outside tool's code is part of it: hadolint's codes share one reprolock rule
    raw = f"v{BASELINE_VERSION}\0{finding.tool_code or ''}\0{basis}"
    return hashlib.sha256(raw.encode("utf-8", "surrogateescape")).hexdigest()


def _logical_line(finding: Finding, line_text: LineText) -> str | None:
    """The flagged line and the lines a trailing backslash joins to it (Dockerfile RUN,
    shell, requirement files)."""
    first = line_text(finding.path, finding.line)
    parts = [first] if first is not None else []
    while parts and parts[-1].rstrip().endswith("\\") and len(parts) < _CONTINUATIONS:
        following = line_text(finding.path, finding.line + len(parts))
        if following is None:
            break
        parts.append(following)
    return "\n".join(parts) if parts else None


def entries_for(findings: Sequence[Finding], line_text: LineText) -> tuple[Entry, ...]:
    """An entry for each finding, in the same order. The occurrence index counts, in order
    of place, the findings of one rule on identical lines of one file; suppressed findings
    count too, so adding a suppression elsewhere never renumbers a recorded finding."""
    prints = [fingerprint(f, line_text) for f in findings]
    order = sorted(range(len(findings)), key=lambda i: findings[i].sort_key)
    seen: Counter[tuple[str, str, str]] = Counter()
    occurrence = [0] * len(findings)
    for i in order:
        group = (findings[i].path, findings[i].rule, prints[i])
        occurrence[i] = seen[group]
        seen[group] += 1
    return tuple(Entry(f.path, f.rule, p, n, _message(f.message))
                 for f, p, n in zip(findings, prints, occurrence, strict=True))


def _message(text: str) -> str:
    return text if len(text) <= _MESSAGE_LIMIT else text[:_MESSAGE_LIMIT - 3] + "..."


def record(report: AuditReport, entries: Sequence[Entry], *,
           within: Baseline | None = None) -> Baseline:
    """The baseline of every unsuppressed finding; with ``within``, only of those it
    already holds (fixed findings drop out and new ones are not accepted by accident)."""
    kept = within.keys() if within is not None else None
    chosen = {e.key: e for f, e in zip(report.findings, entries, strict=True)
              if f.suppression is None and (kept is None or e.key in kept)}
    return Baseline(tuple(sorted(chosen.values())))


def apply(report: AuditReport, entries: Sequence[Entry], baseline: Baseline, *,
          detail: str) -> Applied:
    """Mark each unsuppressed finding the baseline holds as suppressed (SARIF calls that
    an ``external`` suppression)."""
    keys = baseline.keys()
    why = Suppression("baseline", detail)
    marked = []
    for finding, entry in zip(report.findings, entries, strict=True):
        if finding.suppression is None and entry.key in keys:
            finding = dataclasses.replace(finding, suppression=why)
        marked.append(finding)
    baselined = sum(1 for f in marked if f.suppression is why)
    stale = len(keys - {e.key for e in entries})
    return Applied(dataclasses.replace(report, findings=tuple(marked)), baselined, stale)


def render(baseline: Baseline) -> str:
    """Strict JSON, one entry a line in sorted order: a fixed finding is one removed line
    in a diff. ASCII only, so a file name that is not UTF-8 survives the round trip."""
    rows = [json.dumps(_entry_json(e), sort_keys=True) for e in sorted(set(baseline.entries))]
    listing = "[\n    " + ",\n    ".join(rows) + "\n  ]" if rows else "[]"
    return f'{{\n  "baselineVersion": {BASELINE_VERSION},\n  "entries": {listing}\n}}\n'


def _entry_json(entry: Entry) -> dict[str, object]:
    return {"path": entry.path, "rule": entry.rule, "fingerprint": entry.fingerprint,
            "occurrence": entry.occurrence, "message": entry.message}


def parse(data: bytes, *, source: str, cache_dir: Path | None = None) -> Baseline:
    """A baseline from the bytes of ``source``: strict JSON, valid against
    schemas/audit-baseline.schema.json, or a ReprolockError naming the field. With
    ``cache_dir``, a document that passed once is not checked again (the check is most of
    the cost: 0.24 s for 3,000 entries, paid again by every pre-commit run otherwise)."""
    from reprolock._internal.jsonio import parse_json
    from reprolock.schemas import validate

    hint = _fix(source)
    document = parse_json(data, source=source, error=ReprolockError, hint=hint)
    version = document.get("baselineVersion")
    if isinstance(version, int) and not isinstance(version, bool) and \
            version > BASELINE_VERSION:
        raise ReprolockError(
            f"{source}: baselineVersion {version} was written by a newer reprolock (this "
            f"one reads version {BASELINE_VERSION})",
            hint=f"upgrade reprolock, or write the file anew: {_write(source)}")
    validate(document, _SCHEMA, source=source, error=ReprolockError, hint=hint,
             cache_dir=cache_dir)
    return Baseline(tuple(Entry(e["path"], e["rule"], e["fingerprint"], e["occurrence"],
                                e.get("message", "")) for e in document["entries"]))


def load(path: Path, *, cache_dir: Path | None = None) -> Baseline:
    from reprolock._internal.jsonio import read_bounded

    if not path.exists() and not path.is_symlink():
        raise ReprolockError(f"no baseline file at {path}",
                             hint=f"record today's findings first: {_write(str(path))}")
    data = read_bounded(path, limit=MAX_BYTES, error=ReprolockError, hint=_fix(str(path)))
    return parse(data, source=str(path), cache_dir=cache_dir)


def save(path: Path, baseline: Baseline) -> None:
    from reprolock._internal.files import atomic_write_text

    atomic_write_text(path, render(baseline))


def _write(source: str) -> str:
    return f"'reprolock audit --write-baseline {source}'"


def _fix(source: str) -> str:
    return (f"correct the field named above (the schema is "
            f"schemas/{_SCHEMA}.schema.json), or write the file anew with "
            f"{_write(source)}, which accepts every current finding")


def project_lines(root: Path) -> LineText:
    """Lines of the project's files, each file read once (as the engine reads them for
    inline suppressions: on the host, following a link)."""
    from reprolock.audit.sources import read_source

    cache: dict[str, list[str]] = {}

    def line_text(path: str, number: int) -> str | None:
        if path not in cache:
            source, _ = read_source(root, path, must_be_text=True, follow_links=True)
            text = source.text() if source is not None else None
            cache[path] = text.splitlines() if text is not None else []
        lines = cache[path]
        return lines[number - 1] if 0 < number <= len(lines) else None

    return line_text
