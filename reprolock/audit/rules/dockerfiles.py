"""RL2xx/RL3xx/RL602 for Dockerfiles: hadolint, plus what hadolint does not check."""

from __future__ import annotations

import re
from collections.abc import Iterator

from reprolock.audit.context import AuditContext
from reprolock.audit.model import Finding, Severity
from reprolock.audit.rules.hadolint import HadolintRun, run_hadolint
from reprolock.audit.rules.requirements import file_judge
from reprolock.audit.shell import ScanOptions, scan, words_from_exec_form
from reprolock.inspection.dockerfile import Dockerfile, Instruction, Stage

_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
_HASH_SEED = re.compile(r"^[0-9]+$")


def check(ctx: AuditContext, hadolint: HadolintRun) -> Iterator[Finding]:
    """hadolint's findings (from :func:`hadolint_for`), then reprolock's own.

    Where hadolint reports a pip package without a version (DL3013, RL303) on a line,
    RL305 is not reported there too: one root cause, one finding."""
    yield from hadolint.findings
    unpinned_pip = {(f.path, f.line) for f in hadolint.findings if f.rule == "RL303"}
    for dockerfile in ctx.dockerfiles:
        folder = dockerfile.path.rpartition("/")[0]
        options = ScanOptions(apt_get=not hadolint.checked, files=file_judge(ctx, folder))
        yield from _base_images(dockerfile, fallback=not hadolint.checked)
        for ins in dockerfile.instructions:
            yield from _add_url(dockerfile.path, ins)
            for finding in _run(dockerfile.path, ins, options):
                if finding.rule != "RL305" or finding.severity != Severity.ERROR \
                        or (finding.path, finding.line) not in unpinned_pip:
                    yield finding
        yield from _hash_seed(dockerfile)


def hadolint_for(ctx: AuditContext) -> HadolintRun:
    if not ctx.use_hadolint:
        return HadolintRun((), False, None)
    return run_hadolint(ctx.root, [d.path for d in ctx.dockerfiles])


def _base_images(dockerfile: Dockerfile, *, fallback: bool) -> Iterator[Finding]:
    for stage in dockerfile.stages():
        image = stage.image
        if stage.parent_stage or image.lower() == "scratch":
            continue  # an earlier stage, or no image
        if "$" in image:  # an ARG without a default: --build-arg chooses the base
            yield Finding("RL204", Severity.WARNING, dockerfile.path, stage.line,
                          f"FROM {image}: the base image is chosen at build time "
                          "(--build-arg), so the Dockerfile pins nothing; give the ARG a "
                          "default pinned by digest and build with that")
            continue
        if _DIGEST.search(image):
            continue
        name, tag = _split_tag(image)
        if tag in (None, "latest"):
            if fallback:  # hadolint's DL3006/DL3007 report these when it runs
                yield Finding("RL202", Severity.ERROR, dockerfile.path, stage.line,
                              f"FROM {image}: {'latest' if tag else 'no tag'} moves with "
                              "every push; name a release and pin its digest")
            continue
        yield Finding("RL201", Severity.ERROR, dockerfile.path, stage.line,
                      f"FROM {image} names a tag, not a digest: the base changes whenever "
                      f"the tag is pushed again; write {name}:{tag}@sha256:<digest>")


def _split_tag(image: str) -> tuple[str, str | None]:
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return image, None
    return image.rsplit(":", 1)[0], image.rsplit(":", 1)[1]


def _add_url(path: str, ins: Instruction) -> Iterator[Finding]:
    if ins.keyword != "ADD":
        return
    words = ins.args.split()
    flags = [w for w in words if w.startswith("--")]
    sources = [w for w in words if not w.startswith("--")][:-1]
    urls = [s for s in sources if s.startswith(("http://", "https://"))]
    if urls and not any(f.startswith("--checksum=") for f in flags):
        yield Finding("RL304", Severity.ERROR, path, ins.line,
                      f"ADD {urls[0]} has no --checksum=sha256:...: the download is not "
                      "verified")


def _run(path: str, ins: Instruction, options: ScanOptions) -> Iterator[Finding]:
    """RUN's shell commands (reprolock.audit.shell); a heredoc's lines keep their own."""
    if ins.keyword != "RUN":
        return
    text = words_from_exec_form(ins.args) or ins.args
    for hazard in scan(text, options):
        yield Finding(hazard.rule, hazard.severity, path, ins.line + hazard.line,
                      hazard.message)


def _hash_seed(dockerfile: Dockerfile) -> Iterator[Finding]:
    """PYTHONHASHSEED must be fixed in the final stage (or the stages it is built on)."""
    stages = dockerfile.stages()
    if not stages:
        return
    final = stages[-1]
    value = _stage_env(stages, final).get("PYTHONHASHSEED")
    if value is None:
        yield Finding("RL602", Severity.WARNING, dockerfile.path, final.line,
                      "the final stage does not set PYTHONHASHSEED: string hashing (set "
                      "order, hash()) changes between runs; add ENV PYTHONHASHSEED=0")
    elif not _HASH_SEED.match(value[0]):
        yield Finding("RL602", Severity.WARNING, dockerfile.path, value[1],
                      f"PYTHONHASHSEED={value[0]} does not fix string hashing; use a number "
                      "such as 0")


def _stage_env(stages: list[Stage], stage: Stage) -> dict[str, tuple[str, int]]:
    env: dict[str, tuple[str, int]] = {}
    parent = next((s for s in stages if s.alias and s.alias.lower() == stage.parent_stage),
                  None)
    if parent is not None and parent is not stage:
        env.update(_stage_env(stages[:stages.index(parent) + 1], parent))
    env.update({name: (value, line) for name, value, line in stage.env})
    return env
