"""docs/benchmarks.md holds one section per benchmark; each script rewrites only its own.

The sections sit between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``
markers, in the order of SECTIONS, under one title. A file without markers (an older
format) is started afresh.
"""

from __future__ import annotations

import re
from pathlib import Path

SECTIONS = ("lock", "build")

HEADER = """# Benchmarks

Two benchmarks, each made by its own script in `bench/` (see `bench/README.md`), each run
on its own and so each with its own machine section:

- [Lock](#lock-reprolock-lock-vs-uv-and-pip-tools-issue-2): `bench/bench_lock.py`,
  `reprolock lock --no-build` against plain uv and pip-compile (issue 2);
- [Build](#build-reprolock-build-vs-docker-build-issue-3): `bench/bench_build.py`,
  `reprolock build` against `docker build` of the equivalent Dockerfile (issue 3).

Within a section every number comes from one run, side by side, so ratios compare like
with like. Absolute times depend on the machine's load at the time (recorded).
"""


def _marker(name: str, edge: str) -> str:
    return f"<!-- bench:{name}:{edge} -->"


def splice(path: Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of ``path``, keeping the other sections."""
    if name not in SECTIONS:
        raise ValueError(f"unknown section {name!r}")
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    found: dict[str, str] = {}
    for other in SECTIONS:
        m = re.search(re.escape(_marker(other, "begin")) + r"\n(.*?)" +
                      re.escape(_marker(other, "end")), old, re.S)
        if m:
            found[other] = m.group(1)
    found[name] = body.rstrip("\n") + "\n"
    parts = [HEADER]
    for other in SECTIONS:
        if other in found:
            parts.append(f"{_marker(other, 'begin')}\n{found[other]}{_marker(other, 'end')}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts), encoding="utf-8")
