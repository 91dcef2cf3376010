"""The audit: read the project once, run every rule, mark suppressions, sort.

    >>> from pathlib import Path
    >>> from reprolock.audit.engine import AuditOptions, audit_project
    >>> report = audit_project(Path("fixtures/example"), AuditOptions())  # doctest: +SKIP
    >>> [f.rule for f in report.active]                                    # doctest: +SKIP
    []
"""

from __future__ import annotations

import ast
import dataclasses
import gc
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reprolock.audit.context import AuditContext
from reprolock.audit.model import AuditReport, Finding, Severity
from reprolock.audit.notebooks import Notebook, read_notebook
from reprolock.audit.pyindex import FileFacts, index_file
from reprolock.audit.rules import (
    conda,
    coverage,
    dockerfiles,
    environment,
    lockfile,
    requirements,
    scripts,
    secrets,
    training,
)
from reprolock.audit.rules import config as config_rules
from reprolock.audit.sources import (
    SourceFile,
    audited_dockerfile,
    code_paths,
    read_source,
    read_sources,
)
from reprolock.audit.suppress import Suppressions, apply
from reprolock.config import CONFIG_NAME, Config
from reprolock.errors import ConfigError, ReprolockError
from reprolock.inspection.dockerfile import Dockerfile, parse_dockerfile


@dataclass(frozen=True)
class AuditOptions:
    ignore: tuple[str, ...] = ()  # --ignore
    hadolint: bool = True


def audit_project(path: Path, options: AuditOptions) -> AuditReport:
    root = _root(path)
    config = _config(root)
    suppressions = _suppressions(config, options)
    ctx, problems, notebooks = _context(root, config, use_hadolint=options.hadolint)
    hadolint = dockerfiles.hadolint_for(ctx)
    # what is read from Python (notebooks' code cells included) is placed back in notebooks
    found = _in_notebooks([*problems.python, *lockfile.check(ctx), *training.check(ctx),
                           *scripts.check_python(ctx)], notebooks)
    for rules in (problems.files, requirements.check(ctx), config_rules.check(ctx),
                  dockerfiles.check(ctx, hadolint), secrets.check(ctx), scripts.check(ctx),
                  coverage.check(ctx.in_image), environment.check(ctx), conda.check(ctx)):
        found.extend(rules)
    lines = _LineReader(root, ctx.files)
    marked = apply(_unique(found), suppressions, lines.line)
    return AuditReport(
        root=root, findings=tuple(sorted(marked, key=lambda f: f.sort_key)),
        files_audited=sum(1 for f in ctx.files if f.data is not None and f.path in ctx.in_image),
        config=config.source_name if config is not None else None,
        tools={"hadolint": hadolint.version} if hadolint.version else {},
        fail_on=Severity(config.audit.fail_on) if config and config.audit.fail_on else None)


def _root(path: Path) -> Path:
    try:
        root = path.resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop as the project path
        raise ReprolockError(f"cannot open {path}: {exc}") from exc
    if not root.is_dir():
        raise ReprolockError(f"{path} is not a directory",
                             hint="pass the project directory: reprolock audit DIR")
    return root


def _config(root: Path) -> Config | None:
    """The project's config, or None for a plain directory of code."""
    from reprolock.config import find_config, load_config

    try:
        find_config(root)
    except ConfigError:
        return None
    return load_config(root)  # a config that exists but is invalid is an error (exit 2)


def _suppressions(config: Config | None, options: AuditOptions) -> Suppressions:
    audit = config.audit if config is not None else None
    return Suppressions(
        ignore=frozenset(audit.ignore if audit else ()),
        option=frozenset(rule.upper() for rule in options.ignore),
        per_path=tuple((glob, frozenset(ids)) for glob, ids in
                       (audit.per_path_ignores if audit else ())))


@dataclass(frozen=True)
class _Problems:
    files: list[Finding]  # files that could not be read as they should
    python: list[Finding]  # Python (or notebook code) that does not parse


def _context(root: Path, config: Config | None, *, use_hadolint: bool
             ) -> tuple[AuditContext, _Problems, dict[str, Notebook]]:
    listing = config or Config(root=root, source=root / CONFIG_NAME, data={}, base="")
    paths = code_paths(listing)
    wanted = {p for p in paths if p.endswith((".py", ".ipynb")) or audited_dockerfile(p)
              or requirements.is_requirement_file(p) or scripts.is_script(p)
              or conda.is_environment_file(p)}
    files, problems = read_sources(root, paths, wanted)
    by_path = {f.path: f for f in files}
    requirement_files, lock_inputs = _requirement_files(root, config, paths, by_path, problems)
    notebooks = _notebooks(by_path.values(), problems)
    python, syntax = _index_python([
        *(f for f in by_path.values() if not f.path.endswith(".ipynb")),
        *(SourceFile(path, nb.python.encode()) for path, nb in notebooks.items())])
    lock, lock_problem = lockfile.read(config) if config is not None else (None, None)
    ctx = AuditContext(
        root=root, config=config, files=tuple(by_path.values()), python=tuple(python),
        dockerfiles=tuple(_dockerfiles(by_path.values())),
        requirement_files=tuple(requirement_files), lock_inputs=frozenset(lock_inputs),
        in_image=frozenset(paths), use_hadolint=use_hadolint, lock=lock,
        lock_problem=lock_problem, notebook_shell=tuple(
            (path, line, command) for path, nb in notebooks.items()
            for line, command in nb.shell))
    return ctx, _Problems(problems, syntax), notebooks


def _notebooks(files: Iterable[SourceFile], problems: list[Finding]) -> dict[str, Notebook]:
    """The notebooks of the code set; one that is not notebook JSON is RL003."""
    found = {}
    for source in files:
        text = source.text() if source.path.endswith(".ipynb") else None
        if text is None:
            continue
        notebook = read_notebook(text)
        if notebook is None:
            problems.append(Finding("RL003", Severity.INFO, source.path, 0,
                                    "not audited: not a notebook (no strict JSON list of cells)"))
        else:
            found[source.path] = notebook
    return found


def _in_notebooks(findings: list[Finding], notebooks: dict[str, Notebook]) -> list[Finding]:
    """A notebook's Python findings carry lines of its code cells put end to end: each
    goes back to its line in the .ipynb file (columns do not carry over)."""
    if not notebooks:
        return findings
    placed = []
    for finding in findings:
        notebook = notebooks.get(finding.path)
        if notebook is not None and finding.line:
            finding = dataclasses.replace(finding, line=notebook.file_line(finding.line),
                                          column=0)
        placed.append(finding)
    return placed


def _requirement_files(root: Path, config: Config | None, paths: list[str],
                       by_path: dict[str, SourceFile],
                       problems: list[Finding]) -> tuple[list[str], set[str]]:
    """Requirement files of the code set and the lock inputs, with what they include.

    Lock inputs may be kept out of the image, so they are read here if need be (through
    a link: they are read on the host). A lock input that does not exist makes the config
    invalid (exit 2); a -r/-c include that does not exist is RL002 on its line."""
    inputs = list(config.requirements) if config is not None else []
    in_code_set = set(paths)
    # lock inputs first, so that what they include is known to feed the lock
    queue: list[tuple[str, Finding | None]] = [(p, None) for p in inputs]
    queue += [(p, None) for p in paths if requirements.is_requirement_file(p)]
    seen: list[str] = []
    pinned_by_lock: set[str] = set()
    while queue:
        path, if_missing = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        if path not in by_path:
            source, problem = read_source(root, path, must_be_text=True,
                                          follow_links=path not in in_code_set)
            if source is not None:
                by_path[path] = source
            if problem is not None:
                problems.append(problem)
            elif source is None and if_missing is not None and not (root / path).exists():
                problems.append(if_missing)
        text = by_path[path].text() if path in by_path else None
        included = requirements.includes(path, text) if text is not None else []
        if path in inputs or path in pinned_by_lock:
            pinned_by_lock.add(path)
            pinned_by_lock.update(i.path for i in included)
        queue += [(i.path, _missing_include(path, i)) for i in included]
    return sorted(p for p in seen if p in by_path), pinned_by_lock


def _missing_include(path: str, include: requirements.Include) -> Finding:
    return Finding("RL002", Severity.WARNING, path, include.line,
                   f"{include.option} {include.path}: the file does not exist, so its "
                   "requirements were not audited (and pip stops on this line)")


def _index_python(files: Iterable[SourceFile]) -> tuple[list[FileFacts], list[Finding]]:
    """Parse each Python file once and index it; a file that does not parse is a finding.

    The cyclic garbage collector is paused meanwhile: ast.parse allocates hundreds of
    thousands of (acyclic) node objects, and the collections they trigger cost twice the
    parsing itself (1.2-1.6 s against 0.5 s for 50,000 lines, docs/benchmarks.md)."""
    paused = gc.isenabled()
    gc.disable()
    try:
        return _parse_and_index(files)
    finally:
        if paused:
            gc.enable()


def _parse_and_index(files: Iterable[SourceFile]) -> tuple[list[FileFacts], list[Finding]]:
    facts: list[FileFacts] = []
    problems: list[Finding] = []
    for source in files:
        if not source.path.endswith((".py", ".ipynb")) or source.data is None \
                or source.binary:
            continue
        try:
            tree = ast.parse(source.data, filename=source.path)
        except SyntaxError as exc:
            if _undecodable(source.data):  # docs/audit.md: not text, so not audited
                problems.append(Finding("RL003", Severity.INFO, source.path, 0,
                                        "not audited: the file is not UTF-8 text (nor in "
                                        "the encoding it declares)"))
                continue
            problems.append(Finding("RL001", Severity.ERROR, source.path, exc.lineno or 0,
                                    f"does not parse: {exc.msg}", column=exc.offset or 0))
            continue
        except (ValueError, RecursionError, MemoryError) as exc:
            problems.append(Finding("RL001", Severity.ERROR, source.path, 0,
                                    f"does not parse: {exc.__class__.__name__}: {exc}"))
            continue
        try:
            facts.append(index_file(source.path, tree))
        except RecursionError:  # a pathologically deep expression
            problems.append(Finding("RL003", Severity.INFO, source.path, 0,
                                    "not audited: the code is nested too deeply to index"))
    return facts, problems


def _undecodable(data: bytes) -> bool:
    """The bytes do not decode in the encoding the file declares (PEP 263, else UTF-8):
    a text problem, not a syntax error."""
    import io
    import tokenize

    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
        data.decode(encoding)
    except (SyntaxError, UnicodeDecodeError, LookupError):
        return True
    return False


def _dockerfiles(files: Iterable[SourceFile]) -> list[Dockerfile]:
    found = []
    for source in files:
        text = source.text() if audited_dockerfile(source.path) else None
        if text is not None:
            found.append(parse_dockerfile(source.path, text))
    return found


def _unique(findings: Iterable[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, int, str]] = set()
    kept = []
    for finding in findings:
        key = (finding.rule, finding.path, finding.line, finding.message)
        if key not in seen:
            seen.add(key)
            kept.append(finding)
    return kept


class _LineReader:
    """Lines of files for inline suppressions: files already read, else read once."""

    def __init__(self, root: Path, files: Iterable[SourceFile]) -> None:
        self.root = root
        self.sources = {f.path: f for f in files}
        self.cache: dict[str, list[str]] = {}

    def line(self, path: str, number: int) -> str | None:
        if path not in self.cache:
            self.cache[path] = self._read(path)
        lines = self.cache[path]
        return lines[number - 1] if 0 < number <= len(lines) else None

    def _read(self, path: str) -> list[str]:
        source = self.sources.get(path)
        if source is None:
            source, _ = read_source(self.root, path, must_be_text=True, follow_links=True)
        text = source.text() if source is not None else None
        return text.splitlines() if text is not None else []
