"""Audit baselines (issue 14, adoption): --write-baseline records today's findings by a
content fingerprint; --baseline reports only new ones, and only those fail the audit."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from reprolock.audit import baseline
from reprolock.audit.model import AuditReport, Finding, Severity, Suppression
from reprolock.config import Config
from reprolock.errors import ReprolockError
from reprolock.inspection.codeset import select_code
from tests.support.cli import run_cli
from tests.support.projects import write_project

REPO = Path(__file__).resolve().parent.parent
BASELINE_SCHEMA = json.loads((REPO / "schemas" / "audit-baseline.schema.json").read_text())
REPORT_SCHEMA = json.loads((REPO / "schemas" / "audit-report.schema.json").read_text())
SARIF_SCHEMA = json.loads((REPO / "tests" / "audit" / "sarif-schema-2.1.0.json").read_text())
REQUIREMENTS = "numpy\ntorch>=2\n"  # two RL101 errors
TRAIN = "import numpy as np\n\nx = np.random.rand(3)\n"  # RL402 error


def _active(proc: subprocess.CompletedProcess[str]) -> list[tuple[str, str, int]]:
    data = json.loads(proc.stdout)
    return [(f["rule"], f["path"], f["line"]) for f in data["findings"] if not f["suppressed"]]


@pytest.fixture
def adopted(tmp_path: Path) -> tuple[Path, Path]:
    """A project with three errors and the baseline that accepts them."""
    root = write_project(tmp_path, {"requirements.txt": REQUIREMENTS, "train.py": TRAIN})
    assert run_cli("audit", root).returncode == 1
    file = tmp_path / "audit-baseline.json"
    proc = run_cli("audit", root, "--write-baseline", file)
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {file}: 3 findings recorded" in proc.stderr
    return root, file


# --- writing -------------------------------------------------------------------------
def test_written_baseline_is_valid_sorted_and_stable(adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    text = file.read_text()
    data = json.loads(text)
    jsonschema.validate(data, BASELINE_SCHEMA)
    assert data["baselineVersion"] == 1
    keys = [(e["path"], e["rule"], e["fingerprint"], e["occurrence"]) for e in data["entries"]]
    assert keys == sorted(keys) and len(keys) == 3
    assert [k[:2] for k in keys] == [("requirements.txt", "RL101")] * 2 + [("train.py", "RL402")]
    assert len(text.splitlines()) == 3 + 5  # one entry a line: a fixed finding is one line
    run_cli("audit", root, "--write-baseline", file)
    assert file.read_text() == text  # written again: the same bytes


def test_suppressed_findings_are_not_recorded(tmp_path: Path) -> None:
    ignored = TRAIN.replace("(3)", "(3)  # reprolock: ignore[RL402]")
    root = write_project(tmp_path, {"train.py": ignored, "requirements.txt": "numpy\n"})
    file = tmp_path / "b.json"
    run_cli("audit", root, "--write-baseline", file, "--ignore", "RL101")
    assert json.loads(file.read_text())["entries"] == []
    assert run_cli("audit", root, "--baseline", file).returncode == 1  # RL101 is not in it


def test_a_baseline_in_dot_reprolock_is_not_in_the_code_set(tmp_path: Path) -> None:
    """docs/ci.md keeps the baseline in .reprolock/: it must not change the code set."""
    root = write_project(tmp_path, {"requirements.txt": REQUIREMENTS, "train.py": TRAIN})
    file = root / ".reprolock" / "audit-baseline.json"
    assert run_cli("audit", root, "--write-baseline", file).returncode == 0
    (root / "elsewhere.json").write_text(file.read_text())
    paths = select_code(Config(root=root, source=root / "reprolock.toml", data={},
                               base="")).paths
    assert "elsewhere.json" in paths and ".reprolock/audit-baseline.json" not in paths


# --- reading -------------------------------------------------------------------------
def test_baselined_findings_do_not_fail_and_reports_say_so(adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    proc = run_cli("audit", root, "--baseline", file, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    jsonschema.validate(data, REPORT_SCHEMA)
    assert data["exitCode"] == 0 and data["summary"]["findings"] == 0
    assert data["summary"]["suppressed"] == data["summary"]["baselined"] == 3
    marks = {(f["suppressed"]["kind"], f["suppressed"]["detail"]) for f in data["findings"]}
    assert marks == {("baseline", f"--baseline {file}")}  # each baselined finding says so
    assert f"baseline {file}: 3 findings baselined" in proc.stderr
    sarif = json.loads(run_cli("audit", root, "--baseline", file, "--format", "sarif").stdout)
    jsonschema.Draft7Validator(SARIF_SCHEMA).validate(sarif)
    results = sarif["runs"][0]["results"]
    assert [r["suppressions"][0]["kind"] for r in results] == ["external"] * 3
    assert [r["baselineState"] for r in results] == ["unchanged"] * 3
    assert sarif["runs"][0]["properties"]["baselined"] == 3
    text = run_cli("audit", root, "--baseline", file)
    assert "0 findings; 3 suppressed (RL101 ×2, RL402 ×1), 3 of them by the baseline" \
        in text.stdout


def test_a_new_finding_is_reported_alone(adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    (root / "requirements.txt").write_text(REQUIREMENTS + "pandas\n")
    proc = run_cli("audit", root, "--baseline", file, "--format", "json")
    assert proc.returncode == 1
    assert _active(proc) == [("RL101", "requirements.txt", 3)]


def test_moved_lines_stay_baselined(adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    (root / "requirements.txt").write_text("# pinned later\n\n" + "torch>=2\n\nnumpy\n")
    (root / "train.py").write_text("import os\n" + TRAIN.replace("\n\n", "\n\n\n\n"))
    proc = run_cli("audit", root, "--baseline", file, "--format", "json")
    assert proc.returncode == 0, proc.stdout
    assert _active(proc) == []


def test_an_edited_flagged_line_is_new_again(adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    (root / "requirements.txt").write_text("numpy\ntorch>=2.1\n")
    proc = run_cli("audit", root, "--baseline", file, "--format", "json")
    assert proc.returncode == 1
    assert _active(proc) == [("RL101", "requirements.txt", 2)]
    assert "1 recorded finding no longer found" in proc.stderr  # the old torch line


def test_rewriting_with_the_baseline_drops_fixed_and_adds_nothing(
        adopted: tuple[Path, Path]) -> None:
    root, file = adopted
    (root / "requirements.txt").write_text("numpy==1.26.4\ntorch>=2\npandas\n")
    proc = run_cli("audit", root, "--baseline", file, "--write-baseline", file,
                   "--format", "json", "--ignore", "RL102")
    assert proc.returncode == 1  # pandas is new: not accepted by the rewrite
    assert _active(proc) == [("RL101", "requirements.txt", 3)]
    entries = json.loads(file.read_text())["entries"]
    assert [(e["path"], e["message"].split()[0]) for e in entries] == [
        ("requirements.txt", "torch"), ("train.py", "np.random.rand()")]


@pytest.mark.parametrize(("fail_on", "code"), [(None, 0), ("warning", 1), ("info", 1)])
def test_fail_on_counts_only_new_findings(tmp_path: Path, fail_on: str | None,
                                          code: int) -> None:
    root = write_project(tmp_path, {"requirements.txt": "numpy\nscipy==1.13.0\n"})  # error, warning
    file = tmp_path / "b.json"
    run_cli("audit", root, "--write-baseline", file)
    flags = ["--fail-on", fail_on] if fail_on else []
    assert run_cli("audit", root, "--baseline", file, *flags).returncode == 0
    (root / "requirements.txt").write_text("numpy\nscipy==1.13.0\npandas==2.2.2\n")  # a warning
    assert run_cli("audit", root, "--baseline", file, *flags).returncode == code
    assert run_cli("audit", root, *flags).returncode == 1  # without it, the error fails


# --- bad baselines: exit 2, one paragraph naming the file and the field -------------------
_VALID = {"path": "train.py", "rule": "RL402", "fingerprint": "0" * 64, "occurrence": 0}


def _doc(**entry: object) -> bytes:
    return json.dumps({"baselineVersion": 1, "entries": [{**_VALID, **entry}]}).encode()


@pytest.mark.parametrize(("content", "says"), [
    (_doc(occurrence="1"), "entries[0].occurrence: expected an integer"),
    (_doc(path="../outside.py"), "entries[0].path"),
    (_doc(path="/etc/passwd"), "entries[0].path"),
    (_doc(rule=7), "entries[0].rule: expected a string"),
    (_doc(fingerprint="abc"), "entries[0].fingerprint"),
    (_doc(extra=1), "unknown key 'entries[0].extra'"),
    (b'{"baselineVersion": 1, "entries": {}}', "entries: expected a list"),
    (b'{"entries": []}', "'baselineVersion' is a required property"),
    (b'{"baselineVersion": 1, "entries": [], "entries": []}', 'key "entries" twice'),
    (b'{"baselineVersion": 9, "entries": []}', "newer reprolock"),
    (b"\xff\xfe{}", "not UTF-8"),
    (b"[]", "not a JSON object"),
    (b"{", "not valid JSON"),
    (b"[" * 100 + b"]" * 100, "nests deeper"),
])
def test_a_bad_baseline_exits_2_naming_the_field(tmp_path: Path, content: bytes,
                                                 says: str) -> None:
    root = write_project(tmp_path, {"train.py": TRAIN})
    file = tmp_path / "bad.json"
    file.write_bytes(content)
    proc = run_cli("audit", root, "--baseline", file)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: {file}") and says in proc.stderr, proc.stderr
    assert "fix:" in proc.stderr and "Traceback" not in proc.stderr
    assert "\n\n" not in proc.stderr.strip()  # one paragraph


def test_a_missing_baseline_says_how_to_write_one(tmp_path: Path) -> None:
    proc = run_cli("audit", write_project(tmp_path, {"train.py": TRAIN}), "--baseline",
                   tmp_path / "none.json")
    assert proc.returncode == 2
    assert "no baseline file at" in proc.stderr and "--write-baseline" in proc.stderr


def test_a_huge_baseline_is_refused_unread(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(baseline, "MAX_BYTES", 1000)
    file = tmp_path / "huge.json"
    file.write_bytes(b" " * 1001)
    with pytest.raises(ReprolockError, match="larger than 1000 bytes") as caught:
        baseline.load(file)
    assert "--write-baseline" in (caught.value.hint or "")


# --- fingerprints --------------------------------------------------------------------
def _lines(text: str) -> baseline.LineText:
    rows = text.splitlines()
    return lambda path, n: rows[n - 1] if 0 < n <= len(rows) else None


def _finding(line: int, message: str = "m", path: str = "Dockerfile",
             rule: str = "RL302") -> Finding:
    return Finding(rule, Severity.WARNING, path, line, message)


def test_fingerprint_ignores_whitespace_and_line_number_but_not_content() -> None:
    one = baseline.fingerprint(_finding(1), _lines("RUN  apt-get install curl"))
    assert one == baseline.fingerprint(_finding(3), _lines("\n\n  RUN apt-get   install curl"))
    assert one != baseline.fingerprint(_finding(1), _lines("RUN apt-get install wget"))
    assert one != baseline.fingerprint(_finding(2), _lines("x\nRUN apt-get install curl"
                                                           .replace("curl", "curl git")))


def test_continuation_lines_are_part_of_the_flagged_line() -> None:
    before = "RUN apt-get install -y \\\n    curl \\\n    git\nRUN echo\n"
    first = baseline.fingerprint(_finding(1), _lines(before))
    assert first != baseline.fingerprint(_finding(1), _lines(before.replace("git", "vim")))
    assert first == baseline.fingerprint(_finding(1), _lines(before.replace("echo", "true")))


def test_identical_lines_are_told_apart_by_occurrence() -> None:
    text = "pip install x\npip install x\n"
    found = [_finding(2), _finding(1)]
    entries = baseline.entries_for(found, _lines(text))
    assert [e.occurrence for e in entries] == [1, 0]  # in order of place, not of the list
    assert entries[0].fingerprint == entries[1].fingerprint
    three = [_finding(1), _finding(2), _finding(3)]
    later = baseline.entries_for(three, _lines(text + "pip install x\n"))
    recorded = {e.key for e in entries}
    assert [e.key in recorded for e in later] == [True, True, False]


def test_whole_file_and_project_findings_have_a_stable_fingerprint() -> None:
    def unread(path: str, line: int) -> str | None:
        raise AssertionError("a line-0 finding reads no line")

    whole = _finding(0, "not audited: binary", path="bin.py", rule="RL003")
    reworded = _finding(0, "the file is binary: not audited", path="bin.py", rule="RL003")
    project = _finding(0, "no seed anywhere", path="", rule="RL402")
    assert baseline.fingerprint(whole, unread) == baseline.fingerprint(reworded, unread)
    keys = [e.key for e in baseline.entries_for([whole, project], unread)]
    assert keys[0][:2] == ("bin.py", "RL003") and keys[1][:2] == ("", "RL402")
    jsonschema.validate(json.loads(baseline.render(baseline.Baseline(
        baseline.entries_for([whole, project], unread)))), BASELINE_SCHEMA)


def test_a_line_that_cannot_be_read_falls_back_to_the_file() -> None:
    gone = baseline.fingerprint(_finding(9), _lines("one line\n"))
    assert gone == baseline.fingerprint(_finding(0), _lines(""))


def test_apply_keeps_other_suppressions_and_counts_stale_entries(tmp_path: Path) -> None:
    inline = Suppression("inline", "# reprolock: ignore[RL302] on the line")
    found = (_finding(1), Finding("RL302", Severity.WARNING, "Dockerfile", 2, "m",
                                  suppression=inline))
    report = AuditReport(root=tmp_path, findings=found, files_audited=1)
    lines = _lines("RUN a\nRUN b\n")
    entries = baseline.entries_for(found, lines)
    old = baseline.Baseline((*entries, baseline.Entry("gone.py", "RL101", "1" * 64, 0)))
    applied = baseline.apply(report, entries, old, detail="--baseline b.json")
    assert applied.baselined == 1 and applied.stale == 1
    assert [f.suppression for f in applied.report.findings] == [
        Suppression("baseline", "--baseline b.json"), inline]
    assert applied.report.baselined() == 1
    assert baseline.record(report, entries).entries == (entries[0],)


def test_render_parse_round_trip_with_a_non_utf8_file_name() -> None:
    name = b"data/\xff.py".decode("utf-8", "surrogateescape")
    entry = baseline.Entry(name, "RL401", "a" * 64, 2, "m")
    text = baseline.render(baseline.Baseline((entry,)))
    assert text.isascii()
    assert baseline.parse(text.encode(), source="b.json").entries == (entry,)
