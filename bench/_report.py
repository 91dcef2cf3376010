"""docs/benchmarks.md holds one section per benchmark; each script rewrites only its own.

A section sits between ``<!-- bench:NAME:begin -->`` and ``<!-- bench:NAME:end -->``.
``splice`` replaces the text between one section's markers and leaves every other byte of
the file alone (the title, the other script's section, hand-written sections such as
"SBOM and signing"). A section not yet in the file goes after the sections that come
before it in SECTIONS (or before the ones that follow it); a file without any markers
gets the title and the section, with the earlier text kept below them.
"""

from __future__ import annotations

from pathlib import Path

SECTIONS = ("lock", "build", "verify", "audit", "s2", "slurm")

HEADER = """# Benchmarks

Five benchmarks, each made by its own script in `bench/` (see `bench/README.md`), each run
on its own and so each with its own machine section:

- [Lock](#lock-reprolock-lock-vs-uv-and-pip-tools-issue-2): `bench/bench_lock.py`,
  `reprolock lock --no-build` against plain uv and pip-compile (issue 2);
- [Build](#build-reprolock-build-vs-docker-build-issue-3): `bench/bench_build.py`,
  `reprolock build` against `docker build` of the equivalent Dockerfile (issue 3);
- [Verify](#verify-the-runtime-check-and-lock---check-issue-5): `bench/bench_verify.py`,
  the runtime check against `find | xargs sha256sum`, and `lock --check` (issue 5);
- [Audit](#audit-reprolock-audit-on-a-50000-line-project-issue-6): `bench/bench_audit.py`,
  `reprolock audit` against parsing the same files alone (issue 6);
- S2: `bench/bench_s2.py`, a multi-gigabyte CUDA training stack (`torch==2.13.0` from PyPI,
  transformers, accelerate, datasets): `reprolock build` against `docker build` and a
  floor script, thread determinism, memory, SBOM, `docker load` and `run` (issue 13).

Within a section every number comes from one run, side by side, so ratios compare like
with like. Absolute times depend on the machine's load at the time (recorded).
"""


def _marker(name: str, edge: str) -> str:
    return f"<!-- bench:{name}:{edge} -->"


def _block(name: str, body: str) -> str:
    return f"{_marker(name, 'begin')}\n{body.rstrip(chr(10))}\n{_marker(name, 'end')}"


def splice(path: Path, name: str, body: str) -> None:
    """Write ``body`` as section ``name`` of ``path``, keeping everything else."""
    if name not in SECTIONS:
        raise ValueError(f"unknown section {name!r}")
    old = path.read_text(encoding="utf-8") if path.is_file() else ""
    block = _block(name, body)
    begin, end = _marker(name, "begin"), _marker(name, "end")
    if begin in old and end in old[old.index(begin):]:
        start = old.index(begin)
        stop = old.index(end, start) + len(end)
        new = old[:start] + block + old[stop:]
    elif any(_marker(other, "begin") in old for other in SECTIONS):
        index = SECTIONS.index(name)
        before = [s for s in SECTIONS[:index] if _marker(s, "end") in old]
        after = [s for s in SECTIONS[index + 1:] if _marker(s, "begin") in old]
        if before:
            at = old.index(_marker(before[-1], "end")) + len(_marker(before[-1], "end"))
            new = old[:at] + "\n\n" + block + old[at:]
        else:
            at = old.index(_marker(after[0], "begin"))
            new = old[:at] + block + "\n\n" + old[at:]
    else:
        kept = old.strip()
        new = HEADER + "\n" + block + "\n" + (f"\n{kept}\n" if kept else "")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new if new.endswith("\n") else new + "\n", encoding="utf-8")
