"""Score ``reprolock audit`` on the labelled corpus of public training repositories.

    python bench/audit_corpus.py [--json] [--tolerance 0] [--corpus tests/audit_corpus]

Each directory of the corpus (``tests/audit_corpus/<owner>__<name>``, an excerpt of a
public repository at the commit ``labels.json`` names) is copied out of the git work tree
and audited in-process (hadolint runs if it is installed). Every finding is matched to the
labels by rule, file and line:

- a *hazard* it reports (the hazard's rule, or a rule its class accepts; line ``null``
  is anywhere in the file, ``[first, last]`` a multi-line instruction, ``also`` names other
  files a project-wide finding may be anchored in): a true positive; a second finding of
  the same hazard is a duplicate (noise, not counted in precision);
- a *not_hazard* entry (rule, file, line, hadolint code): a false positive;
- a *notice* entry: a true finding that reports no hazard (RL005 naming a file kind the
  audit does not read), neither a true nor a false positive;
- none of these: unjudged (the rules moved since the labels were made; label it).

It prints per-rule precision (TP / (TP + FP)) and recall (labelled hazards of that rule
found), precision per severity (error-level precision is what `--fail-on error` fails on;
info findings never fail an audit, so they are counted apart), how often a true finding's
severity is the one labelled, the hazards nothing reports and the corpus with its commits.
Needs no network.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KINDS = ("tp", "dup", "fp", "unjudged", "notice")
SEVERITIES = ("error", "warning", "info")
REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "tests" / "audit_corpus"
sys.path.insert(0, str(REPO))


@dataclass
class Outcome:
    """What the matching made of one repository's findings."""

    tp: list[dict[str, Any]] = field(default_factory=list)  # finding + its hazard
    dup: list[dict[str, Any]] = field(default_factory=list)
    fp: list[dict[str, Any]] = field(default_factory=list)
    unjudged: list[dict[str, Any]] = field(default_factory=list)
    notice: list[dict[str, Any]] = field(default_factory=list)
    found: set[int] = field(default_factory=set)  # indexes of hazards found


def audit(project: Path) -> list[dict[str, Any]]:
    """The active findings of one corpus project, audited from a copy outside git."""
    from reprolock.audit.engine import AuditOptions, audit_project

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / project.name
        shutil.copytree(project, root)
        report = audit_project(root, AuditOptions())
    return [{"rule": f.rule, "severity": f.severity.value, "file": f.path, "line": f.line,
             "tool_code": f.tool_code, "message": f.message} for f in report.active]


def _line_ok(want: Any, line: int, tolerance: int) -> bool:
    if want is None:
        return True
    if isinstance(want, list):
        return int(want[0]) - tolerance <= line <= int(want[1]) + tolerance
    return abs(int(want) - line) <= tolerance


def _hazard_matches(hazard: dict[str, Any], finding: dict[str, Any], accepted: list[str],
                    tolerance: int) -> bool:
    if finding["rule"] != hazard["rule"] and finding["rule"] not in accepted:
        return False
    if finding["file"] == hazard["file"]:
        return _line_ok(hazard["line"], finding["line"], tolerance)
    return finding["file"] in hazard.get("also", ())


def _not_hazard_matches(entry: dict[str, Any], finding: dict[str, Any], tolerance: int) -> bool:
    return (entry["rule"] == finding["rule"] and entry["file"] == finding["file"]
            and _line_ok(entry["line"], finding["line"], tolerance)
            and entry.get("tool_code") in (None, finding["tool_code"]))


def match(labels: dict[str, Any], classes: dict[str, Any], findings: list[dict[str, Any]],
          tolerance: int) -> Outcome:
    out = Outcome()
    hazards = labels["hazards"]
    for finding in findings:
        hits = [i for i, h in enumerate(hazards) if _hazard_matches(
            h, finding, classes[h["class"]]["rules"], tolerance)]
        fresh = [i for i in hits if i not in out.found]
        if fresh:  # the hazard labelled with this very rule first
            best = min(fresh, key=lambda i: hazards[i]["rule"] != finding["rule"])
            out.found.add(best)
            out.tp.append({**finding, "hazard": hazards[best]})
        elif hits:
            out.dup.append(finding)
        elif any(_not_hazard_matches(e, finding, tolerance) for e in labels["notices"]):
            out.notice.append(finding)
        elif any(_not_hazard_matches(e, finding, tolerance) for e in labels["not_hazards"]):
            out.fp.append(finding)
        else:
            out.unjudged.append(finding)
    return out


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _rule_table(outcomes: dict[str, Outcome], labels: dict[str, Any]) -> dict[str, Any]:
    count: dict[str, Counter[str]] = {}
    for name, out in outcomes.items():
        for kind in KINDS:
            for f in getattr(out, kind):
                count.setdefault(f["rule"], Counter())[kind] += 1
        for i, hazard in enumerate(labels[name]["hazards"]):
            if hazard["rule"]:
                count.setdefault(hazard["rule"], Counter())["labelled"] += 1
                count[hazard["rule"]]["found"] += i in out.found
    return {rule: {**{k: c[k] for k in (*KINDS, "labelled", "found")},
                   "precision": _ratio(c["tp"], c["tp"] + c["fp"]),
                   "recall": _ratio(c["found"], c["labelled"])}
            for rule, c in sorted(count.items())}


def _level_precision(outcomes: dict[str, Outcome], levels: tuple[str, ...]) -> dict[str, Any]:
    """Precision of the findings at these severities (duplicates and notices left out)."""
    def count(kind: str) -> int:
        return sum(f["severity"] in levels for o in outcomes.values() for f in getattr(o, kind))

    tp, fp = count("tp"), count("fp")
    return {"tp": tp, "fp": fp, "unjudged": count("unjudged"), "dup": count("dup"),
            "notice": count("notice"), "precision": _ratio(tp, tp + fp)}


def _severity_agreement(outcomes: dict[str, Outcome]) -> dict[str, Any]:
    """How many true findings carry the severity their hazard was labelled with."""
    tps = [f for o in outcomes.values() for f in o.tp]
    differ = Counter(f"{f['rule']} {f['severity']} (labelled {f['hazard']['severity']})"
                     for f in tps if f["severity"] != f["hazard"]["severity"])
    agree = len(tps) - sum(differ.values())
    return {"agree": agree, "of": len(tps), "ratio": _ratio(agree, len(tps)),
            "differ": dict(sorted(differ.items()))}


def _misses(outcomes: dict[str, Outcome], labels: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"repo": name, **hazard} for name, out in outcomes.items()
            for i, hazard in enumerate(labels[name]["hazards"]) if i not in out.found]


def score(corpus: Path = CORPUS, tolerance: int = 0) -> dict[str, Any]:
    """Audit every labelled project and score it (the numbers the test asserts)."""
    doc = json.loads((corpus / "labels.json").read_text(encoding="utf-8"))
    labels, classes = doc["repos"], doc["classes"]
    outcomes = {name: match(labels[name], classes, audit(corpus / name), tolerance)
                for name in sorted(labels)}
    misses = _misses(outcomes, labels)
    with_rule = [h for r in labels.values() for h in r["hazards"] if h["rule"]]
    missed_with_rule = [m for m in misses if m["rule"]]
    return {
        "repos": {name: {"findings": sum(len(getattr(o, k)) for k in KINDS),
                         **{k: len(getattr(o, k)) for k in KINDS},
                         "hazards": len(labels[name]["hazards"]), "found": len(o.found),
                         "repository": labels[name]["repository"],
                         "commit": labels[name]["commit"], "files": len(labels[name]["files"])}
                  for name, o in outcomes.items()},
        "rules": _rule_table(outcomes, labels),
        "error_level": _level_precision(outcomes, ("error",)),
        "by_severity": {level: _level_precision(outcomes, (level,)) for level in SEVERITIES},
        "error_and_warning": _level_precision(outcomes, ("error", "warning")),
        "severity_agreement": _severity_agreement(outcomes),
        "recall_with_rule": _ratio(len(with_rule) - len(missed_with_rule), len(with_rule)),
        "hazards": sum(len(r["hazards"]) for r in labels.values()),
        "misses": misses,
        "unjudged": [{"repo": n, **f} for n, o in outcomes.items() for f in o.unjudged],
        "duplicates": [{"repo": n, **f} for n, o in outcomes.items() for f in o.dup],
        "false_positives": [{"repo": n, **f} for n, o in outcomes.items() for f in o.fp],
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _rule_lines(result: dict[str, Any]) -> list[str]:
    lines = ["| rule | TP | dup | FP | unjudged | notice | precision | labelled | found | recall |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    return lines + [f"| {rule} | {r['tp']} | {r['dup']} | {r['fp']} | {r['unjudged']} | "
                    f"{r['notice']} | {_pct(r['precision'])} | {r['labelled']} | {r['found']} | "
                    f"{_pct(r['recall'])} |" for rule, r in result["rules"].items()]


def _severity_lines(result: dict[str, Any]) -> list[str]:
    err, agree = result["error_level"], result["severity_agreement"]
    labelled = sum(r["labelled"] for r in result["rules"].values())
    lines = ["", f"Error-level precision: {_pct(err['precision'])} ({err['tp']} TP, "
             f"{err['fp']} FP, {err['unjudged']} unjudged); info-level findings never fail an "
             "audit and are counted apart below. Recall of the labelled hazards that have a "
             f"rule: {_pct(result['recall_with_rule'])} of {labelled}.", "",
             "| severity | TP | FP | unjudged | dup | notice | precision |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    rows = [*result["by_severity"].items(), ("error + warning", result["error_and_warning"])]
    lines += [f"| {level} | {r['tp']} | {r['fp']} | {r['unjudged']} | {r['dup']} | "
              f"{r['notice']} | {_pct(r['precision'])} |" for level, r in rows]
    lines += ["", f"Severity agreement: {agree['agree']} of {agree['of']} true findings "
              f"({_pct(agree['ratio'])}) have the severity their hazard was labelled with."]
    if agree["differ"]:
        lines.append("Differing: " + "; ".join(f"{k}: {n}" for k, n in agree["differ"].items())
                     + ".")
    return lines


def _repo_lines(result: dict[str, Any]) -> list[str]:
    lines = ["", "| repository | commit | files | findings | TP | dup | FP | unjudged | notice "
             "| hazards | found |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    return lines + [f"| [{n}]({r['repository']}) | `{r['commit']}` | {r['files']} | "
                    f"{r['findings']} | {r['tp']} | {r['dup']} | {r['fp']} | {r['unjudged']} | "
                    f"{r['notice']} | {r['hazards']} | {r['found']} |"
                    for n, r in result["repos"].items()]


def _miss_lines(result: dict[str, Any]) -> list[str]:
    by_class = Counter(f"{m['class']} ({m['rule'] or 'no rule'})" for m in result["misses"])
    lines = ["", "Hazards nothing reports, by class:", ""]
    lines += [f"- {what}: {n}" for what, n in sorted(by_class.items())]
    fps = Counter(f"{f['rule']} ({f['severity']})" for f in result["false_positives"])
    lines += ["", "False positives, by rule:", ""]
    return lines + [f"- {what}: {n}" for what, n in sorted(fps.items())]


def markdown(result: dict[str, Any]) -> str:
    lines = [*_rule_lines(result), *_severity_lines(result), *_repo_lines(result),
             *_miss_lines(result)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--tolerance", type=int, default=0, help="lines a finding may be off")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    result = score(args.corpus, args.tolerance)
    print(json.dumps(result, indent=1) if args.json else markdown(result), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
