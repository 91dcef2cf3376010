"""What the resolver chose that the user did not ask for, said out loud.

A hash pinned with ``--hash`` is a constraint (uv ignores it; both resolvers record every
hash of the index); a pre-release nobody named is refused (pip takes one when no final
release has a wheel); a direct requirement locked below its newest release gets a warning
that names what held it back, found by asking the resolver about that release alone.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.specifiers import SpecifierSet

from reprolock.errors import ArtifactError, ReprolockError, ResolverError
from reprolock.resolver.interface import Pin, Resolver, ResolveRequest
from reprolock.resolver.requested import Requested

if TYPE_CHECKING:
    from reprolock.index.releases import Release
    from reprolock.index.simple import DistFile, IndexClient


def with_pinned_hashes(pins: tuple[Pin, ...], requested: Sequence[Requested]) -> tuple[Pin, ...]:
    """Each pin restricted to the hashes its requirement lines pin (``--hash``), as pip's
    hash-checking mode has it: the lock records, and build installs, only a file the user
    pinned. A pin none of whose files was pinned fails the lock."""
    result = []
    for pin in pins:
        hashes = set(pin.hashes)
        for item in requested:
            if item.name == pin.name and item.hashes:
                hashes &= item.hashes
                if not hashes:
                    raise _hash_mismatch(item, pin)
        result.append(dataclasses.replace(pin, hashes=tuple(sorted(hashes))))
    return tuple(result)


def _hash_mismatch(item: Requested, pin: Pin) -> ArtifactError:
    return ArtifactError(
        f"{item.where} pins {pin.name} to --hash {', '.join(sorted(item.hashes))}, but no "
        f"file of {pin.name} {pin.version} on the index has that hash; the index's files "
        f"have {', '.join(pin.hashes) or 'no hashes'}",
        hint=f"if the hash is of another version, pin that version ({pin.name}==VERSION) "
        f"beside it; if the index is right, correct the --hash in {item.where}; if your hash "
        "is right, the index serves another file than the one you pinned: do not use it")


#: Extra resolver runs a lock may make to say what held a package back.
_MAX_EXPLAINED = 3
_NO_WHEEL = (
    # uv: "Because sdistdep==1.0 has no usable wheels and ...", "all versions of x have ..."
    re.compile(r"(?:^|[\s(])([A-Za-z0-9][A-Za-z0-9._-]*?)(?:[=<>!~]=?[^\s,]*)? "
               r"(?:has|have) no usable wheels"),
    # uv with pre-releases refused: "there are no versions of onlypre"
    re.compile(r"there (?:are|is) no versions of ([A-Za-z0-9][A-Za-z0-9._-]*)"),
    # pip: "No matching distribution found for sdistdep (from oldpkg)"
    re.compile(r"No matching distribution found for ([A-Za-z0-9][A-Za-z0-9._-]*)"),
)


class Honesty:
    """What the resolver chose that the user did not ask for, said out loud: a
    pre-release is refused, an older release than the newest gets a warning naming why."""

    def __init__(self, resolver: Resolver, request: ResolveRequest, client: IndexClient,
                 requested: Sequence[Requested], kept: dict[str, str]) -> None:
        self.resolver, self.request, self.client = resolver, request, client
        self.requested = requested
        self.kept = kept  # the previous lock's versions
        self.explained = 0
        self._newest: dict[str, Release | None] = {}  # by requested name

    def read_ahead(self, resolving: concurrent.futures.Future[Any]) -> None:
        """Until ``resolving`` is done, find the newest final release each requirement
        allows from the pages the client has fetched ahead, as each arrives: the lock's
        last steps then wait less, and a page still on its way never holds back the
        resolver's answer or error. An index error is left for the step that needs the
        page: the resolver's own error (a package the index lacks) comes first."""
        waiting: dict[concurrent.futures.Future[Any], str] = {}
        for name in dict.fromkeys(r.name for r in self.requested):
            page = self.client.prefetched(name)
            if page is not None:
                waiting[page] = name
        while waiting and not resolving.done():
            done, _ = concurrent.futures.wait([resolving, *waiting],
                                              return_when=concurrent.futures.FIRST_COMPLETED)
            # In the requirements' order, not the set's: the same lock reads the same
            # pages in the same order whatever the hash seed.
            for page in [page for page in waiting if page in done]:
                try:
                    self._newest_final(waiting.pop(page))
                except ReprolockError:
                    continue

    def _newest_final(self, name: str, files: list[DistFile] | None = None,
                      ) -> Release | None:
        from reprolock.index.releases import newest_final

        if name not in self._newest:
            listed = files if files is not None else self.client.project_files(name)
            self._newest[name] = newest_final(listed, _specifier(self._lines(name)))
        return self._newest[name]

    def refuse_prereleases(self, pins: Sequence[Pin]) -> None:
        from packaging.version import Version

        for pin in pins:
            lines = self._lines(pin.name)
            if not Version(pin.version).is_prerelease or any(r.names_prerelease for r in lines):
                continue
            needed = "" if _direct(pin) else f" ({', '.join(pin.via)} needs it)"
            raise ResolverError(
                f"{self.resolver.name} chose {pin.name} {pin.version}{needed}, a pre-release "
                f"that no requirement asks for: {self._final_blocked(pin.name)}",
                hint=f"to accept the pre-release, name it in your requirements "
                f"({pin.name}>={pin.version}); else publish a wheel of the final release "
                "for the target to a find-links directory, or pin an older version of what "
                "needs it")

    def skipped_releases(self, pins: Sequence[Pin]) -> list[str]:
        """A warning for each direct requirement locked below the newest final release
        its specifier allows, when that release cannot be installed: which one and why."""
        from packaging.version import Version

        direct = [p for p in pins if _direct(p) and self._lines(p.name)]
        unread = [p.name for p in direct if p.name not in self._newest]
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            for name, files in zip(unread, pool.map(self.client.project_files, unread),
                                   strict=True):
                self._newest_final(name, files)
        warnings = []
        for pin in direct:
            release = self._newest_final(pin.name)
            if release is None or release.version <= Version(pin.version):
                continue
            why = self._why_not(pin, release)
            if why is not None:
                warnings.append(
                    f"{pin.name} is locked at {pin.version}, not at its newest release "
                    f"{release.version}: {why}, so the resolver chose an older release")
        return warnings

    def _why_not(self, pin: Pin, release: Release) -> str | None:
        from reprolock.index.releases import unusable

        reason = unusable(release, self.request.target)
        if reason is not None:
            return f"{release.version} {reason.removeprefix('it ')}"
        if self.kept.get(pin.name) == pin.version:
            return None  # the previous lock's pin, kept: 'lock --upgrade-package' moves it
        return self._blocker(pin.name, str(release.version))

    def _final_blocked(self, name: str) -> str:
        from reprolock.index.releases import unusable

        release = self._newest_final(name)
        if release is None:
            return f"the index has no final release of {name} that the requirements allow"
        reason = unusable(release, self.request.target) or \
            self._blocker(name, str(release.version))
        return (f"its newest final release, {release.version}, cannot be used: "
                f"{reason or 'it conflicts with the other requirements'}")

    def _blocker(self, name: str, version: str) -> str | None:
        """Why the resolver cannot use ``name==version`` alone (None when it can): a run
        of its own, whose error names the package that has no wheel."""
        if self.explained >= _MAX_EXPLAINED:
            return (f"reprolock explains at most {_MAX_EXPLAINED} packages per lock; add "
                    f"{name}=={version} to the requirements to see what holds it back")
        self.explained += 1
        with tempfile.TemporaryDirectory(prefix="reprolock-why-") as tmp:
            wanted = Path(tmp) / "why.in"
            wanted.write_text(f"{name}=={version}\n", encoding="utf-8")
            try:
                self.resolver.resolve(dataclasses.replace(
                    self.request, inputs=(wanted,), preferred="", upgrade=True,
                    upgrade_packages=()))
            except ReprolockError as exc:
                return self._blocking(exc.message, name)
        return None

    def _blocking(self, text: str, name: str) -> str:
        blocker = blocking_name(text, name)
        if blocker is not None:
            return (f"it needs {blocker}, which has no usable release on the index "
                    f"({self._shipped(blocker)})")
        said = [_sentence(line) for line in text.splitlines() if "Because" in line
                or "No matching" in line] or [_sentence(t) for t in text.splitlines()[-1:]]
        return f"the resolver cannot use it: {said[0]}" if said and said[0] else \
            "the resolver cannot use it"

    def _shipped(self, name: str) -> str:
        from reprolock.index.releases import has_wheel
        from reprolock.index.simple import release_of

        files = self.client.project_files(name)
        if not has_wheel(files):
            return (f"only sdists: to build it from its sdist, add \"{name}\" to "
                    "dependencies.build-from-source")
        releases = [r[1] for f in files if (r := release_of(f.filename)) is not None]
        if releases and all(v.is_prerelease for v in releases):
            return "only pre-releases, which are used only when a requirement names one"
        return "no wheel for the target"

    def _lines(self, name: str) -> list[Requested]:
        return [r for r in self.requested if r.name == name]


def _sentence(line: str) -> str:
    """A resolver's line as the middle of a warning: without the label before "Because"
    ("cause: ", uv's tree) and the full stop after it."""
    line = line.strip(" |")
    start = line.find("Because ")
    return (line[start + len("Because "):] if start >= 0 else line).strip().rstrip(".")


def blocking_name(text: str, name: str) -> str | None:
    """The package other than ``name`` that a resolver's error says has no usable wheel
    (or no allowed version), normalized; None if it names none."""
    from packaging.utils import canonicalize_name

    for pattern in _NO_WHEEL:
        for found in pattern.findall(text):
            if found != "versions" and canonicalize_name(found) != name:
                return str(canonicalize_name(found))
    return None


def _direct(pin: Pin) -> bool:
    return any(v.startswith("-r ") for v in pin.via)


def _specifier(lines: Sequence[Requested]) -> SpecifierSet:
    found = SpecifierSet()
    for line in lines:
        found &= line.specifier
    return found
