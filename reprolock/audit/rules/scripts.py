"""Shell commands outside Dockerfiles: ``*.sh`` scripts, a notebook's ``!``/``%pip``
lines, and commands that Python code runs (``os.system``, ``subprocess``).

Scripts and notebook lines get the Dockerfile rules (RL105, RL106, RL302, RL305-RL310):
they set up the environment the same way. A command that Python code runs is judged as
what it is, a change made while the code runs: installing packages is RL417 (one finding
per call), a download without a checksum is RL413, like a download in Python.
"""

from __future__ import annotations

import ast
import re
import shlex
from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.audit.pyindex import CallSite, FileFacts
from reprolock.audit.rules.requirements import file_judge
from reprolock.audit.shell import ScanOptions, scan

_SCRIPT = re.compile(r"\.(sh|bash)$")
RUNNERS = frozenset({
    "os.system", "os.popen", "subprocess.run", "subprocess.call", "subprocess.check_call",
    "subprocess.check_output", "subprocess.Popen", "subprocess.getoutput",
    "subprocess.getstatusoutput"})


def is_script(path: str) -> bool:
    return bool(_SCRIPT.search(path))


def check(ctx: AuditContext) -> Iterator[Finding]:
    for source in ctx.files:
        text = source.text() if is_script(source.path) else None
        if text is not None and source.path in ctx.in_image:
            folder = source.path.rpartition("/")[0]
            for hazard in scan(text, ScanOptions(files=file_judge(ctx, folder))):
                yield Finding(hazard.rule, hazard.severity, source.path, hazard.line + 1,
                              hazard.message)
    for path, line, command in ctx.notebook_shell:
        options = ScanOptions(files=file_judge(ctx, path.rpartition("/")[0]))
        for hazard in scan(command, options):
            yield Finding(hazard.rule, hazard.severity, path, line, hazard.message)


def check_python(ctx: AuditContext) -> Iterator[Finding]:
    """Commands that Python code runs (their lines are the Python file's)."""
    options = ScanOptions(files=file_judge(ctx))
    for facts in ctx.python:
        for call in facts.calls:
            if call.name in RUNNERS:
                yield from _run_by_python(facts, call, options)


def _run_by_python(facts: FileFacts, call: CallSite,
                   options: ScanOptions) -> Iterator[Finding]:
    command = command_text(call.node)
    if not command:
        return
    run_time = ScanOptions(options.apt_get, options.files, at_run_time=True,
                           verified=call.scope in facts.verifying_scopes)
    where = call.name.split(".")[0] + "." + call.name.rsplit(".", 1)[1]
    for hazard in scan(command, run_time):
        if hazard.rule == "RL308":
            yield _at(facts, call, "RL413", Severity.WARNING, f"{where}() downloads: "
                      f"{hazard.message}")
        else:
            yield _at(facts, call, hazard.rule, hazard.severity, f"{where}(): "
                      f"{hazard.message}")


def _at(facts: FileFacts, call: CallSite, rule: str, severity: Severity,
        message: str) -> Finding:
    return Finding(rule, severity, facts.path, call.node.lineno, message,
                   column=call.node.col_offset + 1)


def command_text(node: ast.Call) -> str | None:
    """The command a call runs, as shell text; what is computed at run time is ``$X``."""
    arg = node.args[0] if node.args else next(
        (k.value for k in node.keywords if k.arg in ("args", "cmd")), None)
    if isinstance(arg, ast.List | ast.Tuple):
        words = [_word(element) for element in arg.elts]
        return shlex.join(words) if words else None
    return _string(arg) if arg is not None else None


def _word(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute) and node.attr == "executable":
        return "python"  # sys.executable
    return _string(node) or "$X"


def _string(node: ast.expr) -> str | None:
    """A constant string, an f-string or a ``+`` of strings, with ``$X`` for the parts
    only known at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(v.value if isinstance(v, ast.Constant) and isinstance(v.value, str)
                       else "$X" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _string(node.left), _string(node.right)
        if left is None and right is None:
            return None
        return (left or "$X") + (right or "$X")
    return None

